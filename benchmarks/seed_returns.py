"""Seeds of one env trained in one program, each seed's kept policy scored without noise.

    python benchmarks/seed_returns.py --env jaxmarl:MPE_simple_spread_v3 --seeds 10 --seed-start 100 \\
        --total-env-steps 2000000 --threshold -12 --name simple_spread_seeds100

Trains ``--seeds`` seeds from ``--seed-start`` with the env's registry defaults (and any
``--set FIELD=VALUE`` over them) through `maddpg_jax.sweep`, the user's path, into ``--out``;
then plays each seed's kept policy (what ``maddpg-jax eval`` uses) for ``--eval-episodes``
noise-free episodes and reports each team's return per agent: every seed's value, the
median, the worst and how many seeds reach ``--threshold``. Writes
``benchmarks/results/<--topic>/<--name>.{md,json}`` with the command, machine, date and the
training wall time. A finished run in ``--out`` is not trained or scored again (its record is
read back), after checking that it trained what this command would; an interrupted one resumes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from maddpg_jax.parallel import configure_host_devices

configure_host_devices()

import numpy as np

from benchmarks.common import config_changes, machine, parse_set, train_seeds
from maddpg_jax import Config, UsageError
from maddpg_jax.rundir import atomic_write_text


def config_for(a) -> Config:
    """The run's settings: the env's registry defaults, ``--set`` over them."""
    return Config(env=a.env, seed=a.seed_start, total_env_steps=a.total_env_steps, **a.set)


def reuse_check(out: Path, config: Config, a) -> None:
    """Stop with one line where ``out`` holds a run of another config or other seeds than the
    command asks for: its numbers are not this command's."""
    if not (out / "config.json").exists():
        return
    saved = json.loads((out / "config.json").read_text())
    changed = config_changes(saved["config"], config)
    seeds = [m["seed"] for m in saved["members"]]
    if seeds != list(range(a.seed_start, a.seed_start + a.seeds)):
        changed.append(f"seeds {seeds[0]}-{seeds[-1]} -> {a.seed_start}-{a.seed_start + a.seeds - 1}")
    if changed:
        sys.exit(f"seed_returns: {out} trained other settings ({', '.join(changed)}); use another --out")


def trained(a, config: Config) -> dict:
    """Train (or resume) the seeds in ``a.out`` and score them, or read the record a finished
    run left there (``record.json``: its checkpoints, replay buffers included, are removed
    once it is scored, unless ``--keep-checkpoints``)."""
    from benchmarks.paper_table import measure  # scores any registered env's kept policies

    out = Path(a.out)
    reuse_check(out, config, a)
    done = out / "record.json"
    if done.exists():
        record = json.loads(done.read_text())
        if record["eval_episodes"] != a.eval_episodes:
            sys.exit(
                f"seed_returns: {done} scored {record['eval_episodes']:,} episodes per seed, not --eval-episodes "
                f"{a.eval_episodes:,}, and its checkpoints are gone; use another --out"
            )
        return record
    metrics = out / "metrics.jsonl"
    last = json.loads(metrics.read_text().splitlines()[-1]) if (out / "summary.jsonl").exists() else {}
    if last.get("env_steps", 0) < config.total_env_steps:
        train_seeds(config, a.seeds, out, "seed_returns")
    record = {
        "config": config.to_dict(),
        # The run's own clock, which a resumed run carries on from its checkpoint.
        "train_wall_s": round(json.loads(metrics.read_text().splitlines()[-1])["wall_s"], 1),
        "trained_on": datetime.date.fromtimestamp(metrics.stat().st_mtime).isoformat(),
        "eval_episodes": a.eval_episodes,
        "members": measure(out, a.eval_episodes, seed=a.seed_start + 10_000),
    }
    atomic_write_text(done, json.dumps(record, indent=1))
    if not a.keep_checkpoints:  # ten seeds' replay buffers take gigabytes; the record keeps the numbers
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return record


