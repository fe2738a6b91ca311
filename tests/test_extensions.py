"""The MADDPG paper's extensions: policies inferred from actions (Section 4.2) and policy
ensembles (Section 4.3)."""

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from maddpg_jax import Config, acting, envs, inference, make_trainer
from maddpg_jax.acting import AgentSpec
from maddpg_jax.losses import Transition
from maddpg_jax.update import next_actions_for_critics
from tests.test_maddpg import TINY as TRAINER_TINY

TINY = dict(TRAINER_TINY, eval_episodes=2, eval_every=400)


def spec_of(env_name: str, **kw) -> AgentSpec:
    env, _ = envs.make(env_name, **kw)
    return AgentSpec.from_env(env)


# -- inferred policies ------------------------------------------------------------------------


def test_likelihood_and_entropy_worked_by_hand():
    spec = spec_of("MultiCartPole-v0", action_type="discrete")  # 2 agents, 2 choices
    out = jnp.array([[0.0, math.log(3.0)], [0.0, 0.0]])  # agent 0: p = (1/4, 3/4); agent 1: (1/2, 1/2)
    act = jnp.array([[0.0, 1.0], [1.0, 0.0]])
    loglik, ent = inference.log_likelihood_and_entropy(spec, out, act)
    np.testing.assert_allclose(loglik, [math.log(0.75), math.log(0.5)], rtol=1e-6)
    h0 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    np.testing.assert_allclose(ent, [h0, math.log(2.0)], rtol=1e-6)

    cont = spec_of("MultiCartPole-v0", action_type="continuous")  # D = 1: outputs (mean, log-std)
    out = jnp.array([[0.0, 0.0], [math.atanh(0.5), math.log(0.5)]])
    act = jnp.array([[0.5], [0.5]])
    loglik, ent = inference.log_likelihood_and_entropy(cont, out, act)
    # N(0, 1) at 0.5, and N(0.5, 0.25) at its mean
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(loglik, [-(0.125 + half_log_2pi), -(math.log(0.5) + half_log_2pi)], rtol=1e-5)
    np.testing.assert_allclose(
        ent, [0.5 * math.log(2 * math.pi * math.e), math.log(0.5) + 0.5 * math.log(2 * math.pi * math.e)], rtol=1e-5
    )


def test_padded_choices_carry_no_likelihood_and_no_probability():
    spec = spec_of("paper:simple_speaker_listener")  # speaker 3 choices, listener 5: padded to 5
    assert spec.padded
    out = jnp.zeros((2, 5))
    loglik, ent = inference.log_likelihood_and_entropy(spec, out, jnp.eye(5)[jnp.array([0, 4])])
    np.testing.assert_allclose(loglik, [math.log(1 / 3), math.log(1 / 5)], rtol=1e-6)
    np.testing.assert_allclose(ent, [math.log(3), math.log(5)], rtol=1e-6)


def test_approximations_learn_each_other_agents_action_distribution_and_nothing_of_their_own():
    """Maximum likelihood on a batch in which agent 0 picks choice 1 with probability 0.8
    and agent 1 picks choice 0 with 0.3: after Adam steps on `inference.losses`, agent 1's
    approximation of agent 0 gives about 0.8, agent 0's of agent 1 about 0.3 (each reads the
    other's actions, not its own), and the diagonal never moves."""
    spec = spec_of("MultiCartPole-v0", action_type="discrete")
    c = Config(hidden_sizes=(16,), infer_entropy=1e-3)
    b = 4000
    k0, k1, k2 = jax.random.split(jax.random.key(0), 3)
    obs = jax.random.normal(k0, (b, 2, 4)) * 0.05
    a0 = (jax.random.uniform(k1, (b,)) < 0.8).astype(jnp.int32)
    a1 = (jax.random.uniform(k2, (b,)) >= 0.3).astype(jnp.int32)
    actions = jax.nn.one_hot(jnp.stack([a0, a1], 1), 2)
    opt = optax.adam(1e-2)
    approx = inference.init(c, spec, jax.random.key(1), opt)
    start = approx.params

    @jax.jit
    def step(params, state):
        g = jax.grad(lambda p: inference.losses(c, spec, p, obs, actions).sum())(params)
        u, state = jax.vmap(jax.vmap(opt.update))(g, state, params)
        return optax.apply_updates(params, u), state

    params, state = approx.params, approx.opt
    for _ in range(300):
        params, state = step(params, state)
    out = inference._outputs(c, spec, params, obs)  # [i, B, j, D]
    p = jax.nn.softmax(out, -1).mean(1)  # [i, j, D]
    assert abs(float(p[1, 0, 1]) - float(a0.mean())) < 0.03
    assert abs(float(p[0, 1, 0]) - float(1 - a1.mean())) < 0.03
    for i in range(2):  # the diagonal carries no loss
        for new, old in zip(jax.tree.leaves(params), jax.tree.leaves(start)):
            np.testing.assert_array_equal(new[i, i], old[i, i])


