"""Policies of the other agents inferred from their actions (Lowe et al. 2017, Section 4.2).

With ``Config.infer_policies`` each agent i keeps an approximation of every other agent j's
policy, learned by maximum likelihood of j's actions in the replay buffer plus
``infer_entropy`` (the paper's lambda, 1e-3) times the approximation's entropy:

    L(phi_ij) = -E_{o_j, a_j ~ D}[ log mu_hat_ij(a_j | o_j) + lambda H(mu_hat_ij(o_j)) ]

and agent i's critic target takes the approximations' (target networks') actions for the
other agents instead of their target actors' (its own slot keeps its own target actor):

    y_i = r_i + gamma Q'_i(x', mu_hat'_i1(o'_1), ..., mu'_i(o'_i), ..., mu_hat'_iA(o'_A))

The current Q and the actor loss already take the other agents' actions from the buffer, so
nothing else of MADDPG reads another agent's policy.

Each update round takes one step of every approximation, on the buffer's latest
``batch_size`` transitions (``Config.infer_batch`` "latest": the paper's "latest samples of
each agent from the replay buffer", so they follow the policies as they are now) or on the
round's uniform minibatch ("uniform", the mix of every policy the buffer holds).

Distributions: discrete, a categorical over the agent's real choices (its logits; the
buffer's action is a one-hot choice, or with ``gumbel_mode`` "soft" the probability vector
the env received, which the cross-entropy then takes as soft labels); continuous, a
diagonal Gaussian with mean ``tanh`` of the first ``D`` outputs and log-std the next ``D``
(clipped to [-5, 1]), over the agent's real action entries.

Parameters: leaves ``[A, A, ...]`` (i, then j), each an `networks.Actor` of the run's hidden
sizes. The diagonal (i = j) is built with the rest, carries no loss and never moves: one
array instead of index tables, at 1/A more approximation compute than needed.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from maddpg_jax.acting import MASKED_LOGIT, AgentSpec, soft_sample
from maddpg_jax.networks import Actor

LOG_STD_MIN, LOG_STD_MAX = -5.0, 1.0


@struct.dataclass
class Approximations:
    """Agent i's approximations of every agent j's policy; leaves ``[A, A, ...]``."""

    params: Any
    target: Any
    opt: Any


def approximator(config, spec: AgentSpec) -> Actor:
    """The network of one approximation: ``obs [..., O] -> [..., D]`` logits (discrete) or
    ``[..., 2D]`` mean and log-std before their squashing (continuous)."""
    return Actor(config.hidden_sizes, spec.act_dim * (1 if spec.discrete else 2))


def init(config, spec: AgentSpec, key: jax.Array, optimizer: optax.GradientTransformation) -> Approximations:
    """Fresh approximations for every (i, j) pair, targets equal to them, zeroed optimiser
    states (``optimizer``: the actors' kind, applied per approximation)."""
    a = spec.num_agents
    net = approximator(config, spec)
    keys = jax.random.split(key, a * a).reshape(a, a)
    params = jax.vmap(jax.vmap(net.init, in_axes=(0, None)), in_axes=(0, None))(keys, jnp.zeros((spec.obs_dim,)))
    return Approximations(params, params, jax.vmap(jax.vmap(optimizer.init))(params))


def _outputs(config, spec: AgentSpec, params, obs: jax.Array) -> jax.Array:
    """Every approximation's raw outputs: ``params [A, A, ...], obs [N, A, O] -> [A, N, A, 2D or D]``
    (approximation (i, j) reads agent j's observation)."""
    net = approximator(config, spec)
    per_j = jax.vmap(net.apply, in_axes=(0, 1), out_axes=1)  # over j: [A, ...], [N, A, O] -> [N, A, .]
    return jax.vmap(per_j, in_axes=(0, None))(params, obs)  # over i


def _distribution(spec: AgentSpec, out: jax.Array):
    """``out [..., A, .]`` -> (logits or mean, log-std or None), padded entries masked."""
    real = jnp.asarray(spec.action_mask)  # [A, D]
    if spec.discrete:
        return jnp.where(real, out, MASKED_LOGIT), None
    d = spec.act_dim
    mean = jnp.where(real, jnp.tanh(out[..., :d]), 0.0)
    return mean, jnp.clip(out[..., d:], LOG_STD_MIN, LOG_STD_MAX)


def log_likelihood_and_entropy(spec: AgentSpec, out: jax.Array, actions: jax.Array):
    """``out [..., A, .]`` (raw outputs), ``actions [..., A, D]`` (the buffer's critic
    actions) -> (log-likelihood ``[..., A]``, entropy ``[..., A]``) over each agent's real
    action entries. Discrete: the cross-entropy with the action as (soft) label."""
    real = jnp.asarray(spec.action_mask, jnp.float32)  # [A, D]
    loc, log_std = _distribution(spec, out)
    if spec.discrete:
        logp = jax.nn.log_softmax(loc, axis=-1)
        p = jnp.exp(logp)
        return jnp.sum(actions * logp * real, -1), -jnp.sum(p * logp * real, -1)
    z = (actions - loc) * jnp.exp(-log_std)
    loglik = -jnp.sum((0.5 * z**2 + log_std + 0.5 * math.log(2 * math.pi)) * real, -1)
    entropy = jnp.sum((log_std + 0.5 * math.log(2 * math.pi * math.e)) * real, -1)
    return loglik, entropy


def losses(config, spec: AgentSpec, params, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """``[A, A]``: the loss of approximation (i, j) on a batch (``obs [B, A, O]``,
    ``actions [B, A, D]``), ``-mean(log-likelihood + infer_entropy * entropy)``; 0 on the
    diagonal."""
    out = _outputs(config, spec, params, obs)  # [A, B, A, .]
    loglik, entropy = log_likelihood_and_entropy(spec, out, actions[None])  # [A, B, A]
    per_pair = -jnp.mean(loglik + config.infer_entropy * entropy, axis=1)  # [A, A]
    return per_pair * (1.0 - jnp.eye(spec.num_agents))


def kl_to_policies(config, spec: AgentSpec, params, true_out: jax.Array, obs: jax.Array, noise_std) -> jax.Array:
    """``[]``: the mean over off-diagonal pairs and the batch of KL(true || approximation):
    ``true_out [B, A, D]`` the agents' current policy outputs (masked logits, or tanh'd
    means), ``obs [B, A, O]``. Discrete: the categoricals' KL; continuous: the Gaussians'
    KL, the true policy's std being the exploration's ``noise_std``."""
    loc, log_std = _distribution(spec, _outputs(config, spec, params, obs))  # [A, B, A, .]
    real = jnp.asarray(spec.action_mask, jnp.float32)
    if spec.discrete:
        logp_true = jax.nn.log_softmax(true_out, -1)[None]
        kl = jnp.sum(jnp.exp(logp_true) * (logp_true - jax.nn.log_softmax(loc, -1)) * real, -1)
    else:
        sigma = jnp.maximum(noise_std, 1e-3)
        var = jnp.exp(2 * log_std)
        kl = jnp.sum((log_std - jnp.log(sigma) + (sigma**2 + (true_out[None] - loc) ** 2) / (2 * var) - 0.5) * real, -1)
    off = 1.0 - np.eye(spec.num_agents, dtype=np.float32)  # [i, j]
    return jnp.sum(kl.mean(1) * off) / max(1.0, float(np.sum(off)))


def target_actions(config, spec: AgentSpec, target, next_obs: jax.Array, key: jax.Array, temperature) -> jax.Array:
    """``next_obs [N, A, O] -> [A, N, A, D]``: agent i's approximations' target actions for
    every agent j, as `losses.make_losses`' target_actions gives the target actors' (greedy
    one-hot; the soft Gumbel-softmax sample with ``gumbel_mode`` "soft"; the Gaussian's
    mean, continuous)."""
    loc, _ = _distribution(spec, _outputs(config, spec, target, next_obs))
    if spec.soft:
        return soft_sample(loc, key, temperature)
    if spec.discrete:
        return jax.nn.one_hot(jnp.argmax(loc, -1), spec.act_dim, dtype=loc.dtype)
    return loc
