"""Learning: agent parameters, optimisers, and one update round of every agent.

An update round samples one minibatch and updates every agent's critic, then (every
``actor_delay`` rounds) its actor and both target networks; all agents at once, vmapped
over the agent axis. With data parallelism (``Learner.data_axis`` set, run inside
``shard_map``) gradients and logged losses are averaged over that mesh axis.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from maddpg_jax import buffer as rb
from maddpg_jax import inference
from maddpg_jax.acting import AgentSpec, policy_actions
from maddpg_jax.config import Config, HParams
from maddpg_jax.losses import Losses, agent_rows, n_step_transition, polyak
from maddpg_jax.networks import Networks


@struct.dataclass
class AgentParams:
    """Every leaf has a leading agent axis ``[A, ...]``."""

    actor: Any
    critic: Any
    target_actor: Any
    target_critic: Any
    actor_opt: Any
    critic_opt: Any
    # Config.infer_policies: every agent's approximations of the others' policies (leaves
    # [A, A, ...], see `inference`); None otherwise, which leaves the program as without it.
    approx: inference.Approximations | None = None


class UpdateMetrics(NamedTuple):
    critic_loss: jax.Array  # [] mean over agents
    actor_loss: jax.Array  # [] mean over agents (0 where the actor did not update)
    q_mean: jax.Array  # [] mean Q of the batch, over agents
    actor_updated: jax.Array  # [] bool: whether this round updated the actors
    approx_kl: jax.Array | None = None  # [] inferred policies' KL to the true ones (or None)


class Learner(NamedTuple):
    """What one update round needs besides its inputs (static: closed over in jit)."""

    config: Config
    spec: AgentSpec
    networks: Networks
    losses: Losses
    batch_size: int  # per device
    total_updates: int  # update rounds in the whole run (for the learning-rate schedule)
    data_axis: str | None = None  # mesh axis to average gradients over, or None


def shards(learner: Learner) -> int:
    """Data-parallel devices one run is spread over (1 without data parallelism): each holds
    ``num_envs``, ``buffer_size`` and ``batch_size`` divided by this."""
    return learner.config.batch_size // learner.batch_size


def pmean(learner: Learner, x):
    return jax.lax.pmean(x, learner.data_axis) if learner.data_axis else x


def clip_by_tensor_norm(max_norm: float) -> optax.GradientTransformation:
    """Each tensor (leaf) scaled to norm at most ``max_norm``: TensorFlow's
    ``clip_by_norm`` per variable, as the MADDPG paper's code clips (``t * max_norm /
    max(||t||, max_norm)``)."""

    def update(updates, state, params=None):
        def clip(g):
            return g * (max_norm / jnp.maximum(jnp.sqrt(jnp.sum(g**2)), max_norm))

        return jax.tree.map(clip, updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_optimizer(config: Config, learning_rate, critic: bool = False) -> optax.GradientTransformation:
    """Adam, after clipping to ``config.grad_clip`` (when > 0): the global norm of an agent's
    gradients, or each tensor's norm (``grad_clip_scope`` "tensor"). Per tensor the critic's
    threshold is halved with squared error, whose loss here is half the paper code's mean
    squared error: the same clipped step, since Adam's step does not scale with the loss."""
    adam = optax.adam(learning_rate)
    if config.grad_clip <= 0:
        return adam
    if config.grad_clip_scope == "tensor":
        halve = critic and config.huber_delta == 0
        return optax.chain(clip_by_tensor_norm(config.grad_clip / 2 if halve else config.grad_clip), adam)
    return optax.chain(optax.clip_by_global_norm(config.grad_clip), adam)


