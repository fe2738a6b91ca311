"""The MADDPG paper's particle environments as its code ran them, in pure JAX.

Lowe et al. 2017 trained on openai/multiagent-particle-envs (MPE, commit 83ba4d1, with the
2018 fix that shares rewards in cooperative scenarios) through openai/maddpg. JaxMARL's
port (``jaxmarl:MPE_*``) differs from that code in ways that move the paper's metrics; the
scenarios here follow the original and are registered as ``paper:NAME``:

==================  =========================================  ===========================
                    the paper's code (``paper:*``)             JaxMARL 0.2.0 (``jaxmarl:*``)
==================  =========================================  ===========================
episode             25 steps                                   26 steps
integration         damping, force, speed clamp, then          position first, with the
                    position with the new velocity             old velocity (step 1 never
                                                               moves anything)
simple_spread       every agent gets the sum of all agents'    local ratio 0.5, collisions
                    rewards; an agent's collisions count       exclude the agent itself
                    itself (the original ``is_collision``)
simple_adversary    adversary reward ``-d^2``                  ``-d``
simple_tag          obstacles reset in U(-0.9, 0.9)            U(-1, 1)
simple_crypto       goal and key colours are one-hot (1)       scaled by 255 (rewards by
                                                               about 255^2)
speaker_listener    both agents get ``-2 d^2`` (shared sum)    ``-d^2`` each
==================  =========================================  ===========================

Actions, per agent, as ``env.step`` takes them:

- ``discrete``: ``int32 [A]``, a choice in ``[0, act_sizes[i])``: for an agent that moves
  [no-op, +x, -x, +y, -y] (the original's ``u = (a[1] - a[2], a[3] - a[4])``), for one that
  speaks the symbol it sends (``dim_c`` choices). A discrete env here also takes
  ``float32 [A, act_dim]`` rows that are probability vectors (``soft_actions``): the
  paper's code hands the env its Gumbel-softmax sample, and the force is
  ``(a[1] - a[2], a[3] - a[4])`` of that vector, the utterance the vector itself. A choice
  is its one-hot vector.
- ``continuous``: ``float32 [A, act_dim]`` in [-1, 1]: an agent that moves takes a 2-D
  force (the original's continuous interface, ``Box(-1, 1, (2,))``), one that speaks a
  ``dim_c`` utterance mapped onto [0, 1].

Forces are multiplied by the agent's acceleration (5.0 unless the scenario sets one).
Every agent of these scenarios either moves or speaks, never both.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from maddpg_jax.envs.base import Environment
from maddpg_jax.envs.registry import EpisodeMetric

# The original core.World's constants.
DT, DAMPING, CONTACT_FORCE, CONTACT_MARGIN, DEFAULT_ACCEL = 0.1, 0.25, 1e2, 1e-3, 5.0
MOVE_CHOICES = 5  # [no-op, +x, -x, +y, -y] in the original's labelling of the force


@struct.dataclass
class MPEState:
    """One env's state. Entities are the agents (in ``env.agents`` order), then the landmarks."""

    p_pos: jax.Array  # [N, 2] positions
    p_vel: jax.Array  # [N, 2] velocities
    c: jax.Array  # [A, dim_c] each agent's utterance after the last step (zeros if silent)
    goal: jax.Array  # [] int32 index of the goal landmark (0 where a scenario has none)
    key: jax.Array  # [] int32 simple_crypto: index of the landmark colour that is the key
    step: jax.Array  # [] int32 steps taken in this episode


@struct.dataclass
class MPEParams:
    max_steps: int = 25  # episode length (the paper's code: --max-episode-len 25)


