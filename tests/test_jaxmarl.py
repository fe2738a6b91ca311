"""JaxMARL environments through the adapter (jaxmarl is a dev dependency)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs

jaxmarl = pytest.importorskip("jaxmarl")


@pytest.fixture(scope="module")
def spread():
    return envs.make("jaxmarl:MPE_simple_spread_v3", action_type="continuous")


def test_shapes_and_dtypes_simple_spread(spread):
    env, params = spread
    assert (env.num_agents, env.obs_dim, env.act_dim, env.action_type) == (3, 18, 5, "continuous")
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.shape == (3, 18) and obs.dtype == jnp.float32
    out = jax.jit(env.step)(jax.random.key(1), state, jnp.zeros((3, 5)), params)
    obs, _, reward, term, trunc, info = out
    assert obs.shape == (3, 18) and reward.shape == (3,) and reward.dtype == jnp.float32
    assert term.dtype == bool and trunc.shape == (3,) and info["final_observation"].shape == (3, 18)
    space = env.action_space(params)
    assert space.shape == (3, 5) and float(space.low) == -1.0


def test_unequal_observation_lengths_are_padded():
    env, params = envs.make("jaxmarl:MPE_simple_adversary_v3", action_type="continuous")
    assert env.obs_sizes == [8, 10, 10] and env.obs_dim == 10
    raw, _ = env.env.reset(jax.random.key(0))
    obs, _ = env.reset(jax.random.key(0), params)
    np.testing.assert_array_equal(obs[0, :8], raw[env.agents[0]])
    np.testing.assert_array_equal(obs[0, 8:], 0.0)
    np.testing.assert_array_equal(obs[1], raw[env.agents[1]])


def test_continuous_actions_map_onto_the_box():
    env, _ = envs.make("jaxmarl:MPE_simple_spread_v3", action_type="continuous")
    mapped = env._env_actions(jnp.array([[-1.0] * 5, [1.0] * 5, [0.0] * 5]))
    low, high = env.env.action_space(env.agents[0]).low, env.env.action_space(env.agents[0]).high
    np.testing.assert_allclose(mapped[env.agents[0]], np.broadcast_to(low, (5,)))
    np.testing.assert_allclose(mapped[env.agents[1]], np.broadcast_to(high, (5,)))
    np.testing.assert_allclose(mapped[env.agents[2]], (np.broadcast_to(low, (5,)) + high) / 2)
    with pytest.raises(ValueError, match=r"\(3, 5\)"):
        env._env_actions(jnp.zeros((3, 2)))


def test_episode_end_is_truncation_and_keeps_the_true_final_observation(spread):
    env, params = spread

    @jax.jit
    def run(key):
        obs, state = env.reset(key, params)

        def body(carry, k):
            state = carry
            raw_obs, _, _, _, _ = env.env.step_env(jax.random.split(k)[0], state, env._env_actions(jnp.full((3, 5), 0.3)))
            obs, state, r, te, tr, info = env.step(k, state, jnp.full((3, 5), 0.3), params)
            return state, (obs, te, tr, info["final_observation"], env._stack_obs(raw_obs))

        return jax.lax.scan(body, state, jax.random.split(key, 60))[1]

    obs, term, trunc, final, raw = jax.device_get(run(jax.random.key(3)))
    ends = np.flatnonzero(trunc[:, 0])
    assert len(ends) == 2 and not term.any()  # time limit only: truncation, never termination
    np.testing.assert_allclose(final, raw, atol=1e-6)  # the true last observation, every step
    for t in ends:
        assert not np.allclose(obs[t], final[t])  # the returned one is the next episode's first
    assert ends[1] - ends[0] == ends[0] + 1  # same episode length each time


def test_jitted_vmapped_rollout_and_a_short_training_run(spread):
    from maddpg_jax import Config, make_trainer

    env, params = spread
    venv = envs.VecEnv(env, 8)
    obs, state = venv.reset(jax.random.key(0), params)

    @jax.jit
    def roll(state, key):
        def body(s, k):
            a = jax.random.uniform(k, (8, 3, 5), minval=-1, maxval=1)
            o, s, r, te, tr, info = venv.step(k, s, a, params)
            return s, r.sum()
        return jax.lax.scan(body, state, jax.random.split(key, 30))[1]

    assert np.isfinite(roll(state, jax.random.key(1))).all()
    c = Config(env="jaxmarl:MPE_simple_spread_v3", num_envs=8, batch_size=32, buffer_size=1024, updates_per_step=1,
               total_env_steps=480, warmup_env_steps=160, hidden_sizes=(16, 16))
    tr = make_trainer(c)
    assert tr.env.num_agents == 3
    _, m = jax.jit(tr.train)(jax.random.key(0), c.hparams())
    assert np.isfinite(m["critic_loss"][-1]) and np.isfinite(m["mean_return"][-1])


def test_missing_or_unknown_jaxmarl_env_is_a_clear_error():
    with pytest.raises(ValueError, match="jaxmarl cannot make 'MPE_nonexistent'"):
        envs.make("jaxmarl:MPE_nonexistent")


def test_cli_uses_mpe_defaults_unless_a_flag_overrides(monkeypatch):
    from maddpg_jax import cli, session

    seen = {}
    monkeypatch.setattr(session.Session, "run", lambda self: seen.setdefault("config", self.config) and 0)
    assert cli.main(["train", "--env", "jaxmarl:MPE_simple_spread_v3", "--gamma", "0.9", "--out", "/nonexistent/x"]) == 0
    c = seen["config"]
    assert (c.gamma, c.actor_lr, c.batch_size) == (0.9, 1e-2, 1024)
