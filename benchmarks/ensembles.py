"""Policy ensembles against single policies (Lowe et al. 2017, Section 5.4), cross-played.

For keep-away (``simple_push``), physical deception (``simple_adversary``) and predator-prey
(``simple_tag``) on the paper's own scenarios: trains each scenario's seeds once with one
policy per agent and once with an ensemble of K sub-policies (K = 3, and 2 for
predator-prey, as the paper), MADDPG on both sides, then plays each seed's two runs against
each other: the first side from one run and the second side from the other, four ways
(ensemble against single, single against ensemble, and each against itself). An ensemble
plays a sub-policy per episode and team drawn at random (the paper's evaluation). Scored
without exploration noise by each side's return per agent and the scenario's metrics.

The paper's claim, checked per side and seed: a side scores better as an ensemble against a
single-policy opponent than as a single policy against an ensemble.

    python benchmarks/ensembles.py              # 3 scenarios, 5 seeds, 1.5M env steps, defaults
    python benchmarks/ensembles.py --quick      # a smoke run: 2 seeds, 30k env steps
    python benchmarks/ensembles.py --scenarios simple_push --ensemble-size 5   # another K

Each (scenario, K) trains in ``--out``/SETTING/SCENARIO/K<k> and keeps its seeds' final
policies in ``actors.npz`` there (the checkpoints, with their replay buffers, are removed);
a finished one is not trained again. Writes ``benchmarks/results/mpe/<--name>.{md,json}``,
by default ``ensembles`` (``--quick``: beside its runs).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from maddpg_jax.parallel import configure_host_devices

configure_host_devices()

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import command_line, config_changes, machine, run_kept_actors, train_seeds
from maddpg_jax import Config, RunStopped, envs
from maddpg_jax.rundir import atomic_write_text
from maddpg_jax.training import make_trainer, run_episodes

# scenario -> (K, (first side's team, its name), (second side's team, its name))
SCENARIOS = {
    "simple_push": (3, ("agents", "agent"), ("adversaries", "adversary")),
    "simple_adversary": (3, ("agents", "good agents"), ("adversaries", "adversary")),
    "simple_tag": (2, ("adversaries", "predators"), ("agents", "prey")),
}
MATCHUPS = ("ensemble_vs_single", "single_vs_ensemble", "single_vs_single", "ensemble_vs_ensemble")


def config_for(a, scenario: str, k: int) -> Config:
    quick = {"warmup_env_steps": min(25_600, a.total_env_steps // 4)} if a.quick else {}
    return Config(
        env="paper:" + scenario,
        preset="paper" if a.setting == "paper" else "none",
        ensemble_size=k,
        total_env_steps=a.total_env_steps,
        seed=a.seed_start,
        **quick,
    )


def reuse_check(run_dir: Path, config: Config, seeds: int, saved_seeds: int) -> None:
    """Stop with one line where a finished group trained another config or seed count than the
    command asks for (another ``--seed-start``, budget, or a registry default changed since)."""
    path = run_dir / "config.json"
    changed = config_changes(json.loads(path.read_text())["config"], config) if path.exists() else []
    changed += [f"seeds {saved_seeds} -> {seeds}"] * (saved_seeds != seeds)
    if changed:
        diffs = ", ".join(changed)
        sys.exit(f"ensembles: {run_dir} trained other settings ({diffs}); use another --out or remove it")


def train_group(a, scenario: str, k: int) -> tuple[list[np.ndarray], float]:
    """Train (or resume) one scenario's seeds with ensembles of ``k``; returns the kept
    actors' leaves (each ``[S, A, (K,) ...]``) and the training wall seconds."""
    run_dir = Path(a.out) / a.setting / scenario / f"K{k}"
    saved = run_dir / "actors.npz"
    config = config_for(a, scenario, k)
    if saved.exists():
        with np.load(saved) as f:
            leaves, wall = [f[f"leaf{i}"] for i in range(len(f.files) - 1)], float(f["train_wall_s"])
        reuse_check(run_dir, config, a.seeds, len(leaves[0]))
        return leaves, wall
    wall = train_seeds(config, a.seeds, run_dir, f"{a.setting} {scenario} K={k}")
    leaves = [np.asarray(x) for x in jax.tree.leaves(run_kept_actors(run_dir)[3])]
    tmp = run_dir / "actors.tmp.npz"
    np.savez(tmp, train_wall_s=wall, **{f"leaf{i}": x for i, x in enumerate(leaves)})
    os.replace(tmp, saved)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # gigabytes of replay buffer
    return leaves, wall