@dataclasses.dataclass(frozen=True, eq=False)
class Scenario:
    """What one scenario fixes: its entities' properties (agents first, then landmarks) and
    its observation and reward functions, each of the whole state at once."""

    name: str
    agents: tuple[str, ...]
    teams: dict[str, tuple[int, ...]] | None  # None: one cooperative team
    obs_sizes: tuple[int, ...]
    size: tuple[float, ...]  # [N] radii
    movable: tuple[bool, ...]  # [N]
    collide: tuple[bool, ...]  # [N]
    silent: tuple[bool, ...]  # [A]
    dim_c: int
    observe: Callable  # (scenario, state) -> tuple of A observation vectors
    reward: Callable  # (scenario, state) -> [A]
    accel: tuple[float, ...] | None = None  # [A]; None: 5.0 for every agent
    max_speed: tuple[float, ...] | None = None  # [N]; None: no limit
    landmark_range: float = 1.0  # landmarks reset uniformly in [-x, x]^2
    num_goals: int = 0  # a goal landmark is drawn from the first num_goals (0: none)
    colours: tuple = ()  # [N, 3] RGB in [0, 1], for drawing
    collaborative: bool = False  # every agent gets the sum of all agents' rewards

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    @property
    def num_landmarks(self) -> int:
        return len(self.size) - self.num_agents


# -- physics: the original core.World.step, for all entities at once ---------------------------


def world_step(sc: Scenario, p_pos: jax.Array, p_vel: jax.Array, force_u: jax.Array):
    """One step of the original ``World``: agents' forces ``force_u [A, 2]`` (already times
    their acceleration), soft contact forces between colliding entities, then for each
    movable entity ``v = v (1 - damping) + F dt`` (mass 1), the speed clamp, and
    ``p = p + v dt`` with the new velocity. Returns ``(p_pos, p_vel)``, ``[N, 2]`` each."""
    n, a = p_pos.shape[0], sc.num_agents
    size = jnp.asarray(sc.size, jnp.float32)
    movable = jnp.asarray(sc.movable)[:, None]
    collide = np.asarray(sc.collide)
    pair = jnp.asarray(collide[:, None] & collide[None, :] & ~np.eye(n, dtype=bool))
    delta = p_pos[:, None, :] - p_pos[None, :, :]  # [N, N, 2]: entity i minus entity j
    dist = jnp.sqrt(jnp.sum(delta**2, axis=-1))
    penetration = jnp.logaddexp(0.0, -(dist - (size[:, None] + size[None, :])) / CONTACT_MARGIN) * CONTACT_MARGIN
    contact = CONTACT_FORCE * delta / jnp.where(pair, dist, 1.0)[..., None] * penetration[..., None]
    force = jnp.zeros((n, 2), jnp.float32).at[:a].set(force_u)
    force = force + jnp.where(pair[..., None], contact, 0.0).sum(axis=1)
    vel = p_vel * (1.0 - DAMPING) + force * DT
    if sc.max_speed is not None:
        limit = jnp.asarray(sc.max_speed, jnp.float32)[:, None]
        speed = jnp.sqrt(jnp.sum(vel**2, axis=-1, keepdims=True))
        vel = jnp.where(speed > limit, vel / jnp.maximum(speed, 1e-12) * limit, vel)
    vel = jnp.where(movable, vel, p_vel)
    return jnp.where(movable, p_pos + vel * DT, p_pos), vel


def collisions(p_pos: jax.Array, size, i: jax.Array) -> jax.Array:
    """``[N]`` bool: entities whose disc overlaps entity ``i``'s (``i`` itself included, as
    the original ``is_collision``, which never excludes an entity from itself)."""
    d = jnp.sqrt(jnp.sum((p_pos - p_pos[i]) ** 2, axis=-1))
    return d < jnp.asarray(size) + jnp.asarray(size)[i]


def _others(a: int) -> np.ndarray:
    """``[A, A-1]``: for each agent, the other agents in order (the original's
    ``for other in world.agents: if other is agent: continue``)."""
    return np.array([[j for j in range(a) if j != i] for i in range(a)], np.int32).reshape(a, max(a - 1, 0))


def _rel(state: MPEState, rows, i) -> jax.Array:
    """Positions of entities ``rows`` (indices) relative to entity ``i``, flattened."""
    return (state.p_pos[jnp.asarray(rows)] - state.p_pos[i]).ravel()


