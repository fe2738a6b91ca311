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
functions: train with the JAX API, use this face to run a policy in Gym-style code. Needs
gymnasium and pettingzoo (both in ``.[dev]``; ``.[pettingzoo]`` has both).
"""

from __future__ import annotations

import gymnasium

from maddpg_jax.envs.pettingzoo import JaxParallelEnv
from maddpg_jax.envs.registry import names

NAMESPACE = "maddpg_jax"


class GymEnv(gymnasium.Env):
    """A registered env (``name``, with its keyword arguments) behind gymnasium's ``Env``
    API with per-agent tuples and lists (see the module docstring): the PettingZoo face
    (``envs.pettingzoo.JaxParallelEnv``), its dicts read and written in agent order."""

    metadata = {"render_modes": ["rgb_array"]}  # noqa: RUF012  (gymnasium's class attribute)

    def __init__(self, name: str, render_mode: str | None = None, **env_kwargs):
        self.parallel = JaxParallelEnv(name, render_mode=render_mode, **env_kwargs)
        self.env_name, self.render_mode = name, render_mode
        self.agents = list(self.parallel.possible_agents)
        self.n_agents = len(self.agents)
        self.observation_space = gymnasium.spaces.Tuple([self.parallel.observation_space(a) for a in self.agents])
        self.action_space = gymnasium.spaces.Tuple([self.parallel.action_space(a) for a in self.agents])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, _ = self.parallel.reset(seed=seed, options=options)
        return tuple(obs[a] for a in self.agents), {}

    def step(self, act_n):
        if len(act_n) != self.n_agents:
            raise ValueError(f"{self.env_name}: expected {self.n_agents} actions (one per agent), got {len(act_n)}")
        obs, reward, terminated, truncated, _ = self.parallel.step(dict(zip(self.agents, act_n)))
        per_agent = lambda d: [d[a] for a in self.agents]
        return tuple(obs[a] for a in self.agents), per_agent(reward), per_agent(terminated), per_agent(truncated), {}

    def render(self):
        return self.parallel.render()


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
