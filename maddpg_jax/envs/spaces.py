"""Minimal observation / action space descriptions (shape, dtype, bounds or n).

Spaces here only *describe*; sampling and containment are small pure functions so that
they can be used inside jitted code.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Box:
    """A box in R^shape with elementwise bounds ``low <= x <= high``."""

    low: Any
    high: Any
    shape: tuple[int, ...]
    dtype: Any = jnp.float32

    def sample(self, key: jax.Array) -> jax.Array:
        """Uniform sample; infinite bounds are replaced by +-1 (for smoke tests only)."""
        low = jnp.where(jnp.isfinite(self.low), self.low, -1.0)
        high = jnp.where(jnp.isfinite(self.high), self.high, 1.0)
        return jax.random.uniform(key, self.shape, self.dtype, low, high)

    def contains(self, x: Any) -> bool:
        x = np.asarray(x)
        return bool(x.shape == self.shape and np.all(x >= np.asarray(self.low)) and np.all(x <= np.asarray(self.high)))


@dataclasses.dataclass(frozen=True)
class Discrete:
    """Integers ``0 .. n-1``, one per element of ``shape``."""

    n: int
    shape: tuple[int, ...] = ()
    dtype: Any = jnp.int32

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, self.shape, 0, self.n, self.dtype)

    def contains(self, x: Any) -> bool:
        x = np.asarray(x)
        return bool(
            x.shape == self.shape and np.issubdtype(x.dtype, np.integer) and np.all(x >= 0) and np.all(x < self.n)
        )
