"""The whole training loop as one compiled program: act, step E envs, store, update.

``make_train(config)(key, hparams) -> (state, metrics)`` is pure and jittable, and can be
vmapped over seeds and hyperparameters. `make_trainer` wires the named parts
(networks from a factory, `acting`, `episodes`,
`update`) and exposes ``init`` and ``run`` so a host loop can run the same
program in chunks (`maddpg_jax.loop`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
from flax import struct

from maddpg_jax import acting, envs, episodes
from maddpg_jax import buffer as rb
from maddpg_jax.config import Config, HParams
from maddpg_jax.losses import Transition, make_losses
from maddpg_jax.networks import Networks, flatten_networks, make_networks
from maddpg_jax.update import AgentParams, Learner, init_agents, noise_factor, shards, update_round

LOSS_NAMES = ("critic_loss", "actor_loss", "q_mean")


def loss_names(config: Config) -> tuple[str, ...]:
    """The losses a run logs, in ``Metrics.interval_losses`` order: `LOSS_NAMES`, and with
    ``infer_policies`` the approximations' KL to the true policies (``approx_kl``)."""
    return LOSS_NAMES + (("approx_kl",) if config.infer_policies else ())


@struct.dataclass
class TrainState:
    agents: AgentParams
    buffer: rb.BufferState
    env_state: Any  # [E, ...]
    obs: jax.Array  # [E, A, O]
    stats: episodes.EpisodeStats
    key: jax.Array
    iteration: jax.Array  # [] int32 vectorised env steps taken
    updates: jax.Array  # [] int32 update rounds done
    # Losses (critic, actor, q) summed over the iterations since the last log boundary (every
    # config.log_interval iterations), with how many iterations had each. Kept in the state,
    # not on the host, so a logged mean is the same however the run was chunked and resumed.
    loss_sum: jax.Array  # [L] float32 (L: len(loss_names(config)))
    loss_count: jax.Array  # [L] int32
    # Policy selection (config.eval_episodes > 0): the actors with the best noise-free
    # evaluation so far, its return, and the latest evaluation's return (NaN before one).
    best_actor: Any  # like agents.actor
    best_eval_return: jax.Array  # [] float32, -inf before the first evaluation
    eval_return: jax.Array  # [] float32
    # A member whose losses or parameters went non-finite is frozen at its last finite state
    # (parameters, optimiser, buffer, envs, episode statistics) while the loop goes on, so
    # the members beside it in one program train on untouched. -1 while finite.
    diverged_at: jax.Array  # [] int32 env steps of the iteration that went non-finite
    # Config.ensemble_size > 1: each env's sub-policy per agent for its current episode
    # ([E, A] int32, drawn per team at every episode start); None otherwise.
    sub_policy: Any = None


@struct.dataclass
class Metrics:
    """Per-iteration metrics (each field gets a leading ``[iterations]`` axis from the scan)."""

    env_steps: jax.Array  # [] int32 env steps after this iteration
    mean_return: jax.Array  # [] mean over the last 100 episodes, per agent (NaN before any)
    team_returns: jax.Array  # [T] the same, per team
    episodes: jax.Array  # [] int32 finished so far
    critic_loss: jax.Array  # [] this iteration's means over its update rounds (NaN if none)
    actor_loss: jax.Array  # []
    q_mean: jax.Array  # []
    interval_losses: jax.Array  # [L] (critic, actor, q[, approx_kl]) means since the last log boundary
    nonfinite: jax.Array  # [] bool: a loss or parameter of this iteration was NaN or inf
    diverged_at: jax.Array  # [] int32 env steps at which the member was frozen (-1: training)
    eval_return: jax.Array  # [] the latest noise-free evaluation's mean return (NaN before one)
    best_eval_return: jax.Array  # [] the best so far (the kept actors'; -inf before one)
    # [M] the env's episode metrics of the evaluation that ended this iteration (NaN in
    # every other row): the means over the evaluation's episodes
    eval_metrics: jax.Array

    @classmethod
    def row(cls, num_teams: int, num_metrics: int = 0, num_losses: int = len(LOSS_NAMES)) -> Metrics:
        """One iteration's shapes and dtypes (as the fields above say), known without
        tracing an iteration: a trace of one costs about as much as the loop's own."""
        f32, i32 = jnp.float32, jnp.int32
        like = lambda shape=(), dtype=f32: jax.ShapeDtypeStruct(shape, dtype)
        return cls(
            env_steps=like((), i32),
            mean_return=like(),
            team_returns=like((num_teams,)),
            episodes=like((), i32),
            critic_loss=like(),
            actor_loss=like(),
            q_mean=like(),
            interval_losses=like((num_losses,)),
            nonfinite=like((), jnp.bool_),
            diverged_at=like((), i32),
            eval_return=like(),
            best_eval_return=like(),
            eval_metrics=like((num_metrics,)),
        )


