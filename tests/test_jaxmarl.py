"""JaxMARL environments through the adapter (jaxmarl is a dev dependency: a missing one is
an error here, not a skip, since CI installs [dev])."""

import jax
import jax.numpy as jnp
import jaxmarl  # noqa: F401  (fails loudly when the [dev] install is broken)
import numpy as np
import pytest

from maddpg_jax import envs
from maddpg_jax.envs.jaxmarl_adapter import MPE_SCENARIOS


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
    assert env.obs_sizes == (8, 10, 10) and env.obs_dim == 10
    raw, _ = env.env.reset(jax.random.key(0))
    obs, _ = env.reset(jax.random.key(0), params)
    np.testing.assert_array_equal(obs[0, :8], raw[env.agents[0]])
    np.testing.assert_array_equal(obs[0, 8:], 0.0)
    np.testing.assert_array_equal(obs[1], raw[env.agents[1]])


def test_continuous_actions_map_onto_the_box():
    env, _ = envs.make("jaxmarl:MPE_simple_spread_v3", action_type="continuous")
    mapped = env.env_actions(jnp.array([[-1.0] * 5, [1.0] * 5, [0.0] * 5]))
    low, high = env.env.action_space(env.agents[0]).low, env.env.action_space(env.agents[0]).high
    np.testing.assert_allclose(mapped[env.agents[0]], np.broadcast_to(low, (5,)))
    np.testing.assert_allclose(mapped[env.agents[1]], np.broadcast_to(high, (5,)))
    np.testing.assert_allclose(mapped[env.agents[2]], (np.broadcast_to(low, (5,)) + high) / 2)
    with pytest.raises(ValueError, match=r"\(3, 5\)"):
        env.env_actions(jnp.zeros((3, 2)))


def test_episode_end_is_truncation_and_keeps_the_true_final_observation(spread):
    env, params = spread

    @jax.jit
    def run(key):
        obs, state = env.reset(key, params)

        def body(carry, k):
            state = carry
            raw_obs, _, _, _, _ = env.env.step_env(
                jax.random.split(k)[0], state, env.env_actions(jnp.full((3, 5), 0.3))
            )
            obs, state, r, te, tr, info = env.step(k, state, jnp.full((3, 5), 0.3), params)
            return state, (obs, te, tr, info["final_observation"], env.stack_obs(raw_obs))

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
    c = Config(
        env="jaxmarl:MPE_simple_spread_v3",
        num_envs=8,
        batch_size=32,
        buffer_size=1024,
        updates_per_step=1,
        total_env_steps=480,
        warmup_env_steps=160,
        hidden_sizes=(16, 16),
        eval_every=80,  # several equal learning chunks, which train() runs as one scan
        eval_episodes=2,
    )
    tr = make_trainer(c)
    assert tr.env.num_agents == 3
    _, m = jax.jit(tr.train)(jax.random.key(0), c.hparams())
    assert np.isfinite(m.critic_loss[-1]) and np.isfinite(m.mean_return[-1])
    assert m.eval_metrics.shape == (60, 0)  # JaxMARL's entries name no episode metrics


def test_unknown_or_unsupported_jaxmarl_env_lists_the_supported_ones():
    for name in ("jaxmarl:MPE_nonexistent", "jaxmarl:hanabi"):
        with pytest.raises(ValueError, match="jaxmarl:MPE_simple_spread_v3") as err:
            envs.make(name)
        assert name in str(err.value)


