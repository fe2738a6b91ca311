"""The benchmark tools that print figures: the kernel counter counts what a compiled
program launches, and the GPU report runs end to end at tiny sizes on a CPU."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from benchmarks import kernels


def _hlo(fn, *args):
    return jax.jit(fn).lower(*args).compile().as_text()


# A hand-written module in the optimised-HLO text form: the scan's loop (7 trips) runs three
# fusions (one of them only slices and transposes) and a copy, a nested loop of 3 trips
# (body: a fusion and a dot; condition: one compare), and a conditional whose branches
# launch 2 and 5 kernels.
HLO = """HloModule m

%inner_body (p: (s32[], f32[4])) -> (s32[], f32[4]) {
  %p = (s32[], f32[4]) parameter(0)
  %a = f32[4]{0} fusion(%p), kind=kLoop, calls=%f1
  %d = f32[4]{0} dot(%a, %a), lhs_contracting_dims={0}
  ROOT %t = (s32[], f32[4]) tuple(%a, %d)
}

%inner_cond (p: (s32[], f32[4])) -> pred[] {
  %p = (s32[], f32[4]) parameter(0)
  ROOT %lt = pred[] compare(%p, %p), direction=LT
}

%small (p: f32[4]) -> f32[4] {
  %p = f32[4]{0} parameter(0)
  %x = f32[4]{0} fusion(%p), kind=kLoop, calls=%f2
  ROOT %y = f32[4]{0} fusion(%x), kind=kLoop, calls=%f2
}

%big (p: f32[4]) -> f32[4] {
  %p = f32[4]{0} parameter(0)
  %x = f32[4]{0} fusion(%p), kind=kLoop, calls=%f2
  %y = f32[4]{0} copy(%x)
  %z = f32[4]{0} fusion(%y), kind=kLoop, calls=%f2
  %w = f32[4]{0} custom-call(%z), custom_call_target="x"
  ROOT %v = f32[4]{0} fusion(%w), kind=kLoop, calls=%f2
}

%mv (p: f32[8]) -> f32[4] {
  %p = f32[8]{0} parameter(0)
  %s = f32[4]{0} slice(%p), slice={[0:4]}
  ROOT %t = f32[4]{0} transpose(%s), dimensions={0}
}

%scan_body (p: (s32[], f32[4])) -> (s32[], f32[4]) {
  %p = (s32[], f32[4]) parameter(0)
  %c = s32[] constant(1)
  %m = f32[4]{0} fusion(%p), kind=kLoop, calls=%mv
  %a = f32[4]{0} fusion(%m), kind=kLoop, calls=%f1
  %b = f32[4]{0} copy(%a)
  %l = (s32[], f32[4]) while(%p), condition=%inner_cond, body=%inner_body, backend_config={"known_trip_count":{"n":"3"}}
  %k = f32[4]{0} conditional(%c, %b, %b), branch_computations={%small, %big}
  %e = f32[4]{0} fusion(%k), kind=kLoop, calls=%f1
  ROOT %t = (s32[], f32[4]) tuple(%c, %e)
}

%scan_cond (p: (s32[], f32[4])) -> pred[] {
  %p = (s32[], f32[4]) parameter(0)
  ROOT %lt = pred[] compare(%p, %p), direction=LT
}

