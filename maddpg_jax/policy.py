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

    A run trained with ``ensemble_size`` K > 1 plays one sub-policy per team: ``sub_policy``
    fixes every agent's (an int in [0, K)); without it one is drawn per team at construction
    and again at every `reset` (call it at each episode start: the paper's behaviour).
    """

    def __init__(self, trainer, actor_params, sub_policy: int | None = None, seed: int = 0):
        self.trainer, self.actor_params = trainer, actor_params
        self.env = trainer.env
        self.agents = list(trainer.env.agents)
        self._act = jax.jit(trainer.policy)
        self.ensemble_size = trainer.spec.ensemble_size
        self.sub_policy = sub_policy
        self._rng = np.random.default_rng(seed)
        self.index = None
        self.reset()

    def reset(self) -> None:
        """A new episode: an ensemble's sub-policies drawn again (one per team), unless fixed."""
        if self.ensemble_size == 1:
            return
        spec = self.trainer.spec
        if self.sub_policy is not None:
            self.index = np.full(spec.num_agents, self.sub_policy, np.int32)
        else:
            self.index = self._rng.integers(0, self.ensemble_size, len(spec.teams))[spec.team_of].astype(np.int32)

    def padded_obs(self, observations: dict) -> np.ndarray:
        """``{agent: obs}`` -> ``float32 [A, obs_dim]`` (missing agents: zeros)."""
        out = np.zeros((len(self.agents), self.env.obs_dim), np.float32)
        for i, a in enumerate(self.agents):
            if a in observations:
                o = np.asarray(observations[a], np.float32).reshape(-1)
                out[i, : o.shape[0]] = o
        return out

    def __call__(self, observations: dict) -> dict:
        actions = np.asarray(self._act(self.actor_params, jnp.asarray(self.padded_obs(observations)), self.index))
        if self.env.action_type == "discrete":
            return {a: int(actions[i]) for i, a in enumerate(self.agents) if a in observations}
        return {a: actions[i, : self.env.act_sizes[i]].copy() for i, a in enumerate(self.agents) if a in observations}


def load_policy(run_dir: str | Path, member: int = 0, sub_policy: int | None = None, seed: int = 0) -> Policy:
    """The policy of ``member`` that a run or sweep directory keeps (its latest checkpoint's
    best-evaluated actors, or latest actors when policy selection is off). For an ensemble
    (``ensemble_size`` K > 1): ``sub_policy`` fixes the sub-policy every agent plays, else
    one is drawn per team at every `Policy.reset` (from ``seed``).

    Raises `maddpg_jax.errors.UsageError` (one line) for a directory without a run
    or checkpoint, a member out of range, or a sub-policy out of range.
    """
    from maddpg_jax.errors import UsageError
    from maddpg_jax.evaluation import load_run, read_run_for
    from maddpg_jax.training import kept_actor

    config, members = read_run_for(Path(run_dir))
    if not 0 <= member < len(members):
        raise UsageError(f"member: must be in [0, {len(members) - 1}], got {member}")
    if sub_policy is not None and not 0 <= sub_policy < config.ensemble_size:
        raise UsageError(
            f"sub_policy: must be in [0, {config.ensemble_size - 1}] (the run's ensemble_size), got {sub_policy}"
        )
    trainer, state = load_run(Path(run_dir), config, members)
    actor = jax.tree.map(lambda x: x[member], jax.device_get(kept_actor(config, state)))
    return Policy(trainer, actor, sub_policy, seed)