def test_critic_targets_take_the_approximations_for_others_and_the_own_target_actor_for_itself():
    """With every approximation (i, j) set to agent j's target actor (the same network for a
    discrete env without flat parameters), each critic's next joint action equals the target
    actors' own; with agent 1's approximations of agent 0 zeroed, only critic 1's slot 0
    changes (to the zero logits' first choice)."""
    c = Config(
        env="MultiCartPole-v0",
        env_kwargs={"action_type": "discrete", "num_agents": 3},
        infer_policies=True,
        flat_params=False,
        **TINY,
    )
    tr = make_trainer(c)
    agents = tr.init(c.key(0), c.hparams()).agents
    tiled = jax.tree.map(lambda x: jnp.broadcast_to(x[None], (3,) + x.shape), agents.target_actor)
    agents = agents.replace(approx=agents.approx.replace(target=tiled))
    next_obs = jax.random.normal(jax.random.key(2), (16, 3, 4))
    own = tr.learner.losses.target_actions(agents.target_actor, next_obs, jax.random.key(3), 1.0)
    per_critic, axis = next_actions_for_critics(tr.learner, agents, next_obs, jax.random.key(3), c.hparams())
    assert axis == 0 and per_critic.shape == (3,) + own.shape
    np.testing.assert_array_equal(per_critic, jnp.broadcast_to(own, per_critic.shape))

    zeroed = jax.tree.map(lambda x: x.at[1, 0].set(0.0), tiled)
    agents = agents.replace(approx=agents.approx.replace(target=zeroed))
    per_critic, _ = next_actions_for_critics(tr.learner, agents, next_obs, jax.random.key(3), c.hparams())
    expected = jnp.broadcast_to(own, per_critic.shape).at[1, :, 0].set(jnp.array([1.0, 0.0]))
    np.testing.assert_array_equal(per_critic, expected)


@pytest.mark.parametrize("action_type", ["discrete", "continuous"])
def test_inferred_policies_train_and_log_their_kl(action_type):
    c = Config(env="MultiCartPole-v0", env_kwargs={"action_type": action_type}, infer_policies=True, **TINY)
    tr = make_trainer(c)
    state, m = jax.jit(tr.train)(c.key(0), c.hparams())
    kl = np.asarray(m.interval_losses[:, 3])
    assert m.interval_losses.shape[-1] == 4 and np.all(np.isfinite(kl[-5:]))
    assert int(state.diverged_at) == -1
    # the approximations moved from their initialisation, off the diagonal only (the
    # diagonal up to the rounding between the two programs that initialised them)
    fresh = tr.init(c.key(0), c.hparams()).agents.approx.params
    moved = jax.tree.map(
        lambda a, b: np.abs(np.asarray(a) - np.asarray(b)).max(axis=tuple(range(2, a.ndim))),
        state.agents.approx.params,
        fresh,
    )
    moved = sum(jax.tree.leaves(moved))
    assert np.all(np.diag(moved) < 1e-5) and np.all(moved[~np.eye(2, dtype=bool)] > 1e-2)


