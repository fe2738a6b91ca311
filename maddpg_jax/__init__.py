"""maddpg-jax: MADDPG with env, replay, acting and learning in one compiled JAX program."""

from maddpg_jax.config import Config, ConfigError, HParams
from maddpg_jax.networks import Networks, make_networks
from maddpg_jax.policy import Policy, load_policy
from maddpg_jax.train import Metrics, Trainer, TrainState, make_train, make_trainer

__all__ = [
    "Config",
    "ConfigError",
    "HParams",
    "Metrics",
    "Networks",
    "Policy",
    "TrainState",
    "Trainer",
    "load_policy",
    "make_networks",
    "make_train",
    "make_trainer",
]
