"""MADDPG on JaxMARL's MPE simple_spread (continuous actions): 3 seeds beside a random policy.

    pip install -e ".[dev]"      # jaxmarl is a dev dependency
    python benchmarks/mpe_learning.py [--total-env-steps 300000]

All seeds train in one program (vmapped, sharded over the CPU devices) with the CLI's MPE
defaults (MADDPG paper: gamma 0.95, lr 1e-2, batch 1024, two 64-unit layers). The
"return" is the mean over agents of each agent's episode return (simple_spread's reward is
shared, so it is the team's), averaged over the last 100 episodes. The random policy is the
same loop with uniform random actions throughout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from maddpg_jax.parallel import configure_host_devices  # noqa: E402

configure_host_devices()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from maddpg_jax import Config, make_trainer  # noqa: E402
from maddpg_jax.cli import MPE_DEFAULTS  # noqa: E402
from maddpg_jax.parallel import MemberRunner, chunk_plan  # noqa: E402
from maddpg_jax.plotting import plot_curves  # noqa: E402

ENV = "jaxmarl:MPE_simple_spread_v3"


def train(config: Config, seeds: int, learn: bool = True):
    runner = MemberRunner(make_trainer(config), seeds)
    keys = runner.place(jax.random.split(jax.random.key(config.seed), seeds))
    hp = runner.place(jax.tree.map(lambda x: jnp.broadcast_to(x, (seeds,)), config.hparams()))
    state = runner.init(keys, hp)
    w, n = config.warmup_iterations, config.num_iterations
    plan = [(w, False)] + [(k, learn) for k in chunk_plan(n - w, max(1, (n - w) // 20))]
    returns, steps = [], []
    for k, lrn in plan:
        if k == 0:
            continue
        state, m = runner.run(state, hp, k, lrn)
        m = jax.device_get(m)
        returns.append(m["mean_return"][:seeds])
        steps.append(m["env_steps"][0])
    return np.concatenate(steps), np.concatenate(returns, axis=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--total-env-steps", type=int, default=300_000)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = ap.parse_args()
    config = Config(env=ENV, **{**MPE_DEFAULTS, "total_env_steps": args.total_env_steps,
                                "buffer_size": min(MPE_DEFAULTS["buffer_size"], args.total_env_steps)})
    t0 = time.perf_counter()
    steps, trained = train(config, args.seeds)
    wall = time.perf_counter() - t0
    _, rand = train(config, args.seeds, learn=False)
    series = {f"MADDPG seed {s}": (steps.tolist(), np.nan_to_num(trained[s]).tolist()) for s in range(args.seeds)}
    series.update({f"random seed {s}": (steps.tolist(), np.nan_to_num(rand[s]).tolist()) for s in range(args.seeds)})
    groups = {k: k.rsplit(" seed", 1)[0] for k in series}
    png = os.path.join(args.out, "mpe_simple_spread.png")
    plot_curves(series, png, title="MPE simple_spread (continuous), 3 agents", solved=None, groups=groups)
    print(f"{ENV}, continuous, {args.seeds} seeds x {args.total_env_steps:,} env steps in one program: {wall:.0f} s\n")
    print("| policy | " + " | ".join(f"seed {s}" for s in range(args.seeds)) + " | mean |")
    print("|---|" + "---:|" * (args.seeds + 1))
    for name, r in (("MADDPG (final 100-episode mean)", trained[:, -1]), ("random", rand[:, -1])):
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in r) + f" | {np.mean(r):.1f} |")
    idx = np.linspace(0, len(steps) - 1, 7).astype(int)[1:]
    print("\nMADDPG mean over seeds at env steps " + ", ".join(f"{steps[i]:,}: {np.nanmean(trained[:, i]):.1f}"
                                                             for i in idx))
    with open(os.path.join(args.out, "mpe_simple_spread.json"), "w") as f:
        json.dump({"env_steps": steps[::5].tolist(), "maddpg": trained[:, ::5].tolist(),
                   "random": rand[:, ::5].tolist(), "wall_s": wall}, f)


if __name__ == "__main__":
    main()
