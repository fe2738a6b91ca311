"""maddpg-jax against BenchMARL's MADDPG on simple_spread, at equal settings, in one run.

    pip install benchmarl vmas          # here, or in an environment of its own:
    python benchmarks/benchmarl_compare.py [--benchmarl-python PATH] [--iterations 4]

BenchMARL (TorchRL) is the maintained MADDPG that users pick today. Both sides run plain
MADDPG (one critic, squared TD error) with 3 agents on simple_spread (BenchMARL: VMAS's, 25-step
episodes; maddpg-jax: JaxMARL's ``MPE_simple_spread_v3``, 26 steps), continuous actions, two
64-unit ReLU layers, each agent its own actor and critic, 60 envs and one update round of
batch 128 per 6 env steps (BenchMARL: 6,000 frames, then 1,000 optimiser steps; maddpg-jax:
E 60, U 10), gamma 0.99 and tau 0.005 (BenchMARL's). The figure is env steps per second with
learning, start-up and compilation left out (reported apart); each side has the whole machine
in turn (BenchMARL its own process, torch's default threads; maddpg-jax one CPU device).
A second BenchMARL row uses its recommended MLP (two 256-unit tanh layers, parameters shared).
Writes ``benchmarks/results/peers/benchmarl_compare.md``.

    pip install "pettingzoo[mpe]<1.25"  # beside benchmarl: the MPE that BenchMARL's PettingZoo tasks import
    python benchmarks/benchmarl_compare.py --to-return [--budget 2400] [--seeds 5] [--benchmarl-seeds 2]

``--to-return`` measures wall time to a return instead, each side with its own recommended
settings on the same env (PettingZoo's simple_spread_v3 for BenchMARL, the JaxMARL port of it
for maddpg-jax, 26-step episodes): maddpg-jax's seeds each run its recommended 2M env steps
in a program of their own, then BenchMARL's seeds each run for ``--budget`` wall seconds (its
recommended 3M frames take hours on a CPU). Writes ``benchmarl_to_return.md``, ``.json`` (every
curve) and ``.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.common import command_line

SIDE = os.path.join(ROOT, "benchmarks", "baselines", "benchmarl_maddpg.py")
ENV = "jaxmarl:MPE_simple_spread_v3"


def ours(seconds: float) -> tuple[float, float, float]:
    """maddpg-jax at the comparison's settings: (env steps/s, update rounds/s, compile s)."""
    from benchmarks.common import env_steps_per_second
    from maddpg_jax import Config

    c = Config(
        env=ENV,
        num_envs=60,
        updates_per_step=10,
        batch_size=128,
        hidden_sizes=(64, 64),
        gamma=0.99,
        tau=0.005,
        warmup_env_steps=0,
        total_env_steps=10**9,
        eval_episodes=0,
    )
    assert not c.twin_critics and c.huber_delta == 0 and not c.critic_layer_norm  # plain MADDPG
    return env_steps_per_second(c, seconds)


def ours_to_return(seed: int, total_env_steps: int) -> dict:
    """maddpg-jax with its recommended simple_spread settings (the registry's: plain MADDPG,
    128 envs, one update round of batch 256 per step, rates 3e-3; 16 noise-free evaluation
    episodes every 10,240 env steps) for one seed in its own program. Returns ``evals``:
    ``(wall s, env steps, noise-free return)`` at each evaluation, and ``train``: ``(wall s,
    env steps, last 100 training episodes' mean return)`` at the same points. Wall time counts
    from before the trainer is built, so compilation is in it."""
    import time

    from benchmarks.common import program
    from maddpg_jax import Config
    from maddpg_jax.loop import plan_chunks, run_chunks

    t0 = time.perf_counter()
    config = Config(env=ENV, seed=seed, total_env_steps=total_env_steps)
    _, runner, state, hp = program(config)
    out = {"evals": [], "train": []}

    def on_chunk(chunk):
        now, steps = time.perf_counter() - t0, int(chunk.metrics.env_steps[0, -1])
        out["train"].append((now, steps, float(chunk.metrics.mean_return[0, -1])))
        if chunk.learn and chunk.end % config.eval_interval == 0:
            out["evals"].append((now, steps, float(chunk.metrics.eval_return[0, -1])))

    run_chunks(runner, state, hp, plan_chunks(config), on_chunk)
    return out


def benchmarl(python: str, *argv: str) -> dict:
    """BenchMARL's side (``benchmarks/baselines/benchmarl_maddpg.py ARGV...``) in its own
    process (it imports torch; maddpg-jax's side does not): the JSON line it prints last."""
    cmd = [python, SIDE, *argv]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"BenchMARL's side failed ({' '.join(cmd)}):\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def first_reach(evals, level: float):
    """``(wall s, env steps)`` of the first evaluation whose return is >= ``level``, else None."""
    return next(((t, n) for t, n, r in evals if r >= level), None)