ENTRY %main (x: f32[4]) -> f32[4] {
  %x = f32[4]{0} parameter(0)
  %w = (s32[], f32[4]) while(%x), condition=%scan_cond, body=%scan_body, backend_config={"known_trip_count":{"n":"7"}}
  ROOT %r = f32[4]{0} get-tuple-element(%w), index=1
}
"""


def test_kernel_counter_counts_by_hand_a_loop_body_with_a_nested_loop_and_a_conditional():
    k = kernels.loop_body_kernels(HLO, 7)
    assert k["fusion"] == 3 + 3 * 1 + 3  # own, nested body x 3 trips, the larger branch's
    assert k["moves"] == 1  # the slice-and-transpose fusion; %f1 / %f2 are not in the text
    assert k["dot"] == 3 * 1
    assert k["copy"] == 1 + 1  # own, the larger branch's
    assert k["custom-call"] == 1
    assert k["other"] == 4 * 1 + 1  # the nested condition runs trips + 1 times; the predicate
    assert k["loop trips"] == 3 and k["in loops"] == 3 * 2 + 4 * 1
    assert k["total"] == 3 + 1 + 3 * 2 + 4 + 5 + 1


def test_kernel_counter_finds_the_scan_in_a_compiled_program():
    def body(x, _):
        x = jax.lax.fori_loop(0, 3, lambda i, y: jnp.tanh(y * 2.0 + i), x)
        return jnp.sin(x), None

    def fn(x):
        return jax.lax.scan(body, x, None, length=kernels.SCAN_TRIPS)[0]

    hlo = jax.jit(fn).lower(jnp.ones((64, 64))).compile().as_text()
    k = kernels.loop_body_kernels(hlo, kernels.SCAN_TRIPS)
    assert k["loop trips"] == 3 and 3 <= k["in loops"] < k["total"]


# A loop whose kernels are one of each group, with the op_name metadata XLA keeps; a copy
# outside the loop, which the profile must leave out (as the counter leaves out the scan's
# own condition).
HLO_TIMED = """HloModule t

%fdot (p0: f32[4,4]) -> f32[4,4] {
  %p0 = f32[4,4]{1,0} parameter(0)
  ROOT %dd = f32[4,4] dot(%p0, %p0), metadata={op_name="jit(run)/while/body/closed_call/vmap(Critic)/Dense_0/dot"}
}

%fmv (p1: f32[4,4]) -> f32[4,4] {
  %p1 = f32[4,4]{1,0} parameter(0)
  ROOT %s1 = f32[4,4]{1,0} transpose(%p1), dimensions={1,0}
}

%fexp (p2: f32[4,4]) -> f32[4,4] {
  %p2 = f32[4,4]{1,0} parameter(0)
  ROOT %e2 = f32[4,4]{1,0} exponential(%p2), metadata={op_name="jit(run)/while/body/vmap(Actor)/exp"}
}

%body (p3: f32[4,4]) -> f32[4,4] {
  %p3 = f32[4,4]{1,0} parameter(0)
  %k1 = f32[4,4]{1,0} fusion(%p3), kind=kOutput, calls=%fdot
  %k2 = f32[4,4]{1,0} fusion(%k1), kind=kLoop, calls=%fmv
  %k3 = f32[4,4]{1,0} fusion(%k2), kind=kLoop, calls=%fexp
  %k4 = f32[4,4]{1,0} copy(%k3)
  %k5 = f32[4,4]{1,0} dot(%k4, %k4), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  ROOT %k6 = f32[4,4]{1,0} sort(%k5), dimensions={1}, to_apply=%fexp
}

%cond (p4: f32[4,4]) -> pred[] {
  %p4 = f32[4,4]{1,0} parameter(0)
  ROOT %lt = pred[] compare(%p4, %p4), direction=LT
}

