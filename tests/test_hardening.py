"""Interruption, hard kills, non-finite numbers, determinism and hostile input."""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maddpg_jax import cli
from tests.flags import TINY
from tests.test_cli import cli_main as maddpg  # the commands that must get past a fault
from tests.test_cli import in_process

ENV = dict(os.environ, JAX_PLATFORMS="cpu")
# Policy selection off, and chunks (evaluation intervals) of 1024 env steps, so a signal
# is honoured within a second.
SHORT_CHUNKS = ["--eval-episodes", "0", "--eval-every", "1024"]


def start(*args, new_session=False, script=False):
    """A CLI process, to inject a fault into (``new_session``: in a process group of its own,
    so a signal can reach it as a terminal's Ctrl-C does; ``script``: through the installed
    ``maddpg-jax`` console script, as a user starts it, rather than ``python -m``)."""
    entry = [str(Path(sys.executable).with_name("maddpg-jax"))] if script else [sys.executable, "-m", "maddpg_jax.cli"]
    return subprocess.Popen(
        [*entry, *args],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )


def rows_without_wall(path):
    lines = Path(path).read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in ("wall_s", "compute_s", "host_s")} for line in lines]


def wait_for(pred, timeout=120, interval=0.05):
    t0 = time.time()
    while not pred():
        if time.time() - t0 > timeout:
            raise TimeoutError
        time.sleep(interval)


def sigint_ignored(pid):
    """Whether process ``pid`` ignores SIGINT now (Linux: the SigIgn mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone already
        return False
    mask = int(re.search(r"^SigIgn:\s*([0-9a-f]+)", status, re.M).group(1), 16)
    return bool(mask >> (signal.SIGINT - 1) & 1)


def checkpoints(d):
    c = Path(d) / "checkpoints"
    return sorted(int(p.name) for p in c.iterdir() if p.name.isdigit()) if c.exists() else []


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run to 1024 env steps, and one with a constant learning rate (whose
    trajectory does not depend on the run's planned length)."""
    base = tmp_path_factory.mktemp("hard")
    # const: chunks of 1024 env steps, as the signal test's run has them.
    # Through cli.main in this process (no process start); the runs compared with these are
    # CLI processes, which compile the same one-device program with the same XLA flags.
    for name, extra in (("a", []), ("const", ["--lr-decay", "none", *SHORT_CHUNKS])):
        in_process("train", "--out", str(base / name), "--total-env-steps", "1024", *TINY, *extra)
    return base


# Resuming after the signal is checked once: the checkpoint it continues from is written the
# same way for both signals (one more CLI process each would only repeat it).
@pytest.mark.parametrize("sig, code, resume", [(signal.SIGTERM, 143, True), (signal.SIGINT, 130, False)])
def test_signal_checkpoints_and_exits_with_its_code(reference, tmp_path, sig, code, resume):
    """A run planned for 1M env steps cannot finish before the signal: it must finish its
    chunk, checkpoint, print the resume command and exit 130 / 143 (never skip, never 0).
    Its rows match the uninterrupted reference (constant learning rate, so the planned
    length changes nothing), and --resume continues from the checkpoint."""
    out = tmp_path / "run"
    p = start("train", "--out", str(out), "--total-env-steps", "1000000", "--lr-decay", "none", *TINY, *SHORT_CHUNKS)
    wait_for(lambda: len(checkpoints(out)) >= 1)
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == code, err
    assert "--resume" in err and "Traceback" not in err
    saved = checkpoints(out)[-1] * 8  # env steps
    got = [r for r in rows_without_wall(out / "metrics.jsonl") if r["env_steps"] <= 1024]
    want = rows_without_wall(reference / "const" / "metrics.jsonl")
    assert got == want[: len(got)] and got[-1]["env_steps"] == min(saved, 1024)
    if not resume:
        return
    code2, _, err2 = maddpg(
        "train", "--out", str(out), "--resume", "--total-env-steps", str(saved + 128), "--no-progress"
    )
    assert code2 == 0, err2
    assert rows_without_wall(out / "metrics.jsonl")[-1]["env_steps"] == saved + 128