def to_return_report(ours_runs: list[dict], bm_runs: list[dict], levels, budget_s: float) -> list[str]:
    """Markdown rows: per return level, each side's seeds reaching it, median wall seconds and
    env steps to it, and BenchMARL's median over maddpg-jax's; then each side's best and last
    noise-free returns."""
    lines = [
        "| noise-free return | maddpg-jax: seeds | wall s (median) | env steps (median) "
        "| BenchMARL: seeds | wall s (median) | env steps (median) | BenchMARL ÷ maddpg-jax (wall) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, level in levels:
        cells, medians = [], []
        for runs in (ours_runs, bm_runs):
            hits = [h for h in (first_reach(r["evals"], level) for r in runs) if h is not None]
            t = float(np.median([h[0] for h in hits])) if len(hits) == len(runs) else None
            medians.append(t)
            cells += [
                f"{len(hits)} of {len(runs)}",
                f"{t:,.0f}" if t is not None else f"not all in {budget_s:,.0f} s" if runs is bm_runs else "-",
                f"{np.median([h[1] for h in hits]):,.0f}" if hits else "-",
            ]
        o, b = medians
        ratio = f"{b / o:.0f}x" if o and b else f"> {budget_s / o:.0f}x" if o else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio} |")
    lines += [
        "",
        "| side | seeds | best noise-free return (median, worst) | last (median, worst) | env steps run |",
        "|---|---:|---:|---:|---:|",
    ]
    for side, runs in (("maddpg-jax", ours_runs), ("BenchMARL", bm_runs)):
        best = [max(r for _, _, r in run["evals"]) for run in runs]
        last = [run["evals"][-1][2] for run in runs]
        steps = [run["evals"][-1][1] for run in runs]
        lines.append(
            f"| {side} | {len(runs)} | {np.median(best):.1f}, {min(best):.1f} | {np.median(last):.1f}, {min(last):.1f} "
            f"| {np.median(steps):,.0f} |"
        )
    return lines


def plot_to_return(ours_runs: list[dict], bm_runs: list[dict], path: str) -> None:
    """Noise-free return against wall seconds (left) and env steps (right), one line per seed."""
    from maddpg_jax.plotting import plt, save_figure

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110, sharey=True)
    for colour, side, runs in (("C0", "maddpg-jax", ours_runs), ("C3", "BenchMARL", bm_runs)):
        for i, run in enumerate(runs):
            t, n, r = zip(*run["evals"])
            for ax, x in zip(axes, (t, n)):
                ax.plot(x, r, color=colour, lw=1.1, alpha=0.8, label=side if i == 0 else None)
    for ax, label in zip(axes, ("wall seconds (start-up and compilation included)", "env steps")):
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("noise-free return (mean over agents)")
    axes[0].legend(fontsize=8)
    fig.suptitle("simple_spread (3 agents, continuous), each side's recommended settings")
    fig.tight_layout()
    save_figure(fig, path)


LEVELS = (-22.0, -20.0, -18.0)


def progress(side: str, seed: int, evals) -> None:
    """One line per finished seed: env steps and wall seconds at its last evaluation, its best."""
    t, n, _ = evals[-1]
    print(f"{side} seed {seed}: {n:,} env steps in {t:.0f} s, best {max(e[2] for e in evals):.1f}", flush=True)