def _landmarks(sc: Scenario) -> np.ndarray:
    return np.arange(sc.num_agents, sc.num_agents + sc.num_landmarks)


# -- the six scenarios ---------------------------------------------------------------------------------

LISTENER_COLOURS = np.array([[0.65, 0.15, 0.15], [0.15, 0.65, 0.15], [0.15, 0.15, 0.65]], np.float32)


def _speaker_listener_obs(sc, s):
    speaker = jnp.asarray(LISTENER_COLOURS)[s.goal]  # the goal landmark's colour
    listener = jnp.concatenate([s.p_vel[1], _rel(s, _landmarks(sc), 1), s.c[0]])
    return speaker, listener


def listener_distance(s) -> jax.Array:
    """``[]``: the listener's distance to the goal landmark (speaker_listener)."""
    return jnp.sqrt(jnp.sum((s.p_pos[1] - s.p_pos[2 + s.goal]) ** 2))


def _speaker_listener_reward(sc, s):
    return jnp.full((2,), -(listener_distance(s) ** 2))


def _spread_obs(sc, s):
    a, others = sc.num_agents, jnp.asarray(_others(sc.num_agents))

    def one(i):
        return jnp.concatenate(
            [s.p_vel[i], s.p_pos[i], _rel(s, _landmarks(sc), i), _rel(s, others[i], i), s.c[others[i]].ravel()]
        )

    return tuple(jax.vmap(one)(jnp.arange(a)))


def landmark_distance(sc, s) -> jax.Array:
    """``[]``: the sum over landmarks of the nearest agent's distance (simple_spread)."""
    a = sc.num_agents
    d = jnp.sqrt(jnp.sum((s.p_pos[:a, None] - s.p_pos[None, a:]) ** 2, axis=-1))  # [A, L]
    return d.min(axis=0).sum()


def _spread_reward(sc, s):
    a = sc.num_agents
    own = jax.vmap(lambda i: collisions(s.p_pos[:a], sc.size[:a], i).sum())(jnp.arange(a))  # self included
    return -landmark_distance(sc, s) - own.astype(jnp.float32)


def _tag_roles(sc):
    predators = np.array(sc.teams["adversaries"])
    prey = np.array(sc.teams["agents"])
    return predators, prey


def _tag_obs(sc, s):
    """Predators see every prey's velocity, a prey the other prey's: lengths differ by role."""
    others = jnp.asarray(_others(sc.num_agents))
    predators, prey = _tag_roles(sc)
    other_prey = jnp.asarray(prey[_others(len(prey))])  # [Q, Q-1]

    def base(i):
        return jnp.concatenate([s.p_vel[i], s.p_pos[i], _rel(s, _landmarks(sc), i), _rel(s, others[i], i)])

    hunters = jax.vmap(lambda i: jnp.concatenate([base(i), s.p_vel[jnp.asarray(prey)].ravel()]))(jnp.asarray(predators))
    hunted = jax.vmap(lambda i, o: jnp.concatenate([base(i), s.p_vel[o].ravel()]))(jnp.asarray(prey), other_prey)
    return (*hunters, *hunted)  # predators come first in the agent order


def touching(sc, s) -> jax.Array:
    """``[P, Q]`` bool: predator p touches prey q (simple_tag; distance below the radii's sum)."""
    predators, prey = _tag_roles(sc)
    size = np.asarray(sc.size)
    d = jnp.sqrt(jnp.sum((s.p_pos[predators][:, None] - s.p_pos[prey][None]) ** 2, axis=-1))
    return d < (size[predators][:, None] + size[prey][None])


def _bound(x):
    """The original's penalty for leaving the screen, per coordinate's absolute value."""
    return jnp.where(x < 0.9, 0.0, jnp.where(x < 1.0, (x - 0.9) * 10.0, jnp.minimum(jnp.exp(2.0 * x - 2.0), 10.0)))


