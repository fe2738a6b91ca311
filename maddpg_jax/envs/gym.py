"""A Gym-style face for every registered env, as multi-agent Gym code expects it (ma-gym's
convention): ``gymnasium.make("maddpg_jax/MultiCartPole-v0", num_agents=2)``.

- ``env.n_agents``, ``env.agents`` (names, in order);
- ``env.observation_space`` and ``env.action_space``: ``gymnasium.spaces.Tuple`` of each
  agent's own space (its true observation length and action size, no padding);
- ``obs_n, info = env.reset(seed=...)``: a tuple of per-agent observations;
- ``obs_n, reward_n, terminated_n, truncated_n, info = env.step(act_n)``: ``act_n`` a
  sequence of per-agent actions; rewards and the two end flags as lists, one per agent
  (gymnasium's five-tuple with ma-gym's per-agent lists; ``all(terminated_n) or
  all(truncated_n)`` ends the episode);
- ``render()`` an RGB array where the env has a renderer (``render_mode="rgb_array"``).

Every registered env is registered with gymnasium as ``maddpg_jax/<name>`` (a ``:`` in the
name written ``-``: ``maddpg_jax/paper-simple_tag``) when this module is imported, and by
``import maddpg_jax.envs`` when gymnasium is already imported (so that importing maddpg_jax
does not pay gymnasium's import). ``gymnasium.make("maddpg_jax.envs.gym:maddpg_jax/<name>")``
imports it by itself. Each call runs the env's jitted single-instance
functions: train with the JAX API, use this face to run a policy in Gym-style code.
"""

from __future__ import annotations

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

from maddpg_jax.envs.pettingzoo import _gym_space
from maddpg_jax.envs.registry import entry, make, names

NAMESPACE = "maddpg_jax"


class GymEnv(gymnasium.Env):
    """A registered env (``name``, with its keyword arguments) behind gymnasium's ``Env``
    API with per-agent tuples and lists (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array"]}  # noqa: RUF012  (gymnasium's class attribute)

    def __init__(self, name: str, render_mode: str | None = None, **env_kwargs):
        self.env_name = name
        self.jax_env, self.params = make(name, **env_kwargs)
        env = self.jax_env
        self.render_mode = render_mode
        self._frame = entry(name).renderer
        self.agents = list(env.agents)
        self.n_agents = env.num_agents
        self.observation_space = gymnasium.spaces.Tuple(
            [_gym_space(env.agent_observation_space(i, self.params)) for i in range(env.num_agents)]
        )
        self.action_space = gymnasium.spaces.Tuple(
            [_gym_space(env.agent_action_space(i, self.params)) for i in range(env.num_agents)]
        )
        self._reset = jax.jit(env.reset_env)
        self._step = jax.jit(env.step_env)
        self._key = jax.random.key(0)
        self._state = None

    def _obs(self, obs) -> tuple:
        obs = np.asarray(obs)
        return tuple(obs[i, : self.jax_env.obs_sizes[i]].copy() for i in range(self.n_agents))

    def _actions(self, act_n) -> jax.Array:
        env = self.jax_env
        if len(act_n) != self.n_agents:
            raise ValueError(f"{self.env_name}: expected {self.n_agents} actions (one per agent), got {len(act_n)}")
        if env.action_type == "discrete":
            return jnp.asarray([int(a) for a in act_n], jnp.int32)
        rows = np.zeros(env.action_shape, np.float32)
        for i, a in enumerate(act_n):
            rows[i, : env.act_sizes[i]] = np.asarray(a, np.float32).reshape(-1)
        return jnp.asarray(rows)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._key = jax.random.key(seed)
        self._key, k = jax.random.split(self._key)
        obs, self._state = self._reset(k, self.params)
        return self._obs(obs), {}

    def step(self, act_n):
        if self._state is None:
            raise RuntimeError("step() before reset()")
        self._key, k = jax.random.split(self._key)
        obs, self._state, reward, terminated, truncated, _ = self._step(
            k, self._state, self._actions(act_n), self.params
        )
        reward, terminated, truncated = map(np.asarray, (reward, terminated, truncated))
        return self._obs(obs), reward.tolist(), terminated.tolist(), truncated.tolist(), {}

    def render(self):
        if self.render_mode != "rgb_array" or self._state is None:
            return None
        if self._frame is None:
            raise NotImplementedError(f"{self.env_name} has no renderer")
        return self._frame(jax.device_get(self._state), self.jax_env, self.params)


def gym_id(name: str) -> str:
    """gymnasium's id of a registered env: ``maddpg_jax/<name>``, a ``:`` (which gymnasium
    reads as a module to import) written as ``-``: ``maddpg_jax/paper-simple_tag``."""
    return f"{NAMESPACE}/{name.replace(':', '-')}"


def register_gym_envs() -> None:
    """Register every env of the registry with gymnasium (`gym_id`); gymnasium's checker
    of single-agent envs is off, since rewards and flags are per-agent lists."""
    for name in names():
        gym_id_ = gym_id(name)
        if gym_id_ not in gymnasium.registry:
            gymnasium.register(
                gym_id_, entry_point=GymEnv, kwargs={"name": name}, disable_env_checker=True, order_enforce=False
            )


register_gym_envs()
