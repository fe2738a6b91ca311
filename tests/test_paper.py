"""The MADDPG paper's scenarios (``paper:*``), their metrics, and ``--preset paper``.

The scenarios are checked against the reference MPE (``mpe2``, the maintained
openai/multiagent-particle-envs) where it agrees with the original code the paper ran, and
against values worked out by hand where it does not (integration order, episode length,
simple_spread's collisions and shared reward, simple_adversary's squared distance).
"""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maddpg_jax import Config, envs
from maddpg_jax.acting import AgentSpec, env_actions, explore, soft_sample
from maddpg_jax.config import PRESETS
from maddpg_jax.envs.mpe_paper import DT, SCENARIOS, MPEState, ParticleEnv, world_step
from maddpg_jax.losses import Transition, make_losses
from maddpg_jax.networks import make_networks

NAMES = list(SCENARIOS)


def reference(name, seed, **world_kwargs):
    """An mpe2 world of scenario ``name`` (``world_kwargs``: its ``make_world``'s, e.g. N)
    after its own reset, with random velocities and utterances, and the same state as an
    :class:`MPEState`."""
    module = importlib.import_module(f"mpe2.{name}.{name}")
    scenario = module.Scenario()
    world = scenario.make_world(**world_kwargs)
    rng = np.random.default_rng(seed)
    scenario.reset_world(world, rng)
    for e in world.entities:
        if e.movable:
            e.state.p_vel = rng.uniform(-1, 1, 2)
    for agent in world.agents:
        if not agent.silent:
            agent.state.c = rng.uniform(0, 1, world.dim_c)
    landmarks = list(world.landmarks)
    goal_holder = {"simple_speaker_listener": lambda w: w.agents[0].goal_b}.get(name, lambda w: w.agents[0].goal_a)
    goal = landmarks.index(goal_holder(world)) if SCENARIOS[name].num_goals else 0
    key = 0
    if name == "simple_crypto":
        key = int(np.argmax(world.agents[2].key))
    state = MPEState(
        p_pos=jnp.asarray(np.stack([e.state.p_pos for e in world.entities]), jnp.float32),
        p_vel=jnp.asarray(np.stack([e.state.p_vel for e in world.entities]), jnp.float32),
        c=jnp.asarray(np.stack([a.state.c for a in world.agents]), jnp.float32),
        goal=jnp.int32(goal),
        key=jnp.int32(key),
        step=jnp.int32(0),
    )
    return scenario, world, state


