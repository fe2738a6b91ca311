"""The trainer's parts called directly: sweepable hyperparameters, Gumbel-softmax, the
delayed actor, episode bookkeeping. Each test asserts what a wrong implementation gets
wrong (the fault it catches is named in its docstring)."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maddpg_jax import Config, make_trainer
from maddpg_jax.acting import AgentSpec, explore
from maddpg_jax.episodes import init_stats, record_episodes, window_returns
from maddpg_jax.losses import straight_through_gumbel_softmax

TINY = dict(
    num_envs=8,
    batch_size=32,
    buffer_size=2048,
    updates_per_step=1,
    total_env_steps=480,
    warmup_env_steps=160,
    hidden_sizes=(16, 16),
)
# One non-default value per sweepable hyperparameter (continuous actions except the
# temperature, which only discrete actions use).
VARIANTS = {"actor_lr": 3e-3, "critic_lr": 1e-2, "gamma": 0.9, "tau": 0.1, "noise_std": 0.4}


def _stack(hps):
    return jax.tree.map(lambda *x: jnp.stack(x), *hps)


# Static values no member uses: if any code read a sweepable hyperparameter from the static
# config instead of the traced HParams, a run built from this config would differ.
POISON = dict(actor_lr=0.5, critic_lr=0.5, gamma=0.3, tau=0.9, noise_std=0.9, gumbel_temperature=9.0)


@pytest.mark.parametrize("action_type, variants", [("continuous", VARIANTS), ("discrete", {"gumbel_temperature": 0.3})])
def test_sweepable_hyperparameters_come_only_from_the_traced_arrays(action_type, variants):
    """A grid of members in one vmapped program built from a config whose static
    hyperparameters are all poisoned: member 0 (the defaults) equals the default config
    trained alone, and every other member (one hyperparameter changed) differs from it.
    Catches a loss or an acting step that reads gamma, tau, a learning rate, the noise or
    the temperature from the static config: a sweep would then silently train one
    setting. One compilation serves the whole grid."""
    chex.clear_trace_counter()  # counts are kept per function name across parametrizations
    base = Config(**TINY, env_kwargs={"action_type": action_type})
    hps = [base.hparams()] + [base.replace(**{k: v}).hparams() for k, v in variants.items()]
    train = chex.assert_max_traces(make_trainer(base.replace(**POISON)).train, n=1)
    _, grid = jax.jit(jax.vmap(train, in_axes=(None, 0)))(jax.random.key(0), _stack(hps))
    _, alone = jax.jit(make_trainer(base).train)(jax.random.key(0), base.hparams())
    for field in ("critic_loss", "actor_loss", "mean_return"):
        np.testing.assert_allclose(getattr(grid, field)[0], getattr(alone, field), rtol=2e-4, atol=1e-6)
    for i, name in enumerate(variants, start=1):  # each value is live, so the check above could fail
        assert not np.allclose(grid.critic_loss[i], grid.critic_loss[0], rtol=1e-3), name


def test_straight_through_gumbel_softmax_forward_and_gradient_by_hand():
    """Forward: the one-hot of argmax((logits + g) / T); backward: the Jacobian of the
    relaxed softmax((logits + g) / T), worked out here from the same Gumbel draw."""
    logits, key, temperature = jnp.array([0.5, -1.0, 2.0]), jax.random.key(3), 0.7
    g = jax.random.gumbel(key, (3,))
    soft = np.asarray(jax.nn.softmax((logits + g) / temperature))
    out = straight_through_gumbel_softmax(logits, key, temperature)
    np.testing.assert_allclose(out, np.eye(3)[np.argmax(soft)], atol=1e-6)
    jac = jax.jacobian(straight_through_gumbel_softmax)(logits, key, temperature)
    by_hand = (np.diag(soft) - np.outer(soft, soft)) / temperature  # d softmax / d logits
    np.testing.assert_allclose(jac, by_hand, rtol=1e-5, atol=1e-7)


def test_discrete_exploration_draws_in_proportion_to_softmax():
    """Exploring discrete agents pick action k with probability softmax(logits)_k: counted
    over 40,000 draws from fixed logits (4 sigma bounds). A greedy or uniform draw fails."""
    logits = jnp.array([[1.0, 0.0], [-0.5, 0.5]])  # [A=2, D=2]
    spec = AgentSpec(2, 4, 2, (2, 2), True, (("team", (0, 1)),), (2,))

    class FixedLogits:
        actor_apply = staticmethod(lambda p, obs: jnp.broadcast_to(logits[p], obs.shape[:-1] + (2,)))

    actors = jnp.arange(2)  # "parameters": agent i's row of logits
    obs = jnp.zeros((40_000, 2, 4))
    for scale in (1.0, 0.5):  # the Gumbel noise scaled by T samples softmax(logits / T)
        counts = explore(spec, FixedLogits, actors, obs, jax.random.key(0), None, scale).sum(0)  # [A, D]
        p = np.asarray(jax.nn.softmax(logits / scale, -1))
        sigma = np.sqrt(40_000 * p * (1 - p))
        assert np.all(np.abs(np.asarray(counts) - 40_000 * p) < 4 * sigma), (scale, counts, p)


@pytest.mark.parametrize("discrete", [False, True])
def test_explore_temperature_reaches_discrete_acting_only(discrete, monkeypatch):
    """--explore-temperature T scales the discrete agents' Gumbel noise when they act (the
    noise schedule's factor times T) and leaves continuous acting alone."""
    from maddpg_jax import acting, training

    seen = []
    real = acting.explore
    monkeypatch.setattr(acting, "explore", lambda *a: seen.append(a[6]) or real(*a))  # scale
    c = Config(**TINY, explore_temperature=0.5, env_kwargs={"action_type": "discrete" if discrete else "continuous"})
    tr = make_trainer(c)
    state = tr.init(jax.random.key(0), c.hparams())
    training.iteration(tr, state, c.hparams(), learn=True)
    assert seen == [0.5 if discrete else 1.0]