ENTRY %main (x: f32[4,4]) -> f32[4,4] {
  %x = f32[4,4]{1,0} parameter(0)
  %outside = f32[4,4]{1,0} copy(%x)
  ROOT %w = f32[4,4]{1,0} while(%outside), condition=%cond, body=%body, backend_config={"known_trip_count":{"n":"7"}}
}
"""


def test_profile_groups_the_loops_kernels_and_sums_their_trace_events():
    inst = kernels.loop_instructions(HLO_TIMED, 7)
    assert inst == {
        "k1": ("matmul", "vmap(Critic)/Dense_0/dot"),  # the dot's source, scaffolding cut
        "k2": ("moves", "fusion"),  # only a transpose; no source recorded
        "k3": ("other fusion", "vmap(Actor)/exp"),
        "k4": ("copy", "copy"),
        "k5": ("matmul", "dot"),
        "k6": ("other", "sort"),
    }
    events = [
        {"ph": "X", "name": "k1", "dur": 10},
        {"ph": "X", "name": "k1", "dur": 30},
        {"ph": "X", "name": "k3", "dur": 4},
        {"ph": "X", "name": "outside", "dur": 100},  # not in the loop
        {"ph": "X", "name": "w", "dur": 1000},  # the loop itself encloses its kernels
        {"ph": "B", "name": "k5", "dur": 7},  # not a complete event
    ]
    assert kernels.kernel_times(inst, events, iterations=2) == {"k1": 20.0, "k3": 2.0}
    gpu_named = [{"ph": "X", "name": "k1", "dur": 10}, {"ph": "X", "name": "k1", "dur": 30}]
    assert kernels.kernel_times({"k.1": inst["k1"]}, [{**e, "name": "k_1"} for e in gpu_named], 2) == {"k.1": 20.0}


def test_profile_finds_a_compiled_programs_kernels_in_its_trace():
    def body(x, _):
        return jnp.tanh(x @ x), None

    fn = jax.jit(lambda x: jax.lax.scan(body, x, None, length=kernels.SCAN_TRIPS)[0])
    x = jnp.full((128, 128), 0.01)
    compiled = fn.lower(x).compile()
    p = kernels.profile_compiled(compiled.as_text(), lambda: jax.block_until_ready(compiled(x)), seconds=0.2)
    assert p["groups"]["matmul"] > 0 and p["kernel_us"] == pytest.approx(sum(t for t, *_ in p["kernels"]))
    assert sum(p["groups"].values()) == pytest.approx(p["kernel_us"])


def test_gpu_report_runs_end_to_end_at_tiny_sizes(tmp_path):
    out = tmp_path / "report.md"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    p = subprocess.run(
        [sys.executable, "benchmarks/gpu_report.py", "--tiny", "--seconds", "0.05", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    text = out.read_text()
    for section in ("## One run", "## Kernels per iteration", "## Sweeps in one program"):
        assert section in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 1 + 1  # one run, a sweep of 2 members (--tiny: one program each)
    assert all(float(r.split("|")[2].replace(",", "")) > 0 for r in rows)  # env steps/s measured


def test_command_line_names_every_option_that_differs_from_its_default():
    """Fault caught: a results table whose command would not reproduce it (an option left
    out, or one shown at its default). The output folder is not part of the command."""
    import argparse

    from benchmarks.common import command_line

    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--action-type", default="continuous")
    p.add_argument("--set", nargs="*", default=[])
    p.add_argument("--out", default="results")
    p.add_argument("--to-return", action="store_true")  # a flag: named alone, never "True"
    a = p.parse_args(["--seeds", "5", "--set", "actor_lr=1e-3", "n_step=2", "--out", "/tmp/x"])
    assert command_line("s.py", p, a) == "python benchmarks/s.py --seeds 5 --set actor_lr=1e-3 n_step=2"
    a = p.parse_args(["--to-return", "--seeds", "5"])
    assert command_line("s.py", p, a) == "python benchmarks/s.py --seeds 5 --to-return"
    assert command_line("s.py", p, p.parse_args([])) == "python benchmarks/s.py"


def test_time_to_return_report_counts_first_crossings_and_bounds_a_side_that_never_gets_there():
    """Faults caught: a level counted as reached from a later, not the first, evaluation; a
    median taken over only the seeds that got there (a side half of whose seeds never reach
    a return must not get a time for it); a ratio claimed where the slower side has none."""
    from benchmarks.benchmarl_compare import first_reach, to_return_report

    ours = [
        {"evals": [(10.0, 100, -30.0), (12.0, 200, -19.0), (14.0, 300, -15.0)]},
        {"evals": [(10.0, 100, -25.0), (16.0, 200, -21.0), (18.0, 300, -18.0)]},
    ]
    theirs = [
        {"evals": [(100.0, 1000, -26.0), (500.0, 2000, -21.5)]},
        {"evals": [(100.0, 1000, -24.0), (300.0, 2000, -23.0)]},
    ]
    assert first_reach(ours[0]["evals"], -20.0) == (12.0, 200)  # the first at or above, not the best
    assert first_reach(ours[1]["evals"], -20.0) == (18.0, 300)
    assert first_reach(theirs[1]["evals"], -20.0) is None
    levels = [("-20", -20.0), ("-22", -22.0), ("-23", -23.0)]
    rows = to_return_report(ours, theirs, levels, budget_s=1000.0)
    cells = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]] for r in rows[2:5]}
    # ours: both seeds reach -20, at 12 s and 18 s (median 15); theirs: neither
    assert cells["-20"] == ["2 of 2", "15", "250", "0 of 2", "not all in 1,000 s", "-", "> 67x"]
    # -22: one of theirs at 500 s, the other never: no median time, only a bound (1000 / 14)
    assert cells["-22"] == ["2 of 2", "14", "200", "1 of 2", "not all in 1,000 s", "2,000", "> 71x"]
    # -23: ours at 12 s and 16 s (median 14); theirs at 500 s and 300 s (median 400): 400 / 14
    assert cells["-23"] == ["2 of 2", "14", "200", "2 of 2", "400", "2,000", "29x"]
    side_rows = [r for r in rows if r.startswith("| maddpg-jax") or r.startswith("| BenchMARL")]
    assert side_rows[0].split("|")[3].strip() == "-16.5, -18.0"  # best: median of -15 and -18, worst
    assert side_rows[1].split("|")[4].strip() == "-22.2, -23.0"  # last: -21.5 and -23.0


def test_agilerl_compare_resumes_finished_populations_and_bounds_a_side_that_stopped_short(tmp_path, monkeypatch):
    """Faults caught: a finished population trained again when the comparison resumes; a
    level counted from the best rather than the first evaluation that reached it; a median
    (and a ratio) stated as exact where a seed that never got there enters it."""
    from types import SimpleNamespace

    from benchmarks import agilerl_compare as ac

    monkeypatch.setattr(ac, "CACHE", tmp_path)
    calls = []

    def run():
        calls.append(1)
        return {"side": "AgileRL", "curve": [[5.0, 10, -30.0, -31.0]]}

    assert ac.cached({"side": "agilerl", "seed": 0}, run) == ac.cached({"side": "agilerl", "seed": 0}, run)
    ac.cached({"side": "agilerl", "seed": 1}, run)
    assert len(calls) == 2 and not list(tmp_path.glob("*.tmp"))

    # curves: (wall s, env steps, best return, median return)
    ours = [
        {"side": "maddpg-jax pbt", "seed": s, "curve": c}
        for s, c in ((0, [(10, 100, -25, -30), (20, 200, -15, -20), (30, 300, -18, -20)]), (1, [(10, 100, -19, -25)]))
    ]
    theirs = [
        {"side": "AgileRL", "seed": s, "curve": c, "agilerl": "2.58.0", "torch": "2"}
        for s, c in ((0, [(300, 1000, -21, -30), (600, 2000, -19, -25)]), (1, [(400, 1000, -24, -30)]))
    ]
    assert ac.first_reach(ours[0]["curve"], -20) == (20, 200)  # the first at or above, not the best
    assert ac.median_to(-20, ours) == (15.0, False)  # 20 s and 10 s
    # AgileRL: one seed at 600 s, the other stopped at 400 s without: the median is a lower bound
    assert ac.median_to(-20, theirs) == (500.0, True)
    assert ac.median_to(-22, theirs) == (350.0, True)  # 300 s, and 400 s short of it
    assert ac.median_to(-25, theirs) == (350.0, False)
    a = SimpleNamespace(population=8, budget=400.0)
    rows = {r.split("|")[1].strip(): r for r in ac.report(ours + theirs, [-20, -25], a, "cmd").splitlines() if "|" in r}
    assert [c.strip() for c in rows["-20"].split("|")[2:-1]] == ["15", "> 500", "> 33.3x vs pbt"]
    assert [c.strip() for c in rows["-25"].split("|")[2:-1]] == ["10", "350", "35.0x vs pbt"]


def test_results_index_takes_each_files_headline_from_its_first_table():
    """The index's headline is the file's own first table row (column: value), not a figure
    typed into the index; a file without a table has none."""
    from benchmarks.index_results import headline

    table = "| path | solved | held |\n|---|---:|---:|\n| 1 | 32/32 | 31/32 |\n| 2 | 1/32 | 0/32 |\n"
    text = "# Title\n\nprose | with a bar\n\n" + table
    assert headline(text) == "path: 1; solved: 32/32; held: 31/32"
    assert headline(text, cells=2) == "path: 1; solved: 32/32"
    assert headline("no table here\n| a lone row |\n") == "-"


def benchmark_module(name: str):
    """``benchmarks.<name>``, imported with ``XLA_FLAGS`` kept as it was: the training
    benchmarks ask for host devices at import, which sets only that env var."""
    import importlib

    flags = os.environ.get("XLA_FLAGS")
    module = importlib.import_module(f"benchmarks.{name}")
    if flags is None:
        os.environ.pop("XLA_FLAGS", None)
    else:
        os.environ["XLA_FLAGS"] = flags
    return module


@pytest.fixture(scope="module")
def paper_table():
    return benchmark_module("paper_table")


def test_paper_table_matchups_moves_and_scripted_baselines(paper_table):
    """Matchups put MADDPG (a joint critic) and DDPG (a local one) on each side; a scripted
    move goes along the larger component; the scripted listener always reaches its target
    and the scripted Bob always decodes Alice's key-masked message, while Eve is at chance."""
    assert paper_table.matchups("simple_spread") == {"maddpg": "joint", "ddpg": "local"}
    tag = paper_table.matchups("simple_tag")
    assert tag["maddpg_vs_ddpg"] == "adversaries=joint,agents=local" and len(tag) == 4
    moves = paper_table.toward(jnp.array([[0.3, 0.1], [-0.3, 0.1], [0.1, 0.4], [0.1, -0.4], [0.001, 0.0]]))
    assert moves.tolist() == [1, 2, 3, 4, 0]
    args = paper_table.main.__globals__["argparse"].Namespace(env_version="paper", action_type="discrete", env_args={})
    listener = paper_table.baselines(args, "simple_speaker_listener", 64)
    assert listener["scripted"]["target_reached"] == 1.0 and listener["random"]["target_reached"] < 0.2
    two = paper_table.main.__globals__["argparse"].Namespace(**{**vars(args), "env_args": {"num_agents": 2}})
    spread = paper_table.baselines(two, "simple_spread", 64)  # agent i to landmark i, N = 2
    assert spread["scripted"]["occupied_landmarks"] > 1.5 and spread["random"]["occupied_landmarks"] < 0.2
    crypto = paper_table.baselines(args, "simple_crypto", 256)
    assert crypto["scripted"]["bob_success"] == 1.0 and 0.4 < crypto["scripted"]["eve_success"] < 0.6


