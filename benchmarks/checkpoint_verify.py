"""What proving a checkpoint intact costs: writing its checksums and verifying them, beside
writing and reading the checkpoint itself, on a state of about 1.4 GB.

    python benchmarks/checkpoint_verify.py [--buffer-size 900000] [--members 3]

A simple_spread sweep's state (``--members`` members, each with a ``--buffer-size`` replay
buffer: what dominates a checkpoint) is written by the run directory's checkpointer twice:
synchronously, timing orbax's write, the SHA-256 checksums of every file and their
verification apart; and asynchronously as training writes it, timing how long ``save``
holds the host loop (the state copied off the device) against the whole background write
with its checksums. Writes ``benchmarks/results/throughput/checkpoint_verify.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jax

from benchmarks.common import command_line, machine, program
from maddpg_jax import Config, rundir


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--buffer-size", type=int, default=900_000)
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "throughput"))
    a = p.parse_args()
    config = Config(env="paper:simple_spread", buffer_size=a.buffer_size, total_env_steps=100_000)
    _, runner, state, hp = program(config, a.members)
    state = jax.block_until_ready(state)
    size_gb = sum(x.nbytes for x in jax.tree.leaves(rundir.keys_to_data(state))) / 1e9
    work = Path(tempfile.mkdtemp(prefix="ckpt-verify-"))
    rows = []
    try:
        ckpt = rundir.Checkpoints(work / "sync")
        t0 = time.perf_counter()
        ckpt.save(1, state, {})  # synchronous: orbax's write, then the checksums
        save_s = time.perf_counter() - t0
        step_dir = ckpt.path / "1"
        t0 = time.perf_counter()
        rundir.write_checksums(step_dir)  # the same work again, timed alone
        checksum_s = time.perf_counter() - t0
        write_s = save_s - checksum_s
        t0 = time.perf_counter()
        assert rundir.checksum_problem(step_dir) is None
        verify_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        jax.block_until_ready(ckpt.restore(1, state))
        restore_s = time.perf_counter() - t0 - verify_s  # restore verifies first
        ckpt.close()
        on_disk = sum(f.stat().st_size for f in step_dir.rglob("*") if f.is_file()) / 1e9
        rows += [
            ("orbax writes the checkpoint", write_s),
            ("SHA-256 of every file, written to checksums.json", checksum_s),
            ("verifying the checksums (every load does this first)", verify_s),
            ("orbax reads the state back", restore_s),
        ]
        ckpt = rundir.Checkpoints(work / "async", asynchronous=True)
        t0 = time.perf_counter()
        ckpt.save(1, state, {})
        held_s = time.perf_counter() - t0
        ckpt.wait()
        total_s = time.perf_counter() - t0
        ckpt.close()
        rows += [
            ("asynchronous save: the host loop held (state copied off the device)", held_s),
            ("asynchronous save: the background write with its checksums, to committed", total_s),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        "# Checkpoint checksums: what proving a checkpoint intact costs",
        "",
        f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. Command: "
        f"`{command_line('checkpoint_verify.py', p, a)}`",
        "",
        f"A `paper:simple_spread` sweep state of {a.members} members with {a.buffer_size:,}-transition "
        f"replay buffers: {size_gb:.2f} GB in memory, {on_disk:.2f} GB on disk.",
        "",
        "| step | seconds | GB/s |",
        "|---|---:|---:|",
    ]
    for name, seconds in rows:
        lines.append(f"| {name} | {seconds:.2f} | {on_disk / seconds:.2f} |")
    text = "\n".join(lines) + "\n"
    os.makedirs(a.out, exist_ok=True)
    rundir.atomic_write_text(os.path.join(a.out, "checkpoint_verify.md"), text)
    print(text)


if __name__ == "__main__":
    main()