@pytest.mark.parametrize("name", NAMES)
def test_observations_and_rewards_match_the_reference_mpe(name):
    """Every agent's observation equals mpe2's (the original's layout) on the same state; the
    per-agent rewards too, where mpe2 keeps the original's (not simple_spread's, not the
    simple_adversary adversary's: see the hand-worked tests)."""
    env = ParticleEnv(SCENARIOS[name])
    for seed in range(5):
        scenario, world, state = reference(name, seed)
        assert [a.name for a in world.agents] == list(env.agents) or name == "simple_crypto"
        obs = np.asarray(env.observe(state))
        for i, agent in enumerate(world.agents):
            ours = obs[i, : env.obs_sizes[i]]
            np.testing.assert_allclose(ours, scenario.observation(agent, world), atol=1e-5, err_msg=agent.name)
            assert not obs[i, env.obs_sizes[i] :].any()  # padding
        raw = np.asarray(SCENARIOS[name].reward(SCENARIOS[name], state))
        theirs = np.array([scenario.reward(a, world) for a in world.agents])
        same = {"simple_spread": [], "simple_adversary": [1, 2]}.get(name, range(len(world.agents)))
        np.testing.assert_allclose(raw[list(same)], theirs[list(same)], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n", [2, 4])
def test_simple_spread_with_n_agents_observes_steps_and_scores_as_the_reference(n):
    """``paper:simple_spread`` with ``num_agents=n`` (the paper's collision figure is for N = 2)
    is mpe2's ``make_world(N=n)``: every observation, one world step with contact forces, and
    the landmark distance; its collision metric counts the pairs in contact, by hand."""
    env, _ = envs.make("paper:simple_spread", num_agents=n)
    sc = env.scenario
    assert env.num_agents == n and env.obs_sizes == (6 * n,) * n and sc.num_landmarks == n
    assert envs.make("paper:simple_spread", num_agents=n)[0].scenario is sc  # one static value per N
    metrics = {m.name: m.fn for m in envs.entry("paper:simple_spread").metrics}
    for seed in range(3):
        scenario, world, state = reference("simple_spread", seed, N=n)
        # one pair in contact (0.11 apart, radii 0.15 each), every other agent far from all
        world.agents[1].state.p_pos = world.agents[0].state.p_pos + np.array([0.1, 0.05])
        for k in range(2, n):
            world.agents[k].state.p_pos = np.array([3.0 * k, -3.0 * k])
        state = state.replace(p_pos=jnp.asarray(np.stack([e.state.p_pos for e in world.entities]), jnp.float32))
        obs = np.asarray(env.observe(state))
        for i, agent in enumerate(world.agents):
            np.testing.assert_allclose(obs[i], scenario.observation(agent, world), atol=1e-5)
        data = scenario.benchmark_data(world.agents[0], world)
        np.testing.assert_allclose(metrics["landmark_distance"](env, state), data[2], rtol=1e-5)
        assert float(metrics["collisions"](env, state)) == 1.0
        force = np.random.default_rng(seed).uniform(-5, 5, (n, 2)).astype(np.float32)
        for agent, f in zip(world.agents, force):
            agent.action.u, agent.action.c = f.astype(np.float64), np.zeros(world.dim_c)
        p0 = np.stack([e.state.p_pos.copy() for e in world.entities])
        world.step()
        pos, vel = jax.jit(world_step, static_argnums=0)(sc, state.p_pos, state.p_vel, jnp.asarray(force))
        v_ref = np.stack([e.state.p_vel for e in world.entities])
        np.testing.assert_allclose(vel, v_ref, atol=1e-4)
        np.testing.assert_allclose(pos, p0 + v_ref * DT, atol=1e-5)


@pytest.mark.parametrize("name", ["simple_tag", "simple_spread", "simple_push", "simple_speaker_listener"])
def test_physics_matches_the_reference_and_moves_with_the_new_velocity(name):
    """One world step from the same state and forces: velocities equal mpe2's (damping,
    force, contact forces, speed clamp), and positions move by the NEW velocity, as the
    original ``core.py`` integrates (mpe2 and JaxMARL move by the old one)."""
    sc = SCENARIOS[name]
    for seed in range(5):
        scenario, world, state = reference(name, seed)
        rng = np.random.default_rng(100 + seed)
        force = np.zeros((sc.num_agents, 2), np.float32)
        for i, agent in enumerate(world.agents):
            if agent.movable:
                force[i] = rng.uniform(-1, 1, 2) * (agent.accel or 5.0)
                agent.action.u = force[i].astype(np.float64)
            else:
                agent.action.u = np.zeros(2)
            agent.action.c = np.zeros(world.dim_c)
        # Overlap two colliders, so contact forces act.
        if name in ("simple_tag", "simple_spread", "simple_push"):
            world.agents[1].state.p_pos = world.agents[0].state.p_pos + np.array([0.05, 0.02])
            state = state.replace(p_pos=state.p_pos.at[1].set(jnp.asarray(world.agents[1].state.p_pos, jnp.float32)))
        p0 = np.stack([e.state.p_pos.copy() for e in world.entities])
        v0 = np.stack([e.state.p_vel.copy() for e in world.entities])
        world.step()
        pos, vel = jax.jit(world_step, static_argnums=0)(sc, state.p_pos, state.p_vel, jnp.asarray(force))
        v_ref = np.stack([e.state.p_vel for e in world.entities])
        np.testing.assert_allclose(vel, v_ref, atol=1e-4)
        np.testing.assert_allclose(np.stack([e.state.p_pos for e in world.entities]), p0 + v0 * DT, atol=1e-5)
        np.testing.assert_allclose(pos, p0 + v_ref * DT, atol=1e-5)
        if name == "simple_tag":  # the prey's speed limit (1.3) and the predators' (1.0) hold
            speed = np.linalg.norm(np.asarray(vel)[: sc.num_agents], axis=-1)
            assert np.all(speed <= np.array([1.0, 1.0, 1.0, 1.3]) + 1e-5)


def test_tag_bounds_original_integration_moves_mpe2_by_the_new_velocity_inside_only():
    """benchmarks/tag_bounds.py's patched mpe2: inside the block a world step moves by the new
    velocity, as this project's world_step does; after it mpe2 moves by the old one again."""
    from benchmarks.tag_bounds import original_integration

    sc = SCENARIOS["simple_tag"]
    for patched in (True, False):
        scenario, world, state = reference("simple_tag", 3)
        for agent in world.agents:
            agent.action.u, agent.action.c = np.zeros(2), np.zeros(world.dim_c)
        p0 = np.stack([e.state.p_pos.copy() for e in world.entities])
        v0 = np.stack([e.state.p_vel.copy() for e in world.entities])
        if patched:
            with original_integration():
                world.step()
        else:
            world.step()
        moved = np.stack([e.state.p_pos for e in world.entities]) - p0
        pos, vel = jax.jit(world_step, static_argnums=0)(sc, state.p_pos, state.p_vel, jnp.zeros((sc.num_agents, 2)))
        np.testing.assert_allclose(np.stack([e.state.p_vel for e in world.entities]), vel, atol=1e-4)
        np.testing.assert_allclose(moved, (np.asarray(vel) if patched else v0) * DT, atol=1e-5)
        if patched:
            np.testing.assert_allclose(p0 + moved, pos, atol=1e-5)


def test_by_hand_episodes_steps_resets_and_rewards():
    """Worked by hand: 25-step episodes; a push from rest moves an agent on the first step
    (v = 5 * 0.1 = 0.5, p += 0.05); simple_tag's obstacles reset within 0.9;
    simple_spread's shared reward counts each agent's collision with itself; simple_crypto's
    colours are one-hot (an utterance of the other colour costs 2, not 2 * 255^2)."""
    env, params = envs.make("paper:simple_spread")
    obs, state = env.reset(jax.random.key(0), params)
    step = jax.jit(env.step)
    truncations = []
    for t in range(26):
        obs, state, reward, term, trunc, info = step(jax.random.key(t), state, jnp.array([1, 0, 0]), params)
        truncations.append(bool(trunc[0]))
        assert not term.any()
    assert truncations == [False] * 24 + [True, False]  # the 25th step ends the episode

    _, state = env.reset(jax.random.key(1), params)
    state = state.replace(p_pos=state.p_pos.at[:3].set(jnp.array([[0.0, 0.0], [2.0, 2.0], [-2.0, -2.0]])))  # apart
    before = state.p_pos[0]
    _, _, _, _, _, info = env.step(jax.random.key(2), state, jnp.array([1, 0, 0]), params)  # agent 0: +x
    np.testing.assert_allclose(info["final_state"].p_pos[0] - before, [0.05, 0.0], atol=1e-6)

    tag, tag_params = envs.make("paper:simple_tag")
    landmarks = jax.vmap(lambda k: tag.reset(k, tag_params)[1].p_pos[4:])(jax.random.split(jax.random.key(3), 4000))
    assert 0.85 < float(jnp.abs(landmarks).max()) <= 0.9

    sc = SCENARIOS["simple_spread"]
    pos = jnp.array([[0.0, 0.0], [0.2, 0.0], [5.0, 5.0], [0.0, 0.0], [0.2, 0.0], [5.0, 5.0]])  # landmarks on agents
    s = MPEState(pos, jnp.zeros_like(pos), jnp.zeros((3, 2)), jnp.int32(0), jnp.int32(0), jnp.int32(0))
    # Agents 0 and 1 touch (0.2 < 0.3): own collisions 2, 2, 1 (self included); distance 0.
    np.testing.assert_allclose(sc.reward(sc, s), [-2.0, -2.0, -1.0])
    np.testing.assert_allclose(ParticleEnv(sc).rewards(s), [-5.0] * 3)  # shared: the sum

    sc = SCENARIOS["simple_adversary"]
    pos = jnp.array([[0.3, 0.4], [1.0, 1.0], [-1.0, -1.0], [0.0, 0.0], [0.5, 0.5]])
    s = MPEState(pos, jnp.zeros_like(pos), jnp.zeros((3, 2)), jnp.int32(0), jnp.int32(0), jnp.int32(0))
    np.testing.assert_allclose(sc.reward(sc, s)[0], -0.25, rtol=1e-6)  # -d^2, d = 0.5

    sc = SCENARIOS["simple_crypto"]
    c = jnp.array([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.3, 0.3, 0.2, 0.2]])  # Eve wrong, Bob right
    s = MPEState(jnp.zeros((5, 2)), jnp.zeros((5, 2)), c, jnp.int32(0), jnp.int32(1), jnp.int32(0))
    np.testing.assert_allclose(ParticleEnv(sc).rewards(s), [-2.0, 2.0, 2.0])


