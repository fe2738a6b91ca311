"""A PettingZoo face for every registered env: ``envs.pettingzoo.parallel_env(name, **kwargs)``.

Dicts keyed by agent name, numpy in and out, gymnasium spaces per agent (each agent's own
observation length and action size, no padding), ``reset(seed=...)``, and ``render()``
returning an RGB array where the env's registry entry has a renderer. Each call runs the
env's jitted single-instance functions; for speed, train with the JAX API and use this
face to run a policy in any PettingZoo loop (see ``maddpg_jax.load_policy``).

Needs pettingzoo (``pip install -e ".[pettingzoo]"``; it is in ``[dev]``).
"""

from __future__ import annotations

import functools
from typing import ClassVar

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from pettingzoo import ParallelEnv

from maddpg_jax.envs.registry import entry, make


def _gym_space(space):
    from maddpg_jax.envs.spaces import Discrete

    if isinstance(space, Discrete):
        return gymnasium.spaces.Discrete(space.n)
    low = np.broadcast_to(np.asarray(space.low, np.float32), space.shape)
    high = np.broadcast_to(np.asarray(space.high, np.float32), space.shape)
    return gymnasium.spaces.Box(low, high, space.shape, np.float32)


class JaxParallelEnv(ParallelEnv):
    """A registered env as a ``pettingzoo.ParallelEnv`` (one instance, no auto-reset: an
    episode ends with every agent removed, and ``reset`` starts the next)."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "name": "maddpg_jax", "is_parallelizable": True}

    def __init__(self, name: str, render_mode: str | None = None, **env_kwargs):
        self.env_name = name
        self.jax_env, self.params = make(name, **env_kwargs)
        self.render_mode = render_mode
        self._frame = entry(name).renderer  # state -> RGB array, or None
        env = self.jax_env
        self.possible_agents = list(env.agents)
        self.agents: list[str] = []
        self._obs_spaces = {
            a: _gym_space(env.agent_observation_space(i, self.params)) for i, a in enumerate(env.agents)
        }
        self._act_spaces = {a: _gym_space(env.agent_action_space(i, self.params)) for i, a in enumerate(env.agents)}
        self._reset = jax.jit(env.reset_env)
        self._step = jax.jit(env.step_env)
        self._key = jax.random.key(0)
        self._state = None

    @functools.cache
    def observation_space(self, agent: str) -> gymnasium.Space:
        return self._obs_spaces[agent]

    @functools.cache
    def action_space(self, agent: str) -> gymnasium.Space:
        return self._act_spaces[agent]

    def _obs_dict(self, obs) -> dict:
        obs = np.asarray(obs)
        return {a: obs[i, : self.jax_env.obs_sizes[i]].copy() for i, a in enumerate(self.possible_agents)}

    def _actions(self, actions: dict) -> jax.Array:
        env = self.jax_env
        if env.action_type == "discrete":
            return jnp.asarray([int(actions.get(a, 0)) for a in self.possible_agents], jnp.int32)
        rows = np.zeros(env.action_shape, np.float32)
        for i, a in enumerate(self.possible_agents):
            if a in actions:
                rows[i, : env.act_sizes[i]] = np.asarray(actions[a], np.float32).reshape(-1)
        return jnp.asarray(rows)

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._key = jax.random.key(seed)
        self._key, k = jax.random.split(self._key)
        obs, self._state = self._reset(k, self.params)
        self.agents = list(self.possible_agents)
        return self._obs_dict(obs), {a: {} for a in self.agents}

    def step(self, actions: dict):
        if not self.agents:
            raise RuntimeError("step() after the episode ended: call reset()")
        self._key, k = jax.random.split(self._key)
        obs, self._state, reward, terminated, truncated, _ = self._step(
            k, self._state, self._actions(actions), self.params
        )
        reward, terminated, truncated = map(np.asarray, (reward, terminated, truncated))
        names = self.possible_agents
        out = (
            self._obs_dict(obs),
            {a: float(reward[i]) for i, a in enumerate(names)},
            {a: bool(terminated[i]) for i, a in enumerate(names)},
            {a: bool(truncated[i]) for i, a in enumerate(names)},
            {a: {} for a in names},
        )
        if np.any(terminated | truncated):
            self.agents = []
        return out

    def render(self):
        if self.render_mode != "rgb_array" or self._state is None:
            return None
        if self._frame is None:
            raise NotImplementedError(f"{self.env_name} has no renderer")
        return self._frame(jax.device_get(self._state), self.jax_env, self.params)

    def state(self):
        return np.asarray(jax.tree.leaves(self._state)[0])

    def close(self):
        pass


def parallel_env(name: str, render_mode: str | None = None, **env_kwargs) -> JaxParallelEnv:
    """Any registered env (``envs.names()``) as a PettingZoo ``ParallelEnv``."""
    return JaxParallelEnv(name, render_mode=render_mode, **env_kwargs)
