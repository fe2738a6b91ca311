"""MultiCartPole-v0 against gymnasium, hand-worked values and its contract."""

import math

import chex
import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maddpg_jax import envs
from maddpg_jax.envs import fast_random
from maddpg_jax.envs.multi_cartpole import EnvState, sincos


def _time_limit(genv):
    while not isinstance(genv, gym.wrappers.TimeLimit):
        genv = genv.env
    return genv


def test_single_uncoupled_cart_is_gymnasium_cartpole_v1_step_for_step():
    """Lockstep over 6,000 random steps with ~250 episode ends and ~30 truncations."""
    n = 6000
    env, params = envs.make("MultiCartPole-v0", num_agents=1, coupling=0.0, action_type="discrete")
    k_act, k_jump, k_reset, k_run = jax.random.split(jax.random.key(0), 4)
    actions = jax.random.randint(k_act, (n, 1), 0, 2, jnp.int32)
    # Jump the clock to 499 now and then so truncation at 500 is exercised too.
    jump = jax.random.uniform(k_jump, (n,)) < 0.01

    @jax.jit
    def rollout(key):
        _, state = env.reset(k_reset, params)

        def body(carry, xs):
            state, key = carry
            action, j = xs
            state = state.replace(time=jnp.where(j, 499, state.time))
            key, k = jax.random.split(key)
            obs, nxt, r, te, tr, info = env.step(k, state, action, params)
            return (nxt, key), (state, obs, r, te, tr, info["final_observation"])

        return jax.lax.scan(body, (state, key), (actions, jump))[1]

    before, obs, rew, term, trunc, final = jax.device_get(rollout(k_run))
    carts = np.asarray(EnvState.carts.fget(before))  # [n, 1, 4]

    genv = gym.make("CartPole-v1")
    genv.reset(seed=0)
    limit, core = _time_limit(genv), genv.unwrapped
    for t in range(n):
        core.state = carts[t, 0].astype(np.float64)
        core.steps_beyond_terminated = None
        limit._elapsed_steps = int(before.time[t])
        g_obs, g_rew, g_term, g_trunc, _ = genv.step(int(actions[t, 0]))
        np.testing.assert_allclose(final[t, 0], g_obs, rtol=1e-6, atol=1e-5, err_msg=f"step {t}")
        assert rew[t, 0] == g_rew, t
        assert bool(term[t, 0]) == g_term, t
        assert bool(trunc[t, 0]) == g_trunc, t
        if not (g_term or g_trunc):
            np.testing.assert_array_equal(obs[t], final[t])
    assert term.sum() > 150 and trunc.sum() > 20  # the test really saw many episode ends


def _state(carts, time=0):
    return EnvState.from_carts(jnp.asarray(carts, jnp.float32), time)


def test_spring_force_matches_hand_worked_values():
    # At theta = theta_dot = 0 CartPole's equations reduce to (with M = 1.1, m l = 0.05,
    # l (4/3 - m/M) = 41/66): theta_acc = -(F/M) / (41/66) = -60 F / 41 and
    # x_acc = F/M + 0.05 * (60 F / 41) / M = 40 F / 41.
    # Carts at x = (0, 0.1, 0.3), k = 1, no push: F = (0.1, -0.1 + 0.2, -0.2) = (0.1, 0.1, -0.2).
    env, params = envs.make("MultiCartPole-v0", num_agents=3, coupling=1.0)
    carts = [[0.0, 0, 0, 0], [0.1, 0, 0, 0], [0.3, 0, 0, 0]]
    _, _, _, _, _, info = env.step(jax.random.key(0), _state(carts), jnp.zeros((3, 1)), params)
    f = np.array([0.1, 0.1, -0.2])
    expected = np.stack([[0.0, 0.1, 0.3], 0.02 * 40 / 41 * f, np.zeros(3), -0.02 * 60 / 41 * f], -1)
    np.testing.assert_allclose(info["final_observation"], expected, atol=1e-7)

    # k = 2.5 and a push u = 10 * 0.4 on the middle cart: F = (0.25, 4 + 0.25, -0.5).
    params = params.replace(coupling=2.5)
    actions = jnp.array([[0.0], [0.4], [0.0]])
    _, _, _, _, _, info = env.step(jax.random.key(0), _state(carts), actions, params)
    f = np.array([0.25, 4.25, -0.5])
    np.testing.assert_allclose(info["final_observation"][:, 1], 0.02 * 40 / 41 * f, atol=1e-6)
    np.testing.assert_allclose(info["final_observation"][:, 3], -0.02 * 60 / 41 * f, atol=1e-6)


