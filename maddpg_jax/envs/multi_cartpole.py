"""MultiCartPole-v0: A carts on parallel tracks joined by springs, one agent per cart.

Physics are gymnasium's CartPole-v1 (``"euler"`` kinematics, same constants); the carts
are coupled by a chain of springs of stiffness ``k``: the force on cart ``i`` is

    F_i = u_i + k * (x_{i-1} - x_i) + k * (x_{i+1} - x_i)      (missing neighbour -> 0)

With ``k = 0`` and discrete actions every cart is exactly CartPole-v1. The team shares one
episode: any cart leaving the track or any pole falling terminates every agent.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import struct

from maddpg_jax.envs.base import ACTION_TYPES, Environment
from maddpg_jax.envs.spaces import Box

OBS_MODES = ("local", "global")


@struct.dataclass
class EnvParams:
    """Physical constants and episode settings; a pytree, so it can be traced and vmapped.

    Units are SI (m, kg, s, N, rad), as in gymnasium's CartPole-v1.
    """

    coupling: float = 1.0  # spring stiffness k between neighbouring carts [N/m]
    max_steps: int = 500  # truncation horizon [steps]
    gravity: float = 9.8
    masscart: float = 1.0
    masspole: float = 0.1
    length: float = 0.5  # half the pole's length [m]
    force_mag: float = 10.0  # |u| for a full push [N]
    tau: float = 0.02  # integration time step [s]
    theta_threshold: float = 12 * 2 * math.pi / 360  # pole limit [rad]
    x_threshold: float = 2.4  # track limit [m]
    reset_bound: float = 0.05  # initial state ~ U(-bound, bound) per value


@struct.dataclass
class EnvState:
    """One env's state. Four separate [A] arrays rather than one [A, 4]: under ``vmap``
    each becomes a contiguous [E, A] block, which the CPU vectorises (1.4x faster)."""

    x: jax.Array  # [A] float32 cart position [m]
    x_dot: jax.Array  # [A] float32 cart velocity [m/s]
    theta: jax.Array  # [A] float32 pole angle [rad]
    theta_dot: jax.Array  # [A] float32 pole angular velocity [rad/s]
    time: jax.Array  # [] int32 steps taken in the current episode

    @property
    def carts(self) -> jax.Array:
        """[A, 4]: x, x_dot, theta, theta_dot per cart (gymnasium's state order)."""
        return jnp.stack([self.x, self.x_dot, self.theta, self.theta_dot], axis=-1)

    @classmethod
    def from_carts(cls, carts: jax.Array, time) -> EnvState:
        carts = jnp.asarray(carts, jnp.float32)
        return cls(carts[..., 0], carts[..., 1], carts[..., 2], carts[..., 3], jnp.asarray(time, jnp.int32))


def sincos(t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(sin t, cos t) in float32, to ~1e-7 absolute for any finite t.

    Why not ``jnp.sin``/``jnp.cos``: on XLA's CPU backend the pair is 0.23 ms of a 0.30 ms
    physics step at 32,768 carts. Reduce t to [-pi, pi], fold into [-pi/2, pi/2] (sin is
    symmetric about pi/2, cos flips sign), then Taylor polynomials: the truncation error is
    below (pi/2)^13/13! < 6e-8.
    """
    t = t - (2 * math.pi) * jnp.round(t * (1 / (2 * math.pi)))
    hi = t > math.pi / 2
    lo = t < -math.pi / 2
    r = jnp.where(hi, math.pi - t, jnp.where(lo, -math.pi - t, t))
    sign = jnp.where(hi | lo, -1.0, 1.0).astype(t.dtype)
    r2 = r * r
    s = r * (1 + r2 * (-1 / 6 + r2 * (1 / 120 + r2 * (-1 / 5040 + r2 * (1 / 362880 + r2 * (-1 / 39916800))))))
    c = 1 + r2 * (
        -1 / 2 + r2 * (1 / 24 + r2 * (-1 / 720 + r2 * (1 / 40320 + r2 * (-1 / 3628800 + r2 * (1 / 479001600)))))
    )
    return s, sign * c


@dataclasses.dataclass(frozen=True)
class MultiCartPole(Environment):
    """Static description of the environment (hashable, safe to close over in jit).

    Args:
        num_agents: number of carts / agents ``A`` (>= 1).
        action_type: ``"continuous"`` (a_i in [-1, 1], u_i = 10 a_i) or ``"discrete"``
            ({0, 1} -> u_i = -10 / +10 N, as CartPole-v1).
        obs_mode: ``"local"`` (agent i sees its own 4 values) or ``"global"`` (every agent
            sees all ``4 A`` values, cart 0 first).
    """

    num_agents: int = 2
    action_type: str = "continuous"
    obs_mode: str = "local"

    def __post_init__(self):
        if not isinstance(self.num_agents, int) or isinstance(self.num_agents, bool) or self.num_agents < 1:
            raise ValueError(f"num_agents must be an integer >= 1, got {self.num_agents!r}")
        if self.action_type not in ACTION_TYPES:
            raise ValueError(f"action_type must be one of {ACTION_TYPES}, got {self.action_type!r}")
        if self.obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {self.obs_mode!r}")

    name = "MultiCartPole-v0"

    @property
    def agents(self) -> tuple[str, ...]:
        return tuple(f"cart_{i}" for i in range(self.num_agents))

    @property
    def obs_sizes(self) -> tuple[int, ...]:
        return (4 if self.obs_mode == "local" else 4 * self.num_agents,) * self.num_agents

    @property
    def act_sizes(self) -> tuple[int, ...]:
        """1 continuous dimension, or 2 discrete choices, per cart."""
        return (1 if self.action_type == "continuous" else 2,) * self.num_agents

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    @property
    def obs_scale(self) -> tuple[float, ...]:
        """Typical magnitude of each observation entry (track limit, pole limit, and the
        speeds a balancing cart reaches), for learners that want inputs near unit scale."""
        return (2.4, 2.0, 0.21, 2.0) * (self.obs_dim // 4)

    def observation_space(self, params: EnvParams) -> Box:
        one = jnp.array([2 * params.x_threshold, jnp.inf, 2 * params.theta_threshold, jnp.inf], jnp.float32)
        high = jnp.tile(one, self.obs_dim // 4)
        high = jnp.broadcast_to(high, (self.num_agents, self.obs_dim))
        return Box(-high, high, (self.num_agents, self.obs_dim), jnp.float32)

    def agent_observation_space(self, i: int, params: EnvParams | None = None) -> Box:
        params = params if params is not None else self.default_params
        space = self.observation_space(params)
        return Box(space.low[i], space.high[i], (self.obs_dim,), jnp.float32)

    # -- the contract -----------------------------------------------------------------------

    @property
    def reset_noise_shape(self) -> tuple[int, ...]:
        """Shape of the uniform [0, 1) draw that fixes one initial state: ``[A, 4]``.
        ``VecEnv`` draws it for all instances at once (see `envs.fast_random`)."""
        return (self.num_agents, 4)

    def reset_from_noise(self, noise: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """The initial state for uniform [0, 1) ``noise [A, 4]``: each value uniform in
        +-reset_bound. Returns ``(obs, state)``."""
        state = EnvState.from_carts((2 * noise - 1) * params.reset_bound, 0)
        return self._obs(state), state

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        return self.reset_from_noise(jax.random.uniform(key, self.reset_noise_shape), params)

    def step_env(self, key: jax.Array, state: EnvState, actions: jax.Array, params: EnvParams):
        """One Euler step of every cart (the key is unused: the physics is deterministic).

        ``actions``: ``float32 [A, 1]`` in [-1, 1] (clipped) or ``int32 [A]`` in {0, 1}.
        Reward 1 per agent per step; ``terminated`` when any cart or pole leaves its limit,
        ``truncated`` at ``params.max_steps``, the same for every agent.
        """
        after, terminated, truncated = self._physics(state, actions, params)
        a = self.num_agents
        return (
            self._obs(after),
            after,
            jnp.ones((a,), jnp.float32),
            jnp.broadcast_to(terminated, (a,)),
            jnp.broadcast_to(truncated, (a,)),
            {},
        )

    # -- internals ------------------------------------------------------------------------

    def _force(self, actions: jax.Array, params: EnvParams) -> jax.Array:
        """Agents' pushes u [A] in N; checks the action shape at trace time."""
        self.check_actions(actions)
        if self.action_type == "continuous":
            return params.force_mag * jnp.clip(actions[:, 0].astype(jnp.float32), -1.0, 1.0)
        return jnp.where(actions == 1, params.force_mag, -params.force_mag).astype(jnp.float32)

    def _physics(self, state: EnvState, actions: jax.Array, params: EnvParams):
        """One Euler step of every cart; returns (state after, terminated, truncated)."""
        x, x_dot, theta, theta_dot = state.x, state.x_dot, state.theta, state.theta_dot
        force = self._force(actions, params)
        # Chain of springs without a loop: pad each side with the cart itself so a missing
        # neighbour contributes k * (x_i - x_i) = 0.
        left = jnp.concatenate([x[:1], x[:-1]])
        right = jnp.concatenate([x[1:], x[-1:]])
        force = force + params.coupling * (left - x) + params.coupling * (right - x)

        # gymnasium CartPole-v1, term by term.
        total_mass = params.masspole + params.masscart
        polemass_length = params.masspole * params.length
        sintheta, costheta = sincos(theta)
        temp = (force + polemass_length * theta_dot**2 * sintheta) / total_mass
        thetaacc = (params.gravity * sintheta - costheta * temp) / (
            params.length * (4.0 / 3.0 - params.masspole * costheta**2 / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / total_mass
        x = x + params.tau * x_dot
        x_dot = x_dot + params.tau * xacc
        theta = theta + params.tau * theta_dot
        theta_dot = theta_dot + params.tau * thetaacc

        time = state.time + 1
        out = (jnp.abs(x) > params.x_threshold) | (jnp.abs(theta) > params.theta_threshold)
        terminated = jnp.any(out)
        truncated = time >= params.max_steps  # as gymnasium's TimeLimit, even if terminated
        return EnvState(x, x_dot, theta, theta_dot, time), terminated, truncated

    def _obs(self, state: EnvState) -> jax.Array:
        """[A, obs_dim] float32."""
        carts = state.carts
        if self.obs_mode == "local":
            return carts
        return jnp.broadcast_to(carts.reshape(-1), (self.num_agents, 4 * self.num_agents))
