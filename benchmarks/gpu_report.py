"""One command for a GPU (or any device): the figures users ask for, in one Markdown file.

    python benchmarks/gpu_report.py            # writes benchmarks/results/gpu/gpu_<device>.md
    python benchmarks/gpu_report.py --tiny     # a seconds-long smoke run (what the tests run)

Needs only the core packages (``pip install --no-deps -e .`` on a machine with jax, flax,
optax, chex and orbax). On one accelerator, with the defaults (2-agent coupled continuous
MultiCartPole-v0, default stabilisers, one update round per step), it measures:

- env steps/s with learning for one run at E = 1k, 4k, 16k, 64k envs and batch 256 and 1024,
  with compile seconds and peak device memory;
- kernels and time per iteration (``benchmarks/kernels.py``) at (E, B, U) = (16, 256, 1),
  and where that time goes (``kernels.py --profile``);
- sweeps of 1, 8, 64, 256 members in one program at E = 64: aggregate env steps/s and the
  wall time per chunk relative to one member.

Every rate is timed after compilation, over whole compiled chunks, on this machine alone.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from maddpg_jax.parallel import configure_host_devices

configure_host_devices()

import jax

from benchmarks.common import program
from maddpg_jax import Config


def peak_memory_gib() -> float | None:
    """The device's peak bytes in use so far, where the backend reports it (GPUs, TPUs)."""
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:
        return None
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else peak / 2**30


def program_gib(compiled) -> float | None:
    """Device memory one compiled chunk needs, from XLA's own accounting: its arguments
    and outputs (less what donation lets them share) plus its scratch space. Unlike the
    device's peak, this belongs to one program, not to everything run before it."""
    try:
        m = compiled.memory_analysis()
        used = m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes
    except Exception:  # backends without the analysis
        return None
    return used / 2**30


def rate(config: Config, num_members: int, iterations: int, seconds: float) -> dict:
    """Aggregate env steps/s with learning of ``num_members`` members of ``config`` in one
    program, timed over chunks of ``iterations`` after compiling; compile seconds too.
    Chunks donate their state, as training does (no copy of the replay buffer per call)."""
    trainer, runner, state, hp = program(config, num_members)
    t0 = time.perf_counter()
    compiled = runner.compile(state, hp, iterations, True, donate=True)
    compile_s = time.perf_counter() - t0
    state, _ = jax.block_until_ready(runner.run(state, hp, iterations, True, donate=True))  # warm
    chunks, t0 = 0, time.perf_counter()
    while chunks < 2 or time.perf_counter() - t0 < seconds:
        state, _ = jax.block_until_ready(runner.run(state, hp, iterations, True, donate=True))
        chunks += 1
    chunk_s = (time.perf_counter() - t0) / chunks
    return {
        "steps_per_s": iterations * config.num_envs * num_members / chunk_s,
        "chunk_s": chunk_s,
        "compile_s": compile_s,
        "program_gib": program_gib(compiled),
        "peak_gib": peak_memory_gib(),
    }


def fmt_gib(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tiny", action="store_true", help="tiny sizes: a smoke run of seconds, on any machine")
    p.add_argument("--out", default=None, help="Markdown path (default: benchmarks/results/gpu/gpu_<device>.md)")
    p.add_argument("--seconds", type=float, default=None, help="timing per measurement (default 3, tiny 0.2)")
    a = p.parse_args()
    tiny = a.tiny
    seconds = a.seconds if a.seconds is not None else (0.2 if tiny else 3.0)
    envs_list = [8] if tiny else [1024, 4096, 16384, 65536]
    batches = [32] if tiny else [256, 1024]
    sweep_members = [2] if tiny else [1, 8, 64, 256]  # tiny: each program is a compile
    small = dict(hidden_sizes=(16, 16)) if tiny else {}
    dev = jax.devices()[0]
    name = re.sub(r"[^A-Za-z0-9]+", "_", dev.device_kind).strip("_") or dev.platform
    from benchmarks.common import machine
    from maddpg_jax.rundir import atomic_write_text

    out = a.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "gpu", f"gpu_{name}.md")

    def save(lines: list[str]) -> None:
        """Print the newest row and rewrite the report so far: a run cut short keeps its rows."""
        print(lines[-1], flush=True)
        atomic_write_text(out, "\n".join(lines) + "\n")

    lines = [f"# maddpg-jax on {dev.device_kind}", "", f"Machine: {machine()}. `python benchmarks/gpu_report.py`", ""]
    lines += [
        "2-agent coupled continuous MultiCartPole-v0, default settings, one update round per env step.",
        "",
        "## One run: env steps/s with learning",
        "",
        "| envs E | batch B | env steps/s | iteration ms | compile s | program GiB | device peak so far GiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in batches:
        for e in envs_list:
            c = Config(num_envs=e, batch_size=b, updates_per_step=1, buffer_size=max(4 * e, 1 << 16), **small)
            r = rate(c, 1, 8 if tiny else 32, seconds)
            lines.append(
                f"| {e:,} | {b} | {r['steps_per_s']:,.0f} | {r['chunk_s'] / (8 if tiny else 32) * 1e3:.2f} | "
                f"{r['compile_s']:.1f} | {fmt_gib(r['program_gib'])} | {fmt_gib(r['peak_gib'])} |"
            )
            save(lines)
    from benchmarks import kernels

    # With where that time goes (kernels.py --profile) but in --tiny, which the tests run.
    k_rows = {
        n: kernels.measure(c, seconds, profiled=not tiny)
        for n, c in kernels.variants(16 if not tiny else 8, 256 if not tiny else 32, 1).items()
        if not (tiny and n == "plain")
    }
    lines += ["", "## Kernels per iteration at (E, B, U) = (16, 256, 1)", "", kernels.table(k_rows), ""]
    if not tiny:
        lines += ["## Where an iteration's time goes (a jax.profiler trace)", ""]
        for n, r in k_rows.items():
            text = kernels.profile_table(n, r["profile"], 12) if "profile" in r else None
            lines += [text or f"{n}: no profile ({r['profile_error']})", ""]
    save(lines)
    lines += [
        "## Sweeps in one program (E = 64, B = 128, U = 4: the defaults)",
        "",
        "| members | aggregate env steps/s | chunk s | x one member's chunk | compile s | program GiB |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    one = None
    for m in sweep_members:
        c = Config(buffer_size=1 << 14 if tiny else 1 << 16, **small)
        r = rate(c, m, 8 if tiny else 160, seconds)
        one = one or r["chunk_s"]
        lines.append(
            f"| {m} | {r['steps_per_s']:,.0f} | {r['chunk_s']:.3f} | {r['chunk_s'] / one:.2f} | "
            f"{r['compile_s']:.1f} | {fmt_gib(r['program_gib'])} |"
        )
        save(lines)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