class Trainer(NamedTuple):
    """The loop's parts for one config. All functions are pure; ``run`` is jitted with
    ``num_iterations`` and ``learn`` static."""

    config: Config
    env: Any
    env_params: Any
    spec: acting.AgentSpec
    networks: Networks
    learner: Learner
    init: Callable  # (key, hparams) -> TrainState
    # (state, hparams, num_iterations, learn, select=False) -> (state, Metrics [num_iterations]);
    # the host loop and train() both run chunks as loop.plan_chunks lays them out.
    run: Callable
    # (state, hparams, n, select) -> (state, Metrics [chunk_iterations]): a learning chunk of
    # n <= chunk_iterations iterations with n and select traced (rows past n are zeros).
    run_upto: Callable
    train: Callable  # (key, hparams) -> (state, Metrics [num_iterations])
    # (actor_params [A,...], obs [..., A, O], index=None) -> env actions, no noise (index: an
    # ensemble's sub-policy per agent, [..., A] or [A])
    policy: Callable
    update: Callable  # (agents, buffer, updates, key, hparams) -> (agents, UpdateMetrics)


def make_env(config: Config):
    """``(env, params)`` of ``config.env`` with ``config.env_kwargs``."""
    return envs.make(config.env, **config.env_kwargs)


def init_state(trainer: Trainer, key: jax.Array, hp: HParams, local_key=lambda k: k) -> TrainState:
    """A fresh state: parameters, an empty buffer, reset envs. ``local_key`` folds in the
    device index for what differs per data-parallel device (envs, sampling, noise)."""
    c, spec, learner = trainer.config, trainer.spec, trainer.learner
    k_actor, k_critic, k_env, k_loop = jax.random.split(key, 4)
    k_env, k_loop = local_key(k_env), local_key(k_loop)
    num_envs = c.num_envs // shards(learner)
    obs, env_state = envs.VecEnv(trainer.env, num_envs).reset(k_env, trainer.env_params)
    a, o, d = spec.num_agents, spec.obs_dim, spec.act_dim
    example = Transition(
        obs=jnp.zeros((a, o)),
        action=jnp.zeros((a, d)),
        reward=jnp.zeros((a,)),
        next_obs=jnp.zeros((a, o)),
        terminated=jnp.zeros((a,)),
        ended=jnp.zeros((a,)) if c.n_step > 1 else None,
        index=jnp.zeros((a,), jnp.int32) if spec.ensemble_size > 1 else None,
    )
    agents = init_agents(learner, k_actor, k_critic, hp)
    return TrainState(
        agents=agents,
        buffer=rb.init(example, c.buffer_size // shards(learner)),
        env_state=env_state,
        obs=obs,
        stats=episodes.init_stats(spec, num_envs),
        key=k_loop,
        iteration=jnp.zeros((), jnp.int32),
        updates=jnp.zeros((), jnp.int32),
        loss_sum=jnp.zeros((len(loss_names(c)),), jnp.float32),
        loss_count=jnp.zeros((len(loss_names(c)),), jnp.int32),
        best_actor=agents.actor,
        best_eval_return=jnp.float32(-jnp.inf),
        eval_return=jnp.float32(jnp.nan),
        diverged_at=jnp.full((), -1, jnp.int32),
        sub_policy=acting.draw_sub_policies(spec, jax.random.fold_in(k_loop, 5), num_envs)
        if spec.ensemble_size > 1
        else None,
    )


def learn_rounds(trainer: Trainer, state: TrainState, buffer, key, hp: HParams):
    """``updates_per_step`` update rounds in a scan. Returns (agents, updates, losses [L],
    which of the losses exist [L] bool), in `loss_names` order."""

    def body(carry, k):
        agents, updates = carry
        agents, m = update_round(trainer.learner, agents, buffer, updates, k, hp)
        return (agents, updates + 1), m

    keys = jax.random.split(key, trainer.config.updates_per_step)
    (agents, updates), m = jax.lax.scan(body, (state.agents, state.updates), keys)
    n_actor = m.actor_updated.sum()
    actor_loss = jnp.where(n_actor > 0, (m.actor_loss * m.actor_updated).sum() / jnp.maximum(n_actor, 1), jnp.nan)
    if trainer.config.actor_delay == 1:
        actor_loss = m.actor_loss.mean()  # every round updated the actors
    losses = [m.critic_loss.mean(), actor_loss, m.q_mean.mean()]
    present = [True, n_actor > 0, True]
    if m.approx_kl is not None:
        losses, present = losses + [m.approx_kl.mean()], present + [True]
    return agents, updates, jnp.stack(losses), jnp.stack(present)


def act(trainer: Trainer, state: TrainState, hp: HParams, key: jax.Array, learn: bool) -> jax.Array:
    """Critic actions ``[E, A, D]`` for the envs' current observations: the actors with
    their exploration (its schedule's factor; discrete actions also ``explore_temperature``),
    or before learning starts uniformly random ones (``warmup_actions`` "random")."""
    c, spec = trainer.config, trainer.spec
    if not learn and c.warmup_actions == "random":
        return acting.random_actions(spec, key, state.obs.shape[0])
    scale = noise_factor(trainer.learner, state.updates)
    if spec.discrete and c.explore_temperature != 1.0:  # 1.0: the exact computation without it
        scale = scale * c.explore_temperature
    return acting.explore(spec, trainer.networks, state.agents.actor, state.obs, key, hp, scale, state.sub_policy)


def iteration(trainer: Trainer, state: TrainState, hp: HParams, learn: bool, psum=lambda x: x):
    """One vectorised env step (exploring, or random actions before learning starts), the
    transitions stored, then ``updates_per_step`` update rounds when ``learn``."""
    c, spec = trainer.config, trainer.spec
    key, k_act, k_env, k_upd = jax.random.split(state.key, 4)
    critic_actions = act(trainer, state, hp, k_act, learn)
    obs, env_state, reward, terminated, truncated, info = envs.VecEnv(trainer.env, state.obs.shape[0]).step(
        k_env, state.env_state, acting.env_actions(spec, critic_actions), trainer.env_params
    )
    # An empty leaf (MPE simple's communication state, [E, 1, 0]) is a fresh constant after a
    # step; inside shard_map it would not vary over the mesh axis as the carried one does,
    # and the scan refuses the carry. It holds no data, so the carried one is kept.
    env_state = jax.tree.map(lambda new, old: old if new.size == 0 else new, env_state, state.env_state)
    transition = Transition(
        obs=state.obs,
        action=critic_actions,
        reward=reward,
        next_obs=info["final_observation"],
        terminated=terminated.astype(jnp.float32),
        ended=(terminated | truncated).astype(jnp.float32) if c.n_step > 1 else None,
        index=state.sub_policy,
    )
    ended = jnp.any(terminated | truncated, axis=-1)
    sub_policy = acting.redraw_sub_policies(spec, state.sub_policy, jax.random.fold_in(k_act, 1), ended)
    # A frozen member (non-finite before this iteration) stores nothing. (The transitions of
    # the iteration that went non-finite are stored: its finite actors collected them.)
    buffer = rb.add_unless(state.buffer, transition, state.diverged_at >= 0)
    if learn:
        agents, updates, losses, present = learn_rounds(trainer, state, buffer, k_upd, hp)
    else:
        agents, updates = state.agents, state.updates
        losses, present = jnp.full((len(loss_names(c)),), jnp.nan, jnp.float32), jnp.zeros(len(loss_names(c)), bool)
    stats = episodes.record_episodes(spec, state.stats, reward, ended)
    loss_sum = state.loss_sum + jnp.where(present, losses, 0.0)
    loss_count = state.loss_count + present.astype(jnp.int32)
    interval = jnp.where(loss_count > 0, loss_sum / jnp.maximum(loss_count, 1), jnp.nan)
    boundary = (state.iteration + 1) % c.log_interval == 0
    # Non-finite losses or parameters freeze the member: this iteration's updates are undone
    # and every later one's too. For a finite member every select picks the new value, so
    # its numbers are what they were without the guard, bit for bit. (The replay buffer is
    # not selected whole: a select over it every iteration cost more than the update.)
    nonfinite = jnp.any(present & ~jnp.isfinite(losses)) | ~_all_finite(agents)
    nonfinite = psum(nonfinite.astype(jnp.int32)) > 0  # data-parallel shards agree
    frozen = (state.diverged_at >= 0) | nonfinite
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(frozen, o, n), new, old)
    new = TrainState(
        agents=keep(agents, state.agents),
        buffer=buffer,
        env_state=keep(env_state, state.env_state),
        obs=keep(obs, state.obs),
        stats=keep(stats, state.stats),
        key=key,
        iteration=state.iteration + 1,
        updates=keep(updates, state.updates),
        loss_sum=keep(jnp.where(boundary, 0.0, loss_sum), state.loss_sum),
        loss_count=keep(jnp.where(boundary, 0, loss_count), state.loss_count),
        best_actor=state.best_actor,
        best_eval_return=state.best_eval_return,
        eval_return=state.eval_return,
        diverged_at=jnp.where(frozen & (state.diverged_at < 0), (state.iteration + 1) * c.num_envs, state.diverged_at),
        sub_policy=None if sub_policy is None else keep(sub_policy, state.sub_policy),
    )
    stats = new.stats
    mean_return, team_returns = episodes.window_returns(spec, stats, psum)
    metrics = Metrics(
        env_steps=new.iteration * c.num_envs,
        mean_return=mean_return,
        team_returns=team_returns,
        episodes=psum(stats.episodes),
        critic_loss=losses[0],
        actor_loss=losses[1],
        q_mean=losses[2],
        interval_losses=interval,
        nonfinite=nonfinite,
        diverged_at=new.diverged_at,
        eval_return=state.eval_return,
        best_eval_return=state.best_eval_return,
        eval_metrics=jnp.full((len(episode_metrics(trainer)),), jnp.nan, jnp.float32),
    )
    return new, metrics