def init_agents(learner: Learner, k_actor: jax.Array, k_critic: jax.Array, hp: HParams) -> AgentParams:
    """Fresh parameters (each key split once per agent, so agents differ), targets equal to
    them, and zeroed optimiser states."""
    spec, networks = learner.spec, learner.networks
    a, o, d = spec.num_agents, spec.obs_dim, spec.act_dim
    if spec.ensemble_size == 1:
        actor = jax.vmap(networks.actor_init, in_axes=(0, None))(jax.random.split(k_actor, a), jnp.zeros((o,)))
    else:  # [A, K, ...]: K sub-policies per agent, each from its own key
        keys = jax.random.split(k_actor, a * spec.ensemble_size).reshape(a, spec.ensemble_size)
        actor = jax.vmap(jax.vmap(networks.actor_init, in_axes=(0, None)), in_axes=(0, None))(keys, jnp.zeros((o,)))
    critic = jax.vmap(networks.critic_init, in_axes=(0, None, None))(
        jax.random.split(k_critic, a), jnp.zeros((a * o,)), jnp.zeros((a * d,))
    )
    return AgentParams(
        actor=actor,
        critic=critic,
        target_actor=actor,
        target_critic=critic,
        actor_opt=per_actor(spec, make_optimizer(learner.config, hp.actor_lr).init)(actor),
        critic_opt=jax.vmap(make_optimizer(learner.config, hp.critic_lr, critic=True).init)(critic),
        approx=init_approximations(learner, jax.random.fold_in(k_actor, 1), hp),
    )


def per_actor(spec: AgentSpec, fn):
    """``fn`` vmapped over the actors' agent axis, and an ensemble's sub-policy axis: each
    sub-policy is optimised (and its gradient clipped) on its own."""
    return jax.vmap(fn) if spec.ensemble_size == 1 else jax.vmap(jax.vmap(fn))


def init_approximations(learner: Learner, key: jax.Array, hp: HParams) -> inference.Approximations | None:
    """Fresh approximations of the other agents' policies (``infer_policies``), else None."""
    if not learner.config.infer_policies:
        return None
    return inference.init(learner.config, learner.spec, key, make_optimizer(learner.config, hp.actor_lr))


def decay(kind: str, progress: jax.Array) -> jax.Array:
    """A schedule's multiplier at ``progress`` (fraction of the run's update rounds done):
    'linear' 1 -> 0 over the run, 'late' 1 for the first half then linear to 0, 'none' 1."""
    if kind == "linear":
        return jnp.maximum(0.0, 1.0 - progress)
    if kind == "late":
        return jnp.clip(2.0 - 2.0 * progress, 0.0, 1.0)
    return jnp.float32(1.0)


def lr_factor(learner: Learner, updates: jax.Array) -> jax.Array:
    """Learning-rate multiplier after ``updates`` rounds (``config.lr_decay``; seed-to-seed
    spread late in a run came from collapses after solving; annealing both rates holds the
    solved policy). It scales Adam's step, so the optimiser state is the same with any
    schedule."""
    return decay(learner.config.lr_decay, updates.astype(jnp.float32) / learner.total_updates)


def noise_factor(learner: Learner, updates: jax.Array) -> jax.Array:
    """Exploration-noise multiplier after ``updates`` rounds: from 1 to ``config.noise_final``
    along ``config.noise_decay``'s shape; exactly 1.0 (a Python float, so acting computes
    what it did without a schedule) for 'none'."""
    if learner.config.noise_decay == "none":
        return 1.0
    d = decay(learner.config.noise_decay, updates.astype(jnp.float32) / learner.total_updates)
    return learner.config.noise_final + (1.0 - learner.config.noise_final) * d