def _reference_step(carts, u, k):
    """Independent float64 implementation of the design's equations, for 3+ carts."""
    x, xd, th, thd = carts.T
    left = np.r_[x[0], x[:-1]]
    right = np.r_[x[1:], x[-1]]
    f = u + k * (left - x) + k * (right - x)
    c, s = np.cos(th), np.sin(th)
    temp = (f + 0.05 * thd**2 * s) / 1.1
    tha = (9.8 * s - c * temp) / (0.5 * (4 / 3 - 0.1 * c**2 / 1.1))
    xa = temp - 0.05 * tha * c / 1.1
    return np.stack([x + 0.02 * xd, xd + 0.02 * xa, th + 0.02 * thd, thd + 0.02 * tha], -1)


def test_coupled_carts_follow_the_spring_formula_over_several_steps():
    env, params = envs.make("MultiCartPole-v0", num_agents=3, coupling=1.7)
    rng = np.random.default_rng(1)
    carts = np.array([[-0.3, 0.2, 0.05, -0.1], [0.4, -0.5, -0.08, 0.3], [1.0, 0.1, 0.02, 0.0]])
    state = _state(carts)
    for t in range(5):
        a = rng.uniform(-1, 1, size=(3, 1))
        _, state, _, term, _, _ = env.step(jax.random.key(t), state, jnp.asarray(a, jnp.float32), params)
        carts = _reference_step(carts, 10 * a[:, 0], 1.7)
        assert not term.any()
        np.testing.assert_allclose(state.carts, carts, atol=2e-6)


def test_termination_is_the_teams_and_final_observation_is_true():
    env, params = envs.make("MultiCartPole-v0", num_agents=2, coupling=0.0)
    # Cart 1 leaves the track (2.39 + 0.02 * 1.0 > 2.4); cart 0 is fine.
    state = _state([[0.0, 0, 0, 0], [2.39, 1.0, 0, 0]], time=17)
    obs, nxt, rew, term, trunc, info = env.step(jax.random.key(3), state, jnp.zeros((2, 1)), params)
    assert term.tolist() == [True, True] and trunc.tolist() == [False, False]
    assert rew.tolist() == [1.0, 1.0]
    np.testing.assert_allclose(info["final_observation"][1, 0], 2.41, atol=1e-6)
    assert int(nxt.time) == 0
    assert np.all(np.abs(obs) <= 0.05) and not np.allclose(obs, info["final_observation"])
    np.testing.assert_array_equal(obs, nxt.carts)

    # A pole past 12 degrees ends the episode too.
    state = _state([[0.0, 0, 0.2094, 0.5], [0, 0, 0, 0]])
    _, _, _, term, _, _ = env.step(jax.random.key(4), state, jnp.zeros((2, 1)), params)
    assert term.all()


def test_truncation_at_max_steps_not_before():
    env, params = envs.make("MultiCartPole-v0", num_agents=2)
    state = _state(np.zeros((2, 4)), time=498)
    _, state, _, term, trunc, _ = env.step(jax.random.key(0), state, jnp.zeros((2, 1)), params)
    assert not trunc.any() and int(state.time) == 499
    obs, state, _, term, trunc, info = env.step(jax.random.key(1), state, jnp.zeros((2, 1)), params)
    assert trunc.all() and not term.any() and int(state.time) == 0
    env, params = envs.make("MultiCartPole-v0", num_agents=2, max_steps=3)
    _, state = env.reset(jax.random.key(2), params)
    truncs = []
    for t in range(6):
        _, state, _, _, trunc, _ = env.step(jax.random.key(t), state, jnp.zeros((2, 1)), params)
        truncs.append(bool(trunc[0]))
    assert truncs == [False, False, True, False, False, True]


