"""JaxMARL environments behind this project's contract (``envs.make("jaxmarl:NAME")``).

What the adapter changes (see ../shared/design.md, "Environment contract"):
- agents are stacked on axis 0 in the env's own fixed order (``env.agents``); observations
  of different lengths are zero-padded to the longest;
- JaxMARL's ``step`` resets inside and returns only the reset observation; here the env's
  ``step_env`` runs first, its observation is kept as ``info["final_observation"]``, and the
  reset happens after, as in MultiCartPole;
- MPE episodes end only by the time limit, so an episode end at ``max_steps`` is reported as
  ``truncated`` (the critic keeps bootstrapping) and ``terminated`` stays False; an end
  before the limit is a termination;
- continuous actions come in as [-1, 1] per dimension (what a tanh actor emits) and are
  mapped linearly onto the env's Box bounds.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.spaces import Box, Discrete


@struct.dataclass
class AdapterParams:
    max_steps: int = 25  # the wrapped env's horizon (informational: the env owns it)


@dataclasses.dataclass(frozen=True, eq=False)
class JaxMARLEnv:
    """A JaxMARL env as ``reset(key, params)`` / ``step(key, state, actions, params)``."""

    env: Any
    name: str

    def __post_init__(self):
        spaces = [self.env.action_space(a) for a in self.env.agents]
        kinds = {type(s).__name__ for s in spaces}
        if len(kinds) != 1:
            raise ValueError(f"jaxmarl:{self.name} mixes action space kinds {sorted(kinds)}; not supported")

    # -- static facts --------------------------------------------------------------------

    @property
    def agents(self) -> list[str]:
        return list(self.env.agents)

    @property
    def num_agents(self) -> int:
        return len(self.env.agents)

    @property
    def obs_sizes(self) -> list[int]:
        return [int(np.prod(self.env.observation_space(a).shape)) for a in self.agents]

    @property
    def obs_dim(self) -> int:
        return max(self.obs_sizes)

    @property
    def action_type(self) -> str:
        return "discrete" if hasattr(self.env.action_space(self.agents[0]), "n") else "continuous"

    @property
    def act_dim(self) -> int:
        s = self.env.action_space(self.agents[0])
        return int(s.n) if self.action_type == "discrete" else int(np.prod(s.shape))

    @property
    def action_shape(self) -> tuple[int, ...]:
        return (self.num_agents, self.act_dim) if self.action_type == "continuous" else (self.num_agents,)

    @property
    def default_params(self) -> AdapterParams:
        return AdapterParams(max_steps=int(getattr(self.env, "max_steps", 25)))

    def observation_space(self, params=None) -> Box:
        return Box(-jnp.inf, jnp.inf, (self.num_agents, self.obs_dim), jnp.float32)

    def action_space(self, params=None):
        if self.action_type == "discrete":
            return Discrete(self.act_dim, (self.num_agents,), jnp.int32)
        return Box(-1.0, 1.0, self.action_shape, jnp.float32)

    def __hash__(self):
        return hash((self.name, id(self.env)))

    # -- conversions ---------------------------------------------------------------------

    def _stack_obs(self, obs: dict) -> jax.Array:
        rows = []
        for a in self.agents:
            o = jnp.ravel(obs[a]).astype(jnp.float32)
            rows.append(jnp.pad(o, (0, self.obs_dim - o.shape[0])))
        return jnp.stack(rows)

    def _env_actions(self, actions: jax.Array) -> dict:
        expected = self.action_shape
        if tuple(actions.shape) != expected:
            raise ValueError(f"jaxmarl:{self.name} expects actions of shape {expected}, got {tuple(actions.shape)}")
        out = {}
        for i, a in enumerate(self.agents):
            if self.action_type == "discrete":
                out[a] = actions[i].astype(jnp.int32)
            else:
                space = self.env.action_space(a)
                low, high = jnp.asarray(space.low, jnp.float32), jnp.asarray(space.high, jnp.float32)
                unit = (jnp.clip(actions[i], -1.0, 1.0) + 1.0) / 2.0
                out[a] = low + unit * (high - low)
        return out

    # -- API -------------------------------------------------------------------------------

    def reset(self, key: jax.Array, params=None):
        obs, state = self.env.reset(key)
        return self._stack_obs(obs), state

    def step(self, key: jax.Array, state, actions: jax.Array, params=None):
        k_step, k_reset = jax.random.split(key)
        obs, after, reward, dones, info = self.env.step_env(k_step, state, self._env_actions(actions))
        final = self._stack_obs(obs)
        done = jnp.asarray(dones["__all__"])
        max_steps = getattr(self.env, "max_steps", None)
        at_limit = (after.step >= max_steps) if max_steps is not None else jnp.zeros((), bool)
        truncated = done & at_limit
        terminated = done & ~at_limit
        obs_re, state_re = self.env.reset(k_reset)
        new_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), state_re, after)
        obs_out = jnp.where(done, self._stack_obs(obs_re), final)
        a = self.num_agents
        rew = jnp.stack([jnp.asarray(reward[x], jnp.float32) for x in self.agents])
        return (obs_out, new_state, rew, jnp.broadcast_to(terminated, (a,)), jnp.broadcast_to(truncated, (a,)),
                {"final_observation": final})


def make_jaxmarl(name: str, **kwargs):
    """``(JaxMARLEnv, AdapterParams)`` for ``jaxmarl.make(name, **kwargs)``.

    ``action_type`` may be given as this project's "continuous"/"discrete" or JaxMARL's
    "Continuous"/"Discrete"; ``num_agents`` and ``obs_mode`` from a shared config are
    ignored (the JaxMARL env fixes its agents and observations).
    """
    try:
        import jaxmarl
    except ImportError:
        raise ValueError(f"environment 'jaxmarl:{name}' needs JaxMARL: pip install -e \".[jaxmarl]\"") from None
    kwargs = dict(kwargs)
    kwargs.pop("obs_mode", None)
    kwargs.pop("num_agents", None)
    kwargs.pop("coupling", None)
    at = kwargs.pop("action_type", None)
    if at is not None:
        kwargs["action_type"] = {"continuous": "Continuous", "discrete": "Discrete"}.get(at, at)
    try:
        env = jaxmarl.make(name, **kwargs)
    except Exception as e:  # jaxmarl raises ValueError/KeyError/TypeError for unknown names or args
        raise ValueError(f"jaxmarl cannot make {name!r} with {kwargs}: {e}") from None
    wrapped = JaxMARLEnv(env, name)
    return wrapped, wrapped.default_params