def cross_play(a, scenario: str) -> dict:
    """Every seed's single and ensemble runs against each other (`MATCHUPS`): per matchup,
    per seed, each team's return per agent and the env's metrics."""
    (first, _), _ = SCENARIOS[scenario][1:]
    k = a.ensemble_size or SCENARIOS[scenario][0]
    single, wall_single = train_group(a, scenario, 1)
    ensemble, wall_ensemble = train_group(a, scenario, k)
    trainer = make_trainer(config_for(a, scenario, k))
    treedef = jax.tree.structure(jax.eval_shape(trainer.init, jax.random.key(0), trainer.config.hparams()).agents.actor)
    # A single policy as an ensemble of K copies of itself: [S, A, ...] -> [S, A, K, ...]
    single = [np.broadcast_to(x[:, :, None], x.shape[:2] + (k,) + x.shape[2:]) for x in single]
    in_first = np.zeros(trainer.spec.num_agents, bool)
    in_first[list(dict(trainer.spec.teams)[first])] = True

    def mix(x, y):  # the first side from x, the second from y
        return [np.where(in_first.reshape((1, -1) + (1,) * (u.ndim - 2)), u, v) for u, v in zip(x, y)]

    actors = {
        "ensemble_vs_single": mix(ensemble, single),
        "single_vs_ensemble": mix(single, ensemble),
        "single_vs_single": single,
        "ensemble_vs_ensemble": ensemble,
    }
    play = jax.jit(jax.vmap(lambda p, key: run_episodes(trainer, p, key, a.eval_episodes)))
    names = [m.name for m in envs.entry(trainer.config.env).metrics]
    keys = jax.random.split(jax.random.key(a.seed_start + 10_000), a.seeds)
    out = {
        "k": k,
        "train_wall_s": {"single": wall_single, "ensemble": wall_ensemble},
        "trained_on": datetime.date.today().isoformat(),
        "config": trainer.config.to_dict(),
        "matchups": {},
    }
    for matchup, leaves in actors.items():
        r = jax.device_get(play(jax.tree.unflatten(treedef, [jnp.asarray(x) for x in leaves]), keys))
        out["matchups"][matchup] = [
            {
                "seed": a.seed_start + s,
                "team_returns": {
                    t: float(r.team_returns[s, :, j].mean()) for j, t in enumerate(trainer.spec.team_names)
                },
                "metrics": {n: float(r.metrics[s, :, j].mean()) for j, n in enumerate(names)},
            }
            for s in range(a.seeds)
        ]
    return out


def commands(results: dict, command: str) -> str:
    """The command line(s) behind the rows: a scenario kept from the file's earlier run
    names the command that trained it."""
    by = {}
    for sc, r in results.items():
        by.setdefault(r.get("command", command), []).append(sc)
    if len(by) == 1:
        return f"Command: `{next(iter(by))}`"
    return "Commands: " + "; ".join(f"`{c}` ({', '.join(scs)})" for c, scs in by.items())


def kept_results(path: Path, a) -> dict:
    """The scenarios of an earlier run of the same ``--name`` that this one does not train,
    where they played the same seeds with the config this command would train: a rerun of one
    scenario keeps the others' rows (each with its command and date)."""
    if a.quick or not path.exists():
        return {}
    saved = json.loads(path.read_text())
    seeds = list(range(a.seed_start, a.seed_start + a.seeds))
    kept = {}
    for sc, r in saved["results"].items():
        if sc in a.scenarios or [row["seed"] for row in r["matchups"][MATCHUPS[0]]] != seeds:
            continue
        # Rows saved before configs were recorded are judged by their seeds alone.
        if "config" not in r or not config_changes(r["config"], config_for(a, sc, r["k"])):
            kept[sc] = {"command": saved["command"], **r}
    return kept


def cell(values: list[float]) -> str:
    return f"{np.median(values):.3g} [{min(values):.3g}, {max(values):.3g}]"