def test_noise_schedule_factor_by_hand():
    """noise_decay over update rounds, from 1x to noise_final x: 'late' holds 1 through the
    first half (then 0.6 at 3/4 of the run with final 0.2: 0.2 + 0.8 * 0.5), 'linear'
    falls from the start, 'none' stays 1. Catches a schedule that ignores noise_final or
    starts its fall at the wrong time."""
    from maddpg_jax.update import Learner, noise_factor

    def factor(decay, final, frac):
        c = Config(**TINY, noise_decay=decay, noise_final=final)
        learner = Learner(c, None, None, None, c.batch_size, 400, None)
        return float(noise_factor(learner, jnp.int32(round(frac * 400))))

    assert factor("late", 0.2, 0.25) == pytest.approx(1.0)
    assert factor("late", 0.2, 0.75) == pytest.approx(0.6)
    assert factor("late", 0.2, 1.0) == pytest.approx(0.2)
    assert factor("linear", 0.0, 0.25) == pytest.approx(0.75)
    assert factor("linear", 0.5, 1.0) == pytest.approx(0.5)
    assert factor("none", 0.0, 1.0) == pytest.approx(1.0)


@pytest.mark.parametrize("discrete", [False, True])
def test_exploration_scale_zero_is_greedy_and_half_halves_the_noise(discrete):
    """explore's ``scale`` (the noise schedule's factor): 0 gives the deterministic policy's
    critic actions exactly; for continuous actions 0.5 gives exactly half the noise of 1
    (the same draw, away from the clip). Catches a schedule that never reaches the acting
    step."""
    from maddpg_jax.acting import policy_actions

    c = Config(**TINY, env_kwargs={"action_type": "discrete" if discrete else "continuous"})
    tr = make_trainer(c)
    actors = tr.init(jax.random.key(0), c.hparams()).agents.actor
    obs = jax.random.normal(jax.random.key(1), (64, tr.spec.num_agents, tr.spec.obs_dim)) * 0.1
    hp, key = c.hparams(), jax.random.key(2)
    greedy = policy_actions(tr.spec, tr.networks, actors, obs)
    if discrete:
        greedy = jax.nn.one_hot(jnp.argmax(greedy, -1), tr.spec.act_dim)
    np.testing.assert_array_equal(explore(tr.spec, tr.networks, actors, obs, key, hp, 0.0), greedy)
    full = explore(tr.spec, tr.networks, actors, obs, key, hp, 1.0)
    assert not np.array_equal(full, greedy)
    if not discrete:
        half = explore(tr.spec, tr.networks, actors, obs, key, hp, 0.5)
        inside = np.abs(np.asarray(full)) < 1.0  # the clip at +-1 is not linear
        noise_half, noise_full = np.asarray(half - greedy), np.asarray(full - greedy)
        np.testing.assert_allclose(noise_half[inside], 0.5 * noise_full[inside], atol=1e-6)