def test_paper_table_cells_are_median_and_range_over_seeds(paper_table):
    group = {
        "scenario": "simple_crypto",
        "members": [{"metrics": {"bob_success": b, "eve_success": e}} for b, e in ((0.9, 0.5), (0.7, 0.6), (1.0, 0.2))],
    }
    assert paper_table.per_seed(group, "bob_minus_eve") == pytest.approx([0.4, 0.1, 0.8])
    assert paper_table.cell(paper_table.per_seed(group, "bob_success")) == "0.9 [0.7, 1]"
    assert paper_table.cell([]) == "–"


def test_paper_table_groups_on_other_seeds_or_budgets_never_reuse_the_tables_runs(paper_table):
    """A group's folder names every choice that changes what it trains: the table's own seeds
    (0-4) and budget keep the plain name that committed results carry over to; other seeds
    (held-out ones) or another budget get their own, so a finished group is never taken for them."""
    from argparse import Namespace

    table = dict(env_version="paper", action_type="discrete", seeds=5, seed_start=0, total_env_steps=1_500_000)
    table.update(quick=False, set={}, env_args={})

    def variant(**over):
        return paper_table.variant(Namespace(**{**table, **over}), "simple_crypto")

    assert variant() == "simple_crypto"
    assert variant(set={"infer_policies": True}) == "simple_crypto_infer_policies=True"
    names = {variant(seeds=8, seed_start=1000), variant(seeds=8), variant(total_env_steps=2_000_000), variant()}
    assert variant(seeds=8, seed_start=1000) == "simple_crypto_seeds=1000-1007" and len(names) == 4
    assert variant(quick=True, seeds=2, total_env_steps=30_000) == "simple_crypto"  # its own --out
    assert variant(env_args={"num_agents": 2}) == "simple_crypto_num_agents=2"


