"""A circular replay buffer resident on the device: pure functions over a pytree state.

Written here rather than taken from flashbax: flashbax's flat buffer stores time-ordered
trajectories and rebuilds ``next_obs`` from the following step, but with auto-reset the
following step holds the *reset* observation, so the true final observation would have to
ride along anyway; a transition buffer is ~40 lines, has no dependency, and vmaps over
sweep members as is.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class BufferState:
    data: Any  # pytree, every leaf [capacity, ...]
    insert_position: jax.Array  # [] int32: where the next transition goes
    size: jax.Array  # [] int32: transitions stored, <= capacity


def init(example: Any, capacity: int) -> BufferState:
    """An empty buffer for transitions shaped like ``example`` (one transition, no batch)."""
    data = jax.tree.map(lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example)
    return BufferState(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def capacity(state: BufferState) -> int:
    return jax.tree.leaves(state.data)[0].shape[0]


def add(state: BufferState, batch: Any) -> BufferState:
    """Write ``n`` transitions (every leaf ``[n, ...]``) at the insert position, wrapping."""
    cap = capacity(state)
    n = jax.tree.leaves(batch)[0].shape[0]
    if n > cap:
        raise ValueError(f"cannot add {n} transitions at once to a buffer of capacity {cap}")
    idx = (state.insert_position + jnp.arange(n, dtype=jnp.int32)) % cap
    data = jax.tree.map(lambda d, b: d.at[idx].set(b.astype(d.dtype)), state.data, batch)
    return BufferState(
        data,
        (state.insert_position + n) % cap,
        jnp.minimum(state.size + n, cap).astype(jnp.int32),
    )


def add_unless(state: BufferState, batch: Any, skip: jax.Array) -> BufferState:
    """`add`, or (``skip``, a traced ``[] bool``) the buffer unchanged: the slots the
    add would write get back what they held and the insert position stays. One write of
    ``n`` rows either way; a select over the whole buffer would copy it at every call."""
    n = jax.tree.leaves(batch)[0].shape[0]
    slots = (state.insert_position + jnp.arange(n, dtype=jnp.int32)) % capacity(state)
    stored = jax.tree.map(lambda d, b: jnp.where(skip, d[slots], b.astype(d.dtype)), state.data, batch)
    added = add(state, stored)
    return BufferState(
        added.data,
        jnp.where(skip, state.insert_position, added.insert_position),
        jnp.where(skip, state.size, added.size),
    )


def sample_windows(
    state: BufferState, key: jax.Array, batch_size: int, length: int, stride: int
) -> tuple[Any, jax.Array]:
    """``batch_size`` windows of ``length`` transitions, each ``stride`` apart in the order
    they were written, drawn uniformly over the windows whose first transition is stored.

    The trainer adds one transition per env per step, ``E`` at a time, so with ``stride = E``
    a window is one env's ``length`` consecutive steps. Returns (windows, every leaf
    ``[batch_size, length, ...]``; ``valid [batch_size, length]`` bool: the transition was
    written after the window's first and is still stored; steps past the newest are not).
    """
    cap = capacity(state)
    size = jnp.maximum(state.size, 1)
    oldest = (state.insert_position - state.size) % cap
    # Starts are drawn where a whole window fits once the buffer holds one (the tail's
    # starts would see only their first steps); ``valid`` covers the start of training.
    starts = jnp.maximum(size - (length - 1) * stride, 1)
    first = jax.random.randint(key, (batch_size,), 0, starts)
    age = first[:, None] + stride * jnp.arange(length, dtype=jnp.int32)  # [B, L] from the oldest
    idx = (oldest + age) % cap
    return jax.tree.map(lambda d: d[idx], state.data), age < size


def sample(state: BufferState, key: jax.Array, batch_size: int) -> Any:
    """``batch_size`` transitions drawn uniformly (with replacement) from those stored.

    The buffer must hold at least one transition (the trainer's warm-up ensures it).
    """
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(state.size, 1))
    return jax.tree.map(lambda d: d[idx], state.data)


def latest(state: BufferState, n: int) -> Any:
    """The ``n`` transitions written last, newest first (every leaf ``[n, ...]``); while the
    buffer holds fewer, they repeat (the buffer must hold at least one)."""
    age = jnp.arange(n, dtype=jnp.int32) % jnp.maximum(state.size, 1)
    idx = (state.insert_position - 1 - age) % capacity(state)
    return jax.tree.map(lambda d: d[idx], state.data)