def test_continuous_actions_are_clipped():
    env, params = envs.make("MultiCartPole-v0", num_agents=2)
    state = _state([[0.1, 0.2, 0.01, -0.1], [-0.1, 0, 0.02, 0.1]])
    step = lambda a: env.step(jax.random.key(0), state, jnp.asarray(a, jnp.float32), params)[1].carts
    np.testing.assert_array_equal(step([[5.0], [-3.0]]), step([[1.0], [-1.0]]))
    assert not np.allclose(step([[0.5], [-0.5]]), step([[1.0], [-1.0]]))


def test_discrete_actions_push_left_and_right():
    env, params = envs.make("MultiCartPole-v0", num_agents=2, coupling=0.0, action_type="discrete")
    state = _state(np.zeros((2, 4)))
    _, nxt, *_ = env.step(jax.random.key(0), state, jnp.array([0, 1]), params)
    np.testing.assert_allclose(nxt.x_dot, [-0.02 * 40 / 41 * 10, 0.02 * 40 / 41 * 10], rtol=1e-6)


def test_global_observation_mode_and_spaces():
    env, params = envs.make("MultiCartPole-v0", num_agents=3, obs_mode="global")
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.shape == (3, 12) and env.obs_dim == 12
    for i in range(3):
        np.testing.assert_array_equal(obs[i], state.carts.reshape(-1))
    assert env.observation_space(params).contains(obs)
    assert env.observation_space(params).shape == (3, 12)
    space = env.action_space(params)
    assert space.shape == (3, 1) and float(space.low) == -1.0 and float(space.high) == 1.0
    assert space.contains(np.zeros((3, 1), np.float32)) and not space.contains(np.zeros((3, 2)))
    denv, _ = envs.make("MultiCartPole-v0", num_agents=3, action_type="discrete")
    assert denv.action_space(params).n == 2 and denv.action_space(params).shape == (3,)


def test_reset_is_uniform_within_bounds_and_keyed():
    env, params = envs.make("MultiCartPole-v0", num_agents=2)
    obs, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), 4000), params)
    assert obs.shape == (4000, 2, 4)
    assert np.all(np.abs(obs) <= 0.05)
    # Uniform on [-0.05, 0.05]: mean 0, std 0.1 / sqrt(12).
    assert abs(float(obs.mean())) < 0.001 and abs(float(obs.std()) - 0.1 / math.sqrt(12)) < 0.001


def test_vec_env_shapes_and_auto_reset_noise_in_bounds():
    env, params = envs.make("MultiCartPole-v0", num_agents=2)
    venv = envs.VecEnv(env, 64)
    obs, state = venv.reset(jax.random.key(0), params)
    assert obs.shape == (64, 2, 4) and venv.num_agents == 2

    @jax.jit
    def run(state, key):
        def body(state, k):
            a = jax.random.uniform(k, (64, 2, 1), minval=-1, maxval=1)
            obs, state, rew, term, trunc, info = venv.step(k, state, a, params)
            return state, (obs, rew, term, trunc, info["final_observation"], state.time)

        return jax.lax.scan(body, state, jax.random.split(key, 200))[1]

    obs, rew, term, trunc, final, time = run(state, jax.random.key(1))
    assert obs.shape == (200, 64, 2, 4) and rew.shape == (200, 64, 2) and term.dtype == bool
    done = np.asarray(term[..., 0])
    assert done.sum() > 100
    fresh = np.asarray(obs)[done]
    assert np.all(np.abs(fresh) <= 0.05)
    assert np.all(np.asarray(time)[done] == 0)
    # Fresh starts are spread over the whole box, not a few repeated values.
    assert len(np.unique(fresh[:, :, 0])) > 0.99 * fresh[:, :, 0].size
    assert abs(fresh.mean()) < 0.005


