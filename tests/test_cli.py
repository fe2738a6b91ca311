"""The CLI end to end on a tiny config, and every class of bad input."""

import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from maddpg_jax import cli
from tests.flags import TINY


def maddpg(*args, check=True):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    p = subprocess.run(
        [sys.executable, "-m", "maddpg_jax.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def rows(path):
    return [json.loads(line) for line in open(path)]


def without_wall(rs):
    return [{k: v for k, v in r.items() if k not in ("wall_s", "compute_s", "host_s")} for r in rs]


# Resuming to a new --total-env-steps equals one straight run only with a constant learning
# rate: the default linear anneal is planned over the total, so a new total re-plans it.
# (Resuming to the same total is exact with the anneal too: tests/test_hardening.py.)
CONST = [*TINY, "--lr-decay", "none"]


def cli_main(*args) -> tuple[int, str, str]:
    """``(exit status, stdout, stderr)`` of ``maddpg-jax ARGS`` through ``cli.main`` (the
    console script's body) in this process, sparing a process start and JAX's import."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


def in_process(*args) -> str:
    """:func:`cli_main` that must succeed; returns its stdout."""
    code, out, err = cli_main(*args)
    assert code == 0, f"exit {code}\n{out}\n{err}"
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One straight run to 1024 env steps, and one stopped at 576 and resumed to 1024."""
    base = tmp_path_factory.mktemp("cli")
    straight, resumed = base / "straight", base / "resumed"
    # Checkpoints far apart in wall time: one is written, at the end.
    straight_out = in_process(
        "train", "--out", str(straight), "--total-env-steps", "1024", *CONST, "--checkpoint-every", "1e6"
    )
    # Stopped between log rows (576 = 72 iterations, rows every 16), so chunked differently
    # and with a closing row that an uninterrupted run does not have: resuming must drop it.
    in_process("train", "--out", str(resumed), "--total-env-steps", "576", *CONST)
    assert rows(resumed / "metrics.jsonl")[-1]["env_steps"] == 576
    out = in_process("train", "--out", str(resumed), "--resume", "--total-env-steps", "1024", "--no-progress")
    return straight, resumed, out, straight_out


def test_train_writes_the_run_directory(runs):
    straight = runs[0]
    config = json.loads((straight / "config.json").read_text())
    assert config["config"]["num_envs"] == 8 and config["config"]["hidden_sizes"] == [16, 16]
    rs = rows(straight / "metrics.jsonl")
    assert [r["env_steps"] for r in rs] == list(range(128, 1025, 128))
    for r in rs:
        assert {"env_steps", "wall_s", "mean_return", "critic_loss", "actor_loss"} <= set(r)
    assert rs[-1]["critic_loss"] is not None and rs[-1]["mean_return"] > 0
    assert all(b["wall_s"] >= a["wall_s"] for a, b in zip(rs, rs[1:]))
    with Image.open(straight / "learning_curve.png") as im:
        assert im.format == "PNG" and im.size[0] > 300
    # The cadence far away: one checkpoint, at the end (TINY's --checkpoint-every 0 writes one
    # after each chunk: the warm-up's and the end's). Each chunk's last row carries its
    # compute and host seconds, other rows none; the last line gives the host share.
    assert sorted(int(x.name) for x in (straight / "checkpoints").iterdir() if x.name.isdigit()) == [128]
    timed = [r for r in rs if "compute_s" in r]
    assert [r["env_steps"] for r in timed] == [256, 1024]  # the warm-up chunk and the learning one
    assert all(r["compute_s"] > 0 and r["host_s"] >= 0 for r in timed)
    line = runs[3].strip().splitlines()[-1]
    assert line.startswith("wall ") and "host work" in line and line.endswith("%)"), line


def test_resume_gives_the_same_metrics_as_one_run(runs):
    straight, resumed, out, _ = runs
    assert without_wall(rows(resumed / "metrics.jsonl")) == without_wall(rows(straight / "metrics.jsonl"))
    assert "run directory" in out


def test_eval_prints_the_restored_policys_return_and_draws_a_gif(runs, tmp_path):
    """The printed mean equals (to 0.1) the return computed here from the checkpoint's
    actor with the same seed and episodes; and the restored actor is the trained one, not
    a fresh initialisation (catches an eval that never restores, or restores another
    member or step)."""
    import jax

    from maddpg_jax import evaluation
    from maddpg_jax.members import member_hparams, member_keys
    from maddpg_jax.training import kept_actor

    straight = runs[0]
    gif = tmp_path / "episode.gif"
    out = in_process("eval", str(straight), "--episodes", "8", "--seed", "5", "--gif", str(gif))
    printed = float(out.split("mean return ")[1].split()[0])
    config, members = evaluation.read_run_for(straight)
    trainer, state = evaluation.load_run(straight, config, members)
    actor = jax.tree.map(lambda x: x[0], kept_actor(config, state))
    here = evaluation.episode_returns(trainer, actor, 8, jax.random.key(5)).mean()
    assert abs(printed - here) <= 0.1, (printed, here)
    assert json.loads((straight / "eval.json").read_text())["mean_return"] == pytest.approx(here, abs=1e-4)
    fresh = jax.vmap(trainer.init)(member_keys(members), member_hparams(config, members)).agents.actor
    assert not np.allclose(jax.tree.leaves(fresh)[0][0], jax.tree.leaves(actor)[0])
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames >= 2


def test_plot_draws_one_series_per_run_with_the_logged_values(runs, tmp_path, monkeypatch):
    from maddpg_jax import plotting

    straight, resumed = runs[:2]
    seen = {}
    monkeypatch.setattr(plotting, "plot_curves", lambda series, path, **kw: seen.update(series))
    assert cli.main(["plot", str(straight), str(resumed), "--out", str(tmp_path / "both.png")]) == 0
    assert sorted(seen) == sorted([str(straight), str(resumed)])
    for d in (straight, resumed):
        logged = [(r["env_steps"], r["mean_return"]) for r in rows(d / "metrics.jsonl") if r["mean_return"] is not None]
        assert list(zip(*seen[str(d)])) == logged
    png = tmp_path / "real.png"
    maddpg("plot", str(straight), "--out", str(png))
    with Image.open(png) as im:
        assert im.format == "PNG"


def test_sweep_grid_summary(tmp_path):
    out = tmp_path / "sweep"
    # One member at a time (explicit, so the comparison below holds on any core count).
    p = maddpg(
        "sweep",
        "--out",
        str(out),
        "--seeds",
        "2",
        "--actor-lr",
        "1e-3,3e-4",
        "--total-env-steps",
        "512",
        "--member-chunk",
        "1",
        *TINY,
    )
    summary = [json.loads(line) for line in open(out / "summary.jsonl")]
    assert len(summary) == 4
    assert sorted((s["actor_lr"], s["seed"]) for s in summary) == [(3e-4, 0), (3e-4, 1), (1e-3, 0), (1e-3, 1)]
    for s in summary:
        assert {"final_mean_return", "best_mean_return", "solved_at_env_steps", "gamma"} <= set(s)
    rs = rows(out / "metrics.jsonl")
    assert sorted({r["member"] for r in rs}) == [0, 1, 2, 3]
    assert "final" in p.stdout  # the table printed at the end
    # Members with the same seed and hparams would be identical; different lrs are not.
    by = {m: [r["actor_loss"] for r in rs if r["member"] == m] for m in range(4)}
    assert by[0] != by[2]
    # That --member-chunk changes how members are batched, not what they compute, is
    # tests/test_parts.py's test_member_chunk_changes_how_members_are_batched_not_what_they_compute.


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "--num-envs", "0"], ["--num-envs", ">= 1"]),
        (["train", "--num-envs=-4"], ["--num-envs", ">= 1"]),
        (["train", "--num-envs", "many"], ["--num-envs", "invalid int"]),
        (["train", "--batch-size", "4096", "--buffer-size", "1024"], ["--batch-size", "buffer_size"]),
        (["train", "--actor-lr", "0"], ["--actor-lr", "> 0"]),
        (["train", "--critic-lr=-1e-3"], ["--critic-lr", "> 0"]),
        (["train", "--gamma", "1.5"], ["--gamma", "(0, 1]"]),
        (["train", "--tau", "0"], ["--tau", "(0, 1]"]),
        (["train", "--env", "Pong-v5"], ["--env", "MultiCartPole-v0"]),
        (["train", "--action-type", "box"], ["--action-type", "continuous"]),
        (["train", "--obs-mode", "partial"], ["--obs-mode", "local"]),
        (["train", "--hidden-sizes", "64,x"], ["--hidden-sizes", "integers"]),
        (["train", "--total-env-steps", "10", "--num-envs", "64"], ["--total-env-steps", ">= num_envs"]),
        (["sweep", "--actor-lr", "1e-3,,3e-4"], ["--actor-lr", "comma-separated"]),
        (["sweep", "--gamma", "0.9,2"], ["--gamma", "(0, 1]"]),
        (["sweep", "--seeds", "0"], ["--seeds", ">= 1"]),
        (["sweep", "--member-chunk", "0"], ["--member-chunk", ">= 1"]),
        (["eval", "/nonexistent/run"], ["run_dir", "no run in"]),
        (["eval", "somewhere", "--episodes", "0"], ["--episodes", ">= 1"]),
        (["train", "--resume", "--out", "/nonexistent/run"], ["--resume", "no run"]),
        (
            ["train", "--env", "jaxmarl:MPE_simple_spread_v3", "--num-agents", "5"],
            ["--num-agents", "takes: action_type"],
        ),
        (["train", "--env", "jaxmarl:hanabi"], ["--env", "jaxmarl:MPE_simple_spread_v3"]),
        (["train", "--env-kwargs", "coupling"], ["--env-kwargs", "key=value"]),
        (["train", "--env-kwargs", "coupling=-1"], ["--coupling", ">= 0"]),
        (["train", "--coupling", "-2"], ["--coupling", ">= 0"]),
        (["train", "--checkpoint-every", "-5"], ["--checkpoint-every", ">= 0"]),
        (["sweep", "--checkpoint-every", "nan"], ["--checkpoint-every", ">= 0"]),
        (["frobnicate"], ["invalid choice"]),
    ],
)
def test_bad_input_exits_2_with_one_line(args, words, capsys):
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, (w, err)