def _all_finite(tree) -> jax.Array:
    """[] bool: every floating-point leaf of ``tree`` is finite."""
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.bool_(True)


class Episodes(NamedTuple):
    """What `run_episodes` measures, one row per env (one episode each)."""

    returns: jax.Array  # [N] the mean over agents of each agent's return
    team_returns: jax.Array  # [N, T] each team's return (mean over its agents)
    metrics: jax.Array  # [N, M] the env's episode metrics (its registry entry's), reduced


def episode_metrics(trainer: Trainer) -> tuple:
    """The `EpisodeMetric` s of the trainer's env."""
    return envs.entry(trainer.config.env).metrics


def run_episodes(
    trainer: Trainer, actor_params, key: jax.Array, num_episodes: int, like=None, act=None, sub_policy=None
) -> Episodes:
    """One noise-free episode in each of ``num_episodes`` envs, each run to its end or the
    env's horizon, with the env's episode metrics accumulated from the state each step
    produced (before the auto-reset). ``actor_params``: one member's, leaves ``[A, ...]``.
    ``act``: another policy instead of the actors, ``act(obs [N, A, O], env_state, key) ->
    env actions`` (a random or scripted baseline). An ensemble's actors play a sub-policy
    per episode and team drawn at random (the paper's evaluation), or every agent's
    ``sub_policy`` (an int) where given.

    ``like``: a boolean scalar of the caller's state. Inside ``shard_map`` the scan's carry
    must vary over the mesh axis as its outputs do; the fresh envs' constants (step
    counters, flags) would not, so they are passed through ``where(like, x, x)``, which
    types them like the state and costs nothing after XLA simplifies it."""
    venv = envs.VecEnv(trainer.env, num_episodes)
    weights = jnp.asarray(trainer.spec.team_weights)  # [T, A]
    metrics = episode_metrics(trainer)
    k_reset, k_run = jax.random.split(key)
    obs, env_state = venv.reset(k_reset, trainer.env_params)
    index = None
    if trainer.spec.ensemble_size > 1:  # one episode per env: one draw per env
        index = acting.draw_sub_policies(trainer.spec, jax.random.fold_in(k_reset, 1), num_episodes)
        index = index if sub_policy is None else jnp.full_like(index, sub_policy)

    def body(carry, k):
        obs, env_state, ret, teams, acc, steps, alive = carry
        if act is None:
            actions = trainer.policy(actor_params, obs, index)
        else:
            actions = act(obs, env_state, jax.random.fold_in(k, 1))
        obs, env_state, reward, term, trunc, info = venv.step(k, env_state, actions, trainer.env_params)
        ret = ret + jnp.where(alive, reward.mean(-1), 0.0)
        teams = teams + jnp.where(alive[:, None], reward @ weights.T, 0.0)
        if metrics:
            value = jnp.stack([jax.vmap(lambda s, m=m: m.fn(trainer.env, s))(info["final_state"]) for m in metrics], -1)
            last = jnp.asarray([m.reduce == "last" for m in metrics])
            acc = jnp.where(alive[:, None], jnp.where(last, value, acc + value), acc)
        steps = steps + alive
        return (obs, env_state, ret, teams, acc, steps, alive & ~jnp.any(term | trunc, -1)), None

    horizon = trainer.env.horizon(trainer.env_params)
    n, t = num_episodes, weights.shape[0]
    zeros = lambda *shape: jnp.zeros(shape, jnp.float32)
    init = (obs, env_state, zeros(n), zeros(n, t), zeros(n, len(metrics)), zeros(n), jnp.ones(n, bool))
    if like is not None:
        init = jax.tree.map(lambda x: jnp.where(like, x, x), init)
    _, _, ret, teams, acc, steps, _ = jax.lax.scan(body, init, jax.random.split(k_run, horizon))[0]
    mean = jnp.asarray([m.reduce == "mean" for m in metrics], bool)
    return Episodes(ret, teams, jnp.where(mean, acc / jnp.maximum(steps, 1.0)[:, None], acc))


