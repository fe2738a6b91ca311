"""Episode bookkeeping: running returns per env, and the last 100 finished episodes' returns.

Returns are per team: a team's return of an episode is the mean over its agents of each
agent's sum of rewards. ``mean_return`` is the mean over all agents (each team's return
weighted by its size), which for a cooperative env (one team) is the team's return.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from maddpg_jax.acting import AgentSpec

RETURN_WINDOW = 100  # returns are means over the last 100 finished episodes


@struct.dataclass
class EpisodeStats:
    running_return: jax.Array  # [E, T] return so far of each env's current episode, per team
    window: jax.Array  # [100, T] returns of the last finished episodes (a ring)
    window_pos: jax.Array  # [] int32 the ring's next slot
    episodes: jax.Array  # [] int32 episodes finished so far


def init_stats(spec: AgentSpec, num_envs: int) -> EpisodeStats:
    t = len(spec.teams)
    return EpisodeStats(
        running_return=jnp.zeros((num_envs, t), jnp.float32),
        window=jnp.zeros((RETURN_WINDOW, t), jnp.float32),
        window_pos=jnp.zeros((), jnp.int32),
        episodes=jnp.zeros((), jnp.int32),
    )


def team_rewards(spec: AgentSpec, reward: jax.Array) -> jax.Array:
    """``reward [E, A] -> [E, T]``: each team's mean reward."""
    if len(spec.teams) == 1:
        return reward.mean(-1, keepdims=True)
    return reward @ jnp.asarray(spec.team_weights).T


def record_episodes(spec: AgentSpec, stats: EpisodeStats, reward: jax.Array, done: jax.Array) -> EpisodeStats:
    """Add this step's rewards; push the returns of episodes that ended into the ring.

    ``reward [E, A]``, ``done [E]``. Only the last 100 finishers of a step are written, so
    no two share a slot; when several envs finish in the same step they enter in env order.
    """
    running = stats.running_return + team_rewards(spec, reward)
    rank = jnp.cumsum(done) - 1  # order among this step's finishers
    n_done = done.sum()
    keep = done & (rank >= n_done - RETURN_WINDOW)
    slot = jnp.where(keep, (stats.window_pos + rank) % RETURN_WINDOW, RETURN_WINDOW)
    window = stats.window.at[slot].set(running, mode="drop")
    return EpisodeStats(
        running_return=jnp.where(done[:, None], 0.0, running),
        window=window,
        window_pos=(stats.window_pos + n_done) % RETURN_WINDOW,
        episodes=stats.episodes + n_done.astype(jnp.int32),
    )


def window_returns(spec: AgentSpec, stats: EpisodeStats, psum=lambda x: x):
    """``(mean_return [], team_returns [T])`` over the finished episodes in the ring (at most
    the last 100; NaN before the first). ``psum`` pools the rings of data-parallel devices."""
    n = psum(jnp.minimum(stats.episodes, RETURN_WINDOW))
    total = psum(stats.window.sum(0))  # [T]
    teams = jnp.where(n > 0, total / jnp.maximum(n, 1), jnp.nan)
    sizes = jnp.asarray([len(idx) / spec.num_agents for _, idx in spec.teams], jnp.float32)
    mean = teams[0] if len(spec.teams) == 1 else (teams * sizes).sum()
    return mean, teams
