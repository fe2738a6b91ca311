"""The Gym-style face: ``gymnasium.make("maddpg_jax/NAME")`` with per-agent tuples and lists,
checked with gymnasium's env checks that apply to it and with a plain ma-gym-style loop."""

import gymnasium
import numpy as np
import pytest
from gymnasium.utils import env_checker

import maddpg_jax.envs.gym  # noqa: F401  (registers maddpg_jax/<name>)
from maddpg_jax.envs.pettingzoo import parallel_env


@pytest.mark.parametrize("name, kwargs", [("MultiCartPole-v0", {"num_agents": 3}), ("paper-simple_tag", {})])
def test_gymnasium_checks_that_apply_pass(name, kwargs):
    """gymnasium's checks of spaces, reset's return type, seeding and options; and its step
    determinism check done here (gymnasium's own, like its whole check_env, reads a per-agent
    list of flags as one truthy flag, so it does not apply)."""
    env = gymnasium.make(f"maddpg_jax/{name}", **kwargs).unwrapped
    env_checker.check_observation_space(env.observation_space)
    env_checker.check_action_space(env.action_space)
    env_checker.check_reset_return_type(env)
    env_checker.check_reset_seed_determinism(env)
    env_checker.check_reset_options(env)
    action = env.action_space.sample()
    steps = []
    for _ in range(2):
        env.reset(seed=7)
        steps.append(env.step(action))
    for a, b in zip(*steps):
        assert gymnasium.utils.env_checker.data_equivalence(a, b, exact=True)
    assert env.observation_space.contains(steps[0][0])


def test_a_plain_loop_matches_the_pettingzoo_face():
    """ma-gym's loop over tuples and lists: n_agents, per-agent spaces, an episode of
    CartPole-v1 carts (uncoupled) that ends for all agents at once, rewards per agent; the
    same seed and actions give the PettingZoo face's observations and rewards."""
    env = gymnasium.make("maddpg_jax/MultiCartPole-v0", num_agents=2, coupling=0.0, action_type="discrete")
    assert env.unwrapped.n_agents == 2 and len(env.observation_space) == 2
    assert env.action_space[0] == gymnasium.spaces.Discrete(2)
    pz = parallel_env("MultiCartPole-v0", num_agents=2, coupling=0.0, action_type="discrete")
    obs_n, _ = env.reset(seed=3)
    pz_obs, _ = pz.reset(seed=3)
    rng = np.random.default_rng(0)
    steps, total = 0, np.zeros(2)
    while True:
        act_n = [int(a) for a in rng.integers(0, 2, 2)]
        np.testing.assert_array_equal(obs_n[1], pz_obs["cart_1"])
        obs_n, reward_n, terminated_n, truncated_n, _ = env.step(act_n)
        pz_obs, pz_rew, *_ = pz.step(dict(zip(pz.possible_agents, act_n)))
        assert isinstance(reward_n, list) and reward_n == [pz_rew["cart_0"], pz_rew["cart_1"]]
        total += reward_n
        steps += 1
        if all(terminated_n) or all(truncated_n):
            break
        assert not any(terminated_n)  # the team ends together
    assert total.tolist() == [steps, steps] and 5 < steps < 500
    with pytest.raises(ValueError, match="expected 2 actions"):
        env.step([0])