def test_cli_and_api_resolve_the_same_config_for_an_mpe_env(monkeypatch):
    """The env's registry defaults apply through one function: Config(env=X) in Python and
    `maddpg-jax train --env X` give the same config; a flag overrides one field only."""
    from maddpg_jax import Config, cli, session

    seen = []
    monkeypatch.setattr(session.Session, "run", lambda self: seen.append(self.config) or 0)
    name = "jaxmarl:MPE_simple_spread_v3"
    assert cli.main(["train", "--env", name, "--out", "/nonexistent/x"]) == 0
    assert (
        cli.main(["train", "--env", name, "--gamma", "0.9", "--action-type", "discrete", "--out", "/nonexistent/x"])
        == 0
    )
    assert seen[0] == Config(env=name)
    assert seen[0].to_dict() == Config(env=name).to_dict()
    assert (seen[0].gamma, seen[0].actor_lr, seen[0].num_envs, seen[0].twin_critics) == (0.95, 3e-3, 128, False)
    assert seen[1] == Config(env=name, gamma=0.9, env_kwargs={"action_type": "discrete"})
    assert (seen[1].actor_lr, seen[1].critic_lr, seen[1].gamma) == (3e-3, 3e-3, 0.9)  # the user's gamma only
    assert seen[1].logit_penalty == seen[0].logit_penalty == 1e-2
    assert Config(env="jaxmarl:MPE_simple_reference_v3").actor_lr == 1e-3  # the other scenarios' entry


@pytest.mark.parametrize("scenario", list(MPE_SCENARIOS))
def test_obs_and_reward_follow_the_raw_env_agent_by_agent(scenario):
    """obs[i] and reward[i] are the raw JaxMARL env's for agents[i] (zero-padded), through
    several steps of random actions of each agent's own size."""
    env, params = envs.make("jaxmarl:" + scenario, action_type="discrete")
    raw = env.env
    obs, state = env.reset(jax.random.key(0), params)
    raw_obs, raw_state = raw.reset(jax.random.key(0))
    for t in range(4):
        for i, a in enumerate(env.agents):
            n = env.obs_sizes[i]
            np.testing.assert_array_equal(obs[i, :n], np.ravel(raw_obs[a]), err_msg=f"{a} step {t}")
            np.testing.assert_array_equal(obs[i, n:], 0.0)
        actions = jax.random.randint(jax.random.key(t), (env.num_agents,), 0, jnp.asarray(env.act_sizes))
        k = jax.random.key(100 + t)
        obs, state, reward, *_ = env.step(k, state, actions, params)
        raw_obs, raw_state, raw_reward, _, _ = raw.step_env(
            jax.random.split(k)[0], raw_state, {a: actions[i] for i, a in enumerate(env.agents)}
        )
        np.testing.assert_array_equal(reward, [raw_reward[a] for a in env.agents])


def test_speaker_and_listener_each_get_their_own_action_size():
    """simple_speaker_listener: the speaker says one of 3 words, the listener moves with 5
    actions. Each actor's padding is masked, so neither the env nor a critic ever sees an
    action outside an agent's own size (the listener never gets the speaker's 3): checked on
    exploring and random actions of 4,096 envs for both action types, and on what a short
    discrete training run stored in its buffer."""
    from maddpg_jax import Config, make_trainer
    from maddpg_jax.acting import explore, random_actions

    for action_type in ("continuous", "discrete"):
        env, params = envs.make("jaxmarl:MPE_simple_speaker_listener_v4", action_type=action_type)
        assert env.agents == ("speaker_0", "listener_0") and env.act_sizes == (3, 5) and env.obs_sizes == (3, 11)
        raw = env.env_actions(
            jnp.ones(env.action_shape) if action_type == "continuous" else jnp.array([2, 4], jnp.int32)
        )
        assert np.shape(raw["speaker_0"]) == np.shape(env.env.action_space("speaker_0").sample(jax.random.key(0)))
        assert np.shape(raw["listener_0"]) == np.shape(env.env.action_space("listener_0").sample(jax.random.key(0)))
        c = Config(
            env="jaxmarl:MPE_simple_speaker_listener_v4",
            env_kwargs={"action_type": action_type},
            num_envs=8,
            batch_size=32,
            buffer_size=1024,
            updates_per_step=1,
            total_env_steps=320,
            warmup_env_steps=160,
            hidden_sizes=(16, 16),
            noise_std=1.0,
        )
        tr = make_trainer(c)
        state = jax.jit(tr.init)(jax.random.key(0), c.hparams())
        obs = jax.random.normal(jax.random.key(1), (4096, 2, env.obs_dim))
        for actions in (
            jax.jit(lambda a, o: explore(tr.spec, tr.networks, a, o, jax.random.key(2), c.hparams()))(
                state.agents.actor, obs
            ),
            random_actions(tr.spec, jax.random.key(3), 4096),
        ):
            actions = np.asarray(actions)  # [E, 2, 5] what the critic sees and the buffer stores
            np.testing.assert_array_equal(actions[:, 0, 3:], 0.0)  # the speaker's padding: never a real action
            if action_type == "discrete":
                assert set(np.argmax(actions[:, 0], -1)) == {0, 1, 2}  # all 3 words used, none beyond
                assert set(np.argmax(actions[:, 1], -1)) == {0, 1, 2, 3, 4}
            else:
                assert np.abs(actions[:, 0, :3]).max() > 0.5 and np.abs(actions[:, 1]).max() > 0.5
        if action_type == "discrete":  # the whole trainer on agents of different sizes
            state, m = jax.jit(tr.train)(jax.random.key(0), c.hparams())
            stored = np.asarray(state.buffer.data.action[: int(state.buffer.size)])
            assert np.isfinite(m.critic_loss[-1]) and set(np.argmax(stored[:, 0], -1)) <= {0, 1, 2}


