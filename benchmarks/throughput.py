"""Training throughput: env steps/s with learning, update rounds/s, compile time, GFLOP/s.

    python benchmarks/throughput.py [--plain] [--iterations 200]

Rows: (E, B, U) = (16, 256, 1), (64, 256, 2), (1024, 1024, 1), 2 agents, coupled continuous
MultiCartPole-v0, (64, 64) networks. ``--plain`` uses plain MADDPG (one critic, no layer
norm, MSE), the configuration a conventional implementation runs; the default uses this
project's default stabilisers (twin critics, layer norm, Huber). Each figure is the best
of 3 timed chunks after a compile+warm-up chunk. The update's achieved GFLOP/s uses XLA's
own flop count of the compiled update, beside a 2048x2048 matmul on the same device.

CPU: one device per core (XLA_FLAGS respected); a single run is data-parallel over them
(envs, buffer and batch split, gradients averaged) when E and B divide. The update-only
rows and the matmul run on one device.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from maddpg_jax.parallel import configure_host_devices

configure_host_devices()

import jax
import jax.numpy as jnp

from benchmarks.common import program
from benchmarks.compare import PLAIN  # the same plain MADDPG as compare.py's
from maddpg_jax import Config, make_trainer

ROWS = [(16, 256, 1), (64, 256, 2), (1024, 1024, 1)]


def best(fn, repeats=3):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return min(times)


def env_steps_per_s(config: Config, iterations: int):
    """One run on the whole machine: data-parallel over all devices when E, B divide."""
    trainer, runner, state, hp = program(config)
    # Fill enough of the buffer to sample from, without timing it.
    state, _ = runner.run(state, hp, max(1, config.batch_size // config.num_envs + 1), False)
    t0 = time.perf_counter()
    runner.compile(state, hp, iterations, True)
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(runner.run(state, hp, iterations, True))  # warm-up
    dt = best(lambda: runner.run(state, hp, iterations, True)[1].mean_return)
    return (
        config.num_envs * iterations / dt,
        config.updates_per_step * iterations / dt,
        compile_s,
        len(runner.devices),
    )


def update_rate(config: Config, rounds: int):
    """Update rounds/s (every agent's critic + actor + targets) on a filled buffer, and GFLOP/s."""
    tr = make_trainer(config)
    hp = config.hparams()
    state = jax.jit(tr.init)(jax.random.key(0), hp)
    state, _ = tr.run(state, hp, max(1, config.batch_size // config.num_envs + 1), False)

    @jax.jit
    def many(agents, key):
        def body(carry, k):
            agents, n = carry
            agents, m = tr.update(agents, state.buffer, n, k, hp)
            return (agents, n + 1), m.critic_loss

        return jax.lax.scan(body, (agents, jnp.int32(0)), jax.random.split(key, rounds))[1]

    one = jax.jit(lambda agents, key: tr.update(agents, state.buffer, jnp.int32(0), key, hp))
    cost = one.lower(state.agents, jax.random.key(1)).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = float(cost.get("flops", 0.0))
    many(state.agents, jax.random.key(2)).block_until_ready()
    dt = best(lambda: many(state.agents, jax.random.key(2)))
    return rounds / dt, flops * rounds / dt / 1e9


def matmul_gflops(n=2048):
    a = jax.random.normal(jax.random.key(0), (n, n))
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    dt = best(lambda: f(a))
    return 2 * n**3 / dt / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plain", action="store_true", help="plain MADDPG (one critic, no layer norm, MSE)")
    ap.add_argument("--iterations", type=int, default=200, help="vectorised steps per timed chunk")
    args = ap.parse_args()
    base = PLAIN if args.plain else {}
    dev = jax.devices()[0]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, "
        f"{len(jax.devices())} x {dev.device_kind}; {'plain MADDPG' if args.plain else 'default stabilisers'}\n"
    )
    print("| (E, B, U) | devices | env steps/s with learning | update rounds/s | compile s |")
    print("|---|---:|---:|---:|---:|")
    for e, b, u in ROWS:
        c = Config(
            num_envs=e,
            batch_size=b,
            updates_per_step=u,
            buffer_size=100_000,
            total_env_steps=10**6,
            warmup_env_steps=0,
            **base,
        )
        sps, ups, comp, ndev = env_steps_per_s(c, max(20, args.iterations // max(1, e // 64)))
        print(f"| ({e}, {b}, {u}) | {ndev} | {sps:,.0f} | {ups:,.0f} | {comp:.1f} |", flush=True)
    print("\n| update at batch B (one device) | update rounds/s (both agents) | achieved GFLOP/s |")
    print("|---|---:|---:|")
    for b in (256, 1024):
        c = Config(batch_size=b, buffer_size=100_000, warmup_env_steps=0, **base)
        r, g = update_rate(c, 200)
        print(f"| {b} | {r:,.0f} | {g:.1f} |", flush=True)
    print(f"\n2048x2048 float32 matmul on the same device: {matmul_gflops():.1f} GFLOP/s")


if __name__ == "__main__":
    main()
