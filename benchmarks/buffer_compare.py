"""This project's replay buffer against flashbax's item buffer, inside a vmapped sweep.

    pip install flashbax && python benchmarks/buffer_compare.py [--members 8]

Both store whole transitions (obs, action, reward, next_obs, terminated) of the default
CartPole config (2 agents, obs 4, action 1), and per iteration add E = 64 transitions and
sample U = 4 minibatches of B = 128, for every member of a vmapped sweep, in one
``lax.scan`` of 200 iterations. Prints time per iteration (best of 3), the state's bytes,
and the lines of code each side needs.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp

from maddpg_jax import buffer as rb
from maddpg_jax.losses import Transition

E, B, U, CAPACITY, ITERS = 64, 128, 4, 300_000, 200


def example():
    return Transition(
        obs=jnp.zeros((2, 4)),
        action=jnp.zeros((2, 1)),
        reward=jnp.zeros((2,)),
        next_obs=jnp.zeros((2, 4)),
        terminated=jnp.zeros((2,)),
    )


def fake_batch(key):
    return jax.tree.map(lambda x: jax.random.normal(key, (E,) + x.shape), example())


def ours():
    def init(_):
        return rb.init(example(), CAPACITY)

    def step(state, key):
        k_add, k_sample = jax.random.split(key)
        state = rb.add(state, fake_batch(k_add))
        batches = jax.vmap(lambda k: rb.sample(state, k, B))(jax.random.split(k_sample, U))
        return state, batches.reward.sum()

    return init, step


def flashbax_item():
    import flashbax as fbx

    buf = fbx.make_item_buffer(max_length=CAPACITY, min_length=1, sample_batch_size=B, add_batches=True)

    def init(_):
        return buf.init(example())

    def step(state, key):
        k_add, k_sample = jax.random.split(key)
        state = buf.add(state, fake_batch(k_add))
        batches = jax.vmap(lambda k: buf.sample(state, k))(jax.random.split(k_sample, U))
        return state, batches.experience.reward.sum()

    return init, step


def measure(make, members: int):
    init, step = make()

    @jax.jit
    def run(states, keys):
        def one(state, key):
            return jax.lax.scan(step, state, jax.random.split(key, ITERS))

        return jax.vmap(one)(states, keys)

    states = jax.jit(jax.vmap(init))(jnp.arange(members))
    keys = jax.random.split(jax.random.key(0), members)
    states, _ = run(states, keys)  # compile, and fill the buffers a little
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        jax.block_until_ready(run(states, keys))
        times.append(time.perf_counter() - t0)
    size = sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(states))
    return min(times) / ITERS * 1e6, size / 2**20


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=8)
    args = ap.parse_args()
    import flashbax

    fbx_lines = len(inspect.getsource(flashbax.buffers.item_buffer).splitlines()) + len(
        inspect.getsource(flashbax.buffers.trajectory_buffer).splitlines()
    )
    print(f"{args.members} members vmapped, E {E}, B {B}, U {U}, capacity {CAPACITY:,}; {jax.devices()[0]}\n")
    print("| buffer | us per iteration (add + 4 samples, all members) | state MiB | lines of code |")
    print("|---|---:|---:|---:|")
    for name, make, lines in (
        ("maddpg_jax.buffer", ours, len(inspect.getsource(rb).splitlines())),
        ("flashbax item buffer", flashbax_item, fbx_lines),
    ):
        us, mib = measure(make, args.members)
        print(f"| {name} | {us:,.0f} | {mib:,.1f} | {lines} |", flush=True)


if __name__ == "__main__":
    main()