def evaluate_actors(trainer: Trainer, actor_params, key: jax.Array, num_episodes: int, like=None):
    """``(score [], metrics [M])``: the mean return (mean over agents of each agent's episode
    sum) of the greedy actors over ``num_episodes`` episodes, and the mean of each episode
    metric of the env (see `run_episodes`)."""
    episodes = run_episodes(trainer, actor_params, key, num_episodes, like)
    return episodes.returns.mean(), episodes.metrics.mean(0)


def select_policy(trainer: Trainer, state: TrainState, pmean=lambda x: x) -> tuple[TrainState, jax.Array]:
    """Evaluate the current actors without noise and keep them if they score at least the
    best so far (ties go to the newer, more trained actors; with ``keep_best`` off the
    latest are kept, see `kept_actor`). Returns the state and the evaluation's episode
    metrics ``[M]``. The evaluation's key is folded
    from the loop key without consuming it, so training itself is unchanged."""
    key = jax.random.fold_in(state.key, 0x5E1EC7)
    like = state.iteration >= 0  # always true; typed like the state (see run_episodes)
    score, metrics = evaluate_actors(trainer, state.agents.actor, key, trainer.config.eval_episodes, like)
    score, metrics = pmean(score), pmean(metrics)
    better = (score >= state.best_eval_return) & (state.diverged_at < 0)  # a frozen member keeps its best
    best = jax.tree.map(lambda new, old: jnp.where(better, new, old), state.agents.actor, state.best_actor)
    state = state.replace(
        best_actor=best, best_eval_return=jnp.maximum(score, state.best_eval_return), eval_return=score
    )
    return state, metrics