def test_paper_table_defaults_train_what_the_users_command_trains(paper_table):
    """The defaults column trains each scenario's registry budget (what ``maddpg-jax train
    --env paper:simple_tag`` trains), never past ``--total-env-steps``; the paper's setting
    trains ``--total-env-steps``; `tune.py` (no ``registry_budget``) trains every candidate to
    its own budget."""
    from argparse import Namespace

    from maddpg_jax import Config

    a = Namespace(env_version="paper", action_type="discrete", env_args={}, total_env_steps=1_800_000)
    table = Namespace(**{**vars(a), "registry_budget": True})
    a.registry_budget = False
    for scenario in paper_table.SCENARIOS:
        registry = Config(env=f"paper:{scenario}", env_kwargs={"action_type": "discrete"}).total_env_steps
        assert paper_table.budget(table, "defaults", scenario) == min(registry, 1_800_000)
        assert paper_table.budget(table, "paper", scenario) == 1_800_000
        assert paper_table.budget(a, "defaults", scenario) == 1_800_000
    # the registry's budgets: tag's below the bound, spread's (2M) above it
    assert paper_table.budget(table, "defaults", "simple_tag") == 1_500_000
    assert paper_table.budget(table, "defaults", "simple_spread") == 1_800_000
    quick = Namespace(**{**vars(table), "total_env_steps": 30_000})
    assert {paper_table.budget(quick, s, "simple_push") for s in ("paper", "defaults")} == {30_000}