@pytest.mark.parametrize("infer_batch", ["latest", "uniform"])
def test_inferred_policies_learn_from_the_latest_transitions_or_the_rounds_minibatch(infer_batch):
    """One update round moves the approximations exactly as one step of theirs on the buffer's
    last batch_size transitions (the paper's latest samples), or on the round's uniform
    minibatch; the two differ, so neither passes for the other."""
    from maddpg_jax import buffer as rb
    from maddpg_jax.update import lr_factor, update_approximations, update_round

    c = Config(env="MultiCartPole-v0", infer_policies=True, infer_batch=infer_batch, n_step=1, **TINY)
    tr = make_trainer(c)
    state = jax.jit(tr.init)(c.key(0), c.hparams())
    run = jax.jit(tr.run, static_argnames=("num_iterations", "learn"))
    state, _ = run(state, c.hparams(), num_iterations=40, learn=False)  # a buffer to draw from
    key, hp, updates = jax.random.key(5), c.hparams(), jnp.zeros((), jnp.int32)
    agents, _ = jax.jit(update_round, static_argnums=0)(tr.learner, state.agents, state.buffer, updates, key, hp)
    latest = rb.latest(state.buffer, tr.learner.batch_size)
    uniform = rb.sample(state.buffer, jax.random.split(key, 3)[0], tr.learner.batch_size)

    def step(batch):
        scale = lr_factor(tr.learner, updates)
        return jax.jit(update_approximations, static_argnums=0)(tr.learner, state.agents, batch, hp, scale)[0]

    want, other = (step(latest), step(uniform))[:: 1 if infer_batch == "latest" else -1]
    for got, w in zip(*(jax.tree.leaves(x.params) for x in (agents.approx, want))):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(w, o) for w, o in zip(*(jax.tree.leaves(x.params) for x in (want, other))))


