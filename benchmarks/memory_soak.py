"""Host memory over a long sweep: resident memory after every chunk of a 64-member CPU sweep
through the CLI's own session (metrics rows, checkpoints, plots), to show it stays flat.

    python benchmarks/memory_soak.py [--members 64] [--chunks 40]

A small config (8 envs, 16-unit layers, a 4,096-transition buffer per member) so that many
chunks run in minutes; chunks of 1,024 env steps, a checkpoint after every chunk
(``--checkpoint-every 0``: the most host work a run can ask for). Prints the resident set
size after each chunk and writes ``benchmarks/results/throughput/memory_soak.md``: RSS after
warm-up, at the end, and the growth between them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from maddpg_jax.parallel import configure_host_devices

configure_host_devices()

from benchmarks.common import command_line, machine
from maddpg_jax import Config
from maddpg_jax import members as members_lib
from maddpg_jax import reporting as reporting_lib
from maddpg_jax import session as session_lib


def rss_mib() -> float:
    """This process's resident set size (``/proc/self/statm``), MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--members", type=int, default=64)
    p.add_argument("--chunks", type=int, default=40)
    p.add_argument("--warmup-chunks", type=int, default=10, help="chunks before the baseline is taken")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "throughput"))
    a = p.parse_args()
    config = Config(
        num_envs=8,
        batch_size=32,
        buffer_size=4096,
        updates_per_step=1,
        warmup_env_steps=256,
        hidden_sizes=(16, 16),
        eval_every=1024,
        eval_episodes=4,
        log_every=512,
        total_env_steps=1024 * a.chunks,
    )
    members = members_lib.seed_members(config, a.members)
    members = [{**m, "actor_lr": config.actor_lr} for m in members]  # a sweep directory
    samples = []
    real_chunk = reporting_lib.Reporter.chunk

    def chunk(self, rows, c):  # the session's own report, plus one RSS sample
        real_chunk(self, rows, c)
        samples.append((c.end * config.num_envs, rss_mib()))
        print(f"env steps {samples[-1][0]:>7,}  rss {samples[-1][1]:8.1f} MiB", flush=True)

    reporting_lib.Reporter.chunk = chunk
    out = tempfile.mkdtemp(prefix="memory_soak_")
    t0 = time.perf_counter()
    session_lib.Session(
        os.path.join(out, "run"), config, members, resume=False, progress=False, checkpoint_every=0
    ).run()
    wall = time.perf_counter() - t0
    base = samples[min(a.warmup_chunks, len(samples) - 1)]
    end = samples[-1]
    growth = end[1] - base[1]
    lines = [
        "# Host memory over a long sweep",
        "",
        f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}. `{command_line('memory_soak.py', p, a)}`.",
        "",
        f"{a.members} members, {len(samples)} chunks of 1,024 env steps, a checkpoint and metrics rows after every "
        f"chunk, {wall:.0f} s. Resident memory of the process:",
        "",
        "| after | env steps | RSS MiB |",
        "| --- | ---: | ---: |",
        f"| chunk {min(a.warmup_chunks, len(samples) - 1) + 1} (baseline) | {base[0]:,} | {base[1]:.1f} |",
        f"| the last chunk | {end[0]:,} | {end[1]:.1f} |",
        "",
        f"Growth after the baseline: {growth:+.1f} MiB over {len(samples) - a.warmup_chunks - 1} chunks.",
        "",
        "Every sample: " + ", ".join(f"{s:.0f}" for _, s in samples) + " MiB.",
    ]
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "memory_soak.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