def kept_actor(config: Config, state: TrainState):
    """The actors a run keeps for evaluation and deployment: the best evaluated ones when
    policy selection is on (``eval_episodes > 0`` and ``keep_best``) and an evaluation has
    happened, else the latest."""
    if config.eval_episodes > 0 and config.keep_best:
        evaluated = jnp.isfinite(state.best_eval_return)  # [] or [members]

        def pick(best, last):  # evaluated's axes lead: [members] against [members, A, ...]
            return jnp.where(evaluated.reshape(evaluated.shape + (1,) * (best.ndim - evaluated.ndim)), best, last)

        return jax.tree.map(pick, state.best_actor, state.agents.actor)
    return state.agents.actor


def select_into(trainer: Trainer, state: TrainState, metrics: Metrics, row, mean) -> tuple[TrainState, Metrics]:
    """Policy selection (``mean``: the score's mean over data-parallel devices); its result
    goes into the metrics' ``row``."""
    state, episode = select_policy(trainer, state, mean)
    return state, metrics.replace(
        eval_return=metrics.eval_return.at[row].set(state.eval_return),
        best_eval_return=metrics.best_eval_return.at[row].set(state.best_eval_return),
        eval_metrics=metrics.eval_metrics.at[row].set(episode),
    )


def scan_chunk(trainer: Trainer, state: TrainState, hp: HParams, num_iterations: int, learn: bool, select, psum, mean):
    """``trainer.run``: ``num_iterations`` vectorised steps in one ``lax.scan``; then, with
    ``select`` (the chunk ends on an evaluation interval) and ``eval_episodes > 0``, policy
    selection, whose result the chunk's last metrics row carries. Metrics [num_iterations]."""
    state, metrics = jax.lax.scan(
        lambda s, _: iteration(trainer, s, hp, learn, psum), state, None, length=num_iterations
    )
    if select and trainer.config.eval_episodes > 0:
        state, metrics = select_into(trainer, state, metrics, num_iterations - 1, mean)
    return state, metrics