def test_inferred_policies_learn_at_the_rate_infer_lr_names():
    """``infer_lr`` "critic": one step of the approximations is the step "actor" takes when the
    actors' rate is the critics'; at the actors' own rate it differs."""
    from maddpg_jax import buffer as rb
    from maddpg_jax.update import update_approximations

    c = Config(env="MultiCartPole-v0", infer_policies=True, actor_lr=1e-3, critic_lr=1e-2, n_step=1, **TINY)
    tr = make_trainer(c)
    state = jax.jit(tr.init)(c.key(0), c.hparams())
    state, _ = jax.jit(tr.run, static_argnames=("num_iterations", "learn"))(
        state, c.hparams(), num_iterations=40, learn=False
    )
    batch = rb.latest(state.buffer, tr.learner.batch_size)

    def step(config, **hp):
        learner = make_trainer(config).learner
        fn = jax.jit(update_approximations, static_argnums=0)
        return jax.tree.leaves(fn(learner, state.agents, batch, c.hparams().replace(**hp), 1.0)[0].params)

    at_critic = step(dataclasses.replace(c, infer_lr="critic"))
    for got, want in zip(at_critic, step(c, actor_lr=1e-2)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert any(not np.allclose(a, b) for a, b in zip(at_critic, step(c)))


# -- policy ensembles -------------------------------------------------------------------------


def test_sub_policies_are_drawn_per_team_and_cover_the_ensemble():
    spec = spec_of("paper:simple_adversary")  # adversary (0,), agents (1, 2)
    spec = AgentSpec(**{**spec.__dict__, "ensemble_size": 3})
    index = np.asarray(acting.draw_sub_policies(spec, jax.random.key(0), 6000))
    assert index.shape == (6000, 3) and index.dtype == np.int32
    np.testing.assert_array_equal(index[:, 1], index[:, 2])  # one team, one sub-policy
    assert 0.3 < np.mean(index[:, 0] != index[:, 1]) < 0.9  # the two teams draw apart (2/3 expected)
    for team in (0, 1):
        counts = np.bincount(index[:, team], minlength=3)
        assert counts.sum() == 6000 and np.all(np.abs(counts - 2000) < 200)


def test_each_env_keeps_its_sub_policies_for_an_episode_and_draws_again_at_the_next():
    """paper:simple_tag (25-step episodes, every env in step): the index of every env holds
    for the 25 steps of an episode and is drawn again when it ends; the predators share
    theirs; every transition stores the index that acted."""
    c = Config(env="paper:simple_tag", ensemble_size=4, **{**TINY, "warmup_env_steps": 10_000})
    tr = make_trainer(c)
    state = jax.jit(tr.init)(c.key(0), c.hparams())
    run = jax.jit(tr.run, static_argnames=("num_iterations", "learn"))
    first = np.asarray(state.sub_policy)
    np.testing.assert_array_equal(first[:, 0], first[:, 1])
    np.testing.assert_array_equal(first[:, 0], first[:, 2])
    state, _ = run(state, c.hparams(), num_iterations=24, learn=False)
    np.testing.assert_array_equal(state.sub_policy, first)  # 24 steps: the first episodes go on
    stored = np.asarray(state.buffer.data.index[: 24 * c.num_envs]).reshape(24, c.num_envs, 4)
    assert np.all(stored == first[None])
    state, _ = run(state, c.hparams(), num_iterations=1, learn=False)  # step 25 ends every episode
    second = np.asarray(state.sub_policy)
    assert np.mean(second != first) > 0.5  # 3 in 4 redrawn indices differ, 32 envs x 4 agents
    np.testing.assert_array_equal(second[:, 0], second[:, 2])


def test_a_sub_policys_update_reads_only_the_transitions_it_collected():
    """The actor loss's gradient for agent 0's sub-policy 0 is the same when every
    transition that another of its sub-policies collected is replaced by noise; its
    sub-policy 1's gradient is not."""
    c = Config(env="MultiCartPole-v0", ensemble_size=2, **TINY)
    tr = make_trainer(c)
    agents = jax.jit(tr.init)(c.key(0), c.hparams()).agents
    b = 64
    keys = jax.random.split(jax.random.key(1), 6)
    index = jax.random.randint(keys[0], (b, 2), 0, 2)
    batch = Transition(
        obs=jax.random.normal(keys[1], (b, 2, 4)),
        action=jax.random.uniform(keys[2], (b, 2, 1), minval=-1, maxval=1),
        reward=jnp.ones((b, 2)),
        next_obs=jax.random.normal(keys[3], (b, 2, 4)),
        terminated=jnp.zeros((b, 2)),
        index=index,
    )
    other = index[:, 0] != 0
    noisy = batch._replace(
        obs=jnp.where(other[:, None, None], jax.random.normal(keys[4], (b, 2, 4)) * 3, batch.obs),
        action=jnp.where(other[:, None, None], -batch.action, batch.action),
    )

    @jax.jit
    def grads(batch):
        f = lambda p: tr.learner.losses.actor_losses(p, agents.critic, batch, jax.random.key(2), 1.0)[0]
        return jax.grad(f)(agents.actor)  # leaves [A, K, P]

    g, g_noisy = grads(batch), grads(noisy)
    np.testing.assert_allclose(g[0, 0], g_noisy[0, 0], rtol=1e-5, atol=1e-7)
    assert np.abs(np.asarray(g[0, 1])).max() > 0 and not np.allclose(g[0, 1], g_noisy[0, 1])
    assert np.all(np.asarray(g[1]) == 0)  # agent 0's loss moves agent 0's actors only


def strip_times(path):
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("wall_s", "compute_s", "host_s")} for r in rows]


