"""The environment contract, and the one place auto-reset is written.

An environment is a static, hashable object (its agents, action type, observation mode:
what fixes shapes) plus a ``params`` pytree (physical constants, coupling, episode length:
what can be traced, vmapped and swept). Every env in this package subclasses
`Environment` and writes two pure functions for one instance:

- ``reset_env(key, params) -> (obs, state)``
- ``step_env(key, state, actions, params) -> (obs, state, reward, terminated, truncated, info)``

The base class's `reset` and `step` are what callers
use. ``step`` runs ``step_env`` and, where the episode ended (any agent terminated or
truncated), returns the *next* episode's first observation and state instead, keeping the
true last observation in ``info["final_observation"]``. Learners bootstrap from that one
on truncation and cut the bootstrap on termination only.

Shapes, for one env (batch with ``jax.vmap`` or `envs.VecEnv`), ``A`` agents:

==================  =====================================  =============================
``obs``             ``float32 [A, obs_dim]``               shorter observations are
                                                           zero-padded to ``obs_dim``;
                                                           true sizes in ``obs_sizes``
``reward``          ``float32 [A]``
``terminated``      ``bool [A]``                           a terminal state: no bootstrap
``truncated``       ``bool [A]``                           a time limit: bootstrap
continuous actions  ``float32 [A, act_dim]`` in [-1, 1]    agent ``i`` uses its first
                                                           ``act_sizes[i]`` entries
discrete actions    ``int32 [A]``                          agent ``i`` in
                                                           ``[0, act_sizes[i])``
==================  =====================================  =============================

Actions of the wrong shape fail at trace time with a message showing the expected shape.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from maddpg_jax.envs.spaces import Box, Discrete

ACTION_TYPES = ("continuous", "discrete")


class Environment:
    """Base class of every environment: static facts, and auto-reset written once.

    A subclass provides ``agents``, ``obs_sizes``, ``act_sizes``, ``action_type``,
    ``default_params``, ``reset_env`` and ``step_env``; it may override ``teams`` (default:
    one team of every agent) and ``horizon``. Subclasses are frozen dataclasses, so an env
    is hashable and safe to close over in ``jax.jit``.
    """

    name: str = "env"

    # -- static facts (subclasses provide the first five) ----------------------------------

    @property
    def agents(self) -> tuple[str, ...]:
        """Agent names, in the fixed order of the agent axis."""
        raise NotImplementedError

    @property
    def obs_sizes(self) -> tuple[int, ...]:
        """Each agent's true observation length (before zero-padding to ``obs_dim``)."""
        raise NotImplementedError

    @property
    def act_sizes(self) -> tuple[int, ...]:
        """Each agent's action size: continuous dimensions, or discrete choices."""
        raise NotImplementedError

    @property
    def action_type(self) -> str:
        """``"continuous"`` or ``"discrete"``."""
        raise NotImplementedError

    @property
    def default_params(self) -> Any:
        raise NotImplementedError

    @property
    def teams(self) -> dict[str, tuple[int, ...]]:
        """Team name -> indices of its agents. Every agent is in exactly one team;
        cooperative envs have one team."""
        return {"team": tuple(range(self.num_agents))}

    def horizon(self, params) -> int:
        """Steps after which an episode is truncated (a Python int)."""
        return int(params.max_steps)

    # -- derived -----------------------------------------------------------------------------

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    @property
    def obs_dim(self) -> int:
        """Width of the observation array: the longest agent's observation."""
        return max(self.obs_sizes)

    @property
    def act_dim(self) -> int:
        """Width of one agent's action vector as a learner sees it: the largest action size
        (continuous dimensions, or one-hot/logit width for discrete)."""
        return max(self.act_sizes)

    @property
    def action_shape(self) -> tuple[int, ...]:
        """Shape of the ``actions`` argument of `step` for one env."""
        if self.action_type == "continuous":
            return (self.num_agents, self.act_dim)
        return (self.num_agents,)

    def agent_observation_space(self, i: int, params=None) -> Box:
        """Agent ``i``'s own observation space (its true length, no padding)."""
        return Box(-jnp.inf, jnp.inf, (self.obs_sizes[i],), jnp.float32)

    def agent_action_space(self, i: int, params=None) -> Box | Discrete:
        """Agent ``i``'s own action space (its true size, no padding)."""
        if self.action_type == "discrete":
            return Discrete(self.act_sizes[i], (), jnp.int32)
        return Box(-1.0, 1.0, (self.act_sizes[i],), jnp.float32)

    def observation_space(self, params=None) -> Box:
        """The whole ``obs`` array: ``[A, obs_dim]``."""
        return Box(-jnp.inf, jnp.inf, (self.num_agents, self.obs_dim), jnp.float32)

    def action_space(self, params=None) -> Box | Discrete:
        """The whole ``actions`` array (bounds of the widest agent; see ``act_sizes``)."""
        if self.action_type == "discrete":
            return Discrete(self.act_dim, (self.num_agents,), jnp.int32)
        return Box(-1.0, 1.0, self.action_shape, jnp.float32)

    def check_actions(self, actions: jax.Array) -> None:
        """Raise ``ValueError`` at trace time when ``actions`` has the wrong shape."""
        expected = self.action_shape
        if tuple(actions.shape) != expected:
            raise ValueError(
                f"{self.name} with {self.num_agents} agent(s) and {self.action_type} actions "
                f"expects actions of shape {expected}, got {tuple(actions.shape)}"
            )

    # -- what a subclass writes --------------------------------------------------------------

    def reset_env(self, key: jax.Array, params) -> tuple[jax.Array, Any]:
        raise NotImplementedError

    def step_env(self, key: jax.Array, state, actions: jax.Array, params):
        """One step without auto-reset: ``(obs, state, reward, terminated, truncated, info)``."""
        raise NotImplementedError

    # -- the API -------------------------------------------------------------------------------

    def reset(self, key: jax.Array, params) -> tuple[jax.Array, Any]:
        """Start an episode: ``obs [A, obs_dim]`` and the state."""
        return self.reset_env(key, params)

    def step(self, key: jax.Array, state, actions: jax.Array, params):
        """Advance one step, resetting when the episode ends.

        Returns ``(obs, state, reward, terminated, truncated, info)``; when the episode
        ended, ``obs`` and ``state`` are the next episode's first, and
        ``info["final_observation"]`` is the true observation after this step and
        ``info["final_state"]`` the state it came from.
        """
        k_step, k_reset = jax.random.split(key)
        return self.step_and_reset(k_step, state, actions, params, self.reset_env(k_reset, params))

    def step_and_reset(self, key: jax.Array, state, actions: jax.Array, params, fresh):
        """`step` with the next episode's start given: ``fresh = (obs, state)``.

        Auto-reset lives here and only here. Under ``vmap`` it is branch-free: both the
        stepped and the fresh state exist and ``where`` picks one per instance.
        """
        obs, after, reward, terminated, truncated, info = self.step_env(key, state, actions, params)
        done = jnp.any(terminated | truncated)
        fresh_obs, fresh_state = fresh
        new_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), fresh_state, after)
        # The step's own state too (before the reset): episode metrics are read from it.
        info = {**info, "final_observation": obs, "final_state": after}
        return jnp.where(done, fresh_obs, obs), new_state, reward, terminated, truncated, info
