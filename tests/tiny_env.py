"""A tiny env of a test's own: one file, one registry call, no other module touched.

``Reach-v0``: each agent holds a point on a line and pushes it; reward -|x| per agent per
step, 12-step episodes, never terminal. Agent 1 also sees agent 0's point, so the two
observation sizes differ (1 and 2).
"""

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from maddpg_jax import envs


@struct.dataclass
class ReachParams:
    max_steps: int = 12
    speed: float = 0.3


@struct.dataclass
class ReachState:
    x: jax.Array  # [2]
    time: jax.Array  # []


@dataclasses.dataclass(frozen=True)
class Reach(envs.Environment):
    name = "tests.tiny_env:Reach-v0"
    agents = ("near", "far")
    obs_sizes = (1, 2)
    act_sizes = (1, 1)
    action_type = "continuous"
    default_params = ReachParams()

    def _obs(self, x):
        return jnp.stack([jnp.array([x[0], 0.0]), x])

    def reset_env(self, key, params):
        x = jax.random.uniform(key, (2,), minval=-1.0, maxval=1.0)
        return self._obs(x), ReachState(x, jnp.zeros((), jnp.int32))

    def step_env(self, key, state, actions, params):
        self.check_actions(actions)
        x = state.x + params.speed * jnp.clip(actions[:, 0], -1.0, 1.0)
        time = state.time + 1
        truncated = jnp.broadcast_to(time >= params.max_steps, (2,))
        return self._obs(x), ReachState(x, time), -jnp.abs(x), jnp.zeros((2,), bool), truncated, {}


# Episode metrics, one of each reduction: what the noise-free evaluation reports for this env.
METRICS = (
    envs.EpisodeMetric("gap", lambda env, s: jnp.abs(s.x[0] - s.x[1]), "mean", "mean distance between the points"),
    envs.EpisodeMetric("far_steps", lambda env, s: (jnp.abs(s.x[1]) > 0.5).astype(jnp.float32), "sum", "steps far"),
    envs.EpisodeMetric("final_near", lambda env, s: s.x[0], "last", "the near point at the end"),
)
envs.register("tests.tiny_env:Reach-v0", lambda: (Reach(), ReachParams()), defaults={"gamma": 0.9}, metrics=METRICS)
