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
Writes ``benchmarks/results/benchmarl_compare.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SIDE = os.path.join(ROOT, "benchmarks", "baselines", "benchmarl_maddpg.py")


def ours(seconds: float) -> tuple[float, float, float]:
    """maddpg-jax at the comparison's settings: (env steps/s, update rounds/s, compile s)."""
    from benchmarks.common import env_steps_per_second
    from maddpg_jax import Config

    c = Config(
        env="jaxmarl:MPE_simple_spread_v3",
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


def benchmarl(python: str, iterations: int, recommended: bool) -> dict:
    """BenchMARL's side, in its own process (it imports torch; maddpg-jax's side does not)."""
    cmd = [python, SIDE, str(iterations)] + (["--recommended"] if recommended else [])
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"BenchMARL's side failed ({' '.join(cmd)}):\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmarl-python", default=sys.executable, help="a Python with benchmarl and vmas")
    ap.add_argument("--iterations", type=int, default=4, help="BenchMARL iterations (6,000 frames each), >= 2")
    ap.add_argument("--seconds", type=float, default=20.0, help="maddpg-jax's timed seconds")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "benchmarl_compare.md"))
    args = ap.parse_args()
    if args.iterations < 2:
        ap.error(f"--iterations: must be >= 2, got {args.iterations}")

    from benchmarks.common import machine
    from maddpg_jax.rundir import atomic_write_text

    o_sps, o_ups, comp = ours(args.seconds)
    print(f"maddpg-jax: {o_sps:,.0f} env steps/s, {o_ups:,.0f} update rounds/s (compile {comp:.1f} s)", flush=True)
    b = benchmarl(args.benchmarl_python, args.iterations, False)
    print(f"BenchMARL: {json.dumps(b)}", flush=True)
    r = benchmarl(args.benchmarl_python, args.iterations, True)
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
