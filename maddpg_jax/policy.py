"""Trained policies outside the trainer: ``load_policy(run_dir)`` gives a function from a
PettingZoo observation dict to an action dict (jitted inside, numpy at the edges)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np


class Policy:
    """A saved run's greedy policy (no exploration noise) for one member.

    Call it with ``{agent: obs}`` (each agent's own observation, numpy, unpadded) and get
    ``{agent: action}``: a float32 array of the agent's own action size in [-1, 1]
    (continuous) or an int (discrete), what ``envs.pettingzoo.parallel_env`` takes.
    """

    def __init__(self, trainer, actor_params):
        self.trainer, self.actor_params = trainer, actor_params
        self.env = trainer.env
        self.agents = list(trainer.env.agents)
        self._act = jax.jit(trainer.policy)

    def padded_obs(self, observations: dict) -> np.ndarray:
        """``{agent: obs}`` -> ``float32 [A, obs_dim]`` (missing agents: zeros)."""
        out = np.zeros((len(self.agents), self.env.obs_dim), np.float32)
        for i, a in enumerate(self.agents):
            if a in observations:
                o = np.asarray(observations[a], np.float32).reshape(-1)
                out[i, : o.shape[0]] = o
        return out

    def __call__(self, observations: dict) -> dict:
        actions = np.asarray(self._act(self.actor_params, jnp.asarray(self.padded_obs(observations))))
        if self.env.action_type == "discrete":
            return {a: int(actions[i]) for i, a in enumerate(self.agents) if a in observations}
        return {a: actions[i, : self.env.act_sizes[i]].copy() for i, a in enumerate(self.agents) if a in observations}


def load_policy(run_dir: str | Path, member: int = 0) -> Policy:
    """The policy of ``member`` that a run or sweep directory keeps (its latest checkpoint's
    best-evaluated actors, or latest actors when policy selection is off).

    Raises `maddpg_jax.errors.UsageError` (one line) for a directory without a run
    or checkpoint, or a member out of range.
    """
    from maddpg_jax.errors import UsageError
    from maddpg_jax.evaluation import load_run, read_run_for
    from maddpg_jax.training import kept_actor

    config, members = read_run_for(Path(run_dir))
    if not 0 <= member < len(members):
        raise UsageError(f"member: must be in [0, {len(members) - 1}], got {member}")
    trainer, state = load_run(Path(run_dir), config, members)
    return Policy(trainer, jax.tree.map(lambda x: x[member], jax.device_get(kept_actor(config, state))))