def loop_chunk(trainer: Trainer, state: TrainState, hp: HParams, n: jax.Array, select: jax.Array, psum, mean):
    """``trainer.run_upto``: a learning chunk as ``scan_chunk(..., n, True, select)`` computes
    it (the same iteration in a loop: the same values, bit for bit where tested with
    XLA:CPU's newer fusion emitters, to float32 rounding with the older ones the tests
    compile with), with ``n`` (int32, at most ``chunk_iterations``) and ``select`` (bool)
    traced, so chunks of every length share one compiled program. Metrics have
    ``chunk_iterations`` rows; those from ``n`` on are zeros. ``n`` and ``select`` must be
    the same for every member (they are not batched under vmap, so the loop and the
    selection stay real control flow)."""
    c = trainer.config
    # Typed like the state (where(like, ...)): inside shard_map the loop's carry must vary
    # over the mesh axis as the rows written into it do (see run_episodes).
    like = state.iteration >= 0
    row = Metrics.row(len(trainer.spec.teams), len(episode_metrics(trainer)), len(loss_names(c)))
    buf = jax.tree.map(lambda x: jnp.where(like, jnp.zeros((c.chunk_iterations,) + x.shape, x.dtype), 0), row)

    def body(i, carry):
        s, buf = carry
        s, m = iteration(trainer, s, hp, True, psum)
        chex.assert_trees_all_equal_shapes_and_dtypes(m, row)  # at trace time: Metrics.row is up to date
        return s, jax.tree.map(lambda b, x: b.at[i].set(x), buf, m)

    state, metrics = jax.lax.fori_loop(0, n, body, (state, buf))
    if c.eval_episodes > 0:

        def selected(s, m, row):
            return select_into(trainer, s, m, row, mean)

        state, metrics = jax.lax.cond(select, selected, lambda s, m, _: (s, m), state, metrics, n - 1)
    return state, metrics


