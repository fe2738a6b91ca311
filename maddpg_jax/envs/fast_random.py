"""A cheap counter-based uniform generator for bulk draws inside vectorised env steps.

Why: drawing a fresh initial state for every instance on every step (auto-reset must be
branch-free under ``vmap``) with ``jax.random.uniform`` costs threefry's 20 rounds per
pair of words: 1.16 ms per step for 32,768 carts on a 2-core CPU, 4x the physics itself.
Here one word ``s`` is drawn from the key with ``jax.random.bits`` (so keys stay the only
source of randomness, split and never reused) and element ``i`` is ``fmix32((i * phi) ^ s)``
(MurmurHash3's 32-bit finaliser, a bijection with full avalanche): 0.07 ms for the same draw
(a second round costs 0.04 ms more and buys nothing measurable here). Its quality is ample
for initial states within +-0.05; it is not meant for statistics beyond that.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def _fmix32(h: jax.Array) -> jax.Array:
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def uniform(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """float32 array of ``shape``, uniform in [0, 1) with 24-bit resolution."""
    seed = jax.random.bits(key, (), jnp.uint32)
    n = math.prod(shape)
    counter = jnp.arange(n, dtype=jnp.uint32) * jnp.uint32(0x9E3779B9)
    h = _fmix32(counter ^ seed)
    return ((h >> 8).astype(jnp.float32) * (1.0 / (1 << 24))).reshape(shape)
