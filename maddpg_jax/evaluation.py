"""Noise-free evaluation of a policy, and loading a saved one, for any registered env.

``evaluate_policy`` runs ``episodes`` envs for one episode each in one compiled program
(the env's own horizon from its registry facts); ``rollout_states`` collects one episode's
env states for the env's renderer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from maddpg_jax import acting, envs, rundir
from maddpg_jax import members as members_lib
from maddpg_jax.config import Config
from maddpg_jax.errors import UsageError
from maddpg_jax.training import episode_metrics, kept_actor, run_episodes


def episode_returns(trainer, actor_params, episodes: int, key: jax.Array, sub_policy=None) -> np.ndarray:
    """``[episodes, T]``: each team's return (mean over its agents of each agent's sum of
    rewards) of the first episode in each of ``episodes`` envs, greedy policy (no noise).

    ``actor_params``: one member's actors, leaves ``[A, ...]`` (an ensemble's ``[A, K, ...]``:
    a sub-policy per episode and team, or ``sub_policy`` for every agent).
    """
    return np.asarray(_episodes(trainer, actor_params, episodes, key, sub_policy).team_returns)


def _episodes(trainer, actor_params, episodes: int, key: jax.Array, sub_policy=None):
    """`maddpg_jax.training.run_episodes`, compiled (numbers of episodes are static)."""
    run = lambda params, k: run_episodes(trainer, params, k, episodes, sub_policy=sub_policy)
    return jax.jit(run)(actor_params, key)


def rollout_states(trainer, actor_params, key: jax.Array, sub_policy=None) -> list:
    """The env states of one greedy episode, first to last (for the env's renderer)."""
    env, params = trainer.env, trainer.env_params
    k_reset, k_run = jax.random.split(key)
    spec, index = trainer.spec, None
    if spec.ensemble_size > 1:
        index = acting.draw_sub_policies(spec, jax.random.fold_in(k_reset, 1), 1)[0]
        index = index if sub_policy is None else jnp.full_like(index, sub_policy)

    @jax.jit
    def run(k_reset, k_run):
        obs, state = env.reset(k_reset, params)

        def body(carry, k):
            state, obs, alive = carry
            actions = trainer.policy(actor_params, obs, index)
            obs, after, _, term, trunc, _ = env.step(k, state, actions, params)
            return (after, obs, alive & ~jnp.any(term | trunc)), (state, alive)

        return jax.lax.scan(body, (state, obs, jnp.bool_(True)), jax.random.split(k_run, env.horizon(params)))[1]

    states, alive = jax.device_get(run(k_reset, k_run))
    return [jax.tree.map(lambda x: x[t], states) for t in range(int(np.sum(alive)))]


def read_run_for(run_dir: Path) -> tuple[Config, list[dict]]:
    """``(config, members)`` of a run directory that holds a checkpoint; compiles nothing."""
    config, members = rundir.read_run_as(run_dir, "run_dir")
    if not rundir.has_checkpoint(run_dir):
        raise UsageError(f"run_dir: {rundir.no_checkpoint_reason(run_dir)}")
    return config, members


def load_run(run_dir: Path, config: Config, members: list[dict]):
    """``(trainer, state)`` of the latest checkpoint in ``run_dir`` (see `read_run_for`).
    A ``pbt`` run's checkpoints also hold the members' current hyperparameters beside the
    training state (`maddpg_jax.rundir.checkpoint_tree`); only the state is returned."""
    ckpt = rundir.Checkpoints(run_dir)
    trainer, runner, placed = members_lib.build(config, members)
    keys, hp = members_lib.place(runner, config, placed)
    pbt = rundir.is_pbt_run(run_dir)
    try:
        warn = lambda message: print(f"maddpg-jax: {run_dir}: {message}", file=sys.stderr, flush=True)
        like = rundir.checkpoint_tree(runner.abstract_init(keys, hp), hp, pbt)
        state, _, _ = ckpt.restore_newest(like, config.to_dict(), warn=warn)
        state = state["train"] if pbt else state
    except rundir.CheckpointError as e:
        raise UsageError(f"run_dir: {e} in {run_dir}; not loaded") from None
    finally:
        ckpt.close()
    return trainer, state


def evaluate(run_dir: Path, episodes: int, member: int, seed: int, gif: str | None, sub_policy=None) -> dict:
    """Noise-free returns of a saved run's policy over ``episodes`` episodes; writes
    ``eval.json`` into the run directory (and an animated GIF when ``gif``). An ensemble
    plays a sub-policy per episode and team, or ``sub_policy`` for every agent. Returns the
    summary written."""
    config, members = read_run_for(run_dir)
    entry = envs.entry(config.env)
    if gif and entry.renderer is None:
        raise UsageError(f"--gif: {config.env} has no renderer")
    if not 0 <= member < len(members):
        raise UsageError(f"--member: must be in [0, {len(members) - 1}], got {member}")
    if sub_policy is not None and not 0 <= sub_policy < config.ensemble_size:
        raise UsageError(
            f"--sub-policy: must be in [0, {config.ensemble_size - 1}] (the run's ensemble_size), got {sub_policy}"
        )
    trainer, state = load_run(run_dir, config, members)
    actor = jax.tree.map(lambda x: x[member], kept_actor(config, state))
    measured = jax.device_get(_episodes(trainer, actor, episodes, jax.random.key(seed), sub_policy))
    teams, returns = np.asarray(measured.team_returns), np.asarray(measured.returns)  # [N, T], [N]
    summary = {
        "episodes": episodes,
        "member": member,
        "seed": seed,
        **({"sub_policy": sub_policy} if sub_policy is not None else {}),
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "min_return": float(returns.min()),
        "max_return": float(returns.max()),
        "team_returns": {name: float(teams[:, t].mean()) for t, name in enumerate(trainer.spec.team_names)},
    }
    metrics = episode_metrics(trainer)
    if metrics:  # the env's episode metrics: mean over the episodes
        summary["metrics"] = {m.name: float(measured.metrics[:, k].mean()) for k, m in enumerate(metrics)}
    rundir.write_json(Path(run_dir) / rundir.EVAL, summary)
    if gif:
        from maddpg_jax.envs.render import write_gif

        states = rollout_states(trainer, actor, jax.random.key(seed + 1), sub_policy)
        write_gif([entry.renderer(s, trainer.env, trainer.env_params) for s in states[::2]], gif)
    return summary