def render(a, record: dict, command: str) -> str:
    members = record["members"]
    teams = list(members[0]["team_returns"])
    seeds = [m["seed"] for m in members]
    over = " and " + ", ".join(f"{k}={v!r}" for k, v in a.set.items()) if a.set else ""
    lines = [
        f"# {a.env}: {a.seeds} seeds, kept policies without noise",
        "",
        f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. Command: `{command}`",
        "",
        f"`{a.env}` with its registry defaults{over}; "
        f"seeds {seeds[0]}-{seeds[-1]} trained in one program (`maddpg_jax.sweep`) to "
        f"{a.total_env_steps:,} env steps each, in {record['train_wall_s']:,.0f} s (trained {record['trained_on']}); "
        f"each seed's kept policy played for {a.eval_episodes:,} episodes without exploration noise. "
        "A value: the team's return per agent, mean over the episodes.",
        "",
        f"| team | per seed ({seeds[0]} on) | median | worst | >= {a.threshold:g} |",
        "|---|---|---:|---:|---:|",
    ]
    for t in teams:
        v = np.array([m["team_returns"][t] for m in members])
        lines.append(
            f"| {t} | {' / '.join(f'{x:.2f}' for x in v)} | {np.median(v):.2f} | {v.min():.2f} | "
            f"{int((v >= a.threshold).sum())} of {len(v)} |"
        )
    names = list(members[0]["metrics"])
    if names:
        lines += ["", "The env's metrics, median [lowest, highest] over seeds:", ""]
        for n in names:
            v = np.array([m["metrics"][n] for m in members])
            lines.append(f"- `{n}`: {np.median(v):.3g} [{v.min():.3g}, {v.max():.3g}]")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="jaxmarl:MPE_simple_spread_v3")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--seed-start", type=int, default=100)
    p.add_argument("--total-env-steps", type=int, default=2_000_000)
    p.add_argument("--eval-episodes", type=int, default=1000)
    p.add_argument("--threshold", type=float, default=-12.0, help="a seed counts when its return reaches this")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config fields over the defaults")
    p.add_argument("--keep-checkpoints", action="store_true", help="keep the run's checkpoints once it is scored")
    p.add_argument("--topic", default="mpe", help="the results folder under benchmarks/results")
    p.add_argument("--name", default="", help="the results files' name (default seed_returns_<env>)")
    p.add_argument("--out", default="", help="the run directory (default runs/seed_returns/<name>)")
    a = p.parse_args(argv)
    if a.seeds < 1 or a.eval_episodes < 1:
        p.error(f"--seeds and --eval-episodes: must be >= 1, got {a.seeds} and {a.eval_episodes}")
    bad = [item for item in a.set if "=" not in item]
    if bad:
        p.error(f"--set: expected FIELD=VALUE, got {bad[0]!r}")
    a.set = parse_set(a.set)
    a.name = a.name or "seed_returns_" + a.env.split(":")[-1]
    a.out = a.out or f"runs/seed_returns/{a.name}"
    try:
        config = config_for(a)
    except (UsageError, TypeError, ValueError) as e:
        sys.exit(f"seed_returns: {e}")
    # Every option that decides the figures, defaults included: the line reproduces the file
    # even after a default of this script changes.
    command = (
        f"python benchmarks/seed_returns.py --env {a.env} --seeds {a.seeds} --seed-start {a.seed_start} "
        f"--total-env-steps {a.total_env_steps} --eval-episodes {a.eval_episodes} --threshold {a.threshold:g}"
        + (" --set " + " ".join(f"{k}={typed(v)}" for k, v in a.set.items()) if a.set else "")
        + f" --name {a.name}"
        + (f" --topic {a.topic}" if a.topic != "mpe" else "")
    )
    record = trained(a, config)
    results = Path("benchmarks/results") / a.topic / a.name
    results.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(f"{results}.json", json.dumps({"command": command, "machine": machine(), **record}, indent=1))
    atomic_write_text(f"{results}.md", render(a, record, command))
    print(f"wrote {results}.md")


def typed(value) -> str:
    """A ``--set`` value as the shell passes it back to `parse_set` (no spaces, no quotes)."""
    return value if isinstance(value, str) else repr(value).replace(" ", "")


if __name__ == "__main__":
    main()
