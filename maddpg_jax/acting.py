"""Acting: every agent's action from its own observation, with and without exploration.

Pure functions of (spec, networks, parameters, inputs). Shapes: ``E`` envs (or any batch),
``A`` agents, ``O`` obs_dim, ``D`` act_dim (the widest agent's action size).

What the critic sees ("critic actions", ``[..., A, D]``) is the tanh'd action for
continuous envs and a one-hot vector for discrete ones. Where agents' action sizes differ,
the padding is masked: a continuous action's padded entries are 0, a discrete agent never
picks a padded choice; so padding never reaches the env or a critic as a real action.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from maddpg_jax.config import HParams, parse_critic_mode
from maddpg_jax.networks import Networks

MASKED_LOGIT = -1e9  # a padded discrete choice: never the argmax, ~0 after softmax


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """Static facts about the agents that acting and learning need (hashable)."""

    num_agents: int
    obs_dim: int
    act_dim: int
    act_sizes: tuple[int, ...]
    discrete: bool
    teams: tuple[tuple[str, tuple[int, ...]], ...]  # (team name, agent indices), in order
    action_shape: tuple[int, ...]  # the env's actions array, one env
    # Discrete only: the soft Gumbel-softmax sample is what acts, trains and reaches the env
    # (Config.gumbel_mode "soft", the MADDPG paper's code); the env takes probability vectors.
    soft: bool = False
    # Config.ensemble_size: K sub-policies per agent, their parameters on a second axis
    # ([A, K, ...]); acting and learning then take a sub-policy index per row and agent.
    ensemble_size: int = 1

    @classmethod
    def from_env(cls, env, gumbel_mode: str = "hard", ensemble_size: int = 1) -> AgentSpec:
        """The spec of ``env``; ``gumbel_mode`` "soft" (discrete envs) needs an env whose
        ``soft_actions`` is true, and raises ValueError naming the env otherwise."""
        discrete = env.action_type == "discrete"
        soft = discrete and gumbel_mode == "soft"
        if soft and not getattr(env, "soft_actions", False):
            raise ValueError(
                f"gumbel_mode 'soft' hands the env probability vectors, and {getattr(env, 'name', env)} takes "
                f"choices only (the paper:* scenarios take both)"
            )
        return cls(
            env.num_agents,
            env.obs_dim,
            env.act_dim,
            tuple(env.act_sizes),
            discrete,
            tuple((k, tuple(v)) for k, v in env.teams.items()),
            tuple(env.action_shape),
            soft,
            ensemble_size,
        )

    def critic_sees(self, critic_mode: str) -> np.ndarray:
        """``float32 [A, A]``: row i marks the agents whose observations and actions agent
        i's critic sees. ``critic_mode``: ``joint`` (MADDPG's centralised critic: all),
        ``local`` (independent DDPG: only its own), or per team ``team=mode,...`` (teams
        not named are joint). Raises ValueError naming an unknown team or mode."""
        modes = parse_critic_mode(critic_mode)
        if isinstance(modes, str):
            modes = {name: modes for name in self.team_names}
        unknown = sorted(set(modes) - set(self.team_names))
        if unknown:
            raise ValueError(f"no team {unknown[0]!r} in this env; its teams are {', '.join(self.team_names)}")
        sees = np.ones((self.num_agents, self.num_agents), np.float32)
        for name, idx in self.teams:
            if modes.get(name, "joint") == "local":
                for i in idx:
                    sees[i] = np.arange(self.num_agents) == i
        return sees

    @property
    def padded(self) -> bool:
        """Whether some agent's action is shorter than ``act_dim`` (then masks apply)."""
        return min(self.act_sizes) < self.act_dim

    @property
    def action_mask(self) -> np.ndarray:
        """``bool [A, D]``: which entries of each agent's action are real."""
        return np.arange(self.act_dim)[None, :] < np.asarray(self.act_sizes)[:, None]

    @property
    def team_of(self) -> np.ndarray:
        """``int32 [A]``: each agent's team index."""
        out = np.zeros(self.num_agents, np.int32)
        for t, (_, idx) in enumerate(self.teams):
            out[list(idx)] = t
        return out

    @property
    def team_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.teams)

    @property
    def team_weights(self) -> np.ndarray:
        """``float32 [T, A]``: 1/|team| for the team's agents, so ``weights @ r`` is each
        team's mean."""
        w = np.zeros((len(self.teams), self.num_agents), np.float32)
        for t, (_, idx) in enumerate(self.teams):
            w[t, list(idx)] = 1.0 / len(idx)
        return w


def policy_outputs(networks: Networks, actor_params, obs: jax.Array, index: jax.Array | None = None) -> jax.Array:
    """Every agent's raw actor output: ``obs [B, A, O] -> [B, A, D]`` (vmapped over agents).

    With an ensemble (leaves ``[A, K, ...]``) ``index [B, A]`` int32 names each row's and
    agent's sub-policy: all K are applied (K times the actors' compute) and each row keeps its
    own, so a loss on the result has gradients for that sub-policy only."""
    per_agent = jax.vmap(networks.actor_apply, in_axes=(0, 1), out_axes=1)
    if index is None:
        return per_agent(actor_params, obs)
    every = jax.vmap(per_agent, in_axes=(1, None))(actor_params, obs)  # [K, B, A, D]
    return jnp.take_along_axis(every, index[None, ..., None], axis=0)[0]


