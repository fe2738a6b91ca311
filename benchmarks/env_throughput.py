"""Cart-steps per second of ``envs.VecEnv(MultiCartPole-v0)`` beside gymnax and gymnasium.

    python benchmarks/env_throughput.py [--carts 32768] [--steps 300]

Every contender steps the same number of carts for ``--steps`` steps with actions taken
from a small bank of random arrays drawn before timing (so the figure is the env's cost,
not the random number generator's). JAX contenders run the steps inside one jitted
``lax.scan``; the figure is the best of 3 timed runs after a warm-up (compile) run.
gymnax and gymnasium are optional (``pip install -e ".[bench]"``); missing ones are skipped.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from maddpg_jax import envs

BANK = 8  # action arrays in the bank


def best_of(fn, repeats=3):
    fn()  # warm-up: compile
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def time_vec_env(num_agents, num_envs, steps, coupling, action_type):
    env, params = envs.make("MultiCartPole-v0", num_agents=num_agents, coupling=coupling, action_type=action_type)
    venv = envs.VecEnv(env, num_envs)
    k_bank, k_reset, k_run = jax.random.split(jax.random.key(0), 3)
    if action_type == "discrete":
        bank = jax.random.randint(k_bank, (BANK, num_envs, num_agents), 0, 2, jnp.int32)
    else:
        bank = jax.random.uniform(k_bank, (BANK, num_envs, num_agents, 1), jnp.float32, -1, 1)
    _, state0 = venv.reset(k_reset, params)

    @jax.jit
    def run(state, key):
        def body(carry, i):
            state, key = carry
            key, k = jax.random.split(key)
            obs, state, reward, term, trunc, info = venv.step(k, state, bank[i % BANK], params)
            # Consume what a learner consumes so XLA cannot drop it as dead code.
            used = obs.sum() + info["final_observation"].sum() + reward.sum() + term.sum()
            return (state, key), used

        (state, _), rewards = jax.lax.scan(body, (state, key), jnp.arange(steps))
        return state, rewards.sum()

    return best_of(lambda: jax.block_until_ready(run(state0, k_run)))


def time_gymnax(num_envs, steps):
    import gymnax

    env, params = gymnax.make("CartPole-v1")
    k_bank, k_reset, k_run = jax.random.split(jax.random.key(0), 3)
    bank = jax.random.randint(k_bank, (BANK, num_envs), 0, 2, jnp.int32)
    _, state0 = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, num_envs), params)
    vstep = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    @jax.jit
    def run(state, key):
        def body(carry, i):
            state, key = carry
            key, k = jax.random.split(key)
            keys = jax.random.split(k, num_envs)
            # gymnax 1.x returns (obs, state, reward, done, info); older adds truncated.
            out = vstep(keys, state, bank[i % BANK], params)
            return (out[1], key), out[0].sum() + out[2].sum() + out[3].sum()

        (state, _), rewards = jax.lax.scan(body, (state, key), jnp.arange(steps))
        return state, rewards.sum()

    return best_of(lambda: jax.block_until_ready(run(state0, k_run)))


def time_gymnasium(num_envs, steps):
    import gymnasium as gym

    venv = gym.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="vector_entry_point")
    rng = np.random.default_rng(0)
    bank = rng.integers(0, 2, size=(BANK, num_envs))
    venv.reset(seed=0)

    def run():
        for i in range(steps):
            venv.step(bank[i % BANK])

    return best_of(run)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--carts", type=int, default=32768, help="carts stepped per step")
    ap.add_argument("--steps", type=int, default=300, help="steps per timed run")
    args = ap.parse_args()
    n, steps = args.carts, args.steps
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"jax {jax.__version__} on {jax.devices()[0].device_kind}"
    )
    print(f"{n} carts x {steps} steps, best of 3 after warm-up\n")

    rows = []
    rows.append(("maddpg-jax VecEnv, 1 agent/env, discrete, k=0", time_vec_env(1, n, steps, 0.0, "discrete")))
    rows.append(("maddpg-jax VecEnv, 2 agents/env, continuous, k=1", time_vec_env(2, n // 2, steps, 1.0, "continuous")))
    for name, fn in (
        ("gymnax CartPole-v1 (vmap)", time_gymnax),
        ("gymnasium CartPole-v1 vector_entry_point", time_gymnasium),
    ):
        try:
            rows.append((name, fn(n, steps)))
        except ImportError as e:
            print(f"skipping {name}: {e}")

    ours = rows[0][1]
    print(f"| contender | s / {steps} steps | cart-steps/s | first row's speed / this row's |")
    print("|---|---:|---:|---:|")
    for name, t in rows:
        print(f"| {name} | {t:.4f} | {n * steps / t:,.0f} | {t / ours:.2f} |")


if __name__ == "__main__":
    main()