def make_trainer(
    config: Config,
    env=None,
    env_params=None,
    network_factory=make_networks,
    data_axis: str | None = None,
    data_shards: int = 1,
) -> Trainer:
    """The training loop's parts for ``config`` (the env from its registry entry unless
    ``env`` and ``env_params`` are given; networks from ``network_factory(config, env)``).

    Data parallelism (one run over several devices): build with ``data_axis`` (a mesh axis
    name) and ``data_shards`` (its size) and run the functions inside ``shard_map`` over
    that axis. Each device then steps ``num_envs / shards`` envs, keeps their transitions
    in its ``1 / shards`` of the buffer and samples ``batch_size / shards`` of the batch;
    gradients are averaged over the axis, so the replicated parameters stay identical.
    Episode statistics are pooled over devices.
    """
    if env is None:
        env, env_params = make_env(config)
    c = config
    for name in ("num_envs", "batch_size", "buffer_size"):
        if getattr(c, name) % data_shards:
            raise ValueError(
                f"{name} ({getattr(c, name)}) must be divisible by the {data_shards} data-parallel devices"
            )
    spec = acting.AgentSpec.from_env(env, c.gumbel_mode, c.ensemble_size)
    networks = network_factory(c, env)
    if c.flat_params:
        a = spec.num_agents
        networks = flatten_networks(networks, spec.obs_dim, a * spec.obs_dim, a * spec.act_dim)
    losses = make_losses(
        spec,
        networks,
        huber_delta=c.huber_delta,
        target_noise=c.target_noise,
        target_noise_clip=c.target_noise_clip,
        reward_scale=c.reward_scale,
        action_penalty=c.action_penalty,
        logit_penalty=c.logit_penalty,
        critic_sees=spec.critic_sees(c.critic_mode),
    )
    total_updates = max(1, (c.num_iterations - c.warmup_iterations) * c.updates_per_step)
    learner = Learner(c, spec, networks, losses, c.batch_size // data_shards, total_updates, data_axis)
    psum = (lambda x: jax.lax.psum(x, data_axis)) if data_axis else (lambda x: x)

    def local_key(key):
        return jax.random.fold_in(key, jax.lax.axis_index(data_axis)) if data_axis else key

    def mean(x):  # over data-parallel devices (the selection's score)
        return psum(x) / data_shards

    @functools.partial(jax.jit, static_argnames=("num_iterations", "learn", "select"))
    def run(state: TrainState, hp: HParams, num_iterations: int, learn: bool, select: bool = False):
        return scan_chunk(trainer, state, hp, num_iterations, learn, select, psum, mean)

    @jax.jit
    def run_upto(state: TrainState, hp: HParams, n: jax.Array, select: jax.Array):
        return loop_chunk(trainer, state, hp, n, select, psum, mean)

    trainer = Trainer(
        config=c,
        env=env,
        env_params=env_params,
        spec=spec,
        networks=networks,
        learner=learner,
        init=lambda key, hp: init_state(trainer, key, hp, local_key),
        run=run,
        run_upto=run_upto,
        train=lambda key, hp: train_in_chunks(trainer, key, hp),
        policy=functools.partial(acting.greedy_env_actions, spec, networks),
        update=functools.partial(update_round, learner),
    )
    return trainer


def train_in_chunks(trainer: Trainer, key: jax.Array, hp: HParams):
    """The whole run, chunk for chunk as the host loop runs it (``plan_chunks``), so policy
    selection happens at the same iterations. Runs of equal chunks are one scan over
    chunks, which keeps the program small. Returns (state, Metrics [num_iterations])."""
    from maddpg_jax.loop import plan_chunks

    run = trainer.run.__wrapped__
    state, parts = trainer.init(key, hp), []
    for (n, learn, select), repeats in groupby_count(plan_chunks(trainer.config)):
        if repeats == 1:
            state, m = run(state, hp, n, learn, select)
        else:
            state, m = jax.lax.scan(
                lambda s, _, n=n, learn=learn, select=select: run(s, hp, n, learn, select),
                state,
                None,
                length=repeats,
            )
            # explicit sizes: an env without episode metrics has [repeats, n, 0] leaves
            m = jax.tree.map(lambda x: x.reshape((x.shape[0] * x.shape[1],) + x.shape[2:]), m)
        parts.append(m)
    return state, jax.tree.map(lambda *x: jnp.concatenate(x), *parts)


def groupby_count(items) -> list[tuple]:
    """Consecutive equal items as ``(item, count)``: ``[a, a, b] -> [(a, 2), (b, 1)]``."""
    out: list[list] = []
    for item in items:
        if out and out[-1][0] == item:
            out[-1][1] += 1
        else:
            out.append([item, 1])
    return [tuple(x) for x in out]


def make_train(config: Config, **kwargs):
    """``train(key, hparams) -> (TrainState, Metrics)``; pure, jittable, vmappable.
    ``kwargs`` go to `make_trainer` (for example ``network_factory``)."""
    return make_trainer(config, **kwargs).train
