"""``VecEnv``: E independent instances of an environment behind the single-env API."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from maddpg_jax.envs import fast_random


@dataclasses.dataclass(frozen=True)
class VecEnv:
    """E copies of ``env`` stepped in lockstep with ``jax.vmap``.

    Same ``reset(key, params)`` / ``step(key, state, actions, params)`` as the wrapped env:
    one key in, every array with a leading ``[E]`` axis: ``obs [E, A, obs_dim]``,
    ``reward [E, A]``, actions ``[E, A, act_dim]`` or ``[E, A]``. ``params`` is shared by
    all instances (vmap ``env.step`` yourself to give each its own).

    An env that offers ``reset_from_noise`` (and ``reset_noise_shape``) gets its auto-reset
    randomness for all E instances from one cheap bulk draw (see `envs.fast_random`)
    instead of E threefry key splits; any other env gets one split key per instance.
    """

    env: Any
    num_envs: int

    def __post_init__(self):
        if not isinstance(self.num_envs, int) or isinstance(self.num_envs, bool) or self.num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {self.num_envs!r}")

    def __getattr__(self, name):
        # Static facts (num_agents, obs_dim, spaces, ...) come from the wrapped env.
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    def reset(self, key: jax.Array, params):
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.reset, in_axes=(0, None))(keys, params)

    def step(self, key: jax.Array, state, actions: jax.Array, params):
        if hasattr(self.env, "reset_from_noise"):
            # The env's step ignores its key, so one (unsplit) key serves every instance.
            noise = fast_random.uniform(key, (self.num_envs,) + self.env.reset_noise_shape)
            fresh = jax.vmap(self.env.reset_from_noise, in_axes=(0, None))(noise, params)
            return jax.vmap(self.env.step_and_reset, in_axes=(None, 0, 0, None, 0))(key, state, actions, params, fresh)
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.step, in_axes=(0, 0, 0, None))(keys, state, actions, params)
