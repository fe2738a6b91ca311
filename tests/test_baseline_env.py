"""The PyTorch baseline's numpy env is the same MultiCartPole as ours (so the comparison in
benchmarks/compare.py measures the same problem)."""

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.baselines.torch_maddpg.env import NumpyMultiCartPole
from maddpg_jax import envs
from maddpg_jax.envs.multi_cartpole import EnvState


def test_numpy_baseline_env_steps_like_ours():
    env, params = envs.make("MultiCartPole-v0", num_agents=3, coupling=1.0)
    ref = NumpyMultiCartPole(num_envs=64, num_agents=3, coupling=1.0, seed=0)
    ref.reset()
    rng = np.random.default_rng(0)
    step = jax.jit(jax.vmap(env.step, in_axes=(None, 0, 0, None)))
    ends = 0
    for t in range(300):
        before = ref.state.copy()
        times = ref.t.copy()
        a = rng.uniform(-1.2, 1.2, size=(64, 3)).astype(np.float32)
        _, rew, term, trunc, final = ref.step(a)
        state = EnvState.from_carts(jnp.asarray(before, jnp.float32), jnp.asarray(times, jnp.int32))
        _, _, r2, te2, tr2, info = step(jax.random.key(t), state, jnp.asarray(a)[..., None], params)
        np.testing.assert_allclose(info["final_observation"], final, atol=2e-5)
        np.testing.assert_array_equal(te2[:, 0], term)
        np.testing.assert_array_equal(tr2[:, 0], trunc)
        np.testing.assert_array_equal(r2, rew)
        ends += int(term.sum())
    assert ends > 50