def test_eval_of_run_without_checkpoint(tmp_path, capsys):
    d = tmp_path / "empty"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"config": {"num_envs": 8}, "members": [{"seed": 0}]}))
    assert cli.main(["eval", str(d)]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert cli.main(["train", "--out", str(d), "--resume", "--no-progress"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert sorted(p.name for p in d.iterdir()) == ["config.json"]  # nothing created


def test_bad_input_in_a_subprocess_prints_no_traceback():
    p = maddpg("train", "--gamma", "2", check=False)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == "maddpg-jax: error: --gamma: must be in (0, 1], got 2.0"


def test_every_config_field_and_env_argument_is_a_flag_with_help():
    """Loops over the Config's fields and every registered env's arguments: each has its
    flag, a help line and its default shown."""
    import dataclasses

    from maddpg_jax import envs
    from maddpg_jax.config import Config, global_default

    help_text = " ".join(cli.build_parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        assert flag in help_text, flag
        if f.name not in ("env_kwargs",):
            default = global_default(f.name)
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
            assert f"(default: {default})" in help_text or shown in help_text, f.name
    for name in envs.names():
        for arg in envs.entry(name).args:
            assert "--" + arg.name.replace("_", "-") in help_text, (name, arg.name)
    assert "--lr-decay {linear,late,none}" in help_text  # choices listed


def test_sweep_too_big_for_memory_is_refused_before_compiling(tmp_path, capsys):
    args = ["sweep", "--out", str(tmp_path / "s"), "--seeds", "4", "--buffer-size", "1000000", "--max-memory", "0.01"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--max-memory" in err and "GiB" in err and "--buffer-size" in err
    # 4 members x 1M transitions x (2 obs + 2 next obs x 4 + actions, rewards, flags) floats: ~0.36 GiB
    need = float(err.split("about ")[1].split(" GiB")[0])
    assert 0.3 < need < 0.5
    assert not (tmp_path / "s" / "checkpoints").exists()


def test_out_that_is_a_file_is_one_line(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert cli.main(["train", "--out", str(f), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a file" in err


def test_a_directory_without_checkpoint_is_reused_by_the_same_command(tmp_path):
    """A run that stopped before its first checkpoint (Ctrl-C in compilation, a missing
    optional package) leaves no dead end: the same command starts it again."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / "checkpoints").mkdir()
    in_process("train", "--out", str(out), "--total-env-steps", "512", *TINY)
    assert json.loads((out / "config.json").read_text())["config"]["total_env_steps"] == 512
    assert rows(out / "metrics.jsonl")[-1]["env_steps"] == 512


def test_run_files_are_readable_like_any_file_the_user_writes(runs):
    straight = runs[0]
    umask = os.umask(0)
    os.umask(umask)
    for name in ("config.json", "metrics.jsonl", "learning_curve.png"):
        assert (straight / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_resume_of_a_config_without_members_is_one_line(tmp_path, capsys):
    d = tmp_path / "nomembers"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"config": {"num_envs": 8}}))
    for cmd in ("train", "sweep"):
        assert cli.main([cmd, "--out", str(d), "--resume", "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "members" in err, err


def test_a_sweep_saved_on_two_devices_opens_and_resumes_on_one(tmp_path):
    """A 3-member sweep trained on 2 CPU devices (members padded to 4) resumes in a process
    with one device, and opens in this one (load_policy), to the rows of a straight sweep on
    one device, to float32 rounding (constant learning rate; one member at a time on every
    device)."""
    import jax

    from maddpg_jax import load_policy
    from tests.flags import xla_flags

    assert jax.device_count() == 1  # this process: the straight sweep and load_policy
    straight, moved = tmp_path / "straight", tmp_path / "moved"
    args = lambda out: ["sweep", "--out", str(out), "--member-chunk", "1", "--no-progress"]
    in_process(*args(straight), "--total-env-steps", "512", "--seeds", "3", *CONST)

    def moved_sweep(devices, *more):
        env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(devices))
        cmd = [sys.executable, "-m", "maddpg_jax.cli", *args(moved), *more]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert p.returncode == 0, p.stderr[-3000:]

    moved_sweep(2, "--total-env-steps", "256", "--seeds", "3", *CONST)
    moved_sweep(1, "--resume", "--total-env-steps", "512")
    got, want = without_wall(rows(moved / "metrics.jsonl")), without_wall(rows(straight / "metrics.jsonl"))
    # XLA compiles the one-device and the two-device program differently and may round
    # differently (one ulp of actor_loss was seen on an Intel CI machine), so the rows agree
    # to float32 noise, not bit for bit.
    assert [sorted(r) for r in got] == [sorted(r) for r in want]
    for g, w in zip(got, want):
        assert g == {k: pytest.approx(v, rel=1e-4, abs=1e-6) if isinstance(v, float) else v for k, v in w.items()}
    actions = [load_policy(moved, m)({"cart_0": np.ones(4, np.float32)})["cart_0"] for m in range(3)]
    assert len({float(a[0]) for a in actions}) == 3  # three members, three policies
