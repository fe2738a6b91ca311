"""How a soft (``--gumbel-mode soft``) discrete policy is scored: the paper table's noise-free
argmax against the policy's probabilities and against its sampled soft action.

    python benchmarks/eval_modes.py                  # paper:simple_speaker_listener, --preset paper, 3 seeds, 1.5M
    python benchmarks/eval_modes.py --seeds 2 --total-env-steps 30000 --out runs/eval_modes_quick

The paper's code trains and acts with the soft Gumbel-softmax sample, which reaches the env
as a probability vector; its ``--benchmark`` scored that sampled policy. The paper table
scores each kept policy without noise by the argmax one-hot. Trains ``--seeds`` seeds of
the scenario with the paper's preset in one program (`maddpg_jax.sweep`, resumable in
``--out``), then scores every seed's kept policy over ``--episodes`` episodes, each way
from the same keys:

- ``argmax``: the most likely choice, one-hot (the table's evaluation);
- ``probabilities``: ``softmax(logits / T)``, the soft policy without its noise;
- ``sampled``: ``softmax((logits + Gumbel noise) / T)``, as the paper's ``--benchmark`` ran it.

Writes ``benchmarks/results/mpe/eval_modes.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import command_line, machine, run_kept_actors
from maddpg_jax import Config, acting, envs
from maddpg_jax import sweep as train_sweep
from maddpg_jax.rundir import atomic_write_text, has_checkpoint
from maddpg_jax.training import run_episodes

MODES = ("argmax", "probabilities", "sampled")


def mode_policy(trainer, mode: str, temperature: float):
    """``policy(actor_params, obs [N, A, O], index) -> env actions`` acting ``mode``. The
    sampled mode draws its noise from a key folded with the step's observations (the policy
    signature carries no key; every env and step gets its own draw)."""
    spec, nets = trainer.spec, trainer.networks
    if mode == "argmax":
        return trainer.policy

    def policy(actor_params, obs, index=None):
        logits = acting.policy_actions(spec, nets, actor_params, obs, index)
        if mode == "probabilities":
            return jax.nn.softmax(logits / temperature, -1)
        salt = jax.lax.bitcast_convert_type(obs.sum(axis=(-2, -1)), jnp.int32)  # [N]
        keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(11), s))(salt)
        return jax.vmap(lambda lg, k: acting.soft_sample(lg, k, temperature))(logits, keys)

    return policy


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="paper:simple_speaker_listener")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--total-env-steps", type=int, default=1_500_000)
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--out", default="runs/eval_modes")
    p.add_argument("--results", default="benchmarks/results/mpe/eval_modes.md")
    a = p.parse_args(argv)
    command = command_line("eval_modes.py", p, a, skip=("out", "results"))
    out = Path(a.out)
    config = Config(env=a.env, preset="paper", total_env_steps=a.total_env_steps)
    if config.gumbel_mode != "soft":
        sys.exit(f"eval_modes: {a.env} with --preset paper is not a soft discrete policy")
    train_sweep(config, a.seeds, out, resume=has_checkpoint(out), progress=False)
    config, members, trainer, actors = run_kept_actors(out)
    keys = jax.random.split(jax.random.key(0), len(members))
    names = [m.name for m in envs.entry(config.env).metrics]
    table = {}
    for mode in MODES:
        tr = trainer._replace(policy=mode_policy(trainer, mode, config.gumbel_temperature))
        ep = jax.jit(jax.vmap(lambda q, k, tr=tr: run_episodes(tr, q, k, a.episodes)))(actors, keys)
        table[mode] = {n: np.asarray(ep.metrics[:, :, i]).mean(1) for i, n in enumerate(names)}
        table[mode]["return"] = np.asarray(ep.returns).mean(1)
        print(mode, {k: np.round(v, 3).tolist() for k, v in table[mode].items()}, flush=True)
    cols = [*names, "return"]
    lines = [
        "## How a soft discrete policy is scored: argmax, probabilities, sampled",
        "",
        f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. Command: `{command}`. "
        f"{a.env} with `--preset paper` (soft Gumbel-softmax), {len(members)} seeds "
        f"({', '.join(str(m['seed']) for m in members)}) trained in one program to {a.total_env_steps:,} env steps; "
        f"each seed's kept policy scored over {a.episodes:,} episodes each way, from the same keys. "
        "A cell: median over seeds [lowest, highest].",
        "",
        "| acting | " + " | ".join(f"`{c}`" for c in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for mode in MODES:
        cells = [f"{np.median(v):.3g} [{v.min():.3g}, {v.max():.3g}]" for v in (table[mode][c] for c in cols)]
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "`argmax` is the paper table's evaluation; `sampled` is how the paper's `--benchmark` "
        "scored its policy; `probabilities` is the soft policy without its noise.",
    ]
    os.makedirs(os.path.dirname(a.results) or ".", exist_ok=True)
    atomic_write_text(a.results, "\n".join(lines) + "\n")
    print(f"wrote {a.results}")


if __name__ == "__main__":
    main()