def next_actions_for_critics(learner: Learner, agents: AgentParams, next_obs, key, hp: HParams, index=None):
    """The next joint actions the critics' targets take, and their vmap axis: the target
    actors' ``[..., A, D]`` shared by every critic (axis None), or with inferred policies
    ``[A, ..., A, D]`` per critic (axis 0): agent i's approximations' actions for the others,
    its own target actor's in its own slot. ``next_obs [..., A, O]`` (``...``: the batch, and
    K for mixed n-step targets); ``index [B, A]``: an ensemble's sub-policies that acted."""
    own = learner.losses.target_actions(agents.target_actor, next_obs, key, hp.gumbel_temperature, index)
    if agents.approx is None:
        return own, None
    a = learner.spec.num_agents
    inferred = inference.target_actions(
        learner.config,
        learner.spec,
        agents.approx.target,
        agent_rows(next_obs),
        jax.random.fold_in(key, 1),
        hp.gumbel_temperature,
    ).reshape((a,) + own.shape)
    own_slot = jnp.eye(a, dtype=bool).reshape((a,) + (1,) * (own.ndim - 2) + (a, 1))
    return jnp.where(own_slot, own[None], inferred), 0


def update_approximations(learner: Learner, agents: AgentParams, batch, hp: HParams, lr_scale):
    """Every approximation of another agent's policy (``Config.infer_policies``), one Adam
    step on the batch's observations and actions (the actors' optimiser, at the rate
    ``Config.infer_lr`` names), then its target by Polyak averaging. Returns
    (approximations, their mean KL to the current policies [])."""
    c, spec, approx = learner.config, learner.spec, agents.approx
    grads = jax.grad(lambda p: inference.losses(c, spec, p, batch.obs, batch.action).sum())(approx.params)
    grads = pmean(learner, grads)
    opt = make_optimizer(c, (hp.critic_lr if c.infer_lr == "critic" else hp.actor_lr) * lr_scale)
    updates, opt_state = jax.vmap(jax.vmap(opt.update))(grads, approx.opt, approx.params)
    params = optax.apply_updates(approx.params, updates)
    true = policy_actions(spec, learner.networks, agents.actor, batch.obs, batch.index)
    kl = inference.kl_to_policies(c, spec, params, jax.lax.stop_gradient(true), batch.obs, hp.noise_std)
    return inference.Approximations(params, polyak(params, approx.target, hp.tau), opt_state), pmean(learner, kl)


def update_critics(learner: Learner, agents: AgentParams, batch, key, hp: HParams, lr_scale, discount=None):
    """Every agent's critic, one Adam step (``key``: the target policy's smoothing noise;
    ``discount``: the bootstrap's discount, scalar or [B], default ``hp.gamma``).
    Returns (critic params, opt state, loss [A], q [A])."""
    # next_obs [B, A, O], or [B, K, A, O] for mixed n-step targets
    next_actions, axis = next_actions_for_critics(learner, agents, batch.next_obs, key, hp, batch.index)
    grad_fn = jax.value_and_grad(learner.losses.critic_loss, has_aux=True)
    (loss, q_mean), grads = jax.vmap(grad_fn, in_axes=(0, 0, 0, None, axis, None))(
        agents.critic,
        agents.target_critic,
        jnp.arange(learner.spec.num_agents),
        batch,
        next_actions,
        hp.gamma if discount is None else discount,
    )
    grads = pmean(learner, grads)
    updates, opt = jax.vmap(make_optimizer(learner.config, hp.critic_lr * lr_scale, critic=True).update)(
        grads, agents.critic_opt, agents.critic
    )
    return optax.apply_updates(agents.critic, updates), opt, loss, q_mean


def update_actors(learner: Learner, agents: AgentParams, critic, batch, key, hp: HParams, lr_scale):
    """Every agent's actor, one Adam step against the just-updated ``critic``, then both
    targets by Polyak averaging. Returns (actor, target actor, target critic, actor opt,
    loss [A])."""

    def total_actor_loss(actor_params):
        losses = learner.losses.actor_losses(actor_params, critic, batch, key, hp.gumbel_temperature)
        return losses.sum(), losses

    (_, loss), grads = jax.value_and_grad(total_actor_loss, has_aux=True)(agents.actor)
    grads = pmean(learner, grads)
    updates, opt = per_actor(learner.spec, make_optimizer(learner.config, hp.actor_lr * lr_scale).update)(
        grads, agents.actor_opt, agents.actor
    )
    actor = optax.apply_updates(agents.actor, updates)
    return (actor, polyak(actor, agents.target_actor, hp.tau), polyak(critic, agents.target_critic, hp.tau), opt, loss)