def _tag_reward(sc, s):
    predators, prey = _tag_roles(sc)
    touch = touching(sc, s).astype(jnp.float32)  # [P, Q]
    out = jnp.zeros((sc.num_agents,), jnp.float32)
    out = out.at[predators].set(10.0 * touch.sum())  # every predator: +10 per touching pair
    prey_reward = -10.0 * touch.sum(axis=0) - _bound(jnp.abs(s.p_pos[prey])).sum(axis=-1)
    return out.at[prey].set(prey_reward)


def _adversary_obs(sc, s):
    a, others = sc.num_agents, jnp.asarray(_others(sc.num_agents))
    goal = s.p_pos[a + s.goal]
    adversary = jnp.concatenate([_rel(s, _landmarks(sc), 0), _rel(s, others[0], 0)])
    # The good agents also see where the goal is.
    good = jax.vmap(lambda i: jnp.concatenate([goal - s.p_pos[i], _rel(s, _landmarks(sc), i), _rel(s, others[i], i)]))
    return (adversary, *good(jnp.arange(1, a)))


def goal_distances(sc, s) -> jax.Array:
    """``[A]``: each agent's distance to the goal landmark."""
    a = sc.num_agents
    return jnp.sqrt(jnp.sum((s.p_pos[:a] - s.p_pos[a + s.goal]) ** 2, axis=-1))


def _adversary_reward(sc, s):
    d = goal_distances(sc, s)
    good = d[0] - d[1:].min()  # the adversary's distance minus the nearest good agent's
    return jnp.concatenate([-(d[:1] ** 2), jnp.full((sc.num_agents - 1,), good)])


CRYPTO_EVE, CRYPTO_BOB, CRYPTO_ALICE = 0, 1, 2  # the original's agent order


def _crypto_obs(sc, s):
    eye = jnp.eye(sc.dim_c, dtype=jnp.float32)  # landmark colours: one-hot
    goal, key, alice = eye[s.goal], eye[s.key], s.c[CRYPTO_ALICE]
    return alice, jnp.concatenate([key, alice]), jnp.concatenate([goal, key])


def _crypto_reward(sc, s):
    goal = jnp.eye(sc.dim_c, dtype=jnp.float32)[s.goal]
    err = jnp.sum((s.c - goal) ** 2, axis=-1)  # [A]
    said = jnp.any(s.c != 0, axis=-1)  # a silent (all-zero) utterance is not scored
    eve = jnp.where(said[CRYPTO_EVE], err[CRYPTO_EVE], 0.0)
    good = jnp.where(said[CRYPTO_BOB], -err[CRYPTO_BOB], 0.0) + eve
    return jnp.stack([-eve, good, good])


PUSH_LANDMARK_COLOURS = np.array([[0.1, 0.9, 0.1], [0.1, 0.1, 0.9]], np.float32)


def _push_obs(sc, s):
    goal = s.p_pos[2 + s.goal]
    colour = jnp.full((3,), 0.25).at[1 + s.goal].add(0.5)  # the good agent's colour names its goal
    landmarks = _landmarks(sc)
    adversary = jnp.concatenate([s.p_vel[0], _rel(s, landmarks, 0), _rel(s, [1], 0)])
    agent = jnp.concatenate(
        [s.p_vel[1], goal - s.p_pos[1], colour, _rel(s, landmarks, 1), jnp.asarray(PUSH_LANDMARK_COLOURS).ravel()]
        + [_rel(s, [0], 1)]
    )
    return adversary, agent


def _push_reward(sc, s):
    d = goal_distances(sc, s)
    return jnp.stack([d[1] - d[0], -d[1]])


GREY, RED, BLUE, GREEN = (0.25, 0.25, 0.25), (0.85, 0.35, 0.35), (0.35, 0.35, 0.85), (0.35, 0.85, 0.35)
ADVERSARIES = "adversaries"