def test_paper_table_refuses_a_finished_group_that_trained_other_settings(paper_table, tmp_path):
    """A finished group is reused only where it trained the config the command would train
    now: after a registry default changes (or a ``--set``), the same command stops with one
    line naming the field, instead of putting the old numbers under the new setting."""
    from argparse import Namespace

    a = Namespace(env_version="paper", action_type="discrete", env_args={}, set={}, quick=False, seeds=2)
    a.__dict__.update(seed_start=0, total_env_steps=30_000, registry_budget=True, out=str(tmp_path))
    config = paper_table.config_for(a, "defaults", "simple_push", "joint")
    done = tmp_path / "defaults" / paper_table.variant(a, "simple_push") / "maddpg_vs_maddpg" / "table.json"
    done.parent.mkdir(parents=True)
    group = {"members": [{}, {}], "env_steps": 30_000, "config": config.to_dict()}
    done.write_text(json.dumps(group))
    assert paper_table.run_group(a, "defaults", "simple_push", "maddpg_vs_maddpg", "joint") == group
    done.write_text(json.dumps({**group, "config": config.replace(num_envs=64).to_dict()}))
    with pytest.raises(SystemExit, match=r"trained other settings \(num_envs 64 -> 256\)"):
        paper_table.run_group(a, "defaults", "simple_push", "maddpg_vs_maddpg", "joint")