def test_sigkill_at_random_moments_loses_nothing(reference, tmp_path):
    """Killed (SIGKILL) at random moments, then resumed with the same command until it
    finishes: the metrics equal an uninterrupted run's, row for row. That also pins that the
    same command gives the same run (killed runs are processes of their own; the last resume
    runs in this one)."""
    out = tmp_path / "run"
    rng = random.Random(0)
    p = start("train", "--out", str(out), "--total-env-steps", "1024", *TINY)
    wait_for(lambda: len(checkpoints(out)) >= 1)
    time.sleep(rng.uniform(0, 0.5))
    p.kill()
    p.wait()
    for _ in range(2):  # kill the resumed run too, at random points, including mid-save
        p = start("train", "--out", str(out), "--resume", "--total-env-steps", "1024", "--no-progress")
        time.sleep(rng.uniform(2.0, 6.0))
        if p.poll() is not None:
            break
        p.kill()
        p.wait()
        lines = (out / "metrics.jsonl").read_text().splitlines()
        for line in lines[:-1]:
            json.loads(line)  # only the last line can be torn, and resume drops it
    code, _, err = maddpg("train", "--out", str(out), "--resume", "--total-env-steps", "1024", "--no-progress")
    assert code == 0, err
    want = rows_without_wall(reference / "a" / "metrics.jsonl")
    assert len(want) == 8 and rows_without_wall(out / "metrics.jsonl") == want


def test_non_finite_stops_the_run_and_keeps_the_last_good_checkpoint(reference, tmp_path):
    out = tmp_path / "run"
    # The reference run's config but for its learning rates, which are traced arrays: the
    # same compiled programs (from the persistent cache), and Adam's first step of ~1e30
    # overflows float32 in the next forward pass.
    code, _, err = maddpg(
        "train", "--out", str(out), "--total-env-steps", "1024", "--critic-lr", "1e30", "--actor-lr", "1e30", *TINY
    )
    assert code == 3, err
    assert "non-finite" in err and "env step" in err and "Traceback" not in err
    assert "frozen at its last finite state" in err
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    last_good = checkpoints(out)[-1] * 8
    assert all(r["env_steps"] <= last_good for r in rows)
    code, out_text, err = maddpg("eval", str(out), "--episodes", "4")
    assert code == 0, err  # the kept checkpoint loads, and it is finite: a real return
    mean = float(out_text.split("mean return ")[1].split()[0])
    assert 8 <= mean <= 500, out_text