def update_round(
    learner: Learner, agents: AgentParams, buffer: rb.BufferState, updates: jax.Array, key: jax.Array, hp: HParams
) -> tuple[AgentParams, UpdateMetrics]:
    """One update of every agent on one minibatch drawn from ``buffer``; ``updates`` is the
    number of rounds done before this one (for the schedule and the actor delay)."""
    k_sample, k_target, k_actor = jax.random.split(key, 3)
    c = learner.config
    latest = rb.latest(buffer, learner.batch_size) if c.infer_policies and c.infer_batch == "latest" else None
    n = c.n_step
    if n == 1:
        batch = rb.sample(buffer, k_sample, learner.batch_size)
        return update_on_batch(learner, agents, batch, updates, k_target, k_actor, hp, approx_batch=latest)
    # One env's consecutive steps lie num_envs (this device's) apart in the buffer.
    num_envs = c.num_envs // shards(learner)
    window, valid = rb.sample_windows(buffer, k_sample, learner.batch_size, n, num_envs)
    batch, discount = n_step_transition(window, valid, hp.gamma, c.n_step_mix)
    return update_on_batch(learner, agents, batch, updates, k_target, k_actor, hp, discount, latest)


def update_on_batch(
    learner: Learner,
    agents: AgentParams,
    batch,
    updates: jax.Array,
    k_target: jax.Array,
    k_actor: jax.Array,
    hp: HParams,
    discount=None,
    approx_batch=None,
) -> tuple[AgentParams, UpdateMetrics]:
    """`update_round` on a given batch (leaves ``[B, ...]``); ``k_target`` draws the
    target policy's smoothing noise, ``k_actor`` the actors' Gumbel noise (discrete);
    ``discount`` the bootstrap's (scalar or [B]; default ``hp.gamma``); ``approx_batch``
    the transitions the inferred policies learn from (default: ``batch``)."""
    lr_scale = lr_factor(learner, updates)
    approx, approx_kl = agents.approx, None
    if approx is not None:  # learned first, so this round's critic targets use the updated ones
        approx_batch = batch if approx_batch is None else approx_batch
        approx, approx_kl = update_approximations(learner, agents, approx_batch, hp, lr_scale)
        agents = agents.replace(approx=approx)
    critic, critic_opt, c_loss, q_mean = update_critics(learner, agents, batch, k_target, hp, lr_scale, discount)

    def actor_step(_):
        return update_actors(learner, agents, critic, batch, k_actor, hp, lr_scale)

    delay = learner.config.actor_delay
    on_beat = (updates + 1) % delay == 0
    if delay == 1:
        actor, target_actor, target_critic, actor_opt, a_loss = actor_step(None)
    else:
        # Delayed actor and targets (MATD3): off-beat rounds skip that work entirely.
        def skip(_):
            # zeros_like(c_loss), not jnp.zeros: inside shard_map the loss must vary over
            # the member axis like the on-beat branch's does.
            return agents.actor, agents.target_actor, agents.target_critic, agents.actor_opt, jnp.zeros_like(c_loss)

        actor, target_actor, target_critic, actor_opt, a_loss = jax.lax.cond(on_beat, actor_step, skip, None)
    new = AgentParams(
        actor=actor,
        critic=critic,
        target_actor=target_actor,
        target_critic=target_critic,
        actor_opt=actor_opt,
        critic_opt=critic_opt,
        approx=approx,
    )
    metrics = UpdateMetrics(
        critic_loss=pmean(learner, c_loss.mean()),
        actor_loss=pmean(learner, a_loss.mean()),
        q_mean=pmean(learner, q_mean.mean()),
        actor_updated=on_beat,
        approx_kl=approx_kl,
    )
    return new, metrics
