"""The env registry: an env of one's own, added in one file with one registry call, trains
through the CLI and the Python API and evaluates, touching no other module."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from maddpg_jax import Config, envs, make_train
from tests.test_cli import in_process

TINY_ENV = "tests.tiny_env:Reach-v0"
SMALL = dict(
    num_envs=8,
    batch_size=32,
    buffer_size=1024,
    updates_per_step=1,
    total_env_steps=640,
    warmup_env_steps=160,
    hidden_sizes=(16, 16),
    log_every=64,
    eval_every=320,  # an evaluation mid-run and at the end: rows with the env's episode metrics
)


def flags(values: dict) -> list[str]:
    out = []
    for k, v in values.items():
        out += ["--" + k.replace("_", "-"), ",".join(map(str, v)) if isinstance(v, tuple) else str(v)]
    return out


def cli(*args):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    p = subprocess.run(
        [sys.executable, "-m", "maddpg_jax.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "run"
    in_process("train", "--env", TINY_ENV, "--out", str(out), "--no-progress", *flags(SMALL))
    return out


def test_module_colon_name_imports_and_registers_the_env():
    env, params = envs.make(TINY_ENV)
    assert env.agents == ("near", "far") and env.obs_dim == 2 and env.teams == {"team": (0, 1)}
    assert envs.entry(TINY_ENV).defaults == {"gamma": 0.9}
    assert Config(env=TINY_ENV).gamma == 0.9  # the entry's recommendation is applied
    with pytest.raises(ValueError, match="unknown environment 'nowhere:Nothing-v0'"):
        envs.make("nowhere:Nothing-v0")


def test_defaults_can_depend_on_an_env_argument():
    """arg_defaults: a recommendation for one value of an env arg lays over the entry's
    defaults for that value only; a user's value still wins; a key that is no arg is refused."""
    arg = envs.EnvArg("mode", "a", str, "which", choices=("a", "b"))
    factory = envs.entry(TINY_ENV).factory
    name = "tests.test_registry:ByArg-v0"
    envs.register(
        name, lambda mode: factory(), args=(arg,), defaults={"gamma": 0.9, "tau": 0.05},
        arg_defaults={"mode": {"b": {"gamma": 0.8}}},
    )  # fmt: skip
    assert (Config(env=name).gamma, Config(env=name).tau) == (0.9, 0.05)
    b = Config(env=name, env_kwargs={"mode": "b"})
    assert (b.gamma, b.tau) == (0.8, 0.05)
    assert Config(env=name, env_kwargs={"mode": "b"}, gamma=0.7).gamma == 0.7
    with pytest.raises(ValueError, match=r"arg_defaults names \['colour'\]"):
        envs.register(name + "x", factory, arg_defaults={"colour": {}})


def test_cli_and_api_train_the_same_run(trained):
    """The CLI's run (chunked, in a subprocess) logs what make_train computes in one
    program, to float rounding: same env, same resolved config, same seed convention."""
    saved = json.loads((trained / "config.json").read_text())
    config = Config(env=TINY_ENV, **SMALL)
    assert saved["config"] == config.to_dict()
    assert saved["env"]["agents"] == ["near", "far"] and saved["env"]["obs_sizes"] == [1, 2]
    _, m = jax.jit(make_train(config))(jax.random.key(config.seed), config.hparams())
    rows = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    logged = np.array([r["mean_return"] for r in rows], dtype=float)  # None (no episode yet) -> nan
    np.testing.assert_allclose(
        logged, np.asarray(m.mean_return)[config.log_interval - 1 :: config.log_interval], rtol=1e-4
    )
    assert np.isfinite([r["critic_loss"] for r in rows[-3:]]).all()


def test_eval_of_the_tiny_env(trained):
    out = cli("eval", str(trained), "--episodes", "50")
    summary = json.loads((trained / "eval.json").read_text())
    assert summary["episodes"] == 50 and f"mean return {summary['mean_return']:.1f}" in out
    # The env's own episode metrics, in eval.json and the eval line.
    assert set(summary["metrics"]) == {"gap", "far_steps", "final_near"}
    assert f"gap {summary['metrics']['gap']:.3g}" in out and 0 <= summary["metrics"]["far_steps"] <= 12
    rows = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    evaluated = [r for r in rows if "eval_metrics" in r]  # the rows that ended an evaluation
    assert evaluated and all(set(r["eval_metrics"]) == {"gap", "far_steps", "final_near"} for r in evaluated)
    assert len(evaluated) < len(rows)
    # 12 steps of -|x| per agent with |x| <= 1 + 12 * 0.3: bounded, and negative.
    assert -12 * 4.6 < summary["mean_return"] < 0


def test_episode_metrics_reduce_as_declared_against_a_rollout_by_hand():
    """run_episodes' sum, mean and last of the tiny env's metrics equal a plain Python
    rollout of the same policy, step by step (12-step episodes: every step counts)."""
    from maddpg_jax.training import make_trainer, run_episodes

    config = Config(env=TINY_ENV, **SMALL)
    trainer = make_trainer(config)
    state = trainer.init(jax.random.key(0), config.hparams())
    actor = state.agents.actor
    got = run_episodes(trainer, actor, jax.random.key(1), 4)
    env, params = trainer.env, trainer.env_params
    k_reset, k_run = jax.random.split(jax.random.key(1))
    obs, st = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, 4), params)
    gap, far, final = np.zeros(4), np.zeros(4), np.zeros(4)
    for k in jax.random.split(k_run, env.horizon(params)):
        actions = trainer.policy(actor, obs)
        obs, st, *_, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(k, 4), st, actions, params)
        x = np.asarray(info["final_state"].x)
        gap, far, final = gap + np.abs(x[:, 0] - x[:, 1]), far + (np.abs(x[:, 1]) > 0.5), x[:, 0]
    np.testing.assert_allclose(got.metrics, np.stack([gap / 12, far, final], -1), rtol=1e-5, atol=1e-6)
