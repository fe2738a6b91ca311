"""Seeds solved and held, on two numerically different paths: the defaults judged on many seeds.

    python benchmarks/time_to_solve.py [--seeds 32] [--paths 1,layered] [--set field=value ...]
                                       [--env-kwargs k=v,...] [--json out.json]

Every path trains all seeds in one program (sharded over one CPU device per core); paths
differ only in float32 rounding, so luck on one path cannot pass for robustness: how many
members a device vmaps together (an integer, ``--member-chunk``; with per-layer parameters
this moved rounding, with flat ones it does not), or ``layered``: the same run with
``flat_params`` off, whose per-layer optimiser and updates order float32 sums differently. Seeds
follow the CLI's convention (member m has seed ``seed + m``). Per path it prints: seeds
reaching a 100-episode training mean >= the env's solved threshold (475 on CartPole),
seeds that also end >= 450 ("held"), median and worst final mean, median env steps and
wall seconds to the threshold (wall from the start of compilation), and the kept policy's
noise-free return over 100 episodes (median, worst, count >= 475).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from maddpg_jax.parallel import configure_host_devices

configure_host_devices()

import numpy as np

from benchmarks.common import command_line, kept_policy_returns, machine, parse_set, program
from maddpg_jax import Config, envs
from maddpg_jax.loop import compile_chunks, plan_chunks, run_chunks

HOLD = 450.0


def run(config: Config, seeds: int, member_chunk: int | None = None, eval_episodes: int = 100):
    """Train ``seeds`` members in one program through the host loop. Returns a dict of
    per-seed curves ``returns [seeds, chunks]``, ``env_steps``, ``wall_s`` (at chunk ends),
    ``compile_s``, ``total_s`` and noise-free ``eval [seeds]``."""
    t0 = time.perf_counter()
    trainer, runner, state, hp = program(config, seeds, member_chunk)
    plan = plan_chunks(config)
    compile_chunks(runner, state, hp, plan)
    compile_s = time.perf_counter() - t0
    curves = {"returns": [], "env_steps": [], "wall_s": []}

    def on_chunk(chunk):
        curves["returns"].append(chunk.metrics.mean_return[:seeds, -1])
        curves["env_steps"].append(int(chunk.metrics.env_steps[0, -1]))
        curves["wall_s"].append(chunk.wall_s + compile_s)

    last, _ = run_chunks(runner, state, hp, plan, on_chunk)
    total_s = time.perf_counter() - t0
    evals = kept_policy_returns(trainer, config, last.state, seeds, eval_episodes, 12345).mean(1).tolist()
    return {
        "returns": np.stack(curves["returns"], 1),
        "env_steps": np.array(curves["env_steps"]),
        "wall_s": np.array(curves["wall_s"]),
        "compile_s": compile_s,
        "total_s": total_s,
        "eval": np.array(evals),
    }


def summarize(result: dict, solved: float) -> dict:
    r = np.nan_to_num(result["returns"], nan=0.0)
    hit = [np.flatnonzero(row >= solved) for row in r]
    first = [int(h[0]) if h.size else None for h in hit]
    solved_steps = [int(result["env_steps"][f]) for f in first if f is not None]
    solved_wall = [float(result["wall_s"][f]) for f in first if f is not None]
    final = r[:, -1]
    return {
        "seeds": len(r),
        "solved": sum(f is not None for f in first),
        "held": int(sum(f is not None and final[i] >= HOLD for i, f in enumerate(first))),
        "final_median": float(np.median(final)),
        "final_worst": float(final.min()),
        "steps_to_solve_median": float(np.median(solved_steps)) if solved_steps else None,
        "wall_to_solve_median": float(np.median(solved_wall)) if solved_wall else None,
        "eval_median": float(np.median(result["eval"])),
        "eval_worst": float(result["eval"].min()),
        "eval_solved": int((result["eval"] >= solved).sum()),
        "compile_s": result["compile_s"],
        "total_s": result["total_s"],
        "per_seed_final": final.tolist(),
        "per_seed_eval": result["eval"].tolist(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=32)
    ap.add_argument(
        "--paths",
        default="1,layered",
        help="one path each: a member chunk (an integer), or 'layered' (flat_params off, member chunk 1; "
        "'layered:N' vmaps N members together, for a GPU) (default: 1,layered)",
    )
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config overrides")
    ap.add_argument("--env-kwargs", default="", metavar="K=V,...", help="the env's arguments")
    ap.add_argument("--json", default=None, help="also write the summaries and curves to this file")
    args = ap.parse_args()
    env_kwargs = parse_set([kv for kv in args.env_kwargs.split(",") if kv])
    config = Config(env_kwargs=env_kwargs, **parse_set(args.set))
    solved = envs.entry(config.env).solved_return or 475.0
    print(f"`{command_line('time_to_solve.py', ap, args, skip=('json',))}`\n")
    print(
        f"{config.env} {dict(config.env_kwargs)}; {args.seeds} seeds x {config.total_env_steps:,} env steps; "
        f"machine: {machine()}\n"
    )
    print(
        "| path | solved | held >= 450 | final median / worst | env steps to solve (median) "
        "| wall s to solve (median) | noise-free eval median / worst / >= threshold | wall s (compile) |"
    )
    print("|---|---:|---:|---|---:|---:|---|---:|")
    out = {"config": config.to_dict(), "machine": machine(), "paths": {}}
    for path in args.paths.split(","):
        # With flat parameters, vmapping members 1 or 4 at a time gave bit-identical runs, so
        # the default second path computes with per-layer parameters instead: the same
        # algorithm and values in another float32 order.
        layered = path.startswith("layered")
        chunk = int(path.partition(":")[2] or 1) if layered else int(path)
        result = run(config.replace(flat_params=False) if layered else config, args.seeds, chunk)
        s = summarize(result, solved)
        fmt = lambda v, f: "-" if v is None else format(v, f)
        print(
            f"| {path} | {s['solved']}/{s['seeds']} | {s['held']}/{s['seeds']} | "
            f"{s['final_median']:.0f} / {s['final_worst']:.0f} | {fmt(s['steps_to_solve_median'], ',.0f')} | "
            f"{fmt(s['wall_to_solve_median'], '.1f')} | {s['eval_median']:.0f} / {s['eval_worst']:.0f} / "
            f"{s['eval_solved']}/{s['seeds']} | {s['total_s']:.0f} ({s['compile_s']:.0f}) |",
            flush=True,
        )
        out["paths"][path] = {
            **s,
            "env_steps": result["env_steps"].tolist(),
            "mean_return": np.round(result["returns"], 1).tolist(),
        }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f)


if __name__ == "__main__":
    main()