def metric(name, metric_name):
    env, _ = envs.make(name)
    m = next(m for m in envs.entry(name).metrics if m.name == metric_name)
    return lambda state: float(m.fn(env, state))


def test_metrics_on_constructed_states():
    """A listener on its target, two agents overlapping, a predator on the prey, Bob's
    utterance naming the goal, a good agent on the goal: each metric as worked out by hand."""
    z = lambda n: jnp.zeros((n, 2))
    st = lambda pos, c=None, goal=0: MPEState(
        jnp.asarray(pos, jnp.float32), z(len(pos)), c if c is not None else jnp.zeros((4, 4)), jnp.int32(goal), 0, 0
    )
    listener = [[0, 0], [0.5, 0.5], [0.9, 0.9], [0.5, 0.6], [-1, -1]]
    assert metric("paper:simple_speaker_listener", "target_reached")(st(listener, goal=1)) == 1.0  # 0.1 away
    assert metric("paper:simple_speaker_listener", "target_reached")(st(listener, goal=0)) == 0.0  # 0.57 away
    assert metric("paper:simple_speaker_listener", "final_distance")(st(listener, goal=1)) == pytest.approx(0.1)

    spread = [[0, 0], [0.25, 0], [0.5, 0], [0, 0.05], [0.25, 0], [3, 0]]  # 0-1 and 1-2 touch, not 0-2
    assert metric("paper:simple_spread", "collisions")(st(spread)) == 2.0
    assert metric("paper:simple_spread", "occupied_landmarks")(st(spread)) == 2.0  # the third is 2.5 away
    assert metric("paper:simple_spread", "landmark_distance")(st(spread)) == pytest.approx(0.05 + 0 + 2.5)

    tag = [[0, 0], [0.1, 0], [1, 1], [0.05, 0.05], [-0.5, -0.5], [0.5, -0.5]]  # predators 0 and 1 on the prey
    assert metric("paper:simple_tag", "touches")(st(tag)) == 2.0

    c = jnp.zeros((3, 4)).at[1, 1].set(0.9).at[0, 0].set(0.7)  # Bob says colour 1 (the goal), Eve colour 0
    assert metric("paper:simple_crypto", "bob_success")(st(np.zeros((5, 2)), c, goal=1)) == 1.0
    assert metric("paper:simple_crypto", "eve_success")(st(np.zeros((5, 2)), c, goal=1)) == 0.0

    adv = [[0.9, 0.9], [0.1, 0.1], [-1, -1], [0.0, 0.0], [1.0, 1.0]]
    assert metric("paper:simple_adversary", "agents_success")(st(adv, goal=0)) == 1.0
    assert metric("paper:simple_adversary", "adversary_success")(st(adv, goal=0)) == 0.0
    assert metric("paper:simple_adversary", "adversary_success")(st(adv, goal=1)) == 1.0


