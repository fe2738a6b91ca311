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
from maddpg_jax.parallel import configure_host_devices

configure_host_devices()

import numpy as np

from maddpg_jax import Config
from maddpg_jax import members as members_lib
from maddpg_jax.loop import plan_chunks, run_chunks
from maddpg_jax.plotting import plot_curves

ENV = "jaxmarl:MPE_simple_spread_v3"


def train(config: Config, seeds: int, learn: bool = True):
    """Seeds ``seed .. seed + seeds - 1`` in one program through the host loop; ``learn=False``
    keeps the random warm-up policy the whole run (the random baseline)."""
    _, runner, placed = members_lib.build(config, members_lib.seed_members(config, seeds))
    keys, hp = members_lib.place(runner, config, placed)
    plan = [(n, lrn and learn, sel and learn) for n, lrn, sel in plan_chunks(config)]
    returns, steps = [], []

    def on_chunk(chunk):
        returns.append(chunk.metrics.mean_return[:seeds])
        steps.append(chunk.metrics.env_steps[0])

    run_chunks(runner, runner.init(keys, hp), hp, plan, on_chunk)
    return np.concatenate(steps), np.concatenate(returns, axis=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--total-env-steps", type=int, default=300_000)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "mpe"))
    args = ap.parse_args()
    # The env's recommended defaults from its registry entry, with this run's length.
    default_buffer = Config(env=ENV).buffer_size
    config = Config(
        env=ENV, total_env_steps=args.total_env_steps, buffer_size=min(default_buffer, args.total_env_steps)
    )
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
    print(
        "\nMADDPG mean over seeds at env steps "
        + ", ".join(f"{steps[i]:,}: {np.nanmean(trained[:, i]):.1f}" for i in idx)
    )
    with open(os.path.join(args.out, "mpe_simple_spread.json"), "w") as f:
        json.dump(
            {
                "env_steps": steps[::5].tolist(),
                "maddpg": trained[:, ::5].tolist(),
                "random": rand[:, ::5].tolist(),
                "wall_s": wall,
            },
            f,
        )


if __name__ == "__main__":
    main()
