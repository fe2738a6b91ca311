"""JaxMARL's MPE scenarios behind this project's contract, registered as ``jaxmarl:NAME``.

What the adapter changes:
- agents are stacked on axis 0 in the env's own fixed order (``env.agents``); observations
  of different lengths are zero-padded to the longest, actions of different sizes use the
  first ``act_sizes[i]`` entries of agent ``i``'s row (the rest is padding that never
  reaches the env);
- JaxMARL's ``step`` resets inside and returns only the reset observation; here the
  scenario's ``step_env`` is this env's ``step_env``, so the base class's auto-reset keeps
  the true last observation in ``info["final_observation"]``;
- MPE episodes end only by the time limit, so an episode end at ``max_steps`` is reported
  as ``truncated`` (the critic keeps bootstrapping) and ``terminated`` stays False;
- continuous actions come in as [-1, 1] per dimension (what a tanh actor emits) and are
  mapped linearly onto the scenario's Box bounds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from maddpg_jax.envs.base import ACTION_TYPES, Environment
from maddpg_jax.envs.registry import EnvArg, register


@struct.dataclass
class AdapterParams:
    max_steps: int = 25  # the wrapped env's horizon (informational: the env owns it)


@contextlib.contextmanager
def _quiet():
    """Silence file descriptors 1 and 2 (what is printed below Python's sys.stdout too)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def _import_jaxmarl():
    try:
        # JaxMARL prints a banner on import; a user's output should show only ours.
        with _quiet():
            import jaxmarl
    except ImportError:
        raise ValueError('JaxMARL environments need JaxMARL: pip install -e ".[jaxmarl]"') from None
    return jaxmarl


def to_box(action, low, high):
    """An action in [-1, 1] (clipped to it) mapped linearly onto the Box ``[low, high]``,
    elementwise: how the trainer's actions reach a JaxMARL env (and, in
    benchmarks/mpe2_check.py, the reference MPE)."""
    low, high = jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32)
    unit = (jnp.clip(action, -1.0, 1.0) + 1.0) / 2.0
    return low + unit * (high - low)


@dataclasses.dataclass(frozen=True, eq=False)
class JaxMARLEnv(Environment):
    """A JaxMARL MPE scenario as an `Environment`.

    Args:
        env: the JaxMARL env object.
        name: this project's name for it (``jaxmarl:MPE_...``).
        team_of: agent-name prefix -> team name (agents whose name starts with the prefix
            belong to the team); ``None``: one team.
    """

    env: Any
    name: str
    team_of: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self):
        spaces = [self.env.action_space(a) for a in self.env.agents]
        kinds = {type(s).__name__ for s in spaces}
        if len(kinds) != 1:
            raise ValueError(f"{self.name} mixes action space kinds {sorted(kinds)}; not supported")

    def __hash__(self):
        return hash((self.name, id(self.env)))

    # -- static facts --------------------------------------------------------------------

    @property
    def agents(self) -> tuple[str, ...]:
        return tuple(self.env.agents)

    @property
    def obs_sizes(self) -> tuple[int, ...]:
        return tuple(int(np.prod(self.env.observation_space(a).shape)) for a in self.agents)

    @property
    def action_type(self) -> str:
        return "discrete" if hasattr(self.env.action_space(self.agents[0]), "n") else "continuous"

    @property
    def act_sizes(self) -> tuple[int, ...]:
        spaces = [self.env.action_space(a) for a in self.agents]
        if self.action_type == "discrete":
            return tuple(int(s.n) for s in spaces)
        return tuple(int(np.prod(s.shape)) for s in spaces)

    @property
    def teams(self) -> dict[str, tuple[int, ...]]:
        if not self.team_of:
            return {"team": tuple(range(self.num_agents))}
        teams: dict[str, list[int]] = {}
        for i, a in enumerate(self.agents):
            team = next(t for prefix, t in self.team_of if a.startswith(prefix))
            teams.setdefault(team, []).append(i)
        return {t: tuple(v) for t, v in teams.items()}

    @property
    def default_params(self) -> AdapterParams:
        return AdapterParams(max_steps=int(getattr(self.env, "max_steps", 25)))

    def horizon(self, params=None) -> int:
        return int(getattr(self.env, "max_steps", 25)) + 1  # an episode ends on step max_steps + 1

    # -- conversions ---------------------------------------------------------------------

    def stack_obs(self, obs: dict) -> jax.Array:
        """A JaxMARL observation dict -> ``[A, obs_dim]``, zero-padded."""
        rows = []
        for a in self.agents:
            o = jnp.ravel(obs[a]).astype(jnp.float32)
            rows.append(jnp.pad(o, (0, self.obs_dim - o.shape[0])))
        return jnp.stack(rows)

    def env_actions(self, actions: jax.Array) -> dict:
        """``[A, act_dim]`` in [-1, 1] (or ``int32 [A]``) -> JaxMARL's action dict, each agent
        getting only its own ``act_sizes[i]`` entries, mapped onto its Box."""
        self.check_actions(actions)
        out = {}
        for i, (a, size) in enumerate(zip(self.agents, self.act_sizes)):
            if self.action_type == "discrete":
                out[a] = actions[i].astype(jnp.int32)
            else:
                space = self.env.action_space(a)
                out[a] = to_box(actions[i, :size], space.low, space.high)
        return out

    # -- the contract --------------------------------------------------------------------

    def reset_env(self, key: jax.Array, params=None):
        obs, state = self.env.reset(key)
        return self.stack_obs(obs), state

    def step_env(self, key: jax.Array, state, actions: jax.Array, params=None):
        obs, after, reward, dones, _ = self.env.step_env(key, state, self.env_actions(actions))
        done = jnp.asarray(dones["__all__"])
        max_steps = getattr(self.env, "max_steps", None)
        at_limit = (after.step >= max_steps) if max_steps is not None else jnp.zeros((), bool)
        a = self.num_agents
        rew = jnp.stack([jnp.asarray(reward[x], jnp.float32) for x in self.agents])
        return (
            self.stack_obs(obs),
            after,
            rew,
            jnp.broadcast_to(done & ~at_limit, (a,)),
            jnp.broadcast_to(done & at_limit, (a,)),
            {},
        )


