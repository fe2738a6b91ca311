"""The whole training loop as one compiled program: act, step E envs, store, update.

``make_train(config)(key, hparams) -> (state, metrics)`` is pure and jittable, and can be
vmapped over seeds and hyperparameters. :func:`make_trainer` exposes its pieces
(``init``, ``run``) so the CLI can run the same loop in chunks with host work in between.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

import envs
from maddpg_jax import buffer as rb
from maddpg_jax.config import Config, HParams
from maddpg_jax.losses import Transition, make_losses, polyak
from maddpg_jax.networks import Actor, Critic

RETURN_WINDOW = 100  # mean_return is over the last 100 finished episodes


@struct.dataclass
class AgentParams:
    """Every leaf has a leading agent axis [A, ...]."""

    actor: Any
    critic: Any
    target_actor: Any
    target_critic: Any
    actor_opt: Any
    critic_opt: Any


@struct.dataclass
class EpisodeStats:
    running_return: jax.Array  # [E] return so far of each env's current episode
    window: jax.Array  # [100] returns of the last finished episodes (ring)
    window_pos: jax.Array  # [] int32
    episodes: jax.Array  # [] int32 finished so far


@struct.dataclass
class TrainState:
    agents: AgentParams
    buffer: rb.BufferState
    env_state: Any  # [E, ...]
    obs: jax.Array  # [E, A, O]
    stats: EpisodeStats
    key: jax.Array
    iteration: jax.Array  # [] int32 vectorised env steps taken
    updates: jax.Array  # [] int32 update rounds done
    # Losses (critic, actor, q) summed over the learning iterations since the last log
    # boundary (every config.log_interval iterations). Kept in the state, not on the host,
    # so a logged mean is the same however the run was chunked, stopped and resumed.
    loss_sum: jax.Array  # [3] float32
    loss_count: jax.Array  # [] int32


class Trainer(NamedTuple):
    """The loop's pieces for one config. All functions are pure; ``run`` is jitted with
    ``num_iterations`` and ``learn`` static."""

    config: Config
    env: Any
    env_params: Any
    init: Any  # (key, hparams) -> TrainState
    run: Any  # (state, hparams, num_iterations, learn) -> (state, metrics)
    train: Any  # (key, hparams) -> (state, metrics)
    policy: Any  # (actor_params [A,...], obs [..., A, O]) -> env actions, no noise
    update: Any  # (agents, buffer, updates, key, hparams) -> (agents, (critic, actor, q))


def make_env(config: Config):
    kwargs = dict(num_agents=config.num_agents, action_type=config.action_type, obs_mode=config.obs_mode)
    if config.env == "MultiCartPole-v0":
        kwargs["coupling"] = float(config.coupling)
    return envs.make(config.env, **kwargs)


def make_trainer(config: Config, env=None, env_params=None, data_axis: str | None = None,
                 data_shards: int = 1) -> Trainer:
    """The training loop's pieces for ``config``.

    Data parallelism (one run over several devices): build with ``data_axis`` (a mesh axis
    name) and ``data_shards`` (its size) and run the functions inside ``shard_map`` over
    that axis. Each device then steps ``num_envs / shards`` envs, keeps their transitions
    in its ``1 / shards`` of the buffer and samples ``batch_size / shards`` of the batch;
    gradients are averaged over the axis (``pmean``), so the replicated parameters stay
    identical. Episode statistics are pooled over devices.
    """
    if env is None:
        env, env_params = make_env(config)
    c = config
    shards = data_shards
    for name in ("num_envs", "batch_size", "buffer_size"):
        if getattr(c, name) % shards:
            raise ValueError(f"{name} ({getattr(c, name)}) must be divisible by the {shards} data-parallel devices")
    a, e, o = env.num_agents, c.num_envs // shards, env.obs_dim
    batch_size, capacity = c.batch_size // shards, c.buffer_size // shards

    def pmean(x):
        return jax.lax.pmean(x, data_axis) if data_axis else x

    def psum(x):
        return jax.lax.psum(x, data_axis) if data_axis else x

    def local_key(key):
        """Keys for what differs per device (envs, sampling, noise); params use the raw key."""
        return jax.random.fold_in(key, jax.lax.axis_index(data_axis)) if data_axis else key
    discrete = env.action_type == "discrete"
    d = env.act_dim
    venv = envs.VecEnv(env, e)
    actor = Actor(c.hidden_sizes, d, discrete, c.final_layer_init)
    critic = Critic(c.hidden_sizes, 2 if c.twin_critics else 1, c.critic_layer_norm, c.final_layer_init)
    # Observations are scaled at the networks' inputs only: the buffer keeps raw ones.
    scale = getattr(env, "obs_scale", None) if c.scale_obs else None
    inv = 1.0 / jnp.asarray(scale, jnp.float32) if scale is not None else None
    joint_inv = jnp.tile(inv, a) if inv is not None else None
    if inv is not None:
        actor_apply = lambda p, obs: actor.apply(p, obs * inv)  # noqa: E731
        critic_apply = lambda p, obs, act: critic.apply(p, obs * joint_inv, act)  # noqa: E731
        first_q_apply = lambda p, obs, act: critic.first_q_apply(p, obs * joint_inv, act)  # noqa: E731
    else:
        actor_apply, critic_apply, first_q_apply = actor.apply, critic.apply, critic.first_q_apply
    policy_actions, target_actions, critic_loss, actor_losses = make_losses(
        actor_apply, critic_apply, discrete=discrete, huber_delta=c.huber_delta,
        target_noise=c.target_noise, target_noise_clip=c.target_noise_clip,
        first_q_apply=first_q_apply, reward_scale=c.reward_scale, action_penalty=c.action_penalty,
    )

    def optimizer(lr):
        adam = optax.adam(lr)
        return optax.chain(optax.clip_by_global_norm(c.grad_clip), adam) if c.grad_clip > 0 else adam

    # Update rounds in the whole run (learning starts after the warm-up).
    total_updates = max(1, (c.num_iterations - c.warmup_iterations) * c.updates_per_step)

    def lr_factor(updates):
        """Learning-rate multiplier after ``updates`` rounds: 1 -> 0 linearly over the run
        with lr_decay='linear' (the seed-to-seed spread of the last 100k steps came from
        late collapses; annealing both rates holds the solved policy), else 1. It scales
        Adam's step, so the optimiser state is the same with either schedule."""
        if c.lr_decay == "linear":
            return jnp.maximum(0.0, 1.0 - updates.astype(jnp.float32) / total_updates)
        return jnp.float32(1.0)

    # -- acting -----------------------------------------------------------------------------

    def env_actions(critic_input):
        """Actions the env takes from what the critic sees: [E, A, D] -> env's action array."""
        return jnp.argmax(critic_input, -1).astype(jnp.int32) if discrete else critic_input

    def explore(actor_params, obs, key, hp: HParams):
        out = policy_actions(actor_params, obs)  # [E, A, D]
        if discrete:
            # A hard Gumbel-softmax sample: argmax(logits + g) is a categorical draw.
            g = jax.random.gumbel(key, out.shape)
            return jax.nn.one_hot(jnp.argmax(out + g, -1), d, dtype=jnp.float32)
        noise = hp.noise_std * jax.random.normal(key, out.shape)
        return jnp.clip(out + noise, -1.0, 1.0)

    def random_actions(key):
        if discrete:
            return jax.nn.one_hot(jax.random.randint(key, (e, a), 0, d), d, dtype=jnp.float32)
        return jax.random.uniform(key, (e, a, d), jnp.float32, -1.0, 1.0)

    def policy(actor_params, obs):
        """Greedy env actions (no exploration) for obs [..., A, O]."""
        lead = obs.shape[:-2]
        flat = obs.reshape((-1,) + obs.shape[-2:])
        return env_actions(policy_actions(actor_params, flat)).reshape(lead + env.action_shape)

    # -- learning -----------------------------------------------------------------------------

    def update_round(agents: AgentParams, buffer, updates, key, hp: HParams):
        """One update of every agent's critic, then (every actor_delay rounds) its actor and
        the targets, on one minibatch. Returns (agents, (critic_loss, actor_loss, q))."""
        k_sample, k_target, k_actor = jax.random.split(key, 3)
        lr_scale = lr_factor(updates)
        batch = rb.sample(buffer, k_sample, batch_size)
        next_actions = target_actions(agents.target_actor, batch.next_obs, k_target)

        grad_fn = jax.value_and_grad(critic_loss, has_aux=True)
        (c_loss, q_mean), c_grads = jax.vmap(grad_fn, in_axes=(0, 0, 0, None, None, None))(
            agents.critic, agents.target_critic, jnp.arange(a), batch, next_actions, hp.gamma
        )
        c_grads = pmean(c_grads)
        c_updates, critic_opt = jax.vmap(optimizer(hp.critic_lr * lr_scale).update)(
            c_grads, agents.critic_opt, agents.critic
        )
        critic_params = optax.apply_updates(agents.critic, c_updates)

        def total_actor_loss(actor_params):
            losses = actor_losses(actor_params, critic_params, batch, k_actor, hp.gumbel_temperature)
            return losses.sum(), losses

        (_, a_loss), a_grads = jax.value_and_grad(total_actor_loss, has_aux=True)(agents.actor)
        a_grads = pmean(a_grads)
        a_updates, actor_opt = jax.vmap(optimizer(hp.actor_lr * lr_scale).update)(a_grads, agents.actor_opt, agents.actor)
        actor_params = optax.apply_updates(agents.actor, a_updates)

        new = AgentParams(
            actor=actor_params,
            critic=critic_params,
            target_actor=polyak(actor_params, agents.target_actor, hp.tau),
            target_critic=polyak(critic_params, agents.target_critic, hp.tau),
            actor_opt=actor_opt,
            critic_opt=critic_opt,
        )
        if c.actor_delay > 1:
            # Delayed actor/targets (MATD3): keep the critic update, undo the rest off-beat.
            on_beat = (updates + 1) % c.actor_delay == 0
            keep = AgentParams(agents.actor, critic_params, agents.target_actor,
                               agents.target_critic, agents.actor_opt, critic_opt)
            new = jax.tree.map(lambda n, k: jnp.where(on_beat, n, k), new, keep)
        return new, (pmean(c_loss.mean()), pmean(a_loss.mean()), pmean(q_mean.mean()))

    # -- the loop ------------------------------------------------------------------------------

    def init(key, hp: HParams) -> TrainState:
        k_actor, k_critic, k_env, k_loop = jax.random.split(key, 4)
        k_env, k_loop = local_key(k_env), local_key(k_loop)
        obs0 = jnp.zeros((o,), jnp.float32)
        actor_params = jax.vmap(actor.init, in_axes=(0, None))(jax.random.split(k_actor, a), obs0)
        critic_params = jax.vmap(critic.init, in_axes=(0, None, None))(
            jax.random.split(k_critic, a), jnp.zeros((a * o,)), jnp.zeros((a * d,))
        )
        agents = AgentParams(
            actor=actor_params,
            critic=critic_params,
            target_actor=actor_params,
            target_critic=critic_params,
            actor_opt=jax.vmap(optimizer(hp.actor_lr).init)(actor_params),
            critic_opt=jax.vmap(optimizer(hp.critic_lr).init)(critic_params),
        )
        obs, env_state = venv.reset(k_env, env_params)
        example = Transition(
            obs=jnp.zeros((a, o), jnp.float32),
            action=jnp.zeros((a, d), jnp.float32),
            reward=jnp.zeros((a,), jnp.float32),
            next_obs=jnp.zeros((a, o), jnp.float32),
            terminated=jnp.zeros((a,), jnp.float32),
        )
        stats = EpisodeStats(
            running_return=jnp.zeros((e,), jnp.float32),
            window=jnp.zeros((RETURN_WINDOW,), jnp.float32),
            window_pos=jnp.zeros((), jnp.int32),
            episodes=jnp.zeros((), jnp.int32),
        )
        return TrainState(agents, rb.init(example, capacity), env_state, obs, stats,
                          k_loop, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32),
                          jnp.zeros((3,), jnp.float32), jnp.zeros((), jnp.int32))

    def record_episodes(stats: EpisodeStats, reward, done) -> EpisodeStats:
        """Add this step's reward; push finished episodes' returns into the 100-ring.

        reward [E, A] (the return is the mean over agents of each agent's sum), done [E].
        Only the last 100 finishers of a step are written, so no two share a slot.
        """
        running = stats.running_return + reward.mean(-1)
        rank = jnp.cumsum(done) - 1  # order among this step's finishers
        n_done = done.sum()
        keep = done & (rank >= n_done - RETURN_WINDOW)
        slot = jnp.where(keep, (stats.window_pos + rank) % RETURN_WINDOW, RETURN_WINDOW)
        window = stats.window.at[slot].set(running, mode="drop")
        return EpisodeStats(
            running_return=jnp.where(done, 0.0, running),
            window=window,
            window_pos=(stats.window_pos + n_done) % RETURN_WINDOW,
            episodes=stats.episodes + n_done.astype(jnp.int32),
        )

    def iteration(state: TrainState, hp: HParams, learn: bool):
        key, k_act, k_env, k_upd = jax.random.split(state.key, 4)
        if learn:
            critic_actions = explore(state.agents.actor, state.obs, k_act, hp)
        else:
            critic_actions = random_actions(k_act)
        obs, env_state, reward, terminated, truncated, info = venv.step(
            k_env, state.env_state, env_actions(critic_actions), env_params
        )
        buffer = rb.add(state.buffer, Transition(
            obs=state.obs,
            action=critic_actions,
            reward=reward,
            next_obs=info["final_observation"],
            terminated=terminated.astype(jnp.float32),
        ))
        agents, updates = state.agents, state.updates
        if learn:
            def body(carry, k):
                agents, updates = carry
                agents, m = update_round(agents, buffer, updates, k, hp)
                return (agents, updates + 1), m
            (agents, updates), (cl, al, qm) = jax.lax.scan(
                body, (agents, updates), jax.random.split(k_upd, c.updates_per_step)
            )
            losses = (cl.mean(), al.mean(), qm.mean())
        else:
            losses = (jnp.float32(jnp.nan),) * 3
        done = jnp.any(terminated | truncated, axis=-1)
        stats = record_episodes(state.stats, reward, done)
        loss_sum, loss_count = state.loss_sum, state.loss_count
        if learn:
            loss_sum, loss_count = loss_sum + jnp.stack(losses), loss_count + 1
        window_losses = jnp.where(loss_count > 0, loss_sum / jnp.maximum(loss_count, 1), jnp.nan)
        boundary = (state.iteration + 1) % c.log_interval == 0
        new = TrainState(agents, buffer, env_state, obs, stats, key, state.iteration + 1, updates,
                         jnp.where(boundary, 0.0, loss_sum), jnp.where(boundary, 0, loss_count))
        n = jnp.minimum(stats.episodes, RETURN_WINDOW)
        # With data parallelism: the last 100 episodes of every device's envs, pooled.
        n, total = psum(n), psum(stats.window.sum())
        mean_return = jnp.where(n > 0, total / jnp.maximum(n, 1), jnp.nan)
        metrics = {
            "env_steps": new.iteration * c.num_envs,
            "mean_return": mean_return,
            "episodes": psum(stats.episodes),
            "critic_loss": losses[0],
            "actor_loss": losses[1],
            "q_mean": losses[2],
            # [3] mean (critic, actor, q) over learning iterations since the last log boundary
            "window_losses": window_losses,
        }
        if learn:
            finite = jnp.isfinite(jnp.stack(losses))
            metrics["nonfinite"] = ~jnp.all(finite)
        else:
            metrics["nonfinite"] = jnp.zeros((), bool)
        return new, metrics

    @functools.partial(jax.jit, static_argnames=("num_iterations", "learn"))
    def run(state: TrainState, hp: HParams, num_iterations: int, learn: bool):
        """``num_iterations`` vectorised steps in one ``lax.scan``; metrics [num_iterations]."""
        return jax.lax.scan(lambda s, _: iteration(s, hp, learn), state, None, length=num_iterations)

    def train(key, hp: HParams):
        """The whole run: warm-up (random actions) then learning. Metrics [num_iterations]."""
        state = init(key, hp)
        w, n = c.warmup_iterations, c.num_iterations
        parts = []
        if w > 0:
            state, m = run.__wrapped__(state, hp, w, False)
            parts.append(m)
        if n - w > 0:
            state, m = run.__wrapped__(state, hp, n - w, True)
            parts.append(m)
        metrics = jax.tree.map(lambda *x: jnp.concatenate(x), *parts)
        return state, metrics

    return Trainer(c, env, env_params, init, run, train, policy, update_round)


def make_train(config: Config):
    """``train(key, hparams) -> (TrainState, metrics)``; pure, jittable, vmappable."""
    return make_trainer(config).train