def test_teams_come_from_the_registry_and_are_reported_per_team():
    from maddpg_jax import Config, make_trainer

    env, _ = envs.make("jaxmarl:MPE_simple_tag_v3")
    assert env.teams == {"adversaries": (0, 1, 2), "agents": (3,)}
    assert envs.make("jaxmarl:MPE_simple_spread_v3")[0].teams == {"team": (0, 1, 2)}
    c = Config(
        env="jaxmarl:MPE_simple_tag_v3",
        num_envs=8,
        batch_size=32,
        buffer_size=1024,
        updates_per_step=1,
        total_env_steps=480,
        warmup_env_steps=480,
        hidden_sizes=(16, 16),
    )
    state, m = jax.jit(make_trainer(c).train)(jax.random.key(0), c.hparams())
    teams = np.asarray(m.team_returns[-1])
    assert teams.shape == (2,) and teams[0] > 0 > teams[1]  # predators gain what the prey loses
    np.testing.assert_allclose(m.mean_return[-1], (3 * teams[0] + teams[1]) / 4, rtol=1e-5)


def test_mpe_simple_with_its_empty_communication_state_trains_sharded_and_checkpoints(tmp_path):
    """MPE simple's communication state is [E, 1, 0]. Faults caught: a scan carry whose
    empty leaf stops varying over the members' mesh axis (shard_map refused to compile it),
    and orbax refusing to save a zero-size array (the checkpoint failed)."""
    from maddpg_jax import Config, rundir
    from maddpg_jax import members as members_lib

    c = Config(
        env="jaxmarl:MPE_simple_v3",
        num_envs=8,
        batch_size=32,
        buffer_size=1024,
        hidden_sizes=(8, 8),
        total_env_steps=256,
        warmup_env_steps=64,
        eval_episodes=0,
    )
    members = members_lib.seed_members(c, 2)
    trainer, runner, placed = members_lib.build(c, members)
    keys, hp = members_lib.place(runner, c, placed)
    state, m = runner.run(runner.init(keys, hp), hp, 16, True)
    assert np.isfinite(np.asarray(m.critic_loss)).all()
    ckpt = rundir.Checkpoints(tmp_path)
    ckpt.save(16, state, {"iteration": 16})
    restored, _ = ckpt.restore(16, runner.init(keys, hp))
    ckpt.close()
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state)):
        assert a.shape == b.shape
    np.testing.assert_array_equal(np.asarray(restored.obs), np.asarray(state.obs))
