"""Pure-JAX multi-agent environments behind one contract and registry.

``envs.make(name, **env_kwargs) -> (env, params)``; ``envs.names()`` lists what is
registered; ``envs.register(...)`` adds an env. The contract (shapes, auto-reset,
``final_observation``, termination against truncation) is `envs.base.Environment`'s
docstring.
"""

from __future__ import annotations

import math

from maddpg_jax.envs.base import ACTION_TYPES, Environment
from maddpg_jax.envs.multi_cartpole import OBS_MODES, EnvParams, EnvState, MultiCartPole
from maddpg_jax.envs.registry import EnvArg, EnvArgError, EnvEntry, EpisodeMetric, entry, make, names, register
from maddpg_jax.envs.spaces import Box, Discrete
from maddpg_jax.envs.vec_env import VecEnv

__all__ = [
    "ACTION_TYPES",
    "OBS_MODES",
    "Box",
    "Discrete",
    "EnvArg",
    "EnvArgError",
    "EnvEntry",
    "EnvParams",
    "EnvState",
    "Environment",
    "EpisodeMetric",
    "MultiCartPole",
    "VecEnv",
    "entry",
    "make",
    "names",
    "register",
]


def _make_multi_cartpole(num_agents, action_type, obs_mode, **params):
    return MultiCartPole(num_agents, action_type, obs_mode), EnvParams(**params)


def _cartpole_frame(state, env, params):
    from maddpg_jax.envs.render import cartpole_frame  # matplotlib only when drawing

    return cartpole_frame(state, env, params)


def _nonnegative(v):
    return None if v >= 0 else "must be >= 0"


def _positive(v):
    return None if v >= 1 else "must be >= 1"


register(
    "MultiCartPole-v0",
    _make_multi_cartpole,
    args=(
        EnvArg("num_agents", 2, int, "number of carts / agents", check=_positive),
        EnvArg("coupling", 1.0, float, "spring stiffness k between neighbouring carts [N/m]", check=_nonnegative),
        EnvArg(
            "action_type",
            "continuous",
            str,
            "continuous (a in [-1, 1]) or discrete ({0, 1}) actions",
            choices=ACTION_TYPES,
        ),
        EnvArg(
            "obs_mode",
            "local",
            str,
            "local: each agent sees its own cart; global: every agent sees all carts",
            choices=OBS_MODES,
        ),
        EnvArg("max_steps", 500, int, "episode length before truncation [steps]", check=_positive),
        EnvArg("gravity", 9.8, float, "[m/s^2]", check=_nonnegative),
        EnvArg("force_mag", 10.0, float, "push of a full action [N]", check=_nonnegative),
        EnvArg("x_threshold", 2.4, float, "track limit [m]", check=_nonnegative),
        EnvArg("theta_threshold", 12 * 2 * math.pi / 360, float, "pole limit [rad]", check=_nonnegative),
    ),
    solved_return=475.0,
    renderer=_cartpole_frame,
    description="carts on parallel tracks joined by springs, one agent per cart (k=0: CartPole-v1)",
)

# Registered after MultiCartPole: JaxMARL's scenarios (JaxMARL imported only when one is made)
# and the paper's own (pure JAX).
from maddpg_jax.envs import jaxmarl_adapter, mpe_paper  # noqa: E402,F401

if "gymnasium" in __import__("sys").modules:  # the Gym-style face, without paying gymnasium's import otherwise
    from maddpg_jax.envs import gym as _gym  # noqa: F401  (registers maddpg_jax/<name> with gymnasium)
