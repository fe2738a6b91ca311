"""maddpg-jax: MADDPG with env, replay, acting and learning in one compiled JAX program.

The public names below are imported on first use, so ``maddpg-jax`` (whose entry point
lives in this package) starts without importing JAX until its ``main`` runs, and a Ctrl-C
during that import still ends in one line.
"""

import importlib

_EXPORTS = {
    "train": "maddpg_jax.api",
    "sweep": "maddpg_jax.api",
    "UsageError": "maddpg_jax.errors",
    "RunStopped": "maddpg_jax.errors",
    "WriteFault": "maddpg_jax.errors",
    "Config": "maddpg_jax.config",
    "ConfigError": "maddpg_jax.config",
    "HParams": "maddpg_jax.config",
    "Networks": "maddpg_jax.networks",
    "make_networks": "maddpg_jax.networks",
    "Policy": "maddpg_jax.policy",
    "load_policy": "maddpg_jax.policy",
    "Metrics": "maddpg_jax.training",
    "TrainState": "maddpg_jax.training",
    "Trainer": "maddpg_jax.training",
    "make_train": "maddpg_jax.training",
    "make_trainer": "maddpg_jax.training",
}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'maddpg_jax' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