def render(a, results: dict, command: str) -> str:
    lines = [
        "## Policy ensembles against single policies",
        "",
        f"Lowe et al. 2017, Section 5.4, on the paper's scenarios: {a.seeds} seeds "
        f"({a.seed_start}–{a.seed_start + a.seeds - 1}), {a.total_env_steps:,} env steps per run, MADDPG on both "
        f"sides, setting `{a.setting}`. Each seed's single-policy run and ensemble run (K sub-policies per agent, "
        "one drawn per episode and team) play each other, the first side from one and the second from the "
        f"other; {a.eval_episodes:,} noise-free episodes per seed and matchup. A cell: median over seeds "
        "[lowest, highest] of the side's return per agent. The claim: a side scores better as an ensemble "
        "against a single policy than as a single policy against an ensemble; the last column counts the seeds "
        "where it holds.",
        "",
        f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. " + commands(results, command),
        "",
        "| scenario | K | side | ensemble vs single | single vs ensemble | both single | both ensemble | holds |",
        "|---|---:|---|---|---|---|---|---:|",
    ]
    for scenario, r in results.items():
        sides, k = SCENARIOS[scenario][1:], r["k"]
        m = r["matchups"]
        for side, (team, name) in enumerate(sides):
            # the side is the ensemble in ensemble_vs_single when it is the first side
            as_ens, as_single = ("ensemble_vs_single", "single_vs_ensemble")[:: 1 if side == 0 else -1]
            get = lambda mu, team=team: [row["team_returns"][team] for row in m[mu]]
            holds = sum(e > s for e, s in zip(get(as_ens), get(as_single)))
            lines.append(
                f"| {scenario} | {k} | {name} | {cell(get(as_ens))} | {cell(get(as_single))} | "
                f"{cell(get('single_vs_single'))} | {cell(get('ensemble_vs_ensemble'))} | {holds} of {a.seeds} |"
            )
    lines += ["", "The scenarios' metrics in each matchup (first side's algorithm first):", ""]
    lines += ["| scenario | metric | " + " | ".join(MATCHUPS) + " |", "|---|---|" + "---|" * len(MATCHUPS)]
    for scenario, r in results.items():
        for metric in r["matchups"][MATCHUPS[0]][0]["metrics"]:
            cells = [cell([row["metrics"][metric] for row in r["matchups"][mu]]) for mu in MATCHUPS]
            lines.append(f"| {scenario} | `{metric}` | " + " | ".join(cells) + " |")
    lines += ["", "Training wall seconds (all seeds in one program): "]
    lines[-1] += "; ".join(
        f"{sc} single {r['train_wall_s']['single']:,.0f}, K={r['k']} {r['train_wall_s']['ensemble']:,.0f}"
        f" (trained {r.get('trained_on', 'on a date not recorded')})"
        for sc, r in results.items()
    )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run: 2 seeds, 30k env steps, 50 episodes")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--setting", choices=("defaults", "paper"), default="defaults")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--seed-start", type=int, default=0)
    p.add_argument("--total-env-steps", type=int, default=1_500_000)
    p.add_argument(
        "--ensemble-size",
        type=int,
        default=0,
        help="K for every scenario (default: the paper's, 3 and 2 for simple_tag)",
    )
    p.add_argument("--eval-episodes", type=int, default=1000)
    p.add_argument("--name", default="ensembles", help="the results files' name")
    p.add_argument("--out", default=None, help="run directories (default runs/ensembles, --quick runs/ensembles_quick)")
    a = p.parse_args(argv)
    if a.quick:
        a.seeds, a.total_env_steps, a.eval_episodes = 2, 30_000, 50
    command = command_line("ensembles.py", p, a)
    if a.ensemble_size == 1 or a.ensemble_size < 0:
        p.error(f"--ensemble-size: must be 0 (the paper's K) or >= 2, got {a.ensemble_size}")
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    for s in a.scenarios:
        if s not in SCENARIOS:
            p.error(f"--scenarios: {s!r} is not one of {', '.join(SCENARIOS)}")
    a.out = a.out or ("runs/ensembles_quick" if a.quick else "runs/ensembles")
    results_dir = Path(a.out if a.quick else "benchmarks/results/mpe")
    results_dir.mkdir(parents=True, exist_ok=True)
    kept = kept_results(results_dir / f"{a.name}.json", a)
    done = {}
    t0 = time.perf_counter()
    for scenario in a.scenarios:
        try:
            done[scenario] = {"command": command, **cross_play(a, scenario)}
        except RunStopped as e:
            print(f"ensembles: stopped in {scenario} ({e}); the same command goes on from there")
            sys.exit(e.status)
        results = {sc: done.get(sc, kept.get(sc)) for sc in SCENARIOS if sc in done or sc in kept}
        atomic_write_text(results_dir / f"{a.name}.json", json.dumps({"command": command, "results": results}))
        atomic_write_text(results_dir / f"{a.name}.md", render(a, results, command))
    print(f"wrote {results_dir / (a.name + '.md')} ({time.perf_counter() - t0:,.0f} s)")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("ensembles: interrupted; the same command goes on from the last finished group", file=sys.stderr)
        sys.exit(130)
