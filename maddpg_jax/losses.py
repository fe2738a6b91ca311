"""MADDPG losses and the update, written for one agent and vmapped over the agent axis.

Lowe et al. 2017, "Multi-Agent Actor-Critic for Mixed Cooperative-Competitive
Environments", with the optional MATD3 stabilisers of Ackermann et al. 2019 (twin critics,
target policy smoothing, delayed actor updates).

Shapes: ``B`` batch, ``A`` agents, ``O`` obs_dim, ``D`` act_dim, ``Q`` critics per agent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from maddpg_jax.acting import AgentSpec, mask_outputs, policy_actions, policy_outputs, soft_sample
from maddpg_jax.networks import Networks


class Transition(NamedTuple):
    obs: jax.Array  # [..., A, O]
    action: jax.Array  # [..., A, D] what the critic sees (one-hot for discrete)
    reward: jax.Array  # [..., A]
    next_obs: jax.Array  # [..., A, O] the true next observation (final one at episode end)
    terminated: jax.Array  # [..., A] float32 1.0 where the episode terminated
    # [..., A] float32 1.0 where the episode ended (terminated or truncated): stored only
    # for n-step targets, which must not run on into the next episode of the same env.
    ended: jax.Array | None = None
    # [..., A] int32: the sub-policy of each agent that acted (Config.ensemble_size > 1 only)
    index: jax.Array | None = None


def n_step_transition(window: Transition, valid: jax.Array, gamma, mix: bool = False) -> tuple[Transition, jax.Array]:
    """The n-step transition of each window of consecutive steps of one env.

    R = sum_k gamma^k r_k over the steps up to and including the first where the episode
    ended (or the last valid one), bootstrapped from that step's next observation:
    y = R + gamma^m (1 - terminated_m) Q'(next_obs_m), m = steps counted.

    With ``mix`` (static) it returns the 1-, 2-, ..., n-step transitions side by side on a
    new axis K = n after the batch (each cut short where the episode ended, as above), for a
    target that averages them: the k-step target for k = 1..n, a truncated lambda-return
    with equal weights.

    Args:
        window: leaves [B, n, ...] (``ended`` required); valid: [B, n] bool; gamma: scalar.
    Returns: (a Transition [B, ...] holding R, the first step's obs and action and step
        m's next_obs and terminated; discount [B] = gamma^m). With ``mix``, reward,
        next_obs and terminated are [B, K, ...] and discount [B, K].
    """
    n = valid.shape[1]
    ended = jnp.max(window.ended, axis=-1)  # [B, n] the env resets every agent together
    # Step k counts when every earlier step of the window stayed in the episode.
    stop = jnp.logical_or(ended > 0, ~valid).astype(jnp.float32)
    alive = jnp.cumprod(jnp.concatenate([jnp.ones_like(stop[:, :1]), 1.0 - stop[:, :-1]], axis=1), axis=1)
    alive = alive * valid
    powers = gamma ** jnp.arange(n, dtype=jnp.float32)  # [n]
    if mix:  # upto[k, j] = 1 where step j counts toward the (k + 1)-step return
        upto = jnp.tril(jnp.ones((n, n), jnp.float32))
        reward = jnp.einsum("bna,bn,n,kn->bka", window.reward, alive, powers, upto)  # [B, K, A]
        counted = jnp.einsum("bn,kn->bk", alive, upto)  # [B, K]
    else:  # K = 1, computed as the plain n-step return always was
        reward = jnp.einsum("bna,bn,n->ba", window.reward, alive, powers)[:, None]
        counted = alive.sum(axis=1)[:, None]
    last = jnp.maximum(counted.astype(jnp.int32) - 1, 0)  # [B, K] index of step m - 1
    pick = lambda x: jnp.take_along_axis(x, last.reshape(last.shape + (1,) * (x.ndim - 2)), axis=1)
    squeeze = (lambda x: x) if mix else (lambda x: x[:, 0])
    batch = Transition(
        obs=window.obs[:, 0],
        action=window.action[:, 0],
        reward=squeeze(reward),
        next_obs=squeeze(pick(window.next_obs)),
        terminated=squeeze(pick(window.terminated)),
        index=None if window.index is None else window.index[:, 0],  # one episode: one sub-policy
    )
    return batch, squeeze(gamma ** (last + 1).astype(jnp.float32))


def critic_target(reward, terminated, next_q, gamma):
    """y = r + gamma * (1 - terminated) * min_q next_q.

    Truncation is deliberately absent: a time limit is not a terminal state, so the
    bootstrap continues from the true final observation.

    Args:
        reward: [B, ...]; terminated: [B, ...] (1.0 = terminal); next_q: [Q, B, ...] target
            critics' values of the next state and the target actors' actions; gamma: scalar,
            or [B, ...] (n-step targets: gamma^m per transition). ``...``: the K targets
            of mixed n-step targets, or nothing.
    Returns: [B, ...].
    """
    return reward + gamma * (1.0 - terminated) * jnp.min(next_q, axis=0)


def regression_loss(pred, target, huber_delta: float):
    """Mean squared error, or mean Huber loss when ``huber_delta > 0`` (static)."""
    if huber_delta > 0:
        return optax.huber_loss(pred, target, delta=huber_delta).mean()
    return 0.5 * jnp.mean((pred - target) ** 2)


def joint_action_for_agent(fresh, buffer_actions, i):
    """Agent i's joint action for its actor loss: slot i is ``fresh[:, i]`` (its current
    policy), every other slot the buffer's action. A mask, not a loop: with ``fresh`` [B, A,
    D] from all actors, ``where(arange(A) == i)`` keeps the gradient of agent i's loss away
    from every other actor. E.g. A=3, i=1: (a_0 from buffer, mu_1(o_1), a_2 from buffer).
    """
    a = fresh.shape[1]
    mask = (jnp.arange(a) == i)[None, :, None]
    return jnp.where(mask, fresh, buffer_actions)


def agent_rows(x):
    """``[..., A, F] -> [N, A, F]``: every leading axis (the batch, and the K targets of mixed
    n-step targets) as one, for the per-agent networks."""
    return x.reshape((-1,) + x.shape[-2:])


def index_rows(index, next_obs):
    """An ensemble's sub-policy index ``[B, A]`` for every agent row of ``next_obs [B, (K,)
    A, O]``: ``[N, A]`` as `agent_rows` lays the rows out (the next step is in the same
    episode, so the same sub-policies; the K targets of mixed n-step targets share them).
    None without an ensemble."""
    if index is None:
        return None
    lead = next_obs.shape[:-1]  # [B, A] or [B, K, A]
    index = index.reshape(index.shape[:1] + (1,) * (len(lead) - 2) + index.shape[1:])
    return jnp.broadcast_to(index, lead).reshape(-1, lead[-1])


def joint_inputs(sees, i, obs, actions):
    """``obs [B, A, O], actions [B, A, D] -> [B, A*O], [B, A*D]``: the joint input of agent
    i's critic; ``sees`` ([A, A] or None for all): the other agents' inputs it sees, the
    rest zeroed."""
    b = obs.shape[0]
    if sees is not None:
        obs, actions = obs * sees[i][None, :, None], actions * sees[i][None, :, None]
    return obs.reshape(b, -1), actions.reshape(b, -1)


def polyak(new, old, tau):
    """target <- tau * online + (1 - tau) * target, leaf by leaf."""
    return optax.incremental_update(new, old, tau)


class Losses(NamedTuple):
    """The per-agent loss functions of one trainer (see `make_losses`)."""

    # (target_actor_params [A,...], next_obs [..., A, O], key, temperature) -> [..., A, D]
    target_actions: Callable
    critic_loss: Callable  # (critic_i, target_critic_i, i, batch, next_actions, gamma) -> (loss, mean q)
    actor_losses: Callable  # (actor_params [A,...], critic_params [A,...], batch, key, temperature) -> [A]


def make_losses(
    spec: AgentSpec,
    networks: Networks,
    *,
    huber_delta: float,
    target_noise: float,
    target_noise_clip: float,
    reward_scale: float = 1.0,
    action_penalty: float = 0.0,
    logit_penalty: float = 0.0,
    critic_sees=None,
) -> Losses:
    """Build the per-agent loss functions for fixed networks and static options.

    ``huber_delta`` 0 is squared error; ``target_noise`` 0 turns target policy smoothing
    off; ``action_penalty`` weighs ``mean(pre_tanh ** 2)`` in the actor loss (continuous),
    ``logit_penalty`` ``mean(logits ** 2)`` over each agent's real choices (discrete).
    ``critic_sees`` (``[A, A]``, from ``AgentSpec.critic_sees``; default all ones): which
    agents' observations and actions each agent's critic sees. The others' are zeroed at
    the critic's input, so a ``local`` critic (independent DDPG, the paper's baseline) has
    the joint critic's shape and cost, and its weights on those inputs never move.
    """
    discrete = spec.discrete
    full = critic_sees is None or bool(np.all(np.asarray(critic_sees) == 1))
    critic_inputs = functools.partial(joint_inputs, None if full else jnp.asarray(critic_sees, jnp.float32))

    def target_actions(target_actor_params, next_obs, key, temperature, index=None):
        """``next_obs [..., A, O] -> [..., A, D]`` (``...``: the batch, and K for mixed targets):
        the target actors' greedy one-hot choices (discrete), their soft Gumbel-softmax samples
        (``spec.soft``, the paper's code), or their actions with smoothing noise (continuous).
        ``index [B, A]``: an ensemble's sub-policies that acted (see `index_rows`)."""
        out = policy_actions(spec, networks, target_actor_params, agent_rows(next_obs), index_rows(index, next_obs))
        if spec.soft:
            out = soft_sample(out, key, temperature)
        elif discrete:
            out = jax.nn.one_hot(jnp.argmax(out, -1), out.shape[-1], dtype=out.dtype)
        elif target_noise > 0:
            noise = jnp.clip(target_noise * jax.random.normal(key, out.shape), -target_noise_clip, target_noise_clip)
            out = mask_outputs(spec, jnp.clip(out + noise, -1.0, 1.0))
        return out.reshape(next_obs.shape[:-1] + out.shape[-1:])

    def critic_loss(critic_params_i, target_critic_params_i, i, batch: Transition, next_actions, gamma):
        """Agent i's critic loss (scalar) and its mean Q (for logging). ``batch.next_obs``
        and ``next_actions`` are [B, A, ...], or [B, K, A, ...] for mixed n-step targets
        (the target is then the mean of the K targets)."""
        b, lead = batch.obs.shape[0], batch.next_obs.shape[:-2]  # lead: [B] or [B, K]
        next_inputs = critic_inputs(i, agent_rows(batch.next_obs), agent_rows(next_actions))
        next_q = networks.critic_apply(target_critic_params_i, *next_inputs).reshape((-1,) + lead)
        y = critic_target(reward_scale * batch.reward[..., i], batch.terminated[..., i], next_q, gamma)
        y = y.reshape(b, -1).mean(-1)  # [B]: the mean over K (a no-op for one target)
        q = networks.critic_apply(critic_params_i, *critic_inputs(i, batch.obs, batch.action))  # [Q, B]
        y = jax.lax.stop_gradient(y)
        return regression_loss(q, jnp.broadcast_to(y, q.shape), huber_delta), q.mean()

    def actor_losses(actor_params, critic_params, batch: Transition, key, temperature):
        """[A]: loss of every agent, -Q_i(o, a_{-i} from buffer, mu_i(o_i)), first critic,
        plus ``action_penalty * mean(pre_tanh_i ** 2)`` (continuous) against saturation.

        Each entry depends only on its own agent's actor (see joint_action_for_agent), so
        grad of the sum gives every actor exactly the gradient of its own loss. With an
        ensemble each transition's action comes from the sub-policy that collected it
        (``batch.index``), so each sub-policy learns from its own transitions only.
        """
        a = batch.obs.shape[1]
        unmasked = policy_outputs(networks, actor_params, batch.obs, batch.index)
        raw = mask_outputs(spec, unmasked)
        penalty = output_penalty(spec, unmasked, raw, action_penalty, logit_penalty)
        out = raw if discrete else jnp.tanh(raw)
        if spec.soft:  # the paper's code: the gradient flows through the soft sample itself
            out = soft_sample(out, key, temperature)
        elif discrete:
            out = straight_through_gumbel_softmax(out, key, temperature)

        def one(critic_params_i, i):
            joint = joint_action_for_agent(out, batch.action, i)
            return -networks.first_q_apply(critic_params_i, *critic_inputs(i, batch.obs, joint)).mean()

        return jax.vmap(one)(critic_params, jnp.arange(a)) + penalty

    return Losses(target_actions, critic_loss, actor_losses)


def output_penalty(spec: AgentSpec, unmasked, raw, action_penalty: float, logit_penalty: float):
    """``[A]`` (or 0.0): the actor's penalty on its outputs ``[B, A, D]``:
    ``action_penalty * mean(pre_tanh ** 2)`` (continuous, against saturation), or
    ``logit_penalty * mean(logits ** 2)`` over each agent's real choices (discrete; the MADDPG
    paper's code regularises its policy's outputs so)."""
    if not spec.discrete:
        return action_penalty * jnp.mean(raw**2, axis=(0, 2)) if action_penalty > 0 else 0.0
    if logit_penalty > 0:
        real = jnp.asarray(spec.action_mask, jnp.float32)  # [A, D]; padded choices carry no loss
        return logit_penalty * jnp.sum(unmasked**2 * real, axis=(0, 2)) / (unmasked.shape[0] * real.sum(-1))
    return 0.0


def straight_through_gumbel_softmax(logits, key, temperature):
    """A one-hot sample of softmax(logits) in the forward pass, the gradient of the relaxed
    sample softmax((logits + g) / temperature) in the backward pass (Jang et al. 2017). The
    project's default for discrete actions; the MADDPG paper's code uses the relaxed sample
    itself in both passes (``gumbel_mode="soft"``, `acting.soft_sample`).
    ``logits [..., D]`` -> ``[..., D]``."""
    g = jax.random.gumbel(key, logits.shape)
    soft = jax.nn.softmax((logits + g) / temperature, axis=-1)
    hard = jax.nn.one_hot(jnp.argmax(soft, -1), logits.shape[-1], dtype=soft.dtype)
    return hard + soft - jax.lax.stop_gradient(soft)
