"""The environment registry: one entry per env holds what the rest of the project needs.

``register(name, factory, ...)`` adds an entry; ``make(name, **env_kwargs)`` builds
``(env, params)``. An entry names the keyword arguments its env takes (with defaults,
types, choices and help: the CLI turns them into flags), the solved threshold where one
exists, a renderer where one exists, and recommended training defaults (any
`maddpg_jax.Config` field). Facts that depend on the kwargs (agent names, teams,
spaces, horizon) are properties of the built env (see `envs.base.Environment`).
No other module tests env names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import math
from collections.abc import Callable
from typing import Any


class EnvArgError(ValueError):
    """A bad env keyword argument; ``arg`` names it (the CLI turns it into a flag)."""

    def __init__(self, arg: str, message: str):
        self.arg, self.message = arg, message  # message: what is wrong, without the name
        super().__init__(f"{arg}: {message}")


@dataclasses.dataclass(frozen=True)
class EnvArg:
    """One keyword argument an env takes."""

    name: str
    default: Any
    type: type
    help: str
    choices: tuple | None = None
    check: Callable[[Any], str | None] | None = None  # value -> error text, or None if fine

    def validate(self, value) -> Any:
        """The value converted to ``type``; `EnvArgError` when it is not allowed."""
        if self.type is int and (isinstance(value, bool) or not isinstance(value, int)):
            if not (isinstance(value, float) and value.is_integer()):
                raise EnvArgError(self.name, f"must be an integer, got {value!r}")
            value = int(value)
        if self.type is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise EnvArgError(self.name, f"must be a finite number, got {value!r}")
            value = float(value)
        if self.choices is not None and value not in self.choices:
            raise EnvArgError(self.name, f"must be one of {list(self.choices)}, got {value!r}")
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise EnvArgError(self.name, f"{problem}, got {value!r}")
        return value


REDUCTIONS = ("sum", "mean", "last")


@dataclasses.dataclass(frozen=True)
class EpisodeMetric:
    """A quantity the noise-free evaluation accumulates over each episode, besides the return
    (the MADDPG paper's metrics: target reached, landmark distance, collisions, touches,
    reconstruction success).

    Attributes:
        name: the key it is reported under (``eval.json``, metrics rows, loggers).
        fn: ``fn(env, state) -> float32 []``: its value after one step, from the env state
            that step produced (before any auto-reset), as the original MPE's
            ``benchmark_data`` is computed after the world's step.
        reduce: how an episode's per-step values become one number: ``"sum"`` (e.g. touches
            per episode), ``"mean"`` (per step) or ``"last"`` (the episode's last step).
        help: one line: what it measures, and its unit.
    """

    name: str
    fn: Callable
    reduce: str = "sum"
    help: str = ""

    def __post_init__(self):
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"metric {self.name!r}: reduce must be one of {list(REDUCTIONS)}, got {self.reduce!r}")


@dataclasses.dataclass(frozen=True)
class EnvEntry:
    """A registered env.

    Attributes:
        name: the name ``make`` takes.
        factory: ``factory(**kwargs) -> (env, params)``, called with every arg resolved.
        args: the keyword arguments the env takes.
        solved_return: a 100-episode mean return (per agent) that counts as solved, or None.
        renderer: ``renderer(state, env, params) -> uint8 [H, W, 3]``: one env state drawn
            as an RGB array (``eval --gif`` and PettingZoo's ``render()`` use it), or None.
        defaults: recommended `maddpg_jax.Config` values for this env (fields the
            user did not set take these; a user's value always wins).
        arg_defaults: ``{arg name: {arg value: {field: value}}}``: recommendations that
            depend on an env argument, over ``defaults`` (e.g. discrete actions' own actor
            learning rate); `defaults_for` merges them.
        description: one line for ``--help``.
        metrics: `EpisodeMetric` s the noise-free evaluation reports for this env.
    """

    name: str
    factory: Callable
    args: tuple[EnvArg, ...] = ()
    solved_return: float | None = None
    renderer: Callable | None = None
    defaults: dict = dataclasses.field(default_factory=dict)
    description: str = ""
    arg_defaults: dict = dataclasses.field(default_factory=dict)
    metrics: tuple[EpisodeMetric, ...] = ()

    def defaults_for(self, resolved: dict) -> dict:
        """The recommended Config values for the env args ``resolved`` (every arg's value,
        as `resolve` returns): ``defaults``, then each matching ``arg_defaults`` entry."""
        out = dict(self.defaults)
        for arg, by_value in self.arg_defaults.items():
            out.update(by_value.get(resolved[arg], {}))
        return out

    def resolve(self, kwargs: dict) -> dict:
        """Every arg's value (defaults filled in), checked; `EnvArgError` naming an
        unknown or bad one and what is accepted."""
        known = {a.name: a for a in self.args}
        for k in kwargs:
            if k not in known:
                accepted = ", ".join(known) or "none"
                raise EnvArgError(k, f"{self.name} does not take {k!r}; it takes: {accepted}")
        return {a.name: a.validate(kwargs[a.name]) if a.name in kwargs else a.default for a in self.args}


_REGISTRY: dict[str, EnvEntry] = {}


def register(
    name: str,
    factory: Callable,
    *,
    args=(),
    solved_return=None,
    renderer=None,
    defaults=None,
    description: str = "",
    arg_defaults=None,
    metrics=(),
) -> EnvEntry:
    """Add an env to the registry (replacing an entry of the same name) and return its entry;
    the arguments are `EnvEntry`'s fields. An ``arg_defaults`` key must name an arg."""
    unknown = set(arg_defaults or {}) - {a.name for a in args}
    if unknown:
        raise ValueError(f"{name}: arg_defaults names {sorted(unknown)}, which are not among its args")
    metrics = tuple(metrics)
    metric_names = [m.name for m in metrics]
    if len(set(metric_names)) != len(metric_names):
        raise ValueError(f"{name}: metric names must differ, got {metric_names}")
    entry = EnvEntry(
        name,
        factory,
        tuple(args),
        solved_return,
        renderer,
        dict(defaults or {}),
        description,
        dict(arg_defaults or {}),
        metrics,
    )
    _REGISTRY[name] = entry
    return entry


def names() -> list[str]:
    """Registered env names, in registration order."""
    return list(_REGISTRY)


def entry(name: str) -> EnvEntry:
    """The entry of ``name``; ``ValueError`` listing the known names when there is none.

    As in gymnasium, ``"module:Name"`` first imports ``module`` (which registers its envs
    with `register`) when the name is not yet known: that is how an env of your own
    reaches the CLI (``maddpg-jax train --env my_package.my_env:MyEnv-v0``).
    """
    module = name.split(":", 1)[0] if isinstance(name, str) and ":" in name else None
    # Import only a module none of whose envs is registered yet: "jaxmarl:..." names are
    # registered by this package's adapter, and importing JaxMARL itself adds none.
    if module and name not in _REGISTRY and not any(n.startswith(module + ":") for n in _REGISTRY):
        with contextlib.suppress(ImportError):  # a missing module: reported below as an unknown name
            importlib.import_module(module)
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(
            f"unknown environment {name!r}; known: {', '.join(_REGISTRY)} "
            f"(or MODULE:NAME, with MODULE registering NAME)"
        )
    return _REGISTRY[name]


def make(name: str, **kwargs):
    """Build an environment and its default parameters: ``(env, params)``.

    Raises ``ValueError`` for an unknown name (listing the known ones) and
    `EnvArgError` for an argument the env does not take or a bad value.
    """
    e = entry(name)
    return e.factory(**e.resolve(kwargs))
