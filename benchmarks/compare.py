"""maddpg-jax against a conventional PyTorch MADDPG, side by side in one run.

    pip install -e ".[bench]"          # torch==2.13.0 (CPU build)
    python benchmarks/compare.py [--out benchmarks/results/peers] [--solve-seconds 180]

1. Throughput with learning at (E, B, U) = (1, 256, 1), (16, 256, 1), (64, 256, 2), (1024, 1024, 1):
   both run plain MADDPG (one critic, no layer norm, MSE), paper-style hyperparameters, two
   64-unit layers, 2 agents, coupled continuous MultiCartPole-v0; each uses the whole machine
   (torch its default threads; maddpg-jax one CPU device per core, a single run data-parallel
   over them when E and B divide). Compile time is reported apart.
2. Peak resident memory of each at (1024, 1024, 1), each measured in its own child process.
3. Env steps/s against the number of envs (log-log PNG).
4. Time to solve: mean return against wall-clock seconds, 3 seeds each at each one's best
   settings found (PNG); maddpg-jax trains its 3 seeds in one program, the baseline runs
   them one after another, each for --solve-seconds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from maddpg_jax.parallel import configure_host_devices

configure_host_devices()

from maddpg_jax.config import STABILISERS_OFF

ROWS = [(1, 256, 1), (16, 256, 1), (64, 256, 2), (1024, 1024, 1)]
PLAIN = dict(
    STABILISERS_OFF,
    final_layer_init=0.0,
    gamma=0.95,
    tau=0.01,
    actor_lr=1e-3,
    critic_lr=1e-3,
    noise_std=0.1,
    lr_decay="none",
)
TORCH_PLAIN = dict(gamma=0.95, tau=0.01, lr_actor=1e-3, lr_critic=1e-3, noise_std=0.1)


def ours_rate(e, b, u, seconds=6.0):
    """(env steps/s with learning, update rounds/s, compile s) of one maddpg-jax run."""
    from benchmarks.common import env_steps_per_second
    from maddpg_jax import Config

    c = Config(
        num_envs=e,
        batch_size=b,
        updates_per_step=u,
        buffer_size=max(b, 1 << 17) // 2 * 2,
        total_env_steps=10**9,
        warmup_env_steps=0,
        **PLAIN,
    )
    return env_steps_per_second(c, seconds)


def torch_rate(e, b, u, seconds=8.0):
    from benchmarks.baselines.torch_maddpg.maddpg import train

    r = train(
        num_envs=e,
        batch_size=b,
        updates_per_step=u,
        warmup_env_steps=b,
        total_env_steps=10**9,
        buffer_size=1 << 17,
        time_budget_s=seconds,
        **TORCH_PLAIN,
    )
    return r["env_steps_per_s"], r["update_rounds_per_s"]


def memory_probe(which: str) -> None:
    """Child process: one (1024, 1024, 1) throughput run, then print its own peak RSS.

    VmHWM from /proc/self/status, not ru_maxrss: ru_maxrss survives exec, so a child
    would report the (larger) parent's peak from before it started.
    """
    if which == "ours":
        ours_rate(1024, 1024, 1, seconds=3)
    else:
        torch_rate(1024, 1024, 1, seconds=5)
    hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(f"VmHWM_KiB={int(hwm.split()[1])}")


def peak_rss_mib(which: str) -> float:
    """Peak RSS of a fresh child process that runs the probe."""
    out = subprocess.run(
        [sys.executable, __file__, "--memory-probe", which], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return int(out.split("VmHWM_KiB=")[1].split()[0]) / 1024


def solve_curves(seconds: float):
    """Curves (wall_s, mean_return) of 3 seeds each."""
    import numpy as np

    from benchmarks.baselines.torch_maddpg.maddpg import train
    from benchmarks.time_to_solve import run as ours_run
    from benchmarks.time_to_solve import summarize
    from maddpg_jax import Config

    result = ours_run(Config(), 3)
    rows = summarize(result, 475.0)
    ours = [(result["wall_s"].tolist(), np.nan_to_num(result["returns"][s]).tolist()) for s in range(3)]
    theirs = []
    for seed in range(3):
        r = train(
            num_envs=16,
            batch_size=256,
            updates_per_step=1,
            total_env_steps=10**9,
            time_budget_s=seconds,
            seed=seed,
            **TORCH_PLAIN,
        )
        theirs.append((r["curve"]["wall_s"], r["curve"]["mean_return"]))
    return ours, rows, theirs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "peers"))
    ap.add_argument("--solve-seconds", type=float, default=180.0, help="wall budget per baseline seed")
    ap.add_argument("--memory-probe", choices=["ours", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--skip-solve", action="store_true", help="throughput, memory and scaling only")
    ap.add_argument("--memory-only", action="store_true", help="only the peak-memory line")
    args = ap.parse_args()
    if args.memory_probe:
        return memory_probe(args.memory_probe)
    if args.memory_only:
        print(
            f"Peak resident memory at (1024, 1024, 1): maddpg-jax {peak_rss_mib('ours'):,.0f} MiB, "
            f"PyTorch {peak_rss_mib('torch'):,.0f} MiB"
        )
        return None

    import jax
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    os.makedirs(args.out, exist_ok=True)
    from benchmarks.common import cpu_name

    cpu = cpu_name()
    head = (
        f"Machine: {cpu}, {os.cpu_count()} cores; jax {jax.__version__} ({len(jax.devices())} CPU devices), "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)."
    )
    print(head, flush=True)
    lines = [
        head,
        "",
        "| (E, B, U) | maddpg-jax env steps/s | PyTorch env steps/s | ratio | maddpg-jax update rounds/s "
        "| PyTorch update rounds/s | maddpg-jax compile s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    results = {}
    for e, b, u in ROWS:
        o_sps, o_ups, comp = ours_rate(e, b, u)
        t_sps, t_ups = torch_rate(e, b, u)
        results[(e, b, u)] = (o_sps, t_sps)
        lines.append(
            f"| ({e}, {b}, {u}) | {o_sps:,.0f} | {t_sps:,.0f} | {o_sps / t_sps:.1f}x | {o_ups:,.0f} | "
            f"{t_ups:,.0f} | {comp:.1f} |"
        )
        print(lines[-1], flush=True)
    mem_o, mem_t = peak_rss_mib("ours"), peak_rss_mib("torch")
    lines += [
        "",
        f"Peak resident memory at (1024, 1024, 1): maddpg-jax {mem_o:,.0f} MiB, PyTorch {mem_t:,.0f} MiB "
        "(whole process, each in its own child; the jax figure includes XLA and the compiled programs).",
    ]
    print(lines[-1], flush=True)

    # Scaling with the number of envs (B = 256, U = 1).
    scale_o, scale_t = [], []
    for e in [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536]:
        scale_o.append((e, ours_rate(e, 256, 1, seconds=3)[0]))
        print(f"scaling maddpg-jax E={e}: {scale_o[-1][1]:,.0f}", flush=True)
    for e in [1, 4, 16, 64, 256, 1024, 4096, 16384]:
        t0 = time.perf_counter()
        scale_t.append((e, torch_rate(e, 256, 1, seconds=4)[0]))
        print(f"scaling PyTorch E={e}: {scale_t[-1][1]:,.0f}", flush=True)
        if time.perf_counter() - t0 > 60:
            break
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    ax.loglog(*zip(*scale_o), "o-", label="maddpg-jax")
    ax.loglog(*zip(*scale_t), "s-", label="PyTorch MADDPG")
    ax.set_xlabel("parallel envs E (B = 256, U = 1)")
    ax.set_ylabel("env steps / s with learning")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title("Throughput, 2 agents, coupled continuous CartPole")
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "scaling.png"))
    plt.close(fig)
    lines += ["", "| E | maddpg-jax env steps/s | PyTorch env steps/s |", "|---:|---:|---:|"]
    tmap = dict(scale_t)
    for e, v in scale_o:
        lines.append(f"| {e} | {v:,.0f} | {tmap[e]:,.0f} |" if e in tmap else f"| {e} | {v:,.0f} | - |")

    if not args.skip_solve:
        ours, rows, theirs = solve_curves(args.solve_seconds)
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        for s, (x, y) in enumerate(ours):
            ax.plot(x, y, color="tab:blue", lw=1.3, label="maddpg-jax (3 seeds, one program)" if s == 0 else None)
        for s, (x, y) in enumerate(theirs):
            ax.plot(x, y, color="tab:orange", lw=1.3, label="PyTorch MADDPG (each seed)" if s == 0 else None)
        ax.axhline(475, color="grey", ls="--", lw=0.8)
        ax.set_xlabel("wall-clock seconds")
        ax.set_ylabel("mean return (last 100 episodes)")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "time_to_solve.png"))
        plt.close(fig)
        first = lambda x, y: next((a for a, v in zip(x, y) if v >= 475), None)
        lines += [
            "",
            "| seed | maddpg-jax wall s to 475 | PyTorch wall s to 475 | PyTorch best mean return |",
            "|---:|---:|---:|---:|",
        ]
        for s in range(3):
            o, t = first(*ours[s]), first(*theirs[s])
            lines.append(
                f"| {s} | {o if o is None else round(o, 1)} | {'never' if t is None else round(t, 1)} | "
                f"{max(theirs[s][1], default=float('nan')):.0f} |"
            )
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "compare.md"), "w") as f:
        f.write(text)
    print("\n" + text)


if __name__ == "__main__":
    main()
