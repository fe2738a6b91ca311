"""What the paper's extensions cost: env steps per second with learning at ensemble sizes
K = 1, 2, 3 and with inferred policies, beside plain MADDPG in the same run.

An ensemble of K applies all K sub-policies of every agent when acting and in the actor and
target-action computations (K times the actors' compute) and the critics once; inferred
policies add A x A approximation networks, each trained every update round.

    python benchmarks/extensions_cost.py                      # paper:simple_tag, --preset paper
    python benchmarks/extensions_cost.py --env paper:simple_adversary --preset none

Writes ``benchmarks/results/throughput/extensions_cost.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from maddpg_jax.parallel import configure_host_devices

configure_host_devices()

from benchmarks.common import command_line, env_steps_per_second, machine, parse_set
from maddpg_jax import Config
from maddpg_jax.rundir import atomic_write_text

VARIANTS = (
    ("MADDPG", {}),
    ("ensemble K=2", {"ensemble_size": 2}),
    ("ensemble K=3", {"ensemble_size": 3}),
    ("inferred policies", {"infer_policies": True}),
)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="paper:simple_tag")
    p.add_argument("--preset", default="paper", choices=("paper", "none"))
    p.add_argument("--seconds", type=float, default=8.0, help="timed seconds per variant")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="Config values for every variant")
    p.add_argument("--out", default="benchmarks/results/throughput/extensions_cost.md")
    a = p.parse_args(argv)
    command = command_line("extensions_cost.py", p, a)
    rows = []
    for name, extra in VARIANTS:
        config = Config(
            env=a.env,
            preset=a.preset,
            warmup_env_steps=0,
            total_env_steps=10**9,
            **{**parse_set(a.set), **extra},
        )
        steps, rounds, compile_s = env_steps_per_second(config, a.seconds)
        rows.append((name, steps, rounds, compile_s))
        print(f"{name}: {steps:,.0f} env steps/s, {rounds:,.1f} update rounds/s, compile {compile_s:.1f} s", flush=True)
    base = rows[0][1]
    lines = [
        "## What the paper's extensions cost",
        "",
        f"`{a.env}`, preset `{a.preset}`, one run with learning (the buffer past one batch, the compile timed "
        f"apart, {a.seconds:g} s timed per variant, each in the same process one after another).",
        "",
        f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. Command: `{command}`",
        "",
        "| variant | env steps/s | update rounds/s | vs MADDPG | compile s |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {n} | {s:,.0f} | {r:,.1f} | {s / base:.2f}x | {c:.1f} |" for n, s, r, c in rows]
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    atomic_write_text(a.out, "\n".join(lines) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
