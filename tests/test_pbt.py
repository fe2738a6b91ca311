"""Population-based training: the exploit step's copies and draws, its determinism and
exact resume end to end, and bad ranges refused in one line."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from maddpg_jax import cli
from maddpg_jax import members as members_lib
from maddpg_jax.config import HPARAM_NAMES, Config, HParams
from maddpg_jax.pbt import PBTConfig, Range, choose, initial_members, make_step, schedules
from tests.flags import TINY
from tests.test_cli import maddpg, rows, without_wall

# 4 members on the CLI's 2 CPU devices (2 each), so copies cross devices; exploit steps every
# 256 env steps (32 iterations of 8 envs) after the 256-step warm-up: at 512, 768 and 1024.
PBT = [
    "pbt",
    *TINY,
    "--members",
    "4",
    "--fraction",
    "0.5",
    "--actor-lr",
    "1e-4:1e-2",
    "--gamma",
    "0.9:0.99",
    "--eval-every",
    "128",
    "--eval-episodes",
    "4",
    "--interval",
    "256",
    "--lr-decay",
    "none",  # so that a run resumed to a longer total equals one straight run
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One run to 1024 env steps, and the same command to 512 resumed to 1024."""
    base = tmp_path_factory.mktemp("pbt")
    one, resumed = base / "one", base / "resumed"
    maddpg(*PBT, "--out", str(one), "--total-env-steps", "1024")
    maddpg(*PBT, "--out", str(resumed), "--total-env-steps", "512")
    maddpg("pbt", "--out", str(resumed), "--resume", "--total-env-steps", "1024", "--no-progress")
    return one, resumed


def test_stop_and_resume_gives_the_lineage_of_one_run(runs):
    """Stopped at 512 env steps and resumed (two more processes), the lineage and metrics
    equal one straight run's exactly; which also pins that the same command gives the same
    run."""
    one, resumed = runs
    assert rows(resumed / "pbt.jsonl") == rows(one / "pbt.jsonl")
    assert without_wall(rows(resumed / "metrics.jsonl")) == without_wall(rows(one / "metrics.jsonl"))


def test_lineage_replaces_the_worst_with_perturbed_copies_of_the_best(runs):
    one = runs[0]
    saved = json.loads((one / "config.json").read_text())
    members, pbt = saved["members"], PBTConfig.from_dict(saved["pbt"])
    lineage, metrics = rows(one / "pbt.jsonl"), rows(one / "metrics.jsonl")
    assert sorted({r["env_steps"] for r in lineage}) == [512, 768, 1024]
    values = {m: {n: members[m][n] for n in pbt.ranges} for m in range(4)}  # current hp per member
    for step in (512, 768, 1024):
        here = [r for r in lineage if r["env_steps"] == step]
        assert len(here) == 2  # floor(0.5 * 4)
        score = {r["member"]: r["eval_return"] for r in metrics if r["env_steps"] == step}
        children = {r["member"] for r in here}
        for r in here:
            assert r["parent"] not in children
            assert score[r["parent"]] >= max(score[c] for c in children)  # parents rank above the replaced
            assert r["old"] == pytest.approx(values[r["member"]], rel=1e-6)
            for n, v in r["new"].items():
                lo, hi = pbt.ranges[n].low, pbt.ranges[n].high
                assert lo * (1 - 1e-6) <= v <= hi * (1 + 1e-6)
                inherited = values[r["parent"]][n]
                perturbed = [min(max(inherited * f, lo), hi) for f in pbt.perturb]
                # a perturbed copy of the parent's value, or (resampled) a fresh draw
                assert any(v == pytest.approx(p, rel=1e-5) for p in perturbed) or pbt.resample > 0
        for r in here:
            values[r["member"]] = r["new"]


def test_plot_draws_each_schedule_beside_the_returns(runs, tmp_path):
    out = tmp_path / "p.png"
    assert cli.main(["plot", str(runs[0]), "--out", str(out)]) == 0
    with Image.open(out) as im, Image.open(runs[0] / "learning_curve.png") as curve:
        assert im.size[1] > 600 and curve.size[1] > 600  # returns + one panel per adapted hyperparameter


# -- the step itself -----------------------------------------------------------------------


RANGES = {"actor_lr": Range(1e-4, 1e-2, True), "gamma": Range(0.9, 0.99, False)}