def test_ensembles_refuse_finished_runs_of_other_seeds_or_settings(paper_table, tmp_path):
    """ensembles.py keeps a finished (scenario, K) under a path without seeds or settings: a
    held-out ``--seed-start``, another budget or a changed registry default must stop with one
    line, not score the earlier seeds' policies as the new ones."""
    from argparse import Namespace

    ensembles = benchmark_module("ensembles")
    a = Namespace(setting="defaults", total_env_steps=30_000, seed_start=0, quick=False, seeds=2)
    config = ensembles.config_for(a, "simple_push", 3)
    (tmp_path / "config.json").write_text(json.dumps({"config": config.to_dict()}))
    ensembles.reuse_check(tmp_path, config, 2, 2)
    with pytest.raises(SystemExit, match=r"seed 0 -> 1000\)"):
        ensembles.reuse_check(
            tmp_path, ensembles.config_for(Namespace(**{**vars(a), "seed_start": 1000}), "simple_push", 3), 2, 2
        )
    with pytest.raises(SystemExit, match=r"seeds 2 -> 5"):
        ensembles.reuse_check(tmp_path, config, 5, 2)
    # A rerun of one scenario keeps the file's other scenarios (same seeds and setting) with
    # the command that trained them; rows of other seeds are dropped, not mixed in.
    rows = {m: [{"seed": 0}, {"seed": 1}] for m in ensembles.MATCHUPS}
    runs = {
        s: {"k": 2, "config": ensembles.config_for(a, s, 2).to_dict(), "matchups": rows}
        for s in ("simple_push", "simple_tag")
    }
    saved = {"command": "old", "results": runs}
    (tmp_path / "e.json").write_text(json.dumps(saved))
    a.scenarios = ["simple_push"]
    assert {s: r["command"] for s, r in ensembles.kept_results(tmp_path / "e.json", a).items()} == {"simple_tag": "old"}
    assert ensembles.kept_results(tmp_path / "e.json", Namespace(**{**vars(a), "seed_start": 1000})) == {}
    assert ensembles.kept_results(tmp_path / "e.json", Namespace(**{**vars(a), "setting": "paper"})) == {}


def test_tune_candidates_parse_with_commas_inside_values(paper_table):
    """A candidate is NAME=FIELD=VALUE;FIELD=VALUE: tuples keep their commas, an empty one is
    the defaults, a nameless one is refused."""
    import argparse

    parse_candidate = benchmark_module("tune").parse_candidate
    assert parse_candidate("wide=hidden_sizes=128,128;n_step=3") == ("wide", {"hidden_sizes": (128, 128), "n_step": 3})
    assert parse_candidate("base=") == ("base", {})
    assert parse_candidate("soft=gumbel_mode=soft") == ("soft", {"gumbel_mode": "soft"})
    with pytest.raises(argparse.ArgumentTypeError):
        parse_candidate("=n_step=3")