def test_soft_actions_reach_the_env_as_the_paper_code_feeds_them():
    """A discrete paper scenario takes a probability vector: the force is
    ``(a[1] - a[2], a[3] - a[4]) * accel``, the utterance the vector; a choice is its one-hot."""
    env, params = envs.make("paper:simple_speaker_listener")
    soft = jnp.array([[0.2, 0.5, 0.3, 0.0, 0.0], [0.1, 0.6, 0.1, 0.15, 0.05]])
    force, said = env.forces_and_utterances(soft)
    np.testing.assert_allclose(force[1], [(0.6 - 0.1) * 5.0, (0.15 - 0.05) * 5.0], rtol=1e-6)
    np.testing.assert_allclose(said[0], [0.2, 0.5, 0.3])
    assert not said[1].any() and not force[0].any()  # the listener is silent, the speaker immovable
    hard = env.forces_and_utterances(jnp.array([2, 3]))
    one_hot = env.forces_and_utterances(jax.nn.one_hot(jnp.array([2, 3]), 5))
    np.testing.assert_array_equal(hard[0], one_hot[0])
    np.testing.assert_array_equal(hard[1], one_hot[1])


def _soft_parts():
    config = Config(env="paper:simple_spread", preset="paper", hidden_sizes=(8,))
    env, _ = envs.make("paper:simple_spread")
    spec = AgentSpec.from_env(env, "soft")
    networks = make_networks(config, env)
    a, o, d = spec.num_agents, spec.obs_dim, spec.act_dim
    ka, kc = jax.random.split(jax.random.key(0))
    actor = jax.vmap(networks.actor_init, in_axes=(0, None))(jax.random.split(ka, a), jnp.zeros(o))
    critic = jax.vmap(networks.critic_init, in_axes=(0, None, None))(
        jax.random.split(kc, a), jnp.zeros(a * o), jnp.zeros(a * d)
    )
    return config, spec, networks, actor, critic