# -- registration ---------------------------------------------------------------------------

# The MADDPG paper's settings (Lowe et al. 2017: gamma 0.95, lr 1e-2, tau 0.01, two 64-unit
# layers) with plain-MADDPG learning-rate handling, except where a sweep measured better: the
# actor's rate 1e-3 and one update round of batch 256 per step. simple_spread, 3 seeds x 200k
# env steps (AMD EPYC 2-core): final training means with actor lr 1e-2 were -37 to -79 (below
# random, -27: the actors collapse), with 1e-3 -20 to -24 (critic 1e-2: -20.3 to -21.1);
# 12 members took 147 s where the paper's 4 rounds of batch 1024 took 410 s for 3.
# A user's flag overrides any.
MPE_DEFAULTS = dict(
    gamma=0.95,
    actor_lr=1e-3,
    critic_lr=1e-2,
    batch_size=256,
    tau=0.01,
    num_envs=64,
    updates_per_step=1,
    total_env_steps=1_500_000,  # the paper's 60,000 episodes of 25 steps, as the paper table's defaults
    buffer_size=1_000_000,
    warmup_env_steps=10_240,
    action_penalty=0.0,
    lr_decay="none",
    n_step=1,  # the paper's one-step targets (the global default's 3 was chosen on CartPole)
)

# simple_spread: plain MADDPG as the paper ran it (one critic, no layer norm, squared TD
# error, gradient norm clipped at 0.5, the paper's 1e-3 penalty on the actor's pre-activations),
# one update round of batch 256 per 128 env steps, 2M env steps, both rates 3e-3. Kept policies,
# noise-free over 1,000 episodes, AMD EPYC (2 cores), ten seeds (100-109) in one program: the
# paper's rates (1e-2) gave -12.2 median, 4 of 10 >= -12 (worst -15.4; seeds 0-4: 4 of 5);
# 3e-3 gave -11.0, 8 of 10 (worst -12.4). At 300k steps, 5 seeds each (median): the
# stabilisers of the other scenarios -20.1 to -20.8, plain -18.1 to -19.2 and 25% cheaper;
# (128, 128) layers -23.1 and twice the cost. Discrete actions: a penalty on the logits (the
# paper's code regularises every policy output), 5 seeds x 2M, rates 1e-2, median (worst): 0
# -20.3 (-22.0), 1e-3 -14.1 (-14.6), 1e-2 -12.5 (-12.8), 5e-2 -13.3 (-15.1); with the penalty
# 1e-2 and rates 3e-3: -11.6 (4 of 5 >= -12) and on seeds 100-109 -11.2 (10 of 10). It acts on
# discrete actors only, as action_penalty acts on continuous ones only.
# benchmarks/results/mpe/trials/mpe_simple_spread_discrete.md, mpe_simple_spread_rates.md.
SCENARIO_DEFAULTS = {
    "MPE_simple_spread_v3": dict(
        MPE_DEFAULTS,
        actor_lr=3e-3,
        critic_lr=3e-3,
        action_penalty=1e-3,
        logit_penalty=1e-2,
        num_envs=128,
        twin_critics=False,
        target_noise=0.0,
        critic_layer_norm=False,
        huber_delta=0.0,
        grad_clip=0.5,
        total_env_steps=2_000_000,
    ),
}

