"""Candidate settings for one matchup of the paper table, side by side on trial seeds.

    python benchmarks/tune.py --scenario simple_speaker_listener --matchup maddpg \\
        --candidate base= --candidate wide=hidden_sizes=128,128 --candidate nstep=n_step=3
    python benchmarks/tune.py --scenario simple_tag --matchup maddpg_vs_ddpg --seeds 8 --seed-start 1000 \\
        --candidate chosen=actor_lr=3e-4,critic_lr=1e-3

Each ``--candidate NAME=FIELD=VALUE;FIELD=VALUE`` (``;`` between fields, so values may hold
commas; ``NAME=`` alone: the scenario's defaults) trains ``--seeds`` seeds from
``--seed-start`` in one program with the project's defaults setting and those values over
them, exactly as a group of ``benchmarks/paper_table.py`` (the same run directories, scoring
and resumption: a finished candidate is not trained again), and is scored by the scenario's
metrics over ``--eval-episodes`` noise-free episodes. Trial seeds (the default 100 on) are
kept apart from the table's (0-4) and from the held-out seeds a chosen setting is judged on
(1000 on). Writes ``benchmarks/results/mpe/trials/<--name>.{md,json}``: one row per
candidate, the median and [lowest, highest] of every metric, and each seed's value.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from maddpg_jax.parallel import configure_host_devices

configure_host_devices()

from benchmarks import paper_table as table
from benchmarks.common import command_line, machine, parse_set
from maddpg_jax.errors import RunStopped
from maddpg_jax.rundir import atomic_write_text


def parse_candidate(text: str) -> tuple[str, dict]:
    """``"NAME=F=V;F=V"`` -> ``(NAME, {F: V, ...})`` (values parsed as `parse_set` does)."""
    name, _, sets = text.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"--candidate: expected NAME=FIELD=VALUE;..., got {text!r}")
    return name, parse_set([s for s in sets.split(";") if s])


def run_candidate(a, name: str, sets: dict) -> dict:
    """The candidate's finished group (trained here or earlier), as paper_table writes it."""
    args = argparse.Namespace(
        out=str(Path(a.out) / f"seeds_{a.seed_start}_{a.seeds}"),  # other seeds never reuse these runs
        seeds=a.seeds,
        seed_start=a.seed_start,
        total_env_steps=a.total_env_steps,
        registry_budget=False,  # every candidate trains to --total-env-steps, whatever its registry says
        eval_episodes=a.eval_episodes,
        env_version="paper",
        action_type=a.action_type,
        set=sets,
        env_args={},
        quick=False,
        keep_checkpoints=a.keep_checkpoints,
    )
    mode = table.matchups(a.scenario)[a.matchup]
    print(f"tune: {name} {sets or '(defaults)'}", flush=True)
    group = table.run_group(args, "defaults", a.scenario, a.matchup, mode)
    return {"name": name, "set": {k: repr(v) for k, v in sets.items()}, **group}


def render(a, rows: list[dict], metrics: list[str], command: str) -> str:
    lines = [
        f"## Candidates for {a.scenario}, {table.matchup_label(a.scenario, a.matchup)}",
        "",
        f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. Command: `{command}`",
        "",
        f"The project's defaults for `paper:{a.scenario}` ({a.action_type} actions) with each candidate's values "
        f"over them; {a.seeds} seeds ({a.seed_start}-{a.seed_start + a.seeds - 1}) per candidate trained in one "
        f"program to {a.total_env_steps:,} env steps, each seed's kept policy scored without exploration noise over "
        f"{a.eval_episodes:,} episodes. A cell: median [lowest, highest]; train s: the candidate's training wall time.",
        "",
        "| candidate | values | " + " | ".join(f"`{m}`" for m in metrics) + " | train s |",
        "|---|---|" + "---|" * len(metrics) + "---:|",
    ]
    for r in rows:
        values = ", ".join(f"{k}={v}" for k, v in r["set"].items()) or "(defaults)"
        cells = [table.cell(table.per_seed(r, m)) for m in metrics]
        lines.append(f"| {r['name']} | {values} | " + " | ".join(cells) + f" | {r['train_wall_s']:.0f} |")
    lines += ["", "Each seed, in seed order:", ""]
    for r in rows:
        per = "; ".join(f"`{m}` " + ", ".join(f"{v:.3g}" for v in table.per_seed(r, m)) for m in metrics)
        lines.append(f"- {r['name']}: {per}")
    inferred = [r for r in rows if "approx_kl" in r.get("curve", {})]
    if inferred:
        lines += [
            "",
            "The inferred policies' KL to the true ones (median over seeds, at 10%, 50%, 100% of training):",
            "",
        ]
        lines += [f"- {r['name']}: {table.kl_path(r)}" for r in inferred]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", required=True, choices=table.SCENARIOS)
    p.add_argument("--matchup", default="", help="one of the scenario's matchups (default: its first)")
    p.add_argument("--candidate", action="append", default=[], help="NAME=FIELD=VALUE;FIELD=VALUE (repeatable)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--seed-start", type=int, default=100)
    p.add_argument("--total-env-steps", type=int, default=1_500_000)
    p.add_argument("--eval-episodes", type=int, default=1000)
    p.add_argument("--action-type", choices=("discrete", "continuous"), default="discrete")
    p.add_argument("--keep-checkpoints", action="store_true", help="keep each candidate's checkpoints")
    p.add_argument("--name", default="", help="the results files' name (default tune_<scenario>_<matchup>)")
    p.add_argument("--out", default="runs/tune", help="run directories")
    a = p.parse_args(argv)
    a.matchup = a.matchup or next(iter(table.matchups(a.scenario)))
    if a.matchup not in table.matchups(a.scenario):
        p.error(f"--matchup: {a.matchup!r} is not one of {', '.join(table.matchups(a.scenario))}")
    try:
        candidates = [parse_candidate(c) for c in a.candidate or ["defaults="]]
    except argparse.ArgumentTypeError as e:
        p.error(str(e))
    command = command_line("tune.py", p, a, skip=("out", "keep_checkpoints", "candidate"))
    command += "".join(f" --candidate '{c}'" for c in a.candidate)
    name = a.name or f"tune_{a.scenario}_{a.matchup}{'' if a.action_type == 'discrete' else '_' + a.action_type}"
    results = Path("benchmarks/results/mpe/trials") / name
    results.parent.mkdir(parents=True, exist_ok=True)
    args_for_names = argparse.Namespace(env_version="paper")
    metrics = table.metric_names(args_for_names, a.scenario)
    rows = []
    for cname, sets in candidates:
        try:
            rows.append(run_candidate(a, cname, sets))
        except RunStopped as e:
            print(f"tune: stopped in {cname} ({e}); the same command goes on from there")
            sys.exit(e.status)
        atomic_write_text(f"{results}.json", json.dumps({"command": command, "rows": rows}))
        atomic_write_text(f"{results}.md", render(a, rows, metrics, command))
    print(f"wrote {results}.md")


if __name__ == "__main__":
    main()
