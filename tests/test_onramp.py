"""The on-ramp: PettingZoo's own API test for every kind of env, a trained policy used from a
plain numpy loop, experiment tracking, and the README's Python blocks run as written."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from maddpg_jax import cli, load_policy
from maddpg_jax.envs.pettingzoo import parallel_env
from maddpg_jax.errors import UsageError
from tests.flags import TINY

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("MultiCartPole-v0", {"num_agents": 2}),
        ("MultiCartPole-v0", {"num_agents": 3, "action_type": "discrete"}),
        ("jaxmarl:MPE_simple_speaker_listener_v4", {}),  # agents with different spaces
        ("jaxmarl:MPE_simple_tag_v3", {"action_type": "discrete"}),
    ],
)
def test_pettingzoo_parallel_api_test(name, kwargs):
    env = parallel_env(name, **kwargs)
    parallel_api_test(env, num_cycles=60)
    spaces = {a: env.action_space(a) for a in env.possible_agents}
    if name.endswith("listener_v4"):
        assert spaces["speaker_0"].shape == (3,) and spaces["listener_0"].shape == (5,)
        assert env.observation_space("speaker_0").shape == (3,) and env.observation_space("listener_0").shape == (11,)


def test_pettingzoo_episode_matches_the_jax_env_and_renders():
    """A seeded PettingZoo episode gives the JAX env's own observations and rewards; the
    episode ends with every agent removed; render() gives an RGB frame."""
    import jax

    env = parallel_env("MultiCartPole-v0", render_mode="rgb_array", num_agents=2, max_steps=20)
    obs, infos = env.reset(seed=3)
    assert set(obs) == {"cart_0", "cart_1"} and obs["cart_0"].shape == (4,) and obs["cart_0"].dtype == np.float32
    _, first = env.jax_env.reset_env(jax.random.split(jax.random.key(3))[1], env.params)
    np.testing.assert_allclose(np.stack([obs["cart_0"], obs["cart_1"]]), np.asarray(first.carts), atol=1e-7)
    steps = 0
    while env.agents:
        obs, rewards, terms, truncs, infos = env.step({a: np.zeros(1, np.float32) for a in env.agents})
        assert rewards == {"cart_0": 1.0, "cart_1": 1.0}
        steps += 1
    assert steps <= 20 and (all(terms.values()) or all(truncs.values()))
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8 and frame.std() > 0


@pytest.fixture(scope="module")
def solved_run(tmp_path_factory):
    """A small run of uncoupled one-cart CartPole long enough to balance the pole."""
    out = tmp_path_factory.mktemp("policy") / "run"
    code = cli.main(
        [
            "train",
            "--out",
            str(out),
            "--num-agents",
            "1",
            "--coupling",
            "0",
            "--total-env-steps",
            "40000",
            "--warmup-env-steps",
            "4096",
            "--buffer-size",
            "40000",
            "--hidden-sizes",
            "32,32",
            "--no-progress",
        ]
    )
    assert code == 0
    return out


def test_loaded_policy_keeps_the_pole_up_in_a_plain_pettingzoo_loop(solved_run):
    """The tutorial path: train, load the policy, run it in a plain Python loop over a
    PettingZoo env. The trained policy balances far longer than random pushes do."""
    policy = load_policy(solved_run)
    env = parallel_env("MultiCartPole-v0", num_agents=1, coupling=0.0)

    def episode_length(act, seed):
        obs, _ = env.reset(seed=seed)
        steps = 0
        while env.agents:
            obs, *_ = env.step(act(obs))
            steps += 1
        return steps

    rng = np.random.default_rng(0)
    trained = np.mean([episode_length(policy, s) for s in range(5)])
    random = np.mean(
        [episode_length(lambda o: {"cart_0": rng.uniform(-1, 1, 1).astype(np.float32)}, s) for s in range(5)]
    )
    # Measured: random pushes ~20 steps, this run's policy ~100 (it trains for 40k steps).
    assert trained > 3 * random, (trained, random)
    action = policy({"cart_0": np.zeros(4, np.float32)})
    assert set(action) == {"cart_0"} and action["cart_0"].shape == (1,) and -1 <= action["cart_0"][0] <= 1


def test_load_policy_bad_input_is_one_line(tmp_path, solved_run):
    with pytest.raises(UsageError, match="no run in"):
        load_policy(tmp_path)
    with pytest.raises(UsageError, match=r"member: must be in \[0, 0\]"):
        load_policy(solved_run, member=3)


def test_end_of_run_line_and_tracking(tmp_path, capsys):
    """The run ends with one line of final and best return; TensorBoard events and an
    offline Weights & Biases run hold the logged rows."""
    out = tmp_path / "run"
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"
    code = cli.main(
        ["train", "--out", str(out), "--total-env-steps", "512", *TINY, "--tensorboard", "--wandb", "maddpg-jax-test"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert f"final mean return {last['mean_return']:.1f}" in printed
    assert list((out / "tb").glob("events.out.tfevents.*"))
    runs = list((out / "wandb").glob("offline-run-*"))
    assert runs and list(runs[0].glob("*.wandb"))


DOC_PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("page", [p for p in DOC_PAGES if "```python" in (ROOT / p).read_text()])
def test_python_blocks_of_the_readme_and_docs_run(page, tmp_path):
    """Every ```python block of the README and of each docs page runs as written, the page's
    blocks in order as one script (long runs shortened by MADDPG_JAX_README_STEPS, which the
    blocks read), so the snippets stay true."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(), re.S)
    script = tmp_path / "blocks.py"
    script.write_text("\n\n".join(blocks))
    env = dict(os.environ, JAX_PLATFORMS="cpu", MADDPG_JAX_README_STEPS="2048")
    # In a scratch directory: the blocks write run directories relative to it.
    p = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert p.returncode == 0, p.stderr[-3000:]


USER_SCRIPT = """
import importlib.util, json, sys
import numpy as np
import envs  # the user's own package, beside this script
assert envs.MINE, envs.__file__
import maddpg_jax
from maddpg_jax import Config, load_policy
assert maddpg_jax.__file__.startswith(sys.argv[1]), maddpg_jax.__file__
config = Config(num_envs=8, batch_size=32, buffer_size=2048, warmup_env_steps=256, hidden_sizes=(16, 16),
                log_every=128, total_env_steps=512)
summary = maddpg_jax.train(config, out="run", progress=False)
policy = load_policy("run")
action = policy({"cart_0": np.zeros(4, np.float32), "cart_1": np.zeros(4, np.float32)})
print(json.dumps({"summary": summary, "action": {k: v.tolist() for k, v in action.items()},
                  "envs": envs.__file__, "registry": maddpg_jax.envs.names()}))
"""


def test_the_installed_wheel_trains_beside_a_users_own_envs_package(tmp_path):
    """``pip install .`` installs nothing but ``maddpg_jax``: in a folder with its own
    ``envs`` package, the user's package stays theirs, and ``maddpg_jax.train`` trains into a
    run directory, returns the summary, and ``load_policy`` loads it."""
    import zipfile

    wheels, target, user = tmp_path / "wheels", tmp_path / "site", tmp_path / "project"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)], check=True)
    (wheel,) = wheels.glob("maddpg_jax-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith((".dist-info", ".data"))} == {"maddpg_jax"}, tops
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    (user / "envs").mkdir(parents=True)
    (user / "envs" / "__init__.py").write_text("MINE = True\n")
    (user / "train_it.py").write_text(USER_SCRIPT)
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(target))
    p = subprocess.run(
        [sys.executable, "train_it.py", str(target)], capture_output=True, text=True, cwd=user, env=env, timeout=300
    )
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got["envs"] == str(user / "envs" / "__init__.py")
    assert "MultiCartPole-v0" in got["registry"]
    assert got["summary"]["seed"] == 0 and got["summary"]["final_mean_return"] > 0
    assert set(got["action"]) == {"cart_0", "cart_1"}
    assert (user / "run" / "config.json").exists() and (user / "run" / "checkpoints").is_dir()


def test_python_train_refuses_what_the_cli_refuses(tmp_path, solved_run):
    """maddpg_jax.train on a directory that holds a run, or resuming one with a changed
    config, raises the CLI's one-line UsageError before compiling anything."""
    import maddpg_jax
    from maddpg_jax import Config, rundir

    saved = rundir.read_run(solved_run)[0]
    with pytest.raises(UsageError, match="already holds a run"):
        maddpg_jax.train(saved, out=solved_run)
    with pytest.raises(UsageError, match="--gamma: cannot change on --resume"):
        maddpg_jax.train(saved.replace(gamma=0.5), out=solved_run, resume=True)
    with pytest.raises(UsageError, match="--resume: no run in"):
        maddpg_jax.train(Config(), out=tmp_path / "empty", resume=True)
    with pytest.raises(UsageError, match=r"members\[1\]: expected a dict"):
        maddpg_jax.sweep(Config(), [{"seed": 0}, 3], out=tmp_path / "s")
