"""Aggregate env steps/s of a sweep (members = seeds x hyperparameters) against its size,
on one device and sharded over several.

    python benchmarks/sweep_scaling.py [--members 1,8,32,128] [--devices 1,2] [--member-chunk K]

(E, B, U) = (16, 256, 1), 2 agents, coupled continuous CartPole, default stabilisers. Each
device count runs in its own process (XLA fixes the CPU device count at start-up; on a GPU
machine, --devices counts visible GPUs, set with CUDA_VISIBLE_DEVICES by you).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def measure(members_list, iterations=40, member_chunk=None):
    import jax

    from benchmarks.common import program
    from maddpg_jax import Config

    out = []
    for m in members_list:
        c = Config(
            num_envs=16, batch_size=256, updates_per_step=1, buffer_size=8192, warmup_env_steps=0, total_env_steps=10**9
        )
        _, runner, state, hp = program(c, m, member_chunk)
        state, _ = runner.run(state, hp, 17, False)  # enough transitions to sample a batch
        runner.compile(state, hp, iterations, True)
        jax.block_until_ready(runner.run(state, hp, iterations, True))
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            jax.block_until_ready(runner.run(state, hp, iterations, True))
            best = min(best, time.perf_counter() - t0)
        out.append(
            {
                "members": m,
                "devices": len(runner.devices),
                "padded": runner.size,
                "env_steps_per_s": m * c.num_envs * iterations / best,
            }
        )
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", default="1,8,32,128")
    ap.add_argument("--devices", default="1,2", help="CPU device counts to compare")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "--member-chunk",
        type=int,
        default=None,
        help="members vmapped together per device (default: MemberRunner's choice; "
        "a large number vmaps them all, as before chunking)",
    )
    args = ap.parse_args()
    members = [int(x) for x in args.members.split(",")]
    if args.child is not None:
        print(json.dumps(measure(members, member_chunk=args.member_chunk)))
        return
    results = {}
    for d in (int(x) for x in args.devices.split(",")):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={d}")
        chunk = ["--member-chunk", str(args.member_chunk)] if args.member_chunk else []
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(d), "--members", args.members, *chunk],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results[d] = json.loads(out.strip().splitlines()[-1])
    devs = sorted(results)
    print("| members | " + " | ".join(f"{d} device(s): env steps/s" for d in devs) + " | speed-up, most vs 1 device |")
    print("|---:|" + "---:|" * len(devs) + "---:|")
    for i, m in enumerate(members):
        vals = [results[d][i]["env_steps_per_s"] for d in devs]
        print(f"| {m} | " + " | ".join(f"{v:,.0f}" for v in vals) + f" | {vals[-1] / vals[0]:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main()
