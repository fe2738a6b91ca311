"""The MADDPG paper's extensions: policies inferred from actions (Section 4.2) and policy
ensembles (Section 4.3)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from maddpg_jax import Config, envs, inference, make_trainer
from maddpg_jax.acting import AgentSpec
from maddpg_jax.update import next_actions_for_critics

TINY = dict(
    num_envs=8,
    batch_size=32,
    buffer_size=2048,
    updates_per_step=1,
    total_env_steps=800,
    warmup_env_steps=160,
    hidden_sizes=(16, 16),
    eval_episodes=2,
    eval_every=400,
)


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
