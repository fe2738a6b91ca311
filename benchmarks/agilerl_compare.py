"""maddpg-jax against AgileRL on simple_spread: wall time until a population's best member
reaches a noise-free return, each side with its own recommended MADDPG settings and a
population of the same size.

    python -m venv /path/agilerl-venv && /path/agilerl-venv/bin/pip install agilerl mpe2 peft
    python benchmarks/agilerl_compare.py --agilerl-python /path/agilerl-venv/bin/python

AgileRL (PyPI ``agilerl``) sells MADDPG with evolutionary hyperparameter optimisation; it runs
in its own environment (``benchmarks/baselines/agilerl_maddpg.py``), so the project's install
stays as it is. Sides, each with the whole machine in turn:

- AgileRL: a population of ``--population`` MADDPG agents on mpe2's ``simple_spread_v3``
  (3 agents, 25-step episodes, continuous actions), its recommended settings and its own
  training loop, evolving every 10,000 env steps; scored after each evolution by its
  noise-free test. Stopped at ``--budget`` wall seconds or at the highest level.
- maddpg-jax, the user's commands: ``maddpg-jax sweep --seeds N`` (a plain grid of seeds at
  the registry's recommended settings) and ``maddpg-jax pbt --members N`` (rates drawn from
  ranges around them and adapted), on JaxMARL's port of simple_spread (26-step episodes; the
  rewards per step are mpe2's: ``benchmarks/mpe2_check.py``), 2M env steps; scored by the
  noise-free evaluation every 10,240 env steps.

Figures: per side and seed, the wall seconds (maddpg-jax: the run's clock, from its start,
compilation included; AgileRL: from its first env step, the population built and the env
processes started) and the env steps (all members together) until the best member's return per agent
first reaches each level, and the final best and median member. Writes
``benchmarks/results/peers/agilerl_compare.{md,json}``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.common import command_line, machine

SIDE = os.path.join(ROOT, "benchmarks", "baselines", "agilerl_maddpg.py")
ENV = "jaxmarl:MPE_simple_spread_v3"
CACHE = Path("runs/agilerl_compare")
PBT_RANGES = ("--actor-lr", "1e-3:1e-2", "--critic-lr", "1e-3:1e-2")


def ours(command: str, seed: int, members: int, env_steps: int, out: Path) -> dict:
    """One maddpg-jax population by the CLI: its best member's evaluation curve
    ``(wall s, env steps of all members, best return, median return)``."""
    shutil.rmtree(out, ignore_errors=True)
    count = ("--seeds" if command == "sweep" else "--members", str(members))
    extra = PBT_RANGES if command == "pbt" else ()
    cmd = ["maddpg-jax", command, "--env", ENV, *count, "--seed", str(seed), "--total-env-steps", str(env_steps)]
    cmd += [*extra, "--out", str(out), "--no-progress"]
    t0 = time.perf_counter()
    p = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), cmd[0]), *cmd[1:]], capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"maddpg-jax {command} failed ({' '.join(cmd)}):\n{p.stderr[-2000:]}")
    by_step: dict[int, dict] = {}
    for line in (out / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r.get("eval_metrics") is not None or r.get("eval_return") is not None:
            by_step.setdefault(r["env_steps"], {})[r["member"]] = (r["wall_s"], r["eval_return"])
    curve = []
    for steps in sorted(by_step):
        rows = by_step[steps]
        values = [v for _, v in rows.values() if v is not None and np.isfinite(v)]
        if len(rows) == members and values:
            curve.append((max(t for t, _ in rows.values()), steps * members, max(values), float(np.median(values))))
    return {"side": f"maddpg-jax {command}", "seed": seed, "process_wall_s": wall, "curve": curve}


def agilerl(python: str, seed: int, members: int, budget: float, target: float) -> dict:
    cmd = [python, SIDE, "--seed", str(seed), "--population", str(members), "--budget", str(budget)]
    cmd += ["--target", str(target)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"AgileRL's side failed ({' '.join(cmd)}):\n{p.stderr[-2000:]}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    curve = [(c["wall_s"], c["env_steps"], max(c["returns"]), float(np.median(c["returns"]))) for c in out["curve"]]
    return {**out, "side": "AgileRL", "seed": seed, "process_wall_s": time.perf_counter() - t0, "curve": curve}


def cached(key: dict, run) -> dict:
    """``run()``'s result, kept in ``runs/agilerl_compare`` under ``key``: the comparison takes
    hours, so an interrupted invocation resumes at the first population it has not finished."""
    path = CACHE / ("_".join(f"{k}{v}" for k, v in key.items()) + ".json")
    if path.exists():
        return json.loads(path.read_text())
    result = run()
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, path)  # a kill mid-write leaves no half result to reload
    return result


def median_to(level: float, runs: list[dict]) -> tuple[float | None, bool]:
    """The median over ``runs`` of the wall seconds until the best member first reached
    ``level``, a run that never did counting as the seconds it ran; and whether such a run
    entered the median (then it is a lower bound). ``(None, False)`` without runs."""
    if not runs:
        return None, False
    hits = [first_reach(r["curve"], level) for r in runs]
    times = [h[0] if h else (r["curve"][-1][0] if r["curve"] else 0.0) for h, r in zip(hits, runs)]
    med = float(np.median(times))
    # it is exact only if the misses, as late as they could be, leave the median where it is
    return med, float(np.median([t if h else np.inf for t, h in zip(times, hits)])) != med


def first_reach(curve, level: float):
    return next(((t, n) for t, n, best, _ in curve if best >= level), None)


def report(runs: list[dict], levels, a, command: str) -> str:
    versions = sorted({f"agilerl {r['agilerl']}, torch {r['torch']}" for r in runs if r["side"] == "AgileRL"})
    import jax

    lines = [
        "## maddpg-jax against AgileRL: wall time to a return on simple_spread",
        "",
        f"Populations of {a.population}; return per agent of the best member, noise-free. AgileRL stopped at "
        f"{a.budget:,.0f} s. Machine: {machine()}. Date: {datetime.date.today().isoformat()}. "
        f"Versions: maddpg-jax {importlib.metadata.version('maddpg-jax')} (jax {jax.__version__}); "
        f"{'; '.join(versions) or 'AgileRL not run'}. "
        f"Command: `{command}`",
        "",
        "| side | seed | "
        + " | ".join(f"wall s to {lv:g} (env steps)" for lv in levels)
        + " | final best | final median |",
        "|---|---:|" + "---:|" * (len(levels) + 2),
    ]
    for r in runs:
        cells = []
        for lv in levels:
            hit = first_reach(r["curve"], lv)
            cells.append(
                f"{hit[0]:,.0f} ({hit[1]:,})" if hit else f"not in {r['curve'][-1][0]:,.0f} s" if r["curve"] else "–"
            )
        last = r["curve"][-1] if r["curve"] else (0, 0, float("nan"), float("nan"))
        lines.append(f"| {r['side']} | {r['seed']} | " + " | ".join(cells) + f" | {last[2]:.1f} | {last[3]:.1f} |")
    lines += [
        "",
        "Median wall seconds to each level over seeds. A seed that never got there counts as the "
        "seconds it ran, so a median it enters is a lower bound (marked >), and so is a ratio over it:",
        "",
        "| level | " + " | ".join(sides := list(dict.fromkeys(r["side"] for r in runs))) + " | AgileRL ÷ maddpg-jax |",
        "|---|" + "---:|" * (len(sides) + 1),
    ]
    for lv in levels:
        med = {side: median_to(lv, [r for r in runs if r["side"] == side]) for side in sides}
        cells = [f"{'> ' if bound else ''}{t:,.0f}" if t else "-" for t, bound in med.values()]
        agile, agile_bound = med.get("AgileRL", (None, False))
        ratios = [
            f"{'> ' if agile_bound else ''}{agile / t:.1f}x vs {side.removeprefix('maddpg-jax ')}"
            for side, (t, bound) in med.items()
            if side != "AgileRL" and t and agile and not bound
        ]
        lines.append(f"| {lv:g} | " + " | ".join(cells) + f" | {', '.join(ratios) or '-'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agilerl-python", default=None, help="the python of an environment with agilerl and mpe2")
    p.add_argument("--population", type=int, default=8)
    p.add_argument("--seeds", default="0,100,200", help="one population per seed, each side")
    p.add_argument("--levels", default="-20,-15")
    p.add_argument("--budget", type=float, default=3600.0, help="AgileRL's wall seconds per seed")
    p.add_argument("--env-steps", type=int, default=2_000_000, help="maddpg-jax's env steps per member")
    p.add_argument("--out", default="benchmarks/results/peers/agilerl_compare.md")
    a = p.parse_args(argv)
    command = command_line("agilerl_compare.py", p, a, skip=("out", "agilerl_python"))
    levels = [float(x) for x in a.levels.split(",")]
    seeds = [int(s) for s in a.seeds.split(",")]
    runs = []
    for seed in seeds:
        for cmd in ("sweep", "pbt"):
            key = {"side": cmd, "seed": seed, "population": a.population, "env_steps": a.env_steps}
            runs.append(cached(key, lambda: ours(cmd, seed, a.population, a.env_steps, CACHE / f"{cmd}_{seed}")))
            print(f"maddpg-jax {cmd} seed {seed}: {runs[-1]['process_wall_s']:,.0f} s", flush=True)
    if a.agilerl_python:
        for seed in seeds:
            key = {"side": "agilerl", "seed": seed, "population": a.population, "budget": a.budget}
            key["target"] = max(levels)
            runs.append(cached(key, lambda: agilerl(a.agilerl_python, seed, a.population, a.budget, max(levels))))
            print(f"AgileRL seed {seed}: {runs[-1]['process_wall_s']:,.0f} s", flush=True)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    Path(a.out).write_text(report(runs, levels, a, command))
    Path(a.out).with_suffix(".json").write_text(json.dumps({"command": command, "runs": runs}))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
