"""Population-based training against a grid sweep at equal compute.

    python benchmarks/pbt_vs_grid.py [--members 16] [--total-env-steps 300000] [--out DIR]

Both arms train the same number of members for the same env steps, through the CLI
(``maddpg-jax sweep`` and ``maddpg-jax pbt``), on a setting where the defaults are not
already enough: plain MADDPG (one critic, no layer norm, squared loss, gamma 0.95, tau 0.01,
constant rates) on 2-agent coupled continuous MultiCartPole-v0. The grid spans actor and
critic learning rates (a square grid, one seed per point); PBT draws both log-uniform from
the grid's range and adapts them every ``--interval`` env steps by the noise-free
evaluation. Prints and writes (``benchmarks/results/pbt/pbt_vs_grid.md`` and ``.png``): per arm,
the final 100-episode training mean (median, best, count >= 475) and the kept policies'
last noise-free evaluation, plus the schedules PBT found.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from maddpg_jax.parallel import configure_host_devices

configure_host_devices()

import numpy as np

from maddpg_jax import cli, rundir
from maddpg_jax.pbt import plot_schedules
from maddpg_jax.plotting import plot_curves, series_by_member

PLAIN = [
    "--env",
    "MultiCartPole-v0",
    "--num-agents",
    "2",
    "--no-twin-critics",
    "--target-noise",
    "0",
    "--no-critic-layer-norm",
    "--huber-delta",
    "0",
    "--final-layer-init",
    "0",
    "--gamma",
    "0.95",
    "--tau",
    "0.01",
    "--noise-std",
    "0.1",
    "--lr-decay",
    "none",
    "--n-step",
    "1",
    "--no-progress",
]
LOW, HIGH = 1e-4, 3e-3


def arm(rows: list[dict], n: int) -> dict:
    """Final training means and last noise-free evaluations of ``n`` members."""
    last = {}
    for r in rows:
        last[r.get("member", 0)] = r
    final = np.array([np.nan if last[m]["mean_return"] is None else last[m]["mean_return"] for m in range(n)])
    evals = np.array([np.nan if last[m].get("eval_return") is None else last[m]["eval_return"] for m in range(n)])
    return {
        "final_median": float(np.nanmedian(final)),
        "final_best": float(np.nanmax(final)),
        "final_solved": int((final >= 475).sum()),
        "eval_median": float(np.nanmedian(evals)),
        "eval_best": float(np.nanmax(evals)),
        "eval_solved": int((evals >= 475).sum()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--members", type=int, default=16, help="members per arm (a square number for the grid)")
    p.add_argument("--total-env-steps", type=int, default=300_000)
    p.add_argument("--interval", type=int, default=30_720, help="PBT env steps between exploit steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="/tmp/pbt_vs_grid", help="scratch directory for the two runs")
    p.add_argument("--results", default=os.path.join(os.path.dirname(__file__), "results", "pbt"))
    a = p.parse_args()
    side = math.isqrt(a.members)
    if side * side != a.members:
        raise SystemExit(f"--members: must be a square number for the grid, got {a.members}")
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    grid_lrs = ",".join(f"{v:.3g}" for v in np.geomspace(LOW, HIGH, side))
    common = [*PLAIN, "--total-env-steps", str(a.total_env_steps), "--seed", str(a.seed)]
    runs = {
        "grid": ["sweep", *common, "--actor-lr", grid_lrs, "--critic-lr", grid_lrs, "--out", str(out / "grid")],
        "pbt": [
            "pbt",
            *common,
            "--members",
            str(a.members),
            "--actor-lr",
            f"{LOW}:{HIGH}",
            "--critic-lr",
            f"{LOW}:{HIGH}",
            "--interval",
            str(a.interval),
            "--out",
            str(out / "pbt"),
        ],
    }
    results, wall = {}, {}
    for name, argv in runs.items():
        print("maddpg-jax " + " ".join(argv), flush=True)
        t0 = time.perf_counter()
        assert cli.main(argv) == 0
        wall[name] = time.perf_counter() - t0
        results[name] = arm(rundir.read_jsonl(out / name / rundir.METRICS), a.members)
    lineage = rundir.read_jsonl(out / "pbt" / rundir.PBT)
    final_pbt = json.loads((out / "pbt" / rundir.CONFIG).read_text())["members"]
    for r in lineage:  # the hyperparameters each member ended with
        final_pbt[r["member"]].update(r["new"])
    from benchmarks.common import machine

    lines = [
        f"# PBT against a grid at equal compute ({a.members} members x {a.total_env_steps:,} env steps each)",
        "",
        f"Plain MADDPG on 2-agent coupled continuous MultiCartPole-v0; actor and critic learning rates in "
        f"[{LOW:g}, {HIGH:g}] (grid: {side} x {side} log-spaced, {grid_lrs}; PBT: log-uniform draws, exploit "
        f"every {a.interval:,} env steps by the 16-episode noise-free evaluation, bottom 25% replaced, "
        f"perturb x0.8 / x1.25, resample 0.25). Machine: {machine()}. "
        f"`python benchmarks/pbt_vs_grid.py`",
        "",
        "| arm | final mean: median / best / >= 475 | last noise-free eval: median / best / >= 475 | wall s |",
        "|---|---|---|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['final_median']:.1f} / {r['final_best']:.1f} / {r['final_solved']}/{a.members} | "
            f"{r['eval_median']:.1f} / {r['eval_best']:.1f} / {r['eval_solved']}/{a.members} | {wall[name]:.0f} |"
        )
    lines += ["", f"PBT: {len(lineage)} replacements; final learning rates per member (actor, critic):", ""]
    lines.append(", ".join(f"({m['actor_lr']:.2g}, {m['critic_lr']:.2g})" for m in final_pbt))
    text = "\n".join(lines) + "\n"
    print(text)
    results_dir = Path(a.results)
    rundir.atomic_write_text(results_dir / "pbt_vs_grid.md", text)
    series = {}
    for name in runs:
        for label, xy in series_by_member(rundir.read_jsonl(out / name / rundir.METRICS)).items():
            series[f"{name} {label}"] = xy
    groups = {k: k.split()[0] for k in series}
    plot_curves(
        series,
        results_dir / "pbt_vs_grid.png",
        title="PBT vs grid, plain MADDPG, coupled CartPole",
        groups=groups,
        **plot_schedules(out / "pbt"),
    )
    print(f"wrote {results_dir / 'pbt_vs_grid.md'} and .png")


if __name__ == "__main__":
    main()