def mask_outputs(spec: AgentSpec, out: jax.Array) -> jax.Array:
    """Padded entries of raw outputs ``[..., A, D]``: logits -> MASKED_LOGIT, else -> 0."""
    if not spec.padded:
        return out
    return jnp.where(spec.action_mask, out, MASKED_LOGIT if spec.discrete else 0.0)


def policy_actions(spec: AgentSpec, networks: Networks, actor_params, obs: jax.Array, index=None) -> jax.Array:
    """Deterministic actions ``[B, A, D]``: tanh'd (continuous) or masked logits (discrete)
    (``index``: each row's sub-policies of an ensemble, see `policy_outputs`)."""
    out = mask_outputs(spec, policy_outputs(networks, actor_params, obs, index))
    return out if spec.discrete else jnp.tanh(out)


def soft_sample(logits: jax.Array, key: jax.Array, temperature, noise_scale=1.0) -> jax.Array:
    """The Gumbel-softmax sample ``softmax((logits + noise_scale * g) / temperature)``, ``g``
    Gumbel noise: what the MADDPG paper's code acts with, trains its actor through and takes
    as target actions (its ``SoftCategoricalPd.sample``: temperature 1, noise scale 1; an
    exploration schedule scales the noise). ``[..., D] -> [..., D]``."""
    return jax.nn.softmax((logits + noise_scale * jax.random.gumbel(key, logits.shape)) / temperature, axis=-1)


def explore(spec: AgentSpec, networks: Networks, actor_params, obs, key, hp: HParams, scale=1.0, index=None):
    """Critic actions ``[E, A, D]`` with exploration: Gaussian noise of std
    ``scale * hp.noise_std`` clipped to [-1, 1] (continuous), or a categorical draw from
    softmax(logits / scale) as a one-hot vector (discrete: argmax(logits + scale * Gumbel
    noise); scale 0 is the greedy action), or with ``spec.soft`` the soft sample
    softmax((logits + scale * Gumbel noise) / gumbel_temperature). ``scale``: the noise
    schedule's factor, scalar. ``index [E, A]``: each env's sub-policies of an ensemble."""
    out = policy_actions(spec, networks, actor_params, obs, index)
    if spec.soft:
        return soft_sample(out, key, hp.gumbel_temperature, scale)
    if spec.discrete:
        g = jax.random.gumbel(key, out.shape)
        return jax.nn.one_hot(jnp.argmax(out + scale * g, -1), spec.act_dim, dtype=jnp.float32)
    noise = (scale * hp.noise_std) * jax.random.normal(key, out.shape)
    return mask_outputs(spec, jnp.clip(out + noise, -1.0, 1.0))


def draw_sub_policies(spec: AgentSpec, key: jax.Array, num_rows: int) -> jax.Array:
    """``int32 [N, A]``: a sub-policy per row (env) and team, uniform over the ensemble's K,
    the team's agents sharing it (Lowe et al. 2017, Section 4.3: one per episode)."""
    per_team = jax.random.randint(key, (num_rows, len(spec.teams)), 0, spec.ensemble_size)
    return per_team[:, spec.team_of]


def redraw_sub_policies(spec: AgentSpec, sub_policy, key: jax.Array, ended: jax.Array):
    """An ensemble's sub-policies ``[E, A]`` after a step: drawn again for every env whose
    episode ended (``ended [E]`` bool); None without an ensemble."""
    if sub_policy is None:
        return None
    return jnp.where(ended[:, None], draw_sub_policies(spec, key, sub_policy.shape[0]), sub_policy)


def random_actions(spec: AgentSpec, key, num_envs: int) -> jax.Array:
    """Uniformly random critic actions ``[E, A, D]`` (the warm-up's)."""
    a, d = spec.num_agents, spec.act_dim
    if spec.discrete:
        high = jnp.asarray(spec.act_sizes, jnp.int32) if spec.padded else d
        return jax.nn.one_hot(jax.random.randint(key, (num_envs, a), 0, high), d, dtype=jnp.float32)
    return mask_outputs(spec, jax.random.uniform(key, (num_envs, a, d), jnp.float32, -1.0, 1.0))


def env_actions(spec: AgentSpec, critic_actions: jax.Array) -> jax.Array:
    """What the env takes from what the critic sees: ``[..., A, D]`` -> the env's actions
    (``int32 [..., A]`` for discrete; with ``spec.soft`` the probability vectors themselves)."""
    if spec.discrete and not spec.soft:
        return jnp.argmax(critic_actions, -1).astype(jnp.int32)
    return critic_actions


def greedy_env_actions(spec: AgentSpec, networks: Networks, actor_params, obs: jax.Array, index=None) -> jax.Array:
    """The env's actions without exploration, for ``obs [..., A, O]`` (any leading axes):
    for discrete actions (soft or not) the most likely choice. An ensemble's actors take
    ``index`` (int32 ``[..., A]`` or ``[A]``, each agent's sub-policy; without one, 0)."""
    lead = obs.shape[:-2]
    flat = obs.reshape((-1,) + obs.shape[-2:])
    if spec.ensemble_size > 1:
        index = jnp.zeros((spec.num_agents,), jnp.int32) if index is None else jnp.asarray(index, jnp.int32)
        index = jnp.broadcast_to(index, lead + (spec.num_agents,)).reshape(-1, spec.num_agents)
    out = policy_actions(spec, networks, actor_params, flat, index)
    out = jnp.argmax(out, -1).astype(jnp.int32) if spec.discrete else out
    return out.reshape(lead + spec.action_shape)
