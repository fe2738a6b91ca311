"""Learning curves of the 5-seed time-to-solve results of the one-step defaults that
preceded the current ones (benchmarks/results/superseded/*.json) in one PNG.

python benchmarks/plot_results.py
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maddpg_jax.plotting import plot_curves

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "superseded")
RUNS = [
    ("time_to_solve_continuous.json", "defaults, continuous"),
    ("time_to_solve_discrete.json", "defaults, discrete"),
    ("time_to_solve_plain.json", "plain MADDPG (paper style)"),
]


def main():
    series, groups = {}, {}
    for name, label in RUNS:
        path = os.path.join(HERE, name)
        if not os.path.exists(path):
            continue
        d = json.load(open(path))
        if "paths" in d:  # time_to_solve.py's format: one entry per path; draw the first
            d = next(iter(d["paths"].values()))
        for s, ys in enumerate(d["mean_return"]):
            series[f"{label}, seed {s}"] = (d["env_steps"], [0.0 if y is None else y for y in ys])
            groups[f"{label}, seed {s}"] = label
    out = os.path.join(HERE, "learning_curves.png")
    plot_curves(series, out, title="2 agents, coupled (k=1) MultiCartPole-v0", groups=groups)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