def test_preset_paper_soft_samples_act_reach_the_env_and_are_the_targets():
    """With the paper's preset: exploration hands the env the soft Gumbel-softmax sample
    (not a one-hot), the target actions are soft samples of the target actors (not their
    greedy one-hot), each the same draw as ``soft_sample`` with the same key."""
    config, spec, networks, actor, critic = _soft_parts()
    assert config.gumbel_mode == "soft" and config.grad_clip_scope == "tensor" and config.batch_size == 1024
    obs = jax.random.normal(jax.random.key(3), (6, spec.num_agents, spec.obs_dim))
    acts = explore(spec, networks, actor, obs, jax.random.key(4), config.hparams())
    sent = env_actions(spec, acts)
    assert sent.shape == (6, 3, 5) and sent.dtype == jnp.float32
    np.testing.assert_allclose(sent.sum(-1), 1.0, rtol=1e-5)
    assert float(sent.max()) < 1.0 - 1e-6  # soft: no row is exactly one-hot
    logits = jax.vmap(networks.actor_apply, in_axes=(0, 1), out_axes=1)(actor, obs)
    np.testing.assert_allclose(sent, soft_sample(logits, jax.random.key(4), 1.0), rtol=1e-6)

    losses = make_losses(spec, networks, huber_delta=0.0, target_noise=0.0, target_noise_clip=0.5)
    targets = losses.target_actions(actor, obs, jax.random.key(5), 1.0)
    np.testing.assert_allclose(targets, soft_sample(logits, jax.random.key(5), 1.0), rtol=1e-6)
    assert float(targets.max()) < 1.0 - 1e-6


def test_preset_paper_actor_loss_is_the_critic_at_the_soft_sample():
    """The actor's loss is -Q at the soft sample (plus 1e-3 mean(logits^2)): its value is the
    critic's at the soft vector, which a straight-through (one-hot forward) or greedy
    version does not give, and its gradient reaches the actor through the sample."""
    config, spec, networks, actor, critic = _soft_parts()
    losses = make_losses(spec, networks, huber_delta=0.0, target_noise=0.0, target_noise_clip=0.5, logit_penalty=1e-3)
    obs = jax.random.normal(jax.random.key(6), (4, spec.num_agents, spec.obs_dim))
    batch = Transition(obs, jnp.full((4, 3, 5), 0.2), jnp.zeros((4, 3)), obs, jnp.zeros((4, 3)))
    key = jax.random.key(7)
    loss = losses.actor_losses(actor, critic, batch, key, 1.0)
    logits = jax.vmap(networks.actor_apply, in_axes=(0, 1), out_axes=1)(actor, obs)
    sample = soft_sample(logits, key, 1.0)
    for i in range(3):
        joint = batch.action.at[:, i].set(sample[:, i])
        q = networks.first_q_apply(jax.tree.map(lambda x: x[i], critic), obs.reshape(4, -1), joint.reshape(4, -1))
        expected = -q.mean() + 1e-3 * jnp.mean(logits[:, i] ** 2)
        assert float(loss[i]) == pytest.approx(float(expected), rel=1e-5)
        hard = joint.at[:, i].set(jax.nn.one_hot(jnp.argmax(sample[:, i], -1), 5))
        q_hard = networks.first_q_apply(jax.tree.map(lambda x: x[i], critic), obs.reshape(4, -1), hard.reshape(4, -1))
        assert float(-q_hard.mean() + 1e-3 * jnp.mean(logits[:, i] ** 2)) != pytest.approx(float(loss[i]), rel=1e-6)
    grads = jax.grad(lambda p: losses.actor_losses(p, critic, batch, key, 1.0).sum())(actor)
    assert all(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads))


def test_preset_applies_under_the_users_flags_and_refuses_a_choice_only_env():
    """A user's value wins over the preset; the preset over the env's recommendations; and
    soft actions on an env that takes choices only is refused naming the env."""
    config = Config(env="paper:simple_tag", preset="paper", actor_lr=3e-3)
    assert config.actor_lr == 3e-3 and config.critic_lr == PRESETS["paper"]["critic_lr"]
    assert config.num_envs == 100 and config.keep_best is False and config.flat_params is False
    with pytest.raises(ValueError, match="MultiCartPole-v0 takes choices only"):
        env, _ = envs.make("MultiCartPole-v0", action_type="discrete")
        AgentSpec.from_env(env, "soft")
    with pytest.raises(ValueError, match="grad_clip_scope"):
        Config(env="paper:simple_tag", grad_clip_scope="tensor")  # flat params by default