def test_logit_penalty_by_hand_counts_only_real_choices():
    """``logit_penalty`` w adds w * mean(logits^2) over each agent's real choices to its
    actor loss (discrete): agent 0 has 2 of 3 choices (its third is padding, logit 100),
    agent 1 all 3. With a critic that returns 0 the loss is the penalty alone:
    0.1 * (1 + 4) / 2 and 0.1 * (0.25 + 1 + 1) / 3. Catches a penalty on padded logits
    (which would be huge), on the wrong axis, or missing."""
    from maddpg_jax.losses import Transition, make_losses

    logits = jnp.array([[1.0, -2.0, 100.0], [0.5, 1.0, -1.0]])  # [A=2, D=3]
    spec = AgentSpec(2, 4, 3, (2, 3), True, (("team", (0, 1)),), (2,))

    class Stub:
        actor_apply = staticmethod(lambda p, obs: jnp.broadcast_to(logits[p], obs.shape[:-1] + (3,)))
        first_q_apply = staticmethod(lambda params, obs, act: jnp.zeros(obs.shape[:1]))

    obs = jnp.zeros((5, 2, 4))
    batch = Transition(obs, jnp.zeros((5, 2, 3)), jnp.zeros((5, 2)), obs, jnp.zeros((5, 2)))
    kw = dict(huber_delta=0.0, target_noise=0.0, target_noise_clip=0.0)
    loss = make_losses(spec, Stub, **kw, logit_penalty=0.1).actor_losses(
        jnp.arange(2), jnp.zeros(2), batch, jax.random.key(0), 1.0
    )
    np.testing.assert_allclose(loss, [0.1 * 5 / 2, 0.1 * 2.25 / 3], rtol=1e-6)
    off = make_losses(spec, Stub, **kw).actor_losses(jnp.arange(2), jnp.zeros(2), batch, jax.random.key(0), 1.0)
    np.testing.assert_allclose(off, [0.0, 0.0], atol=1e-7)


@pytest.fixture(scope="module")
def delayed():
    c = Config(**TINY, actor_delay=3)
    tr = make_trainer(c)
    state, _ = jax.jit(tr.train)(jax.random.key(0), c.hparams())
    return c, tr, state, jax.jit(tr.update)