def test_checkpoint_of_another_config_newer_format_or_truncated_is_refused(reference, tmp_path, capsys):
    src = reference / "a"
    step = checkpoints(src)[-1]

    other = tmp_path / "other"
    shutil.copytree(src, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["config"]["hidden_sizes"] = [32, 32]
    (other / "config.json").write_text(json.dumps(cfg))
    assert cli.main(["eval", str(other)]) == 2
    assert "another config" in capsys.readouterr().err

    newer = tmp_path / "newer"
    shutil.copytree(src, newer)
    meta = next((newer / "checkpoints" / str(step)).glob("meta/*"))
    m = json.loads(meta.read_text())
    m["format_version"] = 99
    meta.write_text(json.dumps(m))
    assert cli.main(["eval", str(newer)]) == 2
    assert "format 99" in capsys.readouterr().err

    # Every checkpoint truncated: nothing intact to fall back on, one line, exit 2.
    cut = tmp_path / "cut"
    shutil.copytree(src, cut)
    for d in checkpoints(cut):
        truncate(cut / "checkpoints" / str(d))
    assert cli.main(["eval", str(cut)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "no intact checkpoint" in err[-1] and "Traceback" not in "\n".join(err)


def truncate(checkpoint: Path) -> None:
    for f in [f for f in (checkpoint / "state").rglob("*") if f.is_file()]:  # every data file to half
        data = f.read_bytes()
        f.write_bytes(data[: len(data) // 2])


def test_a_damaged_newest_checkpoint_is_skipped_and_resume_goes_on_from_the_one_before(reference, tmp_path):
    """The newest checkpoint truncated: eval reports it in one line and reads the one before;
    --resume does too, sets the damaged one aside (nothing deleted), cuts the metrics back
    and trains on to the same rows as the uninterrupted run."""
    run = tmp_path / "run"
    shutil.copytree(reference / "a", run)
    older, newest = checkpoints(run)[-2:]
    truncate(run / "checkpoints" / str(newest))
    code, out, err = maddpg("eval", str(run), "--episodes", "2")
    assert code == 0, err
    assert f"checkpoint {newest} is damaged" in err and "trying the one before it" in err and "Traceback" not in err
    code, _, err = maddpg("train", "--out", str(run), "--resume", "--total-env-steps", "1024", "--no-progress")
    assert code == 0, err
    assert (run / "damaged_checkpoints" / str(newest)).is_dir()
    assert rows_without_wall(run / "metrics.jsonl") == rows_without_wall(reference / "a" / "metrics.jsonl")
    assert checkpoints(run)[-1] == newest  # the resumed run wrote its own in its place


def flip_bytes(checkpoint: Path) -> Path:
    """A byte flipped every 997 bytes of the checkpoint's largest file (a bad disk or copy):
    its size and structure stay, only array data changes."""
    largest = max((f for f in checkpoint.rglob("*") if f.is_file()), key=lambda f: f.stat().st_size)
    data = bytearray(largest.read_bytes())
    for i in range(0, len(data), 997):
        data[i] ^= 0xFF
    largest.write_bytes(bytes(data))
    return largest


def test_flipped_data_bytes_are_caught_by_the_checksums_and_never_loaded(reference, tmp_path):
    """Every committed checkpoint carries checksums.json. Data bytes flipped in the newest
    checkpoint (orbax would load them): eval and --resume name it in one line and use the one
    before, and the resumed run ends on the uninterrupted run's rows; with every checkpoint
    flipped, eval refuses in one line (exit 2) and nothing is loaded."""
    from maddpg_jax.rundir import CHECKSUMS

    run = tmp_path / "run"
    shutil.copytree(reference / "a", run)
    assert all((run / "checkpoints" / str(step) / CHECKSUMS).is_file() for step in checkpoints(run))
    newest = checkpoints(run)[-1]
    damaged = flip_bytes(run / "checkpoints" / str(newest))
    code, _, err = maddpg("eval", str(run), "--episodes", "2")
    assert code == 0 and f"checkpoint {newest} is damaged" in err and "checksum mismatch" in err, err
    assert damaged.relative_to(run / "checkpoints" / str(newest)).as_posix() in err
    code, _, err = maddpg("train", "--out", str(run), "--resume", "--total-env-steps", "1024", "--no-progress")
    assert code == 0, err
    assert rows_without_wall(run / "metrics.jsonl") == rows_without_wall(reference / "a" / "metrics.jsonl")
    for step in checkpoints(run):
        flip_bytes(run / "checkpoints" / str(step))
    code, _, err = maddpg("eval", str(run), "--episodes", "2")
    assert code == 2 and "no intact checkpoint" in err and len(err.strip().splitlines()) <= 3, err
    assert "Traceback" not in err


def test_a_checkpoint_cut_off_before_its_checksums_never_leaves_the_directory_stuck(reference, tmp_path):
    """A kill between orbax's commit of a run's only checkpoint and its checksums (the same
    files a SIGKILL in that moment leaves: the committed step, no checksums.json). eval and
    --resume refuse it in one line that names it and the way on (exit 2); the same command
    without --resume starts over, keeps the checkpoint under damaged_checkpoints/ (nothing a
    user saved is deleted) and ends on the uninterrupted run's rows."""
    from maddpg_jax.rundir import CHECKSUMS

    run = tmp_path / "run"
    shutil.copytree(reference / "a", run)
    steps = checkpoints(run)
    for step in steps[:-1]:  # only the newest stays: the run's first and only checkpoint
        shutil.rmtree(run / "checkpoints" / str(step))
    (run / "checkpoints" / str(steps[-1]) / CHECKSUMS).unlink()
    code, _, err = maddpg("eval", str(run), "--episodes", "2")
    assert code == 2 and f"checkpoint {steps[-1]} was cut off before its checksums" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    again = ["train", "--out", str(run), "--total-env-steps", "1024", *TINY]
    code, _, err = maddpg(*again, "--resume")
    assert code == 2 and "cut off before its checksums" in err and "without --resume starts over" in err, err
    assert len(err.strip().splitlines()) == 1
    code, _, err = maddpg(*again, "--no-progress")
    assert code == 0, err
    assert f"moved to {run / 'damaged_checkpoints' / str(steps[-1])}" in err
    assert (run / "damaged_checkpoints" / str(steps[-1]) / "state").is_dir()
    assert rows_without_wall(run / "metrics.jsonl") == rows_without_wall(reference / "a" / "metrics.jsonl")
    assert all((run / "checkpoints" / str(step) / CHECKSUMS).is_file() for step in checkpoints(run))


def test_a_second_writer_is_refused_and_a_killed_one_leaves_no_lock(tmp_path):
    """Two trainings into one directory: the second is refused in one line naming the first's
    PID (exit 2) and writes nothing; after a SIGKILL of the first, the same command gets past
    (the OS dropped the lock with its process)."""
    out = tmp_path / "run"
    p = start("train", "--out", str(out), "--total-env-steps", "1000000", *TINY, *SHORT_CHUNKS)
    # A finished checkpoint (its checksums written), so that --resume has one to continue.
    wait_for(lambda: any((out / "checkpoints" / str(c) / "checksums.json").exists() for c in checkpoints(out)))
    resume = ["train", "--out", str(out), "--resume", "--total-env-steps", "1024", "--no-progress"]
    code, _, err = maddpg(*resume)
    assert code == 2, err
    assert f"PID {p.pid}" in err and len(err.strip().splitlines()) == 1
    p.kill()
    p.wait()
    saved = checkpoints(out)[-1] * 8  # env steps: resuming to there trains nothing, but must lock
    code, out_text, err = maddpg("train", "--out", str(out), "--resume", "--total-env-steps", str(saved))
    assert code == 0 and "nothing to do" in out_text, err


FLAGS = [
    "--num-agents",
    "--num-envs",
    "--batch-size",
    "--buffer-size",
    "--updates-per-step",
    "--total-env-steps",
    "--warmup-env-steps",
    "--hidden-sizes",
    "--seed",
    "--coupling",
    "--action-type",
    "--obs-mode",
    "--actor-lr",
    "--critic-lr",
    "--gamma",
    "--tau",
    "--noise-std",
    "--gumbel-temperature",
    "--log-every",
    "--env",
    "--huber-delta",
    "--actor-delay",
]
JUNK = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
    st.sampled_from(["", "0", "-1", "1e309", "nan", "64,64", "a,b", ",", "continuous"]),
)


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cmd=st.sampled_from(["train", "sweep"]), pairs=st.lists(st.tuples(st.sampled_from(FLAGS), JUNK), max_size=4))
def test_random_flags_never_give_a_traceback(cmd, pairs, monkeypatch, capsys):
    """Either the flags are accepted (the run itself is replaced by a no-op here) or the
    CLI exits 2 with one line naming the problem."""
    from maddpg_jax import session

    monkeypatch.setattr(session.Session, "run", lambda self: 0)
    args = [cmd, "--out", "/nonexistent-dir/x"]
    for flag, value in pairs:
        args.append(f"{flag}={value}")
    code = cli.main(args)
    err = capsys.readouterr().err
    assert code in (0, 2), (args, err)
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and err.startswith("maddpg-jax: error: "), (args, err)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    content=st.one_of(
        st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
            max_leaves=8,
        ).map(json.dumps),
    )
)
def test_malformed_config_files_give_one_line(content, tmp_path_factory, capsys):
    d = tmp_path_factory.mktemp("bad")
    (d / "config.json").write_text(content)
    for args in (
        ["eval", str(d)],
        ["train", "--out", str(d), "--resume", "--no-progress"],
        ["sweep", "--out", str(d), "--resume", "--no-progress"],
    ):
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("maddpg-jax: error: "), err


@pytest.mark.parametrize(
    "inherited, delay",
    [("ignored", 0.05), ("ignored", 0.5), ("ignored", 3.0), ("default", 0.2), ("default", 1.0), ("default", 3.0)],
)
def test_ctrl_c_while_starting_is_one_line_and_the_same_command_runs_again(tmp_path, inherited, delay):
    """Ctrl-C as a terminal sends it (to the child's process group), to the ``maddpg-jax``
    console script, while Python imports (0.05-0.2 s), while it imports JAX (0.5-1 s) or while
    the first chunk compiles (3 s): exit 130, no traceback, and the run does not go on after
    it; the same command then trains the run, since a directory without a checkpoint is not a
    run yet (one that got its checkpoint resumes).

    ``ignored``: the process starts with SIGINT ignored, as a background job of a
    non-interactive shell does (some CI runners start their scripts so): Ctrl-C is still
    honoured from the program's first line, not only once the run's own handler is in place
    (a program that did so carried on to exit 0). The interpreter's own start is immune there
    (the kernel drops an ignored signal), so the signal goes at the delay or at the instant
    the program takes SIGINT over, whichever is later (the shortest delay: that instant);
    with the default disposition a signal in the interpreter's start is Python's, before any of the program."""
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--total-env-steps", "512", *TINY]
    if inherited == "ignored":
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the child
        try:
            p = start(*args, new_session=True, script=True)
        finally:
            signal.signal(signal.SIGINT, previous)
        # A signal sent while the disposition is still the inherited SIG_IGN is discarded by the
        # kernel, before any of the program runs; on a loaded machine the interpreter's start
        # outlasts 50 ms. So the signal waits until the program has taken SIGINT over (its bit
        # leaves the process's ignored mask), and the earliest case signals at that instant.
        t0 = time.monotonic()
        wait_for(lambda: p.poll() is not None or not sigint_ignored(p.pid), timeout=60, interval=0.001)
        time.sleep(max(0.0, delay - (time.monotonic() - t0)))
    else:
        p = start(*args, new_session=True, script=True)
        time.sleep(delay)
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert len(err.strip().splitlines()) <= 3, err  # one line, or the checkpoint's resume hint
    if checkpoints(out):  # interrupted after a checkpoint (mid-run or while finishing): resume
        args = [*args, "--resume"]
    # The same command, in this process: what is checked is the directory the interrupted
    # process left.
    code, _, err = maddpg(*args)
    assert code == 0, err


def test_the_console_script_imports_no_jax_before_main():
    """``from maddpg_jax.cli import main``, the console script's first line, imports nothing
    heavy (the module's attribute forwarding once answered the import system's ``__path__``
    query by importing the commands, JAX with them, before the Ctrl-C handler was in place)."""
    code = "import sys; from maddpg_jax.cli import main; print(sorted(m for m in ('jax', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True).stdout
    assert out.strip() == "[]"


def test_a_diverging_member_is_frozen_and_the_others_train_on_untouched(tmp_path):
    """A sweep member whose critic learning rate is 1e30 goes non-finite: it is frozen at its
    last finite state (its kept policy still loads and acts), marked in the summary and its
    rows, and the sweep exits 0. The healthy member is untouched: its rows and its kept
    actors equal, bit for bit, those of the same member in a sweep (the same program: the
    rates are traced) whose other member is healthy."""
    import numpy as np

    from maddpg_jax import load_policy

    bad, good = tmp_path / "bad", tmp_path / "good"
    common = ["--total-env-steps", "1024", "--actor-lr", "2e-3", *TINY]
    # Both sweeps through cli.main in this process: one program for both, no process starts.
    code, _, err = maddpg("sweep", "--out", str(bad), "--critic-lr", "6e-3,1e30", *common)
    assert code == 0, err
    assert "member 1" in err and "non-finite" in err and "the other members train on" in err
    assert "Traceback" not in err
    in_process("sweep", "--out", str(good), "--critic-lr", "6e-3,5e-3", *common)
    rows = lambda d, m: [r for r in rows_without_wall(d / "metrics.jsonl") if r["member"] == m]
    assert rows(bad, 0) == rows(good, 0) and len(rows(bad, 0)) == 8
    summary = [json.loads(x) for x in (bad / "summary.jsonl").read_text().splitlines()]
    assert summary[0]["diverged_at_env_steps"] is None
    at = summary[1]["diverged_at_env_steps"]
    assert isinstance(at, int) and 256 < at <= 1024 and summary[1]["diverged_quantity"]
    assert all(r["diverged_at_env_steps"] == at for r in rows(bad, 1) if r["env_steps"] >= at)
    assert "diverged_at_env_steps" not in rows(bad, 1)[0]
    for a, b in zip(*(jax_leaves(load_policy(d, 0).actor_params) for d in (bad, good))):
        assert np.array_equal(a, b)
    frozen = load_policy(bad, 1)
    assert all(np.isfinite(x).all() for x in jax_leaves(frozen.actor_params))
    action = frozen({"cart_0": np.zeros(4, np.float32), "cart_1": np.zeros(4, np.float32)})
    assert all(np.isfinite(v).all() for v in action.values())


def jax_leaves(tree):
    import jax
    import numpy as np

    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _limited(limit_bytes):
    """A child that may write files of at most ``limit_bytes`` (writes past it fail with
    EFBIG, as on a full disk; SIGXFSZ ignored so the write reports the error)."""

    def limit():
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return limit


def _train_under_limit(args, limit_kib):
    # Without the suite's persistent compilation cache (a test-only setting, tests/conftest.py):
    # under the limit its entries could not be written either, and JAX warns of each.
    env = dict(ENV, JAX_ENABLE_COMPILATION_CACHE="false")
    return subprocess.run(
        [sys.executable, "-m", "maddpg_jax.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limited(limit_kib * 1024),
    )


def _one_fault_line(p, said):
    assert p.returncode == 4, p.stderr[-3000:]
    lines = [x for x in p.stderr.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr[-3000:]
    assert "cannot write" in lines[0] and "File too large" in lines[0] and "checkpoints" in lines[0], lines[0]
    assert said in lines[0], lines[0]


# A checkpoint holds only the replay buffer's written rows, and orbax packs its arrays into
# data files whose sizes vary from run to run: in TINY's runs the largest file of the
# checkpoint at 256 env steps measured 46-72 KB, at 1024 steps 137 KB and at 2048 steps
# 165 KB; the run's other files stay under 30 KB. The limits below keep a margin of at least
# 2.8x from every one of these.


def test_a_write_fault_at_the_first_checkpoint_is_one_line_and_the_same_command_gets_past(tmp_path):
    """Checkpoint files may not exceed 16 KiB (a full disk, for the writer): the run stops
    with one line naming the checkpoint, the OS's reason and that none was written yet, exit
    4, no traceback and no unfinished checkpoint directory; the same command without the limit
    then trains in the same directory."""
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--total-env-steps", "1024", *TINY]
    _one_fault_line(_train_under_limit(args, 16), "no checkpoint was written yet")
    assert not list((out / "checkpoints").glob("*tmp*"))
    code, _, err = maddpg(*args)
    assert code == 0, err


def test_a_write_fault_after_a_checkpoint_is_one_line_and_resume_gets_past(tmp_path):
    """A run with checkpoints resumed with files limited to 48 KiB: its next checkpoint cannot
    be written, the one line names the last good one (kept), exit 4; ``--resume`` without the
    limit then trains to the end in the same directory."""
    out = tmp_path / "run"
    args = ["train", "--out", str(out), *TINY]
    code, _, err = maddpg(*args, "--total-env-steps", "1024")
    assert code == 0, err
    more = [*args, "--resume", "--total-env-steps", "2048"]
    _one_fault_line(_train_under_limit(more, 48), "the last good checkpoint (env step 1024) is kept")
    assert not list((out / "checkpoints").glob("*tmp*"))
    code, _, err = maddpg(*more)
    assert code == 0, err
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["env_steps"] == 2048


def test_a_writer_drops_only_its_failed_writes_records_and_closed_loop_echoes(tmp_path):
    """Once a process writes checkpoints into a directory, the error records of a failed
    write there (orbax's own, an unretrieved task's or future's naming the directory) and
    Python's unraisable 'Event loop is closed' echoes are dropped; every other record and
    unraisable error passes, and sys.stderr stays the stream it was."""
    import logging

    from maddpg_jax import rundir

    def record(level, pathname, message, error=None):
        exc_info = (type(error), error, error.__traceback__) if error is not None else None
        return logging.LogRecord("asyncio", level, pathname, 1, message, None, exc_info)

    def raised_in(filename, error):
        try:
            exec(compile("raise error", filename, "exec"), {"error": error})
        except Exception as e:
            return e

    seen, stderr = [], sys.stderr
    old_hook = sys.unraisablehook
    try:
        sys.unraisablehook = seen.append
        rundir._quiet_failed_writes(tmp_path / "checkpoints")
        rundir._quiet_failed_writes(tmp_path / "checkpoints")  # twice: one filter, one hook
        assert sys.stderr is stderr
        for name in ("absl", "asyncio"):
            assert sum(isinstance(f, rundir._DropOrbaxErrors) for f in logging.getLogger(name).filters) == 1
        orbax_file = f"{os.sep}site-packages{os.sep}orbax{os.sep}checkpoint{os.sep}x.py"
        ours = str(tmp_path / "checkpoints" / "128.orbax-checkpoint-tmp" / "d")
        drop = logging.getLogger("asyncio").filters[-1].filter
        assert not drop(record(logging.ERROR, orbax_file, "Save Finalize thread failed"))
        assert not drop(
            record(
                logging.ERROR,
                "asyncio/base_events.py",
                "Task exception was never retrieved",
                raised_in(orbax_file, ValueError("OUT_OF_RANGE")),
            )
        )
        assert not drop(
            record(
                logging.ERROR,
                "asyncio/base_events.py",
                "Future exception was never retrieved",
                ValueError(f"OUT_OF_RANGE: Error writing in {ours}"),
            )
        )
        assert drop(record(logging.WARNING, orbax_file, "a warning of orbax's"))
        assert drop(
            record(
                logging.ERROR,
                "asyncio/base_events.py",
                "Task exception was never retrieved",
                raised_in("/elsewhere/app.py", ValueError("another library's")),
            )
        )
        assert drop(record(logging.ERROR, "/elsewhere/app.py", "Error writing /some/other/dir"))

        class Unraisable:
            def __init__(self, e):
                self.exc_value, self.exc_type, self.exc_traceback = e, type(e), None
                self.err_msg, self.object = None, None

        echo, other = Unraisable(RuntimeError("Event loop is closed")), Unraisable(RuntimeError("other"))
        sys.unraisablehook(echo)
        sys.unraisablehook(other)
        sys.unraisablehook(Unraisable(ValueError("Event loop is closed")))
        assert [repr(u.exc_value) for u in seen] == ["RuntimeError('other')", "ValueError('Event loop is closed')"]
    finally:
        sys.unraisablehook = old_hook
        for name in ("absl", "asyncio"):
            logger = logging.getLogger(name)
            for f in [f for f in logger.filters if isinstance(f, rundir._DropOrbaxErrors)]:
                logger.removeFilter(f)
        rundir._WRITING.clear()


def test_reading_a_checkpoint_changes_no_process_wide_state(reference):
    """load_policy (a reader) leaves sys.stderr, the loggers and sys.unraisablehook as they
    were: only a process that writes checkpoints drops the echoes of a failed write."""
    code = (
        "import logging, sys; from maddpg_jax import load_policy; before = sys.stderr; "
        f"load_policy({str(reference / 'a')!r}); "
        "print(sys.stderr is before, logging.getLogger('absl').level, logging.getLogger('asyncio').level, "
        "len(logging.getLogger('absl').filters), len(logging.getLogger('asyncio').filters), "
        "sys.unraisablehook is sys.__unraisablehook__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True).stdout
    assert out.split() == ["True", "0", "0", "0", "0", "True"], out


# 512 env steps of MultiCartPole (8 envs, buffer 256, (8, 8) networks, constant learning
# rate) trained and saved by maddpg-jax 0b48ce6, before the extensions added state fields that
# are None when off: its checkpoint has no entries for them. checkpoints/, config.json and
# metrics.jsonl as that version wrote them (130 KB).
SAVED_BEFORE_EXTENSIONS = Path(__file__).parent / "data" / "run_before_extensions"


def test_a_run_saved_by_an_older_version_restores_every_array_it_holds_and_resumes(tmp_path):
    """Every array of the old checkpoint comes back as it is on disk (read by orbax without a
    template), and the same resume command a user types trains it on. Catches: a restore that
    refuses the older tree, or one that fills what the older version saved with fresh values."""
    import jax
    import numpy as np
    import orbax.checkpoint as ocp

    from maddpg_jax import Config, rundir
    from maddpg_jax import members as members_lib

    run = tmp_path / "run"
    shutil.copytree(SAVED_BEFORE_EXTENSIONS, run)
    saved = json.loads((run / "config.json").read_text())
    config = Config.from_dict(saved["config"])
    _, runner, placed = members_lib.build(config, saved["members"])
    keys, hp = members_lib.place(runner, config, placed)
    state, meta = rundir.Checkpoints(run).restore(64, runner.init(keys, hp), config.to_dict())
    on_disk = ocp.PyTreeCheckpointer().restore(run / "checkpoints" / "64" / "state")
    leaves = jax.tree_util.tree_flatten_with_path(rundir.keys_to_data(state))[0]
    for path, x in leaves:
        node = on_disk
        for k in path:
            node = node[k.name if hasattr(k, "name") else k.key if hasattr(k, "key") else k.idx]
        assert np.array_equal(np.asarray(x), np.asarray(node), equal_nan=True), jax.tree_util.keystr(path)
    assert len(leaves) == 37 and meta["iteration"] == 64
    in_process("train", "--out", str(run), "--resume", "--total-env-steps", "768", "--no-progress")
    rows = [json.loads(line) for line in open(run / "metrics.jsonl")]
    assert [r["env_steps"] for r in rows] == list(range(128, 769, 128))