# Physical deception and keep-away: 256 envs and one plain critic (no twin critics, target
# noise, layer norm or Huber loss) cost 0.3x the stabilised setting's time and kept its figures
# on seeds 0-4 (benchmarks/results/mpe/trials/paper_table_defaults_256envs_plain_3.md: good
# agents 1.0 against both adversaries, MADDPG adversary 0.638 against DDPG's 0.489, keep-away
# distances within 0.02) and deception's on seeds 1000-1007 (mpe/paper_table_heldout.md: 1.0,
# 0.548 against 0.487). Covert communication lost its code with them on seeds 1000-1007 (1 of
# 8 Alice-and-Bob pairs against 5 of 8; trials/paper_table_heldout_crypto_plain.md), the
# listener its reach and predator-prey its direction (paper_table_defaults_256envs_plain.md):
# those keep MPE_DEFAULTS: 64 envs and Config's stabilised critics.
PLAIN_256 = dict(
    MPE_DEFAULTS,
    num_envs=256,
    twin_critics=False,
    target_noise=0.0,
    critic_layer_norm=False,
    huber_delta=0.0,
)
for _name in ("MPE_simple_adversary_v3", "MPE_simple_push_v3"):
    SCENARIO_DEFAULTS[_name] = PLAIN_256

ADVERSARIES = (("leadadversary", "adversaries"), ("adversary", "adversaries"), ("agent", "agents"))
# name -> teams by agent-name prefix (None: cooperative, one team)
MPE_SCENARIOS = {
    "MPE_simple_v3": None,
    "MPE_simple_spread_v3": None,
    "MPE_simple_reference_v3": None,
    "MPE_simple_speaker_listener_v4": None,
    "MPE_simple_adversary_v3": ADVERSARIES,
    "MPE_simple_tag_v3": ADVERSARIES,
    "MPE_simple_push_v3": ADVERSARIES,
    "MPE_simple_crypto_v3": (("eve", "eve"), ("alice", "alice_bob"), ("bob", "alice_bob")),
    "MPE_simple_world_comm_v3": ADVERSARIES,
}


def make_mpe(scenario: str, action_type: str = "continuous"):
    """``(JaxMARLEnv, AdapterParams)`` for a JaxMARL MPE scenario."""
    jaxmarl = _import_jaxmarl()
    env = jaxmarl.make(scenario, action_type=action_type.capitalize())
    wrapped = JaxMARLEnv(env, "jaxmarl:" + scenario, MPE_SCENARIOS[scenario])
    return wrapped, wrapped.default_params


def _mpe_frame(state, env, params):
    from maddpg_jax.envs.render import mpe_frame  # matplotlib only when drawing

    return mpe_frame(state, env, params)


def _register_mpe():
    for scenario in MPE_SCENARIOS:
        register(
            "jaxmarl:" + scenario,
            lambda action_type, scenario=scenario: make_mpe(scenario, action_type),
            args=(
                EnvArg(
                    "action_type",
                    "continuous",
                    str,
                    "continuous (Box in [-1, 1]) or discrete actions",
                    choices=ACTION_TYPES,
                ),
            ),
            defaults=SCENARIO_DEFAULTS.get(scenario, MPE_DEFAULTS),
            renderer=_mpe_frame,
            description=f"JaxMARL's {scenario} (multi-agent particle environment)",
        )


_register_mpe()
