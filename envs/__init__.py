"""Pure-JAX multi-agent environments.

``envs.make(name, **kwargs) -> (env, params)``; see ``MultiCartPole`` for the contract.
"""

from __future__ import annotations

import dataclasses
import math

from envs.multi_cartpole import ACTION_TYPES, OBS_MODES, EnvParams, EnvState, MultiCartPole
from envs.spaces import Box, Discrete
from envs.vec_env import VecEnv

__all__ = [
    "make",
    "registered_envs",
    "MultiCartPole",
    "EnvParams",
    "EnvState",
    "VecEnv",
    "Box",
    "Discrete",
    "ACTION_TYPES",
    "OBS_MODES",
]

registered_envs = ("MultiCartPole-v0",)
_STATIC = ("num_agents", "action_type", "obs_mode")


def _make_multi_cartpole(**kwargs):
    static = {k: kwargs.pop(k) for k in _STATIC if k in kwargs}
    fields = {f.name for f in dataclasses.fields(EnvParams)}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise ValueError(
            f"unknown argument(s) {unknown} for MultiCartPole-v0; allowed: "
            f"{sorted(set(_STATIC) | fields)}"
        )
    coupling = kwargs.get("coupling", 1.0)
    if not _is_number(coupling) or not math.isfinite(coupling) or coupling < 0:
        raise ValueError(f"coupling must be a finite number >= 0, got {coupling!r}")
    max_steps = kwargs.get("max_steps", 500)
    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
        raise ValueError(f"max_steps (episode length) must be an integer >= 1, got {max_steps!r}")
    env = MultiCartPole(**static)
    return env, EnvParams(**kwargs)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def make(name: str, **kwargs):
    """Build an environment and its default parameters.

    Args:
        name: a registered name (``envs.registered_envs``), or ``"jaxmarl:NAME"``.
        **kwargs: static options (``num_agents``, ``action_type``, ``obs_mode``) and any
            :class:`EnvParams` field (``coupling``, ``max_steps``, ...).

    Returns:
        ``(env, params)``.

    Raises:
        ValueError: unknown name, or a bad option (naming it and what is allowed).
    """
    if name == "MultiCartPole-v0":
        return _make_multi_cartpole(**kwargs)
    if isinstance(name, str) and name.startswith("jaxmarl:"):
        from envs.jaxmarl_adapter import make_jaxmarl

        return make_jaxmarl(name[len("jaxmarl:"):], **kwargs)
    raise ValueError(
        f"unknown environment {name!r}; known: {list(registered_envs)} or 'jaxmarl:NAME'"
    )