def to_return_main(args, parser, out: str) -> None:
    """``--to-return``: maddpg-jax's seeds, then BenchMARL's, each alone on the machine;
    writes ``out`` (markdown), its ``.json`` (every curve) and ``.png``."""
    from benchmarks.common import machine
    from maddpg_jax.rundir import atomic_write_text

    ours_runs = []
    for seed in range(args.seeds):
        ours_runs.append(ours_to_return(seed, args.env_steps))
        progress("maddpg-jax", seed, ours_runs[-1]["evals"])
    bm_runs = []
    for seed in range(args.benchmarl_seeds):
        bm_runs.append(benchmarl(args.benchmarl_python, "--to-return", str(args.budget), str(seed)))
        progress("BenchMARL", seed, bm_runs[-1]["evals"])
    reached = min(max(r[2] for r in run["evals"]) for run in bm_runs)
    levels = [(f"{v:g}", v) for v in LEVELS] + [(f"{reached:.1f} (every BenchMARL seed's best reaches it)", reached)]
    b = bm_runs[0]
    lines = [
        "# Wall time to a return: maddpg-jax against BenchMARL's MADDPG",
        "",
        f"Machine: {machine()}; BenchMARL {b['benchmarl']}, torch {b['torch']} ({b['threads']} threads).",
        "",
        "```bash",
        command_line("benchmarl_compare.py", parser, args),
        "```",
        "",
        "Both sides on the same env, simple_spread_v3 with 3 agents, continuous actions and 26-step episodes",
        "(maddpg-jax: JaxMARL's; BenchMARL: PettingZoo's, which JaxMARL's is checked against), each with its",
        "own recommended settings, one seed per process, each side alone on the machine. Returns are",
        "noise-free evaluations (maddpg-jax: 16 episodes every 10,240 env steps; BenchMARL: 10",
        "deterministic episodes every 30,000 frames), the mean over agents of each agent's episode sum.",
        "Wall time counts start-up and compilation.",
        "",
        *to_return_report(ours_runs, bm_runs, levels, args.budget),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    base = os.path.splitext(out)[0]
    atomic_write_text(base + ".json", json.dumps({"maddpg_jax": ours_runs, "benchmarl": bm_runs}))
    plot_to_return(ours_runs, bm_runs, base + ".png")
    atomic_write_text(out, text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmarl-python", default=sys.executable, help="a Python with benchmarl and vmas")
    ap.add_argument("--iterations", type=int, default=4, help="BenchMARL iterations (6,000 frames each), >= 2")
    ap.add_argument("--seconds", type=float, default=20.0, help="maddpg-jax's timed seconds")
    ap.add_argument(
        "--out",
        default=None,
        help="default: benchmarks/results/peers/benchmarl_compare.md (with --to-return, benchmarl_to_return.md)",
    )
    ap.add_argument(
        "--to-return", action="store_true", help="wall time to a return instead, each side's recommended settings"
    )
    ap.add_argument("--budget", type=float, default=2400.0, help="--to-return: BenchMARL's wall seconds per seed")
    ap.add_argument("--seeds", type=int, default=5, help="--to-return: maddpg-jax seeds, one program each")
    ap.add_argument("--benchmarl-seeds", type=int, default=2, help="--to-return: BenchMARL seeds, one after another")
    ap.add_argument(
        "--env-steps", type=int, default=2_000_000, help="--to-return: maddpg-jax's env steps (its recommended run)"
    )
    args = ap.parse_args()
    if args.iterations < 2:
        ap.error(f"--iterations: must be >= 2, got {args.iterations}")
    for name in ("budget", "seeds", "benchmarl_seeds", "env_steps"):
        if not getattr(args, name) > 0:
            ap.error(f"--{name.replace('_', '-')}: must be > 0, got {getattr(args, name)}")
    results = os.path.join(ROOT, "benchmarks", "results", "peers")
    if args.to_return:
        return to_return_main(args, ap, args.out or os.path.join(results, "benchmarl_to_return.md"))
    args.out = args.out or os.path.join(results, "benchmarl_compare.md")

    from benchmarks.common import machine
    from maddpg_jax.rundir import atomic_write_text

    o_sps, o_ups, comp = ours(args.seconds)
    print(f"maddpg-jax: {o_sps:,.0f} env steps/s, {o_ups:,.0f} update rounds/s (compile {comp:.1f} s)", flush=True)
    b = benchmarl(args.benchmarl_python, str(args.iterations))
    print(f"BenchMARL: {json.dumps(b)}", flush=True)
    r = benchmarl(args.benchmarl_python, str(args.iterations), "--recommended")
    print(f"BenchMARL, its recommended MLP: {json.dumps(r)}", flush=True)
    rows = [
        ("maddpg-jax (JaxMARL simple_spread)", o_sps, o_ups, f"compile {comp:.1f} s"),
        ("BenchMARL (VMAS simple_spread), equal settings", b["env_steps_per_s"], b["update_rounds_per_s"], ""),
        ("BenchMARL, its MLP (256, 256) tanh, shared", r["env_steps_per_s"], r["update_rounds_per_s"], ""),
    ]
    lines = [
        "# maddpg-jax against BenchMARL's MADDPG",
        "",
        f"Machine: {machine()}; BenchMARL {b['benchmarl']}, torch {b['torch']} ({b['threads']} threads).",
        "",
        "```bash",
        f"python benchmarks/benchmarl_compare.py --iterations {args.iterations} --seconds {args.seconds:g}",
        "```",
        "",
        "| side | env steps/s with learning | update rounds/s | maddpg-jax ÷ side | |",
        "|---|---:|---:|---:|---|",
    ]
    for name, sps, ups, note in rows:
        lines.append(f"| {name} | {sps:,.0f} | {ups:,.0f} | {o_sps / sps:.1f}x | {note} |")
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_text(args.out, text)


if __name__ == "__main__":
    main()