def test_checkpoint_verify_benchmark_runs_at_a_tiny_size(tmp_path, monkeypatch):
    """The checksum benchmark writes, verifies and reads a checkpoint end to end, and its
    report names every step it timed."""
    from benchmarks import checkpoint_verify

    argv = ["checkpoint_verify.py", "--members", "1", "--buffer-size", "2048", "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    checkpoint_verify.main()
    text = (tmp_path / "checkpoint_verify.md").read_text()
    assert "verifying the checksums" in text and "host loop held" in text and text.count("\n| ") == 7


def test_listener_diagnosis_tells_communication_from_precision():
    """Hand-built episodes: a listener ending on its goal under a permuted but faithful
    code is reached and fully readable; one ending at the centroid under a constant symbol
    reads at chance and is at the centre; one stopping 0.2 short of the right landmark is
    nearest its goal but not reached."""
    import numpy as np

    from benchmarks.listener_diagnosis import diagnose, message_accuracy

    goal = np.array([0, 1, 2, 0, 1, 2])
    assert message_accuracy(goal, (goal + 1) % 3) == 1.0
    assert message_accuracy(goal, np.zeros(6, int)) == pytest.approx(1 / 3)
    landmarks = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    t, n = 3, goal.shape[0]
    pos = np.zeros((t, n, 5, 2))
    pos[:, :, 2:] = landmarks
    said = np.zeros((t, n, 3))
    on_goal = pos.copy()
    on_goal[-1, :, 1] = landmarks[goal]
    said_goal = said.copy()
    said_goal[-1, np.arange(n), (goal + 2) % 3] = 1.0
    d = diagnose(on_goal, goal, said_goal)
    assert d["target_reached"] == 1.0 and d["nearest_is_goal"] == 1.0 and d["message_accuracy"] == 1.0
    centre = pos.copy()
    centre[:, :, 1] = landmarks.mean(0)
    said_const = said.copy()
    said_const[-1, :, 0] = 1.0
    d = diagnose(centre, goal, said_const)
    assert d["at_centre"] == 1.0 and d["message_accuracy"] == pytest.approx(1 / 3) and d["target_reached"] == 0.0
    short = pos.copy()
    short[-1, :, 1] = landmarks[goal] * 0.8  # 0.2 short, along the line from the origin
    d = diagnose(short, goal, said_goal)
    assert d["nearest_is_goal"] == 1.0 and d["target_reached"] == 0.0
    assert d["final_distance_median"] == pytest.approx(0.2)


def test_tag_bounds_scripted_moves_chase_and_flee():
    """A constructed state: predators left, right and below a prey at the origin each move
    straight at it (+x, -x, +y); a moving prey is led (the predator aims ahead of it); the
    prey flees its nearest predator, and turns back toward the centre past 0.9."""
    from types import SimpleNamespace

    import jax
    import jax.numpy as jnp
    import numpy as np

    from benchmarks.tag_bounds import predator_moves, prey_move

    pos = jnp.array([[[-0.5, 0.0], [0.5, 0.05], [0.1, -0.3], [0.0, 0.0], [2.0, 2.0], [2.0, -2.0]]])
    still = SimpleNamespace(p_pos=pos, p_vel=jnp.zeros_like(pos))
    np.testing.assert_array_equal(predator_moves("straight", still), [[1, 2, 3]])
    moving = SimpleNamespace(p_pos=pos, p_vel=still.p_vel.at[0, 3].set([0.0, 2.0]))
    # the left predator is 0.5 away: it aims 1.0 ahead of the prey, up more than right
    assert int(predator_moves("lead", moving)[0, 0]) == 3 and int(predator_moves("straight", moving)[0, 0]) == 1
    np.testing.assert_array_equal(prey_move("flee", still, None), [[3]])  # nearest: the one below
    edge = SimpleNamespace(p_pos=pos.at[0, 3].set([0.95, 0.0]), p_vel=still.p_vel)
    np.testing.assert_array_equal(prey_move("flee", edge, None), [[2]])  # past 0.9: back toward the centre
    np.testing.assert_array_equal(prey_move("still", still, None), [[0]])
    assert prey_move("random", still, jax.random.key(0)).shape == (1, 1)


def test_seed_returns_reports_each_seed_and_refuses_runs_of_other_seeds(paper_table, tmp_path):
    """seed_returns.py: the median, worst and count at the threshold of a hand-made record,
    and a run directory of other seeds or settings stops the command instead of being scored."""
    from argparse import Namespace

    sr = benchmark_module("seed_returns")
    a = Namespace(
        env="jaxmarl:MPE_simple_spread_v3",
        seeds=3,
        seed_start=100,
        total_env_steps=30_000,
        set={},
        threshold=-12.0,
        eval_episodes=10,
    )
    members = [
        {"seed": 100 + i, "metrics": {}, "team_returns": {"team": r}} for i, r in enumerate((-11.0, -13.5, -12.0))
    ]
    text = sr.render(a, {"members": members, "train_wall_s": 5.0, "trained_on": "2026-12-08"}, "cmd")
    assert "| team | -11.00 / -13.50 / -12.00 | -12.00 | -13.50 | 2 of 3 |" in text
    config = sr.config_for(a)
    members = [{"seed": s} for s in (100, 101, 102)]
    (tmp_path / "config.json").write_text(json.dumps({"config": config.to_dict(), "members": members}))
    sr.reuse_check(tmp_path, config, a)
    with pytest.raises(SystemExit, match=r"seeds 100-102 -> 1000-1002"):
        sr.reuse_check(tmp_path, config, Namespace(**{**vars(a), "seed_start": 1000}))
    with pytest.raises(SystemExit, match=r"num_envs 128 -> 32"):
        sr.reuse_check(tmp_path, sr.config_for(Namespace(**{**vars(a), "set": {"num_envs": 32}})), a)
    # A scored run keeps its record, not its checkpoints: the same command reads it back, and
    # one that asks for another number of episodes, which only the checkpoints could give, stops.
    a.out = str(tmp_path)
    (tmp_path / "record.json").write_text(json.dumps({"eval_episodes": 10, "members": members}))
    assert sr.trained(a, config)["members"] == members
    with pytest.raises(SystemExit, match=r"scored 10 episodes per seed, not --eval-episodes 1,000"):
        sr.trained(Namespace(**{**vars(a), "eval_episodes": 1000}), config)