def _changed(a, b):
    return max(
        float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


@pytest.mark.parametrize("updates, on_beat", [(0, False), (1, False), (2, True), (5, True), (6, False)])
def test_delayed_actor_changes_actor_and_targets_only_on_beat(delayed, updates, on_beat):
    """actor_delay 3: rounds 3, 6, ... (updates + 1 divisible by 3) move the actors, their
    optimiser state and both targets; other rounds leave them exactly as they were and
    still move the critics. Catches a delay that is ignored, off by one, or that updates
    the targets every round."""
    c, _, state, update = delayed
    new, m = update(state.agents, state.buffer, jnp.int32(updates), jax.random.key(1), c.hparams())
    assert _changed(new.critic, state.agents.critic) > 0
    assert bool(m.actor_updated) == on_beat
    for part in ("actor", "target_actor", "target_critic", "actor_opt"):
        moved = _changed(getattr(new, part), getattr(state.agents, part)) > 0
        assert moved == on_beat, part


def test_mean_return_on_episodes_of_known_length_ending_together():
    """Three envs with rewards 1 per agent per step; episodes end after 2, 3 and 3 steps,
    two in the same step; then env 0 again after 2 more. The window holds 2, 3, 3, 2 in
    that order and the mean is 2.5. Two teams: team 1's agent earns 2 per step, so its
    returns are doubled. Catches slot collisions, a wrong count or per-agent mixing."""
    spec = AgentSpec(3, 1, 1, (1, 1, 1), False, (("a", (0, 1)), ("b", (2,))), (3, 1))
    stats = init_stats(spec, 3)
    reward = jnp.array([[1.0, 1.0, 2.0]] * 3)  # [E, A]
    done_at = {2: [True, False, False], 3: [False, True, True], 4: [True, False, False]}
    for t in range(1, 5):
        stats = record_episodes(spec, stats, reward, jnp.array(done_at.get(t, [False] * 3)))
    assert int(stats.episodes) == 4 and int(stats.window_pos) == 4
    np.testing.assert_array_equal(stats.window[:4], [[2, 4], [3, 6], [3, 6], [2, 4]])
    mean, teams = window_returns(spec, stats)
    np.testing.assert_allclose(teams, [2.5, 5.0])
    np.testing.assert_allclose(mean, (2 * 2.5 + 5.0) / 3)  # mean over agents of each agent's return


def test_window_keeps_only_the_last_100_episodes():
    """150 envs finishing in one step (returns 1..150) then 30 more (returns 1000): the
    window holds the last 100, i.e. 70 of 81..150 and 30 of 1000."""
    spec = AgentSpec(1, 1, 1, (1,), False, (("team", (0,)),), (1, 1))
    stats = init_stats(spec, 150)
    stats = record_episodes(spec, stats, jnp.arange(1.0, 151.0)[:, None], jnp.ones(150, bool))
    done = jnp.arange(150) < 30
    stats = record_episodes(spec, stats, jnp.where(done, 1000.0, 0.0)[:, None], done)
    mean, _ = window_returns(spec, stats)
    np.testing.assert_allclose(mean, (np.arange(81, 151).sum() + 30 * 1000) / 100)


def test_config_fields_are_all_resolved_and_hashable():
    """Every field is set after construction (no None left for a registry default), and a
    config can be a static jit argument."""
    c = Config()
    assert all(getattr(c, f.name) is not None for f in dataclasses.fields(c))
    assert hash(c) == hash(Config()) and c == Config(env_kwargs={"num_agents": 2})


def test_kept_actor_picks_per_member_the_best_evaluated_or_the_latest():
    """Members with an evaluation keep their best actors; a member without one (best -inf)
    keeps its latest; and with policy selection off, every member keeps its latest."""
    from types import SimpleNamespace

    from maddpg_jax.training import kept_actor

    best = {"w": jnp.ones((3, 2, 4))}  # [members, A, ...]
    latest = {"w": jnp.zeros((3, 2, 4))}
    state = SimpleNamespace(
        best_actor=best, agents=SimpleNamespace(actor=latest), best_eval_return=jnp.array([10.0, -jnp.inf, 3.0])
    )
    kept = kept_actor(Config(), state)["w"]
    np.testing.assert_array_equal(kept[:, 0, 0], [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(kept_actor(Config(eval_episodes=0), state)["w"], 0.0)


def test_flat_parameters_train_as_the_layered_ones():
    """Fault caught: an unflatten that puts a weight in the wrong slice (or an optimiser
    that treats the flat vector other than per element) changes what is learned. Flat and
    layered parameters must give the same losses and returns, float rounding aside."""
    runs = []
    for flat in (True, False):
        c = Config(**TINY, flat_params=flat, eval_episodes=0)
        runs.append(jax.jit(make_trainer(c).train)(jax.random.key(3), c.hparams())[1])
    flat, layered = runs
    np.testing.assert_allclose(flat.critic_loss[-20:], layered.critic_loss[-20:], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(flat.actor_loss[-20:], layered.actor_loss[-20:], rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(flat.episodes, layered.episodes)


@pytest.mark.parametrize("mode, blind", [("joint", False), ("local", True)])
def test_a_local_critic_sees_only_its_own_agent(mode, blind):
    """Fault caught: a 'local' (DDPG) critic that still reads the other agents'
    observations or actions, or a joint one that does not. The gradient of agent 0's
    critic loss with respect to agent 1's observations and actions is zero exactly when
    the critic is local."""
    from maddpg_jax.losses import Transition

    c = Config(**TINY, critic_mode=mode)
    tr = make_trainer(c)
    state = tr.init(jax.random.key(0), c.hparams())
    b, a, o, d = 16, tr.spec.num_agents, tr.spec.obs_dim, tr.spec.act_dim
    k = jax.random.split(jax.random.key(1), 3)
    batch = Transition(
        obs=jax.random.normal(k[0], (b, a, o)),
        action=jax.random.uniform(k[1], (b, a, d), minval=-1, maxval=1),
        reward=jnp.ones((b, a)),
        next_obs=jax.random.normal(k[2], (b, a, o)),
        terminated=jnp.zeros((b, a)),
    )
    critic_0 = jax.tree.map(lambda x: x[0], state.agents.critic)
    target_0 = jax.tree.map(lambda x: x[0], state.agents.target_critic)

    def loss(obs, action):
        return tr.learner.losses.critic_loss(
            critic_0, target_0, 0, batch._replace(obs=obs, action=action), batch.action, 0.95
        )[0]

    g_obs, g_act = jax.grad(loss, argnums=(0, 1))(batch.obs, batch.action)
    others = float(jnp.abs(g_obs[:, 1:]).sum() + jnp.abs(g_act[:, 1:]).sum())
    own = float(jnp.abs(g_obs[:, 0]).sum() + jnp.abs(g_act[:, 0]).sum())
    assert own > 0
    assert (others == 0) == blind


def test_critic_mode_per_team_marks_rows_by_team():
    spec = AgentSpec(4, 3, 2, (2, 2, 2, 2), False, (("adversaries", (0, 1, 2)), ("agents", (3,))), (4, 2))
    sees = spec.critic_sees("adversaries=local")
    np.testing.assert_array_equal(sees[:3], np.eye(4)[:3])
    np.testing.assert_array_equal(sees[3], np.ones(4))
    np.testing.assert_array_equal(spec.critic_sees("local"), np.eye(4))
    np.testing.assert_array_equal(spec.critic_sees("joint"), np.ones((4, 4)))
    with pytest.raises(ValueError, match="no team 'prey'"):
        spec.critic_sees("prey=local")


def test_donated_chunk_equals_the_copying_one_and_consumes_its_input():
    """run_chunks donates the state to each chunk (no copy of the replay buffer per chunk).
    Catches: donation that changes results, or a runner that silently keeps the input
    (the copy it was meant to save)."""
    from maddpg_jax import members as members_lib

    config = Config(**TINY)
    _, runner, placed = members_lib.build(config, members_lib.seed_members(config, 2))
    keys, hp = members_lib.place(runner, config, placed)
    state = runner.init(keys, hp)
    kept = jax.tree.map(jnp.copy, state)
    copied, m1 = runner.run(kept, hp, 24, False)
    donated, m2 = runner.run(state, hp, 24, False, donate=True)
    chex.assert_trees_all_equal((copied, m1), (donated, m2))
    assert all(x.is_deleted() for x in jax.tree.leaves(state))
    assert not any(x.is_deleted() for x in jax.tree.leaves(kept))


@pytest.mark.parametrize("iterations", [24, 300])
def test_a_checkpoint_holds_the_buffers_written_rows_and_restores_the_state_exactly(tmp_path, iterations):
    """A checkpoint writes the replay buffer's written rows only (24 iterations of 8 envs:
    192 of 2048) and restores to the very state, onto a live state or onto its shapes alone;
    a buffer that has wrapped (300 iterations) is written whole. Catches: a cut that loses
    transitions, pads with anything but the buffer's own zeros, or cuts a wrapped buffer."""
    from maddpg_jax import members as members_lib
    from maddpg_jax import rundir

    config = Config(**TINY)
    _, runner, placed = members_lib.build(config, members_lib.seed_members(config, 2))
    keys, hp = members_lib.place(runner, config, placed)
    state, _ = runner.run(runner.init(keys, hp), hp, iterations, False)
    written = min(iterations * config.num_envs, config.buffer_size)
    assert rundir.filled_rows(state) == written
    ckpt = rundir.Checkpoints(tmp_path)
    ckpt.save(iterations, state, {"iteration": iterations})
    like = runner.init(keys, hp)
    restored, meta = ckpt.restore(iterations, like)
    # eval's and load_policy's way: onto the shapes alone, the init traced but not compiled
    abstract = runner.abstract_init(keys, hp)
    assert jax.tree.structure(abstract) == jax.tree.structure(like)
    from_shapes, _ = ckpt.restore(iterations, abstract)
    ckpt.close()
    assert meta["buffer_rows"] == written
    chex.assert_trees_all_equal(restored, state)
    chex.assert_trees_all_equal(from_shapes, state)
    pairs = zip(jax.tree.leaves(restored.buffer.data), jax.tree.leaves(like.buffer.data))
    assert all(x.sharding == y.sharding for x, y in pairs)  # padded where a live buffer lies
    files = sum(f.stat().st_size for f in (tmp_path / rundir.CHECKPOINTS).rglob("*") if f.is_file())
    buffer_bytes = sum(x.nbytes for x in jax.tree.leaves(state.buffer.data))
    assert (files < buffer_bytes / 2) == (written < config.buffer_size / 4), (files, buffer_bytes)


def _equal_to_rounding(a, b):
    """Float leaves equal to float32 rounding; keys, counters and flags exactly."""
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        if jnp.issubdtype(x.dtype, jnp.floating):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
        else:
            np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def chunked():
    """Per ``member_chunk`` (2: both members vmapped; 1: looped one at a time), the final
    state of 10 learning iterations as per-length scans (``run``), having checked on the way
    that the host loop's chunks (``run_chunk``: length and selection traced) give the same
    values and that every length is one trace (see the tests below)."""
    from maddpg_jax import members as members_lib
    from maddpg_jax.parallel import MemberRunner

    out = {}
    for member_chunk in (2, 1):
        chex.clear_trace_counter()  # counts are kept per function name across runners
        config = Config(**TINY)
        trainer = make_trainer(config)
        trainer = trainer._replace(run_upto=jax.jit(chex.assert_max_traces(trainer.run_upto.__wrapped__, n=1)))
        runner = MemberRunner(trainer, 2, member_chunk=member_chunk)
        keys, hp = members_lib.place(runner, config, members_lib.seed_members(config, 2))
        state, _ = runner.run(runner.init(keys, hp), hp, config.warmup_iterations, False)
        for _ in range(2):  # the second time from a state with a kept policy
            expected = runner.run(state, hp, 5, True, True)
            _equal_to_rounding(runner.run_chunk(state, hp, 5, True, True), expected)
            # 3 iterations without selection, then 2 with: the same 5 iterations, one selection.
            first = runner.run_chunk(state, hp, 3, True, False)
            second = runner.run_chunk(first[0], hp, 2, True, True)
            assert first[1].mean_return.shape == (2, 3) and second[1].mean_return.shape == (2, 2)
            joined = jax.tree.map(lambda a, b: np.concatenate([a, b], axis=1), first[1], second[1])
            _equal_to_rounding((second[0], joined), expected)
            state = expected[0]
        out[member_chunk] = state
    return out


def test_chunks_of_every_length_share_one_program_and_equal_the_scans(chunked):
    """The host loop's learning chunks (run_chunk: length and selection traced) give the
    values of the per-length scans (run), with and without policy selection, vmapped or
    looped over members, and every length is one trace (checked in the fixture). Catches: a
    loop that runs one iteration too many or few (one more Adam step moves parameters by
    ~1e-3), selection on the wrong chunk or row, metrics rows past the chunk's end leaking
    out, or a program compiled per length. Equal to float32 rounding, not bit for bit: the
    loop and the scan are two programs, and with the older emitters the tests compile with
    (tests/flags.py) XLA orders or contracts a few float ops differently in each (with the
    newer emitters they matched bit for bit)."""
    for state in chunked.values():
        assert np.all(np.isfinite(np.asarray(state.best_eval_return)))  # selection ran


def test_member_chunk_changes_how_members_are_batched_not_what_they_compute(chunked):
    """Members vmapped together (``--member-chunk 2``) and looped one at a time (1) train to
    the same state, to float32 rounding; catches a loop that mixes up members' keys,
    hyperparameters or buffers."""
    _equal_to_rounding(chunked[2], chunked[1])


def test_member_state_size_decides_looping_or_vmapping_on_a_cpu():
    """state_bytes matches what init allocates, and a member whose state is over
    LOOP_STATE_LIMIT is vmapped with the others instead of looped over (the loop slices
    and restacks each member's replay buffer at every chunk). Catches: a size estimate that
    ignores the buffer, or a runner that loops over 500 MB members."""
    from maddpg_jax.parallel import LOOP_STATE_LIMIT, MemberRunner, default_member_chunk, state_bytes

    trainer = make_trainer(Config(**TINY))
    state = jax.jit(trainer.init)(trainer.config.key(0), trainer.config.hparams())
    assert state_bytes(trainer) == sum(x.nbytes for x in jax.tree.leaves(state) if x.shape)
    cpu = jax.devices("cpu")
    assert default_member_chunk(cpu, LOOP_STATE_LIMIT) < 8 < default_member_chunk(cpu, LOOP_STATE_LIMIT + 1)
    assert MemberRunner(trainer, 8, cpu[:1]).member_chunk < 8
    big = make_trainer(Config(**dict(TINY, buffer_size=2_000_000)))  # shapes only: nothing allocated
    assert state_bytes(big) > LOOP_STATE_LIMIT and MemberRunner(big, 8, cpu[:1]).member_chunk >= 8


def test_n_step_transition_by_hand():
    """Fault caught: a return that runs on past an episode's end (into the next episode
    of the same env), a wrong bootstrap step or discount, or steps past the newest stored.
    Three windows of n = 3, one agent, gamma 0.5, rewards 1, 2, 4:
    - no end: R = 1 + 0.5*2 + 0.25*4 = 3, bootstrap from step 2's next_obs, discount 0.125;
    - ended (truncated) at step 1: R = 1 + 0.5*2 = 2, bootstrap from step 1, discount 0.25,
      terminated 0 (a time limit bootstraps);
    - step 2 not yet written: R = 2, bootstrap from step 1, discount 0.25."""
    from maddpg_jax.losses import Transition, n_step_transition

    b, n = 3, 3
    reward = jnp.broadcast_to(jnp.array([1.0, 2.0, 4.0])[None, :, None], (b, n, 1))
    next_obs = jnp.broadcast_to(jnp.arange(n, dtype=jnp.float32)[None, :, None, None] + 10, (b, n, 1, 1))
    ended = jnp.zeros((b, n, 1)).at[1, 1, 0].set(1.0)
    window = Transition(
        obs=jnp.ones((b, n, 1, 1)) * jnp.arange(n)[None, :, None, None],
        action=jnp.zeros((b, n, 1, 1)),
        reward=reward,
        next_obs=next_obs,
        terminated=jnp.zeros((b, n, 1)).at[0, 2, 0].set(1.0),
        ended=ended,
    )
    valid = jnp.ones((b, n), bool).at[2, 2].set(False)
    batch, discount = n_step_transition(window, valid, jnp.float32(0.5))
    np.testing.assert_allclose(batch.reward[:, 0], [3.0, 2.0, 2.0])
    np.testing.assert_allclose(batch.next_obs[:, 0, 0], [12.0, 11.0, 11.0])
    np.testing.assert_allclose(batch.terminated[:, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(discount, [0.125, 0.25, 0.25])
    np.testing.assert_allclose(batch.obs[:, 0, 0], [0.0, 0.0, 0.0])  # the window's first step


def test_buffer_windows_follow_one_env_across_the_wrap():
    """Fault caught: a window that strides from the wrong origin once the buffer has wrapped,
    or starts where its later steps are overwritten or not yet written. 3 envs write steps
    0..9 (value 10 * step + env) into a capacity 20 that holds the last 6 steps and 2 envs
    of a 7th; every window of 3 must be one env's 3 consecutive steps, all still stored."""
    from maddpg_jax import buffer as rb

    state = rb.init({"v": jnp.zeros(())}, capacity=20)
    for step in range(10):
        state = rb.add(state, {"v": 10.0 * step + jnp.arange(3.0)})
    windows, valid = rb.sample_windows(state, jax.random.key(0), 4096, 3, 3)
    v = np.asarray(windows["v"])
    assert bool(valid.all())
    np.testing.assert_array_equal(v[:, 1] - v[:, 0], 10.0)  # same env, next step
    np.testing.assert_array_equal(v[:, 2] - v[:, 1], 10.0)
    # Oldest stored: step 3, envs 1 and 2 (step 3 env 0 was overwritten); newest start: step 7.
    assert v[:, 0].min() == 31.0 and v[:, 2].max() == 92.0
    assert len(np.unique(v[:, 0])) == 14  # 20 stored - 2 steps x 3 envs without a whole window


def test_trainer_n_step_windows_are_one_envs_consecutive_steps():
    """Fault caught: a stride other than the envs per device, so a window mixes envs. In a
    trained buffer, step k + 1's obs of a window equals step k's next_obs except where
    step k ended the episode (auto-reset)."""
    from maddpg_jax import buffer as rb

    c = Config(**TINY, n_step=3, eval_episodes=0)
    trainer = make_trainer(c)
    state = jax.jit(trainer.init)(jax.random.key(0), c.hparams())
    state = jax.jit(lambda s: trainer.run(s, c.hparams(), 40, True)[0])(state)
    w, valid = rb.sample_windows(state.buffer, jax.random.key(1), 512, 3, c.num_envs)
    same = np.isclose(np.asarray(w.obs[:, 1:]), np.asarray(w.next_obs[:, :-1])).all(axis=(-1, -2))
    ended = np.asarray(w.ended[:, :-1]).max(-1) > 0
    assert bool(valid.all())
    np.testing.assert_array_equal(same | ended, True)
    assert ended.any() and (~ended).any()


def test_mixed_n_step_transitions_by_hand():
    """Fault caught: a mixed target that averages the wrong returns, runs a k-step return
    past the episode's end, or drops the plain n-step one. The windows of
    test_n_step_transition_by_hand (gamma 0.5, rewards 1, 2, 4, n = 3) with ``mix``:
    - no end: 1-, 2-, 3-step returns 1, 2, 3, bootstraps from steps 0, 1, 2, discounts
      0.5, 0.25, 0.125;
    - ended at step 1: 1, 2, 2 (the 3-step return stops where the episode ended);
    - step 2 not yet written: 1, 2, 2.
    The last column is the plain n-step transition."""
    from maddpg_jax.losses import Transition, n_step_transition

    b, n = 3, 3
    reward = jnp.broadcast_to(jnp.array([1.0, 2.0, 4.0])[None, :, None], (b, n, 1))
    next_obs = jnp.broadcast_to(jnp.arange(n, dtype=jnp.float32)[None, :, None, None] + 10, (b, n, 1, 1))
    window = Transition(
        obs=jnp.zeros((b, n, 1, 1)),
        action=jnp.zeros((b, n, 1, 1)),
        reward=reward,
        next_obs=next_obs,
        terminated=jnp.zeros((b, n, 1)).at[0, 2, 0].set(1.0),
        ended=jnp.zeros((b, n, 1)).at[1, 1, 0].set(1.0),
    )
    valid = jnp.ones((b, n), bool).at[2, 2].set(False)
    mixed, discount = n_step_transition(window, valid, jnp.float32(0.5), mix=True)
    np.testing.assert_allclose(mixed.reward[..., 0], [[1, 2, 3], [1, 2, 2], [1, 2, 2]])
    np.testing.assert_allclose(mixed.next_obs[..., 0, 0], [[10, 11, 12], [10, 11, 11], [10, 11, 11]])
    np.testing.assert_allclose(mixed.terminated[..., 0], [[0, 0, 1], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(discount, [[0.5, 0.25, 0.125], [0.5, 0.25, 0.25], [0.5, 0.25, 0.25]])
    plain, plain_discount = n_step_transition(window, valid, jnp.float32(0.5))
    np.testing.assert_allclose(mixed.reward[:, -1], plain.reward)
    np.testing.assert_allclose(discount[:, -1], plain_discount)


def test_mixed_n_step_critic_target_is_the_mean_of_the_k_step_targets():
    """Fault caught: a mixed critic loss that bootstraps every k from one next state, or
    weighs the K targets unequally. The critic loss on a [B, K] batch equals the loss
    against the mean of the K one-target losses' targets, which for squared error (no Huber)
    is checked through the loss's gradient at the prediction: the same as against mean_k y_k."""
    from maddpg_jax.losses import Transition

    c = Config(**TINY, n_step=2, n_step_mix=True, huber_delta=0.0, twin_critics=False, eval_episodes=0)
    trainer = make_trainer(c)
    state = jax.jit(trainer.init)(jax.random.key(0), c.hparams())
    losses, critic = trainer.learner.losses, state.agents.critic
    tcritic = jax.tree.map(lambda x: x + 0.01, state.agents.target_critic)
    a, o, d = 2, 4, 1
    k = jax.random.split(jax.random.key(3), 6)
    bsz, kk = 5, 2
    batch = Transition(
        obs=jax.random.normal(k[0], (bsz, a, o)),
        action=jnp.tanh(jax.random.normal(k[1], (bsz, a, d))),
        reward=jax.random.normal(k[2], (bsz, kk, a)),
        next_obs=jax.random.normal(k[3], (bsz, kk, a, o)),
        terminated=jnp.zeros((bsz, kk, a)).at[1, 1, 0].set(1.0),
    )
    next_actions = jnp.tanh(jax.random.normal(k[4], (bsz, kk, a, d)))
    gamma = jnp.array([0.9, 0.81])[None, :] * jnp.ones((bsz, 1))
    i = 0
    c0, t0 = jax.tree.map(lambda x: x[i], critic), jax.tree.map(lambda x: x[i], tcritic)
    mixed, _ = losses.critic_loss(c0, t0, i, batch, next_actions, gamma)

    def one(j):
        single = batch._replace(
            reward=batch.reward[:, j], next_obs=batch.next_obs[:, j], terminated=batch.terminated[:, j]
        )
        return single, next_actions[:, j], gamma[:, j]

    # Squared error: mean_k of the K single-target losses = loss against mean_k y_k + a
    # constant (the variance of the y_k), so their gradients with respect to the critic agree.
    grad = lambda f: jax.grad(f)(c0)
    g_mixed = grad(lambda p: losses.critic_loss(p, t0, i, batch, next_actions, gamma)[0])
    g_mean = grad(lambda p: sum(losses.critic_loss(p, t0, i, *one(j))[0] for j in range(kk)) / kk)
    np.testing.assert_allclose(g_mixed, g_mean, rtol=1e-5, atol=1e-6)
    assert np.isfinite(float(mixed))


def test_a_saved_config_from_before_n_step_mix_reads_as_unmixed():
    """Fault caught: resuming a run saved before ``n_step_mix`` existed (its n-step targets
    unmixed) with the new default, which would change the run's algorithm mid-way."""
    saved = Config(n_step=3, n_step_mix=False).to_dict()
    del saved["n_step_mix"]
    assert Config.from_dict(saved).n_step_mix is False
    assert Config.from_dict(Config().to_dict()).n_step_mix is Config().n_step_mix


def test_background_runs_tasks_in_order_and_hands_back_the_first_error():
    """The host writer keeps submission order, and a task's error reaches the caller at the
    next submit or flush, after which later tasks do not run (a write fault stops the
    writes, it is not skipped over)."""
    from maddpg_jax.background import Background

    done, bg = [], Background()
    for i in range(50):
        bg.submit(done.append, i)
    bg.flush()
    assert done == list(range(50))

    def fail():
        raise OSError(28, "No space left on device")

    bg.submit(fail)
    bg.submit(done.append, "after")
    with pytest.raises(OSError, match="No space"):
        bg.flush()
    assert done[-1] == 49
    bg.close()


def test_stop_signals_record_the_first_stop_the_second_at_once_and_restore_the_handlers():
    """SIGTERM is recorded (exit status 143) and the run goes on to its chunk's end; a second
    signal raises at once; leaving restores the handlers that were there before."""
    import os
    import signal
    import time

    from maddpg_jax.signals import StopSignals

    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stops:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs between bytecodes of the main thread
        assert stops.received == signal.SIGTERM and stops.status == 143
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1.0)
    assert signal.getsignal(signal.SIGTERM) is before