@functools.cache  # one object per N: an env built twice is the same static value
def spread_scenario(n: int) -> Scenario:
    """simple_spread with ``n`` agents and ``n`` landmarks (the original fixes 3; the paper's
    collision figure is for N = 2). Observation: velocity, position, every landmark and every
    other agent relative to it, the others' utterances (2 each): ``6 n`` entries."""
    return Scenario(
        name="simple_spread",
        agents=tuple(f"agent_{i}" for i in range(n)),
        teams=None,
        obs_sizes=(6 * n,) * n,
        size=(0.15,) * n + (0.05,) * n,
        movable=(True,) * n + (False,) * n,
        collide=(True,) * n + (False,) * n,
        silent=(True,) * n,
        dim_c=2,
        observe=_spread_obs,
        reward=_spread_reward,
        colours=(BLUE,) * n + (GREY,) * n,
        collaborative=True,
    )


SCENARIOS = {
    "simple_speaker_listener": Scenario(
        name="simple_speaker_listener",
        agents=("speaker_0", "listener_0"),
        teams=None,
        obs_sizes=(3, 11),
        size=(0.075, 0.075, 0.04, 0.04, 0.04),
        movable=(False, True, False, False, False),
        collide=(False,) * 5,
        silent=(False, True),
        dim_c=3,
        observe=_speaker_listener_obs,
        reward=_speaker_listener_reward,
        num_goals=3,
        colours=(GREY, GREY, *map(tuple, LISTENER_COLOURS)),
        collaborative=True,
    ),
    "simple_spread": spread_scenario(3),
    "simple_tag": Scenario(
        name="simple_tag",
        agents=("adversary_0", "adversary_1", "adversary_2", "agent_0"),
        teams={ADVERSARIES: (0, 1, 2), "agents": (3,)},
        obs_sizes=(16, 16, 16, 14),
        size=(0.075, 0.075, 0.075, 0.05, 0.2, 0.2),
        movable=(True,) * 4 + (False,) * 2,
        collide=(True,) * 6,
        silent=(True,) * 4,
        dim_c=2,
        observe=_tag_obs,
        reward=_tag_reward,
        accel=(3.0, 3.0, 3.0, 4.0),
        max_speed=(1.0, 1.0, 1.0, 1.3, np.inf, np.inf),
        landmark_range=0.9,
        colours=(RED,) * 3 + (GREEN,) + (GREY,) * 2,
    ),
    "simple_adversary": Scenario(
        name="simple_adversary",
        agents=("adversary_0", "agent_0", "agent_1"),
        teams={ADVERSARIES: (0,), "agents": (1, 2)},
        obs_sizes=(8, 10, 10),
        size=(0.15,) * 3 + (0.08,) * 2,
        movable=(True,) * 3 + (False,) * 2,
        collide=(False,) * 5,
        silent=(True,) * 3,
        dim_c=2,
        observe=_adversary_obs,
        reward=_adversary_reward,
        num_goals=2,
        colours=(RED, BLUE, BLUE, (0.15, 0.65, 0.15), (0.15, 0.15, 0.15)),
    ),
    "simple_crypto": Scenario(
        name="simple_crypto",
        agents=("eve_0", "bob_0", "alice_0"),
        teams={"eve": (0,), "alice_bob": (1, 2)},
        obs_sizes=(4, 8, 8),
        size=(0.05,) * 5,
        movable=(False,) * 5,
        collide=(False,) * 5,
        silent=(False,) * 3,
        dim_c=4,
        observe=_crypto_obs,
        reward=_crypto_reward,
        num_goals=2,
        colours=((0.75, 0.25, 0.25), GREY, GREY, (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    ),
    "simple_push": Scenario(
        name="simple_push",
        agents=("adversary_0", "agent_0"),
        teams={ADVERSARIES: (0,), "agents": (1,)},
        obs_sizes=(8, 19),
        size=(0.05,) * 4,
        movable=(True, True, False, False),
        collide=(True, True, False, False),
        silent=(True, True),
        dim_c=2,
        observe=_push_obs,
        reward=_push_reward,
        num_goals=2,
        colours=((0.75, 0.25, 0.25), GREY, *map(tuple, PUSH_LANDMARK_COLOURS)),
    ),
}


@dataclasses.dataclass(frozen=True)
class ParticleEnv(Environment):
    """One of `SCENARIOS` behind the project's contract (see the module docstring).

    Args:
        scenario: its `Scenario`.
        action_type: ``"discrete"`` (the paper's) or ``"continuous"``.
    """

    scenario: Scenario
    action_type: str = "discrete"

    def __post_init__(self):
        sc = self.scenario
        movers = sc.movable[: sc.num_agents]
        for i, (move, silent) in enumerate(zip(movers, sc.silent)):
            if move != silent:  # moving and speaking (or neither): no scenario here does that
                raise ValueError(f"{sc.name}: agent {sc.agents[i]} must either move or speak, not both or neither")

    @property
    def name(self) -> str:
        return "paper:" + self.scenario.name

    @property
    def agents(self) -> tuple[str, ...]:
        return self.scenario.agents

    @property
    def obs_sizes(self) -> tuple[int, ...]:
        return self.scenario.obs_sizes

    @property
    def act_sizes(self) -> tuple[int, ...]:
        sc, discrete = self.scenario, self.action_type == "discrete"
        move = MOVE_CHOICES if discrete else 2
        return tuple(move if m else sc.dim_c for m in sc.movable[: sc.num_agents])

    @property
    def soft_actions(self) -> bool:
        """A discrete env here also takes probability vectors (see the module docstring)."""
        return self.action_type == "discrete"

    @property
    def teams(self) -> dict[str, tuple[int, ...]]:
        return dict(self.scenario.teams) if self.scenario.teams else {"team": tuple(range(self.num_agents))}

    @property
    def default_params(self) -> MPEParams:
        return MPEParams()

    # drawing (envs.render.mpe_frame)
    @property
    def rad(self):
        return self.scenario.size

    @property
    def colour(self):
        return tuple(tuple(255.0 * x for x in rgb) for rgb in self.scenario.colours)

    @property
    def env(self):
        return self

    def check_actions(self, actions: jax.Array) -> None:
        if self.soft_actions and tuple(actions.shape) == (self.num_agents, self.act_dim):
            return  # probability vectors
        super().check_actions(actions)

    # -- the contract --------------------------------------------------------------------

    def forces_and_utterances(self, actions: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(force [A, 2], utterance [A, dim_c])`` of ``actions`` (as `step` takes them):
        forces already times each agent's acceleration, zeros for agents that do not move
        (forces) or do not speak (utterances)."""
        self.check_actions(actions)
        sc = self.scenario
        a = sc.num_agents
        if self.action_type == "continuous":
            vec = jnp.clip(actions, -1.0, 1.0)
            u, said = vec[:, :2], (vec[:, : sc.dim_c] + 1.0) / 2.0
        else:
            vec = actions if actions.ndim == 2 else jax.nn.one_hot(actions, self.act_dim, dtype=jnp.float32)
            vec = vec.astype(jnp.float32)
            u = jnp.zeros((a, 2), jnp.float32)
            if self.act_dim >= MOVE_CHOICES:
                u = jnp.stack([vec[:, 1] - vec[:, 2], vec[:, 3] - vec[:, 4]], axis=-1)
            said = vec[:, : sc.dim_c]
        accel = jnp.asarray(sc.accel if sc.accel is not None else (DEFAULT_ACCEL,) * a, jnp.float32)
        movable = jnp.asarray(sc.movable[:a])[:, None]
        silent = jnp.asarray(sc.silent)[:, None]
        return jnp.where(movable, u * accel[:, None], 0.0), jnp.where(silent, 0.0, said)

    def observe(self, state: MPEState) -> jax.Array:
        """``[A, obs_dim]``: every agent's observation, zero-padded."""
        rows = self.scenario.observe(self.scenario, state)
        return jnp.stack([jnp.pad(r.astype(jnp.float32), (0, self.obs_dim - r.shape[0])) for r in rows])

    def rewards(self, state: MPEState) -> jax.Array:
        """``[A]``: the scenario's rewards of ``state`` (summed over agents where cooperative)."""
        r = self.scenario.reward(self.scenario, state).astype(jnp.float32)
        return jnp.full_like(r, r.sum()) if self.scenario.collaborative else r

    def reset_env(self, key: jax.Array, params=None):
        sc = self.scenario
        k_agents, k_landmarks, k_goal, k_key = jax.random.split(key, 4)
        agents = jax.random.uniform(k_agents, (sc.num_agents, 2), jnp.float32, -1.0, 1.0)
        r = sc.landmark_range
        landmarks = jax.random.uniform(k_landmarks, (sc.num_landmarks, 2), jnp.float32, -r, r)
        pos = jnp.concatenate([agents, landmarks])
        goal = jax.random.randint(k_goal, (), 0, sc.num_goals) if sc.num_goals else jnp.zeros((), jnp.int32)
        state = MPEState(
            p_pos=pos,
            p_vel=jnp.zeros_like(pos),
            c=jnp.zeros((sc.num_agents, sc.dim_c), jnp.float32),
            goal=goal.astype(jnp.int32),
            key=jax.random.randint(k_key, (), 0, 2).astype(jnp.int32),
            step=jnp.zeros((), jnp.int32),
        )
        return self.observe(state), state

    def step_env(self, key: jax.Array, state: MPEState, actions: jax.Array, params=None):
        params = self.default_params if params is None else params
        force, said = self.forces_and_utterances(actions)
        p_pos, p_vel = world_step(self.scenario, state.p_pos, state.p_vel, force)
        after = state.replace(p_pos=p_pos, p_vel=p_vel, c=said, step=state.step + 1)
        a = self.num_agents
        truncated = jnp.broadcast_to(after.step >= params.max_steps, (a,))
        return self.observe(after), after, self.rewards(after), jnp.zeros((a,), bool), truncated, {}


# -- the paper's metrics ----------------------------------------------------------------------------
# The paper leaves two thresholds open; these are the choices, applied to every side alike.
REACH = 0.075 + 0.04  # speaker_listener: the listener's disc overlaps the goal landmark's
DECEIVE = 0.4  # simple_adversary: within 0.4 of the goal (google/maddpg-replication's threshold)


def _crypto_success(who: int):
    # The guess is the utterance's largest entry (an all-zero utterance guesses colour 0).
    return lambda env, s: (jnp.argmax(s.c[who]) == s.goal).astype(jnp.float32)


def _spread_pairs(env, s):
    a = env.num_agents
    d = jnp.sqrt(jnp.sum((s.p_pos[:a, None] - s.p_pos[None, :a]) ** 2, axis=-1))
    size = jnp.asarray(env.scenario.size[:a])
    return jnp.sum(jnp.triu(d < size[:, None] + size[None, :], k=1)).astype(jnp.float32)


def _occupied(env, s):
    a = env.num_agents
    d = jnp.sqrt(jnp.sum((s.p_pos[:a, None] - s.p_pos[None, a:]) ** 2, axis=-1))
    return jnp.sum(d.min(axis=0) < 0.1).astype(jnp.float32)


def _f32(x) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


# The original ``benchmark_data`` quantities the paper's tables report, reduced per episode.
PAPER_METRICS = {
    "simple_speaker_listener": (
        EpisodeMetric(
            "target_reached",
            lambda e, s: _f32(listener_distance(s) < REACH),
            "last",
            f"1 if the listener ends the episode within {REACH:.3f} of the goal landmark (discs overlap)",
        ),
        EpisodeMetric(
            "final_distance",
            lambda e, s: listener_distance(s),
            "last",
            "the listener's distance to the goal landmark at the episode's end",
        ),
    ),
    "simple_spread": (
        EpisodeMetric(
            "landmark_distance",
            lambda e, s: landmark_distance(e.scenario, s),
            "mean",
            "sum over landmarks of the nearest agent's distance, mean over the episode's steps",
        ),
        EpisodeMetric(
            "collisions", _spread_pairs, "sum", "pairs of agents in contact, summed over the episode's steps"
        ),
        EpisodeMetric(
            "occupied_landmarks", _occupied, "last", "landmarks with an agent within 0.1 at the episode's end"
        ),
    ),
    "simple_tag": (
        EpisodeMetric(
            "touches",
            lambda e, s: jnp.sum(touching(e.scenario, s)).astype(jnp.float32),
            "sum",
            "(predator, prey) pairs in contact, summed over the episode's steps",
        ),
    ),
    "simple_adversary": (
        EpisodeMetric(
            "agents_success",
            lambda e, s: _f32(goal_distances(e.scenario, s)[1:].min() < DECEIVE),
            "last",
            f"1 if a good agent ends the episode within {DECEIVE} of the goal",
        ),
        EpisodeMetric(
            "adversary_success",
            lambda e, s: _f32(goal_distances(e.scenario, s)[0] < DECEIVE),
            "last",
            f"1 if the adversary ends the episode within {DECEIVE} of the goal",
        ),
    ),
    "simple_crypto": (
        EpisodeMetric(
            "bob_success",
            _crypto_success(CRYPTO_BOB),
            "last",
            "1 if Bob's utterance at the episode's end names the goal colour (its largest entry)",
        ),
        EpisodeMetric(
            "eve_success",
            _crypto_success(CRYPTO_EVE),
            "last",
            "1 if Eve's utterance at the episode's end names the goal colour (a guess between the two: 0.5)",
        ),
    ),
    "simple_push": (
        EpisodeMetric(
            "agent_distance",
            lambda e, s: goal_distances(e.scenario, s)[1],
            "mean",
            "the good agent's distance to its goal, mean over the episode's steps",
        ),
        EpisodeMetric(
            "adversary_distance",
            lambda e, s: goal_distances(e.scenario, s)[0],
            "mean",
            "the adversary's distance to the good agent's goal, mean over the episode's steps",
        ),
    ),
}


def make_paper(scenario: str, action_type: str = "discrete", num_agents: int | None = None):
    """``(ParticleEnv, MPEParams)`` of the paper's ``scenario`` (``num_agents``: simple_spread's
    N agents and N landmarks; None: the scenario's own)."""
    if num_agents is not None and scenario != "simple_spread":
        raise ValueError(f"num_agents: only simple_spread takes it, not {scenario}")
    sc = SCENARIOS[scenario] if num_agents is None else spread_scenario(num_agents)
    env = ParticleEnv(sc, action_type)
    return env, env.default_params


def _at_least_two(n: int) -> str | None:
    return None if n >= 2 else "must be at least 2 (each agent observes the others)"


def _register():
    from maddpg_jax.envs.base import ACTION_TYPES
    from maddpg_jax.envs.jaxmarl_adapter import MPE_DEFAULTS, SCENARIO_DEFAULTS, _mpe_frame
    from maddpg_jax.envs.registry import EnvArg, register

    action = EnvArg(
        "action_type",
        "discrete",
        str,
        "discrete (the paper's; also takes probability vectors) or continuous actions",
        choices=ACTION_TYPES,
    )
    agents = EnvArg(
        "num_agents", 3, int, "agents, and as many landmarks (the paper's collision figure: 2)", check=_at_least_two
    )
    for scenario in SCENARIOS:
        spread = scenario == "simple_spread"
        register(
            "paper:" + scenario,
            lambda scenario=scenario, **args: make_paper(scenario, **args),  # every arg resolved, by name
            args=(action, agents) if spread else (action,),
            # The project's recommendations are those of JaxMARL's version of the scenario.
            defaults=SCENARIO_DEFAULTS.get(f"MPE_{scenario}_v3", MPE_DEFAULTS),
            renderer=_mpe_frame,
            description=f"the MADDPG paper's {scenario}, as its code (openai/multiagent-particle-envs) ran it",
            metrics=PAPER_METRICS[scenario],
        )


_register()