def test_an_ensemble_resumes_exactly_and_its_policy_plays_a_fixed_or_drawn_sub_policy(tmp_path):
    import maddpg_jax
    from maddpg_jax.errors import UsageError

    c = Config(
        env="paper:simple_adversary",
        ensemble_size=2,
        infer_policies=True,
        lr_decay="none",
        **{**TINY, "total_env_steps": 640},
    )
    maddpg_jax.train(c, tmp_path / "straight", progress=False)
    maddpg_jax.train(c.replace(total_env_steps=400), tmp_path / "resumed", progress=False)
    maddpg_jax.train(c, tmp_path / "resumed", resume=True, progress=False)
    assert strip_times(tmp_path / "resumed" / "metrics.jsonl") == strip_times(tmp_path / "straight" / "metrics.jsonl")

    fixed = maddpg_jax.load_policy(tmp_path / "straight", sub_policy=1)
    obs = {a: np.full(fixed.env.obs_sizes[i], 0.3, np.float32) for i, a in enumerate(fixed.agents)}
    actions = fixed(obs)
    padded = jnp.asarray(fixed.padded_obs(obs))
    one = jax.tree.map(lambda x: x[:, 1], fixed.actor_params)  # every agent's sub-policy 1
    plain = fixed.trainer.spec.__class__(**{**fixed.trainer.spec.__dict__, "ensemble_size": 1})
    expected = acting.greedy_env_actions(plain, fixed.trainer.networks, one, padded)
    assert [actions[a] for a in fixed.agents] == [int(x) for x in np.asarray(expected)]
    drawn = maddpg_jax.load_policy(tmp_path / "straight", seed=3)
    seen = set()
    for _ in range(20):
        drawn.reset()
        seen.add(tuple(drawn.index))
    assert seen <= {(0, 0, 0), (0, 1, 1), (1, 0, 0), (1, 1, 1)} and len(seen) == 4
    with pytest.raises(UsageError, match=r"sub_policy: must be in \[0, 1\]"):
        maddpg_jax.load_policy(tmp_path / "straight", sub_policy=2)
    from maddpg_jax.evaluation import evaluate

    summary = evaluate(tmp_path / "straight", 4, 0, 5, None, sub_policy=1)
    assert summary["sub_policy"] == 1 and summary["episodes"] == 4
    with pytest.raises(UsageError, match=r"--sub-policy: must be in \[0, 1\]"):
        evaluate(tmp_path / "straight", 4, 0, 5, None, sub_policy=-1)


def test_an_ensemble_sweeps_as_one_program():
    c = Config(env="MultiCartPole-v0", ensemble_size=3, **TINY)
    tr = make_trainer(c)
    members = 2
    keys = jax.vmap(c.key)(jnp.arange(members))
    hp = jax.tree.map(lambda x: jnp.stack([x] * members), c.hparams())
    state, m = jax.jit(jax.vmap(tr.train))(keys, hp)
    assert jax.tree.leaves(state.agents.actor)[0].shape[:3] == (members, 2, 3)
    assert state.sub_policy.shape == (members, c.num_envs, 2)
    assert np.all(np.isfinite(np.asarray(m.critic_loss)[:, -10:]))


def test_a_run_saved_before_the_extensions_existed_resumes_as_it_ran():
    """A checkpoint's config written before ensemble_size, infer_policies, infer_entropy,
    infer_batch and infer_lr existed is the same config as today's with them at one policy and no inference."""
    from maddpg_jax.config import changed_on_resume

    now = Config(env="paper:simple_adversary", **TINY).to_dict()
    added = ("ensemble_size", "infer_policies", "infer_entropy", "infer_batch", "infer_lr")
    old = {k: v for k, v in now.items() if k not in added}
    assert changed_on_resume(old, now) == []
    assert Config.from_dict(old) == Config(env="paper:simple_adversary", **TINY)
    assert [c[0] for c in changed_on_resume(old, {**now, "ensemble_size": 2})] == ["ensemble_size"]
    # a run with inferred policies saved before infer_batch fitted them on the uniform minibatch
    inferred = {**now, "infer_policies": True}
    old = {k: v for k, v in inferred.items() if k != "infer_batch"}
    assert Config.from_dict(old).infer_batch == "uniform"
    assert changed_on_resume(old, inferred) == [("infer_batch", "uniform", "latest")]