def _hp(values: dict, size: int) -> HParams:
    base = Config().hparams()
    return HParams(
        **{n: jnp.asarray(values.get(n, [float(getattr(base, n))] * size), jnp.float32) for n in HPARAM_NAMES}
    )


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    # No subnormals: XLA:CPU flushes them to zero, so the device ranks 1e-45 level with 0
    # where the numpy reference below would not (hypothesis found exactly that).
    scores=st.lists(st.floats(-100, 100, width=32, allow_subnormal=False), min_size=5, max_size=5),
    fraction=st.sampled_from([0.2, 0.4]),
    resample=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_choose_copies_from_the_top_and_stays_in_range(seed, scores, fraction, resample):
    n, size = 5, 6  # the sixth is device padding: never chosen, never replaced
    pbt = PBTConfig(RANGES, interval=1, fraction=fraction, perturb=(0.5, 3.0), resample=resample)
    rng = np.random.default_rng(seed)
    hp = _hp({"actor_lr": rng.uniform(1e-4, 1e-2, size), "gamma": rng.uniform(0.9, 0.99, size)}, size)
    s = jnp.asarray(scores + [1e9], jnp.float32)
    source, new = choose(jax.random.key(seed), s, hp, pbt, n)
    source = np.asarray(source)
    k = pbt.num_replaced(n)
    order = np.argsort(-np.asarray(scores), kind="stable")
    replaced = [m for m in range(size) if source[m] != m]
    assert sorted(replaced) == sorted(order[n - k :].tolist())
    assert all(source[m] in order[:k] for m in replaced)
    for name in HPARAM_NAMES:
        old, now = np.asarray(getattr(hp, name)), np.asarray(getattr(new, name))
        kept = [m for m in range(size) if m not in replaced]
        np.testing.assert_array_equal(now[kept], old[kept])
        if name not in RANGES:
            np.testing.assert_array_equal(now, old)
            continue
        r = RANGES[name]
        assert np.all((now >= np.float32(r.low)) & (now <= np.float32(r.high)))
        if resample == 0.0:
            for m in replaced:
                want = [np.clip(np.float32(old[source[m]] * f), r.low, r.high) for f in pbt.perturb]
                assert any(np.isclose(now[m], w, rtol=1e-6) for w in want)


def test_initial_members_are_drawn_in_range_and_repeatable():
    pbt = PBTConfig(RANGES, interval=1)
    base = {n: float(getattr(Config(), n)) for n in HPARAM_NAMES}
    a, b = initial_members(7, base, pbt, 64), initial_members(7, base, pbt, 64)
    assert a == b and [m["seed"] for m in a] == list(range(7, 71))
    lrs = np.array([m["actor_lr"] for m in a])
    assert lrs.min() >= 1e-4 and lrs.max() <= 1e-2
    # log-uniform: about half of the draws below the geometric midpoint 1e-3
    assert 16 <= (lrs < 1e-3).sum() <= 48
    assert all(m["critic_lr"] == base["critic_lr"] for m in a)


