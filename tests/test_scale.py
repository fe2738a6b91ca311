"""Sweeps spread over several devices and several processes (subprocesses: XLA's device
count and jax.distributed are fixed per process)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.flags import xla_flags

WORKER = os.path.join(os.path.dirname(__file__), "_scale_worker.py")


def run(*args):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # the worker sets its own
    return subprocess.Popen(
        [sys.executable, WORKER, *map(str, args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(p, timeout=300):
    out, _ = p.communicate(timeout=timeout)
    assert p.returncode == 0, out


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    d = tmp_path_factory.mktemp("scale")
    procs = [run("devices", d / "devices.json")]
    procs += [run("alone", d / f"alone{i}.json", i) for i in (0, 2)]
    for p in procs:
        finish(p)
    load = lambda name: json.loads((d / name).read_text())
    return load("devices.json"), [load("alone0.json"), load("alone2.json")], d


def test_sweep_state_is_spread_over_four_devices(results):
    devices, _, _ = results
    assert devices["devices"] == 4
    assert devices["buffer_devices"] == 4 and devices["actor_devices"] == 4
    assert "members" in devices["spec"]


def test_each_member_matches_the_member_trained_alone(results):
    """Same to float32 rounding, not bit for bit. Members never interact (shard_map, no
    collectives) and every member's randomness comes from its own key, so a member does
    the same operations on the same numbers beside others or alone; but XLA's CPU backend
    splits a reduction over a different number of threads when the process has 4 devices
    instead of 1, so sums may differ in the last bit (seen: 6e-8 in a loss), and training
    carries such bits forward. The tolerance is far below any effect of a wrong member
    (other key or other learning rate), which the last assertion shows."""
    devices, alone, _ = results
    for member, solo in zip((0, 2), alone):
        for k in ("mean_return", "critic_loss", "actor_loss"):
            np.testing.assert_allclose(
                np.array(devices["metrics"][k][member], dtype=float),
                np.array(solo["metrics"][k][0], dtype=float),
                rtol=1e-4,
                err_msg=k,
            )
    m = np.array(devices["metrics"]["critic_loss"], dtype=float)[:, -10:].mean(1)
    assert abs(m[0] - m[2]) > 1e-2 * abs(m[0])  # other critic lr: far outside the tolerance
    assert abs(m[0] - m[1]) > 1e-3 * abs(m[0])  # other seed: likewise


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_one_sharded_sweep(results):
    devices, _, d = results
    port = _free_port()
    procs = [run("dist", d / "dist.json", pid, port) for pid in (0, 1)]
    for p in procs:
        finish(p)
    dist = json.loads((d / "dist.json").read_text())
    assert dist["processes"] == 2 and dist["devices"] == 4 and dist["buffer_devices"] == 4
    for k in ("mean_return", "critic_loss", "actor_loss"):
        np.testing.assert_allclose(
            np.array(dist["metrics"][k], dtype=float),
            np.array(devices["metrics"][k], dtype=float),
            rtol=1e-4,
            err_msg=k,
        )


def test_one_run_data_parallel_over_two_devices(results):
    """Each device steps half the envs into its half of the buffer and samples half the
    batch; gradients are averaged, so the two parameter copies stay bit-identical, and one
    update round equals a single-device update on the two halves' concatenated batch."""
    _, _, d = results
    finish(run("dp", d / "dp.json"))
    dp = json.loads((d / "dp.json").read_text())
    assert dp["devices"] == 2 and dp["buffer_devices"] == 2
    assert dp["params_equal_across_devices"] and dp["buffers_differ"]
    assert dp["buffer_rows_per_device"] == 640 // 2
    losses = np.array(dp["metrics"]["critic_loss"][0], dtype=float)
    assert np.isfinite(losses[-10:]).all()
    # Gradient averaging: two devices with half a batch each update exactly as one device
    # with the whole batch (would fail with psum instead of pmean, or no collective at all).
    assert dp["update_matches_single_device"]


def cli_in_two_processes(argv, env):
    """``maddpg-jax ARGV`` started as processes 0 and 1 of one jax.distributed job."""
    flags = ["--coordinator-address", f"127.0.0.1:{_free_port()}", "--num-processes", "2"]
    return [
        subprocess.Popen(
            [sys.executable, "-m", "maddpg_jax.cli", *argv, *flags, "--process-id", str(pid)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for pid in (0, 1)
    ]


def test_pbt_across_two_processes_makes_the_choices_of_one(tmp_path):
    """The CLI's --coordinator-address/--num-processes/--process-id: PBT with its two
    members in two processes (one CPU device each). The replaced member copies its parent
    from the other process; the lineage (who replaced whom, and the new hyperparameters)
    equals that of the same command in one process with two devices. Process 0 writes the
    run directory: the lineage, and both members' metrics rows and summary lines."""
    from tests.test_pbt import PBT

    argv = [*PBT, "--total-env-steps", "768"]
    argv[argv.index("--members") + 1] = "2"  # fraction 0.5: one member replaced per step
    one_env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(2))
    one = subprocess.run(
        [sys.executable, "-m", "maddpg_jax.cli", *argv, "--out", str(tmp_path / "one")],
        env=one_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert one.returncode == 0, one.stdout + one.stderr
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(1))
    for p in cli_in_two_processes([*argv, "--out", str(tmp_path / "two")], env):
        finish(p)
    lineage = lambda d: [json.loads(line) for line in (d / "pbt.jsonl").read_text().splitlines()]
    two = lineage(tmp_path / "two")
    assert len(two) == 2 and {r["env_steps"] for r in two} == {512, 768}
    assert all(r["parent"] != r["member"] for r in two)
    assert two == lineage(tmp_path / "one")
    read = lambda name: [json.loads(line) for line in (tmp_path / "two" / name).read_text().splitlines()]
    summary, rows = read("summary.jsonl"), read("metrics.jsonl")
    assert sorted(r["member"] for r in summary) == [0, 1]
    assert {r["member"] for r in rows} == {0, 1} and max(r["env_steps"] for r in rows) == 768
