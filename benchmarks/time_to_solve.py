"""Env steps and wall seconds until each seed's 100-episode mean return first reaches 475.

    python benchmarks/time_to_solve.py [--seeds 5] [--action-type continuous] [--set k=v ...]

All seeds train together in one program (vmapped, and sharded over one CPU device per core
unless XLA_FLAGS says otherwise). Wall seconds count from the start of compilation, so
"solved at" includes compile time. "Held" means the mean return stayed >= 450 from the
first time it reached 475 to the end of the run.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from maddpg_jax.parallel import configure_host_devices  # noqa: E402

configure_host_devices()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from maddpg_jax import Config, make_trainer  # noqa: E402
from maddpg_jax.parallel import MemberRunner, chunk_plan  # noqa: E402

SOLVED, HOLD = 475.0, 450.0


def parse_set(items):
    out = {}
    for item in items:
        k, v = item.split("=", 1)
        try:
            out[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            out[k] = v
    return out


def run(config: Config, seeds: int, chunks: int = 40):
    trainer = make_trainer(config)
    runner = MemberRunner(trainer, seeds)
    t0 = time.perf_counter()
    keys = runner.place(jax.random.split(jax.random.key(config.seed), seeds))
    hp = runner.place(jax.tree.map(lambda x: jnp.broadcast_to(x, (seeds,)), config.hparams()))
    state = runner.init(keys, hp)
    w, n = config.warmup_iterations, config.num_iterations
    plan = [(k, False) for k in chunk_plan(w, w)] + [(k, True) for k in chunk_plan(n - w, max(1, (n - w) // chunks))]
    for k, learn in set(plan):
        runner.compile(state, hp, k, learn)
    compile_s = time.perf_counter() - t0
    returns, walls, steps = [], [], []
    for k, learn in plan:
        state, m = runner.run(state, hp, k, learn)
        m = jax.device_get(m)
        now = time.perf_counter() - t0
        returns.append(m["mean_return"][:seeds])
        steps.append(m["env_steps"][0])
        walls.append(np.full(k, now))
    returns = np.concatenate(returns, axis=1)  # [seeds, iterations]
    steps, walls = np.concatenate(steps), np.concatenate(walls)
    total_s = time.perf_counter() - t0
    rows = []
    for s in range(seeds):
        r = np.nan_to_num(returns[s], nan=0.0)
        hit = np.flatnonzero(r >= SOLVED)
        first = int(hit[0]) if hit.size else None
        rows.append({
            "seed": s,
            "solved_at_env_steps": int(steps[first]) if first is not None else None,
            "solved_at_wall_s": float(walls[first]) if first is not None else None,
            "held_450_after": bool(first is not None and r[first:].min() >= HOLD),
            "min_after_solved": float(r[first:].min()) if first is not None else None,
            "best_mean_return": float(r.max()),
            "final_mean_return": float(r[-1]),
        })
    return rows, compile_s, total_s, returns, steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--action-type", default="continuous", choices=["continuous", "discrete"])
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config overrides")
    ap.add_argument("--json", default=None, help="also write rows and curves to this file")
    args = ap.parse_args()
    config = Config(action_type=args.action_type, **parse_set(args.set))
    rows, compile_s, total_s, returns, steps = run(config, args.seeds)
    print(f"{args.seeds} seeds, {config.action_type}, {config.num_agents} agents, k={config.coupling}, "
          f"{config.total_env_steps} env steps each, {len(jax.devices())} {jax.devices()[0].platform} device(s); "
          f"compile {compile_s:.1f} s, total wall {total_s:.1f} s (compile included)\n")
    print("| seed | env steps to 475 | wall s to 475 | held >= 450 after | best | final |")
    print("|---:|---:|---:|:---:|---:|---:|")
    for r in rows:
        fmt = lambda v, f: "never" if v is None else format(v, f)
        print(f"| {r['seed']} | {fmt(r['solved_at_env_steps'], ',')} | {fmt(r['solved_at_wall_s'], '.1f')} | "
              f"{'yes' if r['held_450_after'] else 'no'} | {r['best_mean_return']:.0f} | {r['final_mean_return']:.0f} |")
    solved = sum(r["solved_at_env_steps"] is not None for r in rows)
    held = sum(r["held_450_after"] for r in rows)
    print(f"\nsolved {solved}/{len(rows)}, held {held}/{len(rows)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": config.to_dict(), "rows": rows, "compile_s": compile_s, "total_s": total_s,
                       "env_steps": steps[::10].tolist(), "mean_return": returns[:, ::10].tolist()}, f)


if __name__ == "__main__":
    main()