def test_vmapped_couplings_in_one_call_without_retracing():
    env, params = envs.make("MultiCartPole-v0", num_agents=3)
    state = _state([[-0.2, 0, 0, 0], [0.0, 0, 0, 0], [0.3, 0, 0, 0]])

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step_many(ks):
        p = params.replace(coupling=ks)
        axes = jax.tree.map(lambda _: None, params).replace(coupling=0)  # map k only
        vstep = jax.vmap(env.step, in_axes=(None, None, None, axes))
        return vstep(jax.random.key(0), state, jnp.zeros((3, 1)), p)[1].x_dot

    a = step_many(jnp.array([0.0, 1.0, 2.0]))
    b = step_many(jnp.array([0.5, 3.0, 4.0]))
    assert a.shape == (3, 3)
    np.testing.assert_allclose(a[0], 0.0, atol=1e-7)  # k = 0: nothing moves
    # Spring force on cart 0 is k * 0.2: x_dot = 0.02 * 40 / 41 * k * 0.2.
    np.testing.assert_allclose(a[1:, 0], 0.02 * 40 / 41 * 0.2 * np.array([1.0, 2.0]), rtol=1e-5)
    np.testing.assert_allclose(b[:, 0], 0.02 * 40 / 41 * 0.2 * np.array([0.5, 3.0, 4.0]), rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(num_agents=0), ["num_agents", "0", ">= 1"]),
        (dict(coupling=-1.0), ["coupling", "-1.0", ">= 0"]),
        (dict(max_steps=0), ["max_steps", "0", ">= 1"]),
        (dict(action_type="box"), ["action_type", "'box'", "continuous", "discrete"]),
        (dict(obs_mode="partial"), ["obs_mode", "'partial'", "local", "global"]),
        (dict(gravity_x=1.0), ["gravity_x", "takes", "coupling"]),
    ],
)
def test_bad_parameters_raise_naming_the_value(kwargs, words):
    with pytest.raises(ValueError) as err:
        envs.make("MultiCartPole-v0", **kwargs)
    for w in words:
        assert w in str(err.value)


def test_unknown_env_lists_known_names():
    with pytest.raises(ValueError, match="MultiCartPole-v0") as err:
        envs.make("CartPole-v9")
    assert "CartPole-v9" in str(err.value)


def test_wrong_action_shape_fails_at_trace_time_showing_expected_shape():
    env, params = envs.make("MultiCartPole-v0", num_agents=2)
    _, state = env.reset(jax.random.key(0), params)
    with pytest.raises(ValueError, match=r"expects actions of shape \(2, 1\), got \(3, 1\)"):
        jax.jit(env.step)(jax.random.key(0), state, jnp.zeros((3, 1)), params)
    venv = envs.VecEnv(env, 4)
    _, vstate = venv.reset(jax.random.key(0), params)
    with pytest.raises(ValueError, match=r"\(2, 1\), got \(2,\)"):
        jax.jit(venv.step)(jax.random.key(0), vstate, jnp.zeros((4, 2)), params)


def test_sincos_matches_numpy_over_many_turns():
    t = np.concatenate([np.linspace(-40, 40, 200001), np.linspace(-0.25, 0.25, 10001)]).astype(np.float32)
    s, c = jax.jit(sincos)(jnp.asarray(t))
    np.testing.assert_allclose(s, np.sin(t.astype(np.float64)), atol=3e-6)
    np.testing.assert_allclose(c, np.cos(t.astype(np.float64)), atol=3e-6)
    small = np.abs(t) < 0.25  # where the pole lives: near float32 rounding
    np.testing.assert_allclose(s[small], np.sin(t[small].astype(np.float64)), atol=2e-7)


def test_fast_uniform_is_uniform_and_keyed():
    u = np.asarray(fast_random.uniform(jax.random.key(0), (200_000,)))
    v = np.asarray(fast_random.uniform(jax.random.key(1), (200_000,)))
    assert u.min() >= 0 and u.max() < 1
    counts = np.histogram(u, bins=20, range=(0, 1))[0]
    assert np.all(np.abs(counts - 10_000) < 500)  # ~5 sigma
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01  # neighbours uncorrelated
    assert abs(np.corrcoef(u, v)[0, 1]) < 0.01 and not np.array_equal(u, v)