def test_a_replaced_member_holds_its_parents_parameters_and_keeps_its_buffer():
    config = Config(
        num_envs=8, batch_size=32, buffer_size=512, hidden_sizes=(8, 8), total_env_steps=512, warmup_env_steps=64
    )
    members = [{"seed": s} for s in range(4)]
    trainer, runner, placed = members_lib.build(config, members)
    keys, hp = members_lib.place(runner, config, placed)
    state, _ = runner.run(runner.init(keys, hp), hp, 16, True)
    pbt = PBTConfig(RANGES, interval=1, fraction=0.5)
    scores = np.array([3.0, 1.0, 4.0, 0.0], np.float32)  # top: 2, 0; replaced: 1, 3
    new, _, source = make_step(pbt, 4, runner.sharding)(state, hp, jax.random.key(0), scores)
    source = np.asarray(source)
    assert sorted(np.flatnonzero(source != np.arange(4)).tolist()) == [1, 3]
    for m in range(4):
        for before, after in zip(jax.tree.leaves(state.agents), jax.tree.leaves(new.agents)):
            np.testing.assert_array_equal(np.asarray(after)[m], np.asarray(before)[source[m]])
        for before, after in zip(jax.tree.leaves(state.buffer), jax.tree.leaves(new.buffer)):
            np.testing.assert_array_equal(np.asarray(after)[m], np.asarray(before)[m])
    # members that differ in parameters before differ after only where one was replaced
    assert not np.array_equal(
        np.asarray(jax.tree.leaves(new.agents)[0])[0], np.asarray(jax.tree.leaves(new.agents)[0])[2]
    )


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--actor-lr", "1e-2:1e-4"], ["--actor-lr", "LOW < HIGH", "0.01:0.0001"]),
        (["--actor-lr", "0:1e-2"], ["--actor-lr", "above 0", "0:0.01"]),
        (["--gamma", "0.9:1.5"], ["--gamma", "1.5"]),
        (["--actor-lr", "1e-4:1e-2", "--fraction", "0.7"], ["--fraction", "(0, 0.5]", "0.7"]),
        (["--actor-lr", "1e-4:1e-2", "--fraction", "0"], ["--fraction", "(0, 0.5]"]),
        (["--actor-lr", "1e-4:1e-2", "--perturb", "0.8,-1"], ["--perturb", "> 0"]),
        (["--actor-lr", "1e-4:1e-2", "--resample", "2"], ["--resample", "[0, 1]"]),
        (["--actor-lr", "1e-4:1e-2", "--members", "1"], ["--members", "at least 2"]),
        (["--actor-lr", "1e-4:1e-2:1"], ["--actor-lr", "LOW:HIGH"]),
        ([], ["range LOW:HIGH"]),
    ],
)
def test_bad_pbt_input_is_one_line_before_compiling(flags, words, tmp_path, capsys):
    assert cli.main(["pbt", "--out", str(tmp_path / "r"), "--no-progress", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    for w in words:
        assert w in err
    assert not (tmp_path / "r").exists()


def test_schedules_follow_the_lineage():
    members = [{"seed": 0, "actor_lr": 1e-3}, {"seed": 1, "actor_lr": 2e-3}]
    lineage = [{"env_steps": 10, "member": 1, "parent": 0, "old": {"actor_lr": 2e-3}, "new": {"actor_lr": 8e-4}}]
    out = schedules(members, lineage, ["actor_lr"])
    assert out["actor_lr"][0] == ([0], [1e-3]) and out["actor_lr"][1] == ([0, 10], [2e-3, 8e-4])


def test_resume_with_the_other_command_is_one_line(runs, capsys):
    assert cli.main(["sweep", "--out", str(runs[0]), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "made by pbt" in err


def test_eval_and_load_policy_read_a_pbt_run(runs, capsys):
    """A pbt run's checkpoints hold the members' hyperparameters beside the state: eval and
    load_policy read the state out of them (each member's best evaluated return as the run's
    last metrics rows logged it), and a reader that expects a train run's layout gets one
    line naming what the checkpoint lacks, never a state of unread placeholders."""
    from maddpg_jax import load_policy, rundir
    from maddpg_jax.evaluation import load_run, read_run_for

    one = runs[0]
    config, members = read_run_for(one)
    _, state = load_run(one, config, members)
    last = {r["member"]: r["best_eval_return"] for r in rows(one / "metrics.jsonl")}
    final = max(r["env_steps"] for r in rows(one / "pbt.jsonl"))
    for r in rows(one / "pbt.jsonl"):  # the run's last exploit step copies after its last metrics rows
        if r["env_steps"] == final:
            last[r["member"]] = last[r["parent"]]
    np.testing.assert_allclose(
        np.asarray(state.best_eval_return)[: len(members)], [last[m] for m in range(4)], rtol=1e-5
    )
    assert cli.main(["eval", str(one), "--episodes", "4", "--member", "3"]) == 0
    assert "mean return" in capsys.readouterr().out
    policy = load_policy(one, 3)
    assert set(policy({a: np.zeros(policy.env.obs_dim, np.float32) for a in policy.agents})) == set(policy.agents)

    trainer, runner, placed = members_lib.build(config, members)
    keys, hp = members_lib.place(runner, config, placed)
    ckpt = rundir.Checkpoints(one)
    try:
        with pytest.raises(rundir.CheckpointError, match="another state's layout"):
            ckpt.restore(ckpt.steps()[0], runner.abstract_init(keys, hp))
    finally:
        ckpt.close()
