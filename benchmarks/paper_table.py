"""The MADDPG paper's table (Lowe et al. 2017, Section 5) in one command.

    python benchmarks/paper_table.py                 # the whole table: both settings, 5 seeds, 1.5M env steps
    python benchmarks/paper_table.py --quick         # a smoke run: 2 seeds, 30k env steps, into runs/
    python benchmarks/paper_table.py --scenarios simple_tag --settings paper --seeds 8

Every experiment of the paper on its own scenarios as its code ran them (``paper:*``,
discrete actions), with its matchups: MADDPG and DDPG (a ``local`` critic: independent
DDPG) on each side of predator-prey, physical deception, covert communication and
keep-away; MADDPG and DDPG on cooperative communication and navigation. Each matchup trains
``--seeds`` seeds in one program (``maddpg_jax.sweep``, the user's path) with two settings:
``paper`` (``--preset paper``: the paper's code's hyperparameters and soft Gumbel-softmax
semantics) and ``defaults`` (the project's recommendations for the scenario). Each seed's
kept policy is then scored without exploration noise over ``--eval-episodes`` episodes
(the paper: "1000 further iterations") by the scenario's episode metrics, beside a random
policy and, where one is easy, a scripted one.

Every (setting, scenario, matchup) trains in a run directory under ``--out``; one that
finished holds ``table.json`` and is not trained again, one that stopped resumes, so the
same command carries a long table across interruptions; the groups of the committed results
file count as finished too. Writes
``benchmarks/results/mpe/paper_table.{md,json,png}`` (``--quick``: beside its runs).
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

from benchmarks.common import command_line, config_changes, machine, parse_set, run_kept_actors, train_seeds
from maddpg_jax import Config, RunStopped, envs
from maddpg_jax.rundir import atomic_write_text, has_checkpoint
from maddpg_jax.training import make_trainer, run_episodes

SETTINGS = ("paper", "defaults")
# Each competitive scenario's two sides, (team, name), the side the paper names first first.
SIDES = {
    "simple_tag": (("adversaries", "predators"), ("agents", "prey")),
    "simple_adversary": (("agents", "good agents"), ("adversaries", "adversary")),
    "simple_crypto": (("alice_bob", "Alice & Bob"), ("eve", "Eve")),
    "simple_push": (("agents", "agent"), ("adversaries", "adversary")),
}
SCENARIOS = (
    "simple_speaker_listener",
    "simple_spread",
    "simple_tag",
    "simple_adversary",
    "simple_crypto",
    "simple_push",
)
ALGORITHMS = {"maddpg": "joint", "ddpg": "local"}
# The paper's main text (Section 5.2): (scenario, matchup, metric) -> the number it states.
# The appendix's tables are not reproduced in its main text; cells it does not state are blank.
PAPER = {
    ("simple_speaker_listener", "maddpg", "target_reached"): "0.840",
    ("simple_speaker_listener", "ddpg", "target_reached"): "fails",
    ("simple_spread", "maddpg", "collisions"): "≈ ½ of DDPG's",
    ("simple_spread", "maddpg", "landmark_distance"): "slightly < DDPG's",
    ("simple_tag", "maddpg_vs_ddpg", "touches"): "16.1",
    ("simple_tag", "ddpg_vs_maddpg", "touches"): "10.3",
    ("simple_adversary", "maddpg_vs_maddpg", "agents_success"): "≈ 0.94",
    ("simple_adversary", "maddpg_vs_ddpg", "agents_success"): "≈ 0.94",
    ("simple_adversary", "maddpg_vs_ddpg", "adversary_success"): "0.164",
    ("simple_crypto", "maddpg_vs_maddpg", "bob_minus_eve"): "0.524",
    ("simple_crypto", "ddpg_vs_ddpg", "bob_minus_eve"): "0.251",
    ("simple_crypto", "maddpg_vs_maddpg", "eve_success"): "≈ 0.5",
}
DERIVED = {"simple_crypto": ("bob_minus_eve", "bob_success", "eve_success")}  # name, a, b: a - b per seed


def matchups(scenario: str) -> dict[str, str]:
    """``{matchup: critic_mode}``: ``maddpg`` / ``ddpg`` for a cooperative scenario,
    ``A_vs_B`` (the first side's algorithm, then the second's) for a competitive one."""
    if scenario not in SIDES:
        return dict(ALGORITHMS)
    (first, _), (second, _) = SIDES[scenario]
    return {f"{a}_vs_{b}": f"{first}={ALGORITHMS[a]},{second}={ALGORITHMS[b]}" for a in ALGORITHMS for b in ALGORITHMS}


def chosen(a, scenario: str, matchup: str) -> bool:
    """Whether ``--matchups`` (a list: ``matchup`` or ``scenario:matchup`` entries; empty:
    every one) takes this scenario's matchup."""
    return not a.matchups or matchup in a.matchups or f"{scenario}:{matchup}" in a.matchups


def matchup_label(scenario: str, matchup: str) -> str:
    if scenario not in SIDES:
        return matchup.upper()
    (_, first), (_, second) = SIDES[scenario]
    a, b = matchup.split("_vs_")
    return f"{a.upper()} {first} vs {b.upper()} {second}"


VERSIONS = {
    "paper": "the paper's own scenarios as its code ran them (`paper:*`)",
    "jaxmarl": "JaxMARL's port of the scenarios (`jaxmarl:MPE_*`)",
}
JAXMARL_VERSIONS = {"simple_speaker_listener": "v4"}  # JaxMARL's registry names: MPE_<scenario>_<v3 or this>


def env_name(version: str, scenario: str) -> str:
    """``paper:<scenario>``, or JaxMARL's port of it (``--env-version jaxmarl``)."""
    if version == "paper":
        return "paper:" + scenario
    return f"jaxmarl:MPE_{scenario}_{JAXMARL_VERSIONS.get(scenario, 'v3')}"


def metric_names(a, scenario: str) -> list[str]:
    """The env's episode metrics (JaxMARL's entries have none), the derived one, and each
    team's return (``return:<team>``, per agent: the mean over the team's agents)."""
    env = env_name(a.env_version, scenario)
    names = [m.name for m in envs.entry(env).metrics]
    names += [DERIVED[scenario][0]] if scenario in DERIVED and names else []
    teams = envs.make(env)[0].teams
    return names + [f"return:{t}" for t in teams]


def variant(a, scenario: str) -> str:
    """A group's folder under its setting: the scenario, and its version, action type, seeds,
    budget and overrides where they are not the table's own (so other tables never reuse its runs)."""
    parts = [scenario]
    parts += [] if a.env_version == "paper" else [a.env_version]
    parts += [] if a.action_type == "discrete" else [a.action_type]
    parts += (
        [] if (a.seed_start, a.seeds) == (0, 5) or a.quick else [f"seeds={a.seed_start}-{a.seed_start + a.seeds - 1}"]
    )
    parts += [] if a.total_env_steps == 1_500_000 or a.quick else [f"steps={a.total_env_steps}"]
    parts += [f"{k}={v}" for k, v in sorted({**a.env_args, **a.set}.items())]
    return "_".join(parts)


def budget(a, setting: str, scenario: str) -> int:
    """A group's env steps: ``--total-env-steps`` for the paper's setting; for the defaults, the
    scenario's registry budget (what ``maddpg-jax train --env ...`` trains) up to that, where the
    caller asks for it (``a.registry_budget``; `tune.py` trains every candidate to its own budget)."""
    if setting == "paper" or not a.registry_budget:
        return a.total_env_steps
    env_kwargs = {"action_type": a.action_type, **a.env_args}
    return min(a.total_env_steps, Config(env=env_name(a.env_version, scenario), env_kwargs=env_kwargs).total_env_steps)


def config_for(a, setting: str, scenario: str, critic_mode: str) -> Config:
    quick = {"warmup_env_steps": min(25_600, a.total_env_steps // 4)} if a.quick else {}
    return Config(
        env=env_name(a.env_version, scenario),
        env_kwargs={"action_type": a.action_type, **a.env_args},
        preset="paper" if setting == "paper" else "none",
        critic_mode=critic_mode,
        total_env_steps=budget(a, setting, scenario),
        seed=a.seed_start,
        **{**quick, **a.set},
    )


def measure(run_dir: Path, episodes: int, seed: int) -> list[dict]:
    """Each member's kept policy over ``episodes`` noise-free episodes: the env's metrics
    and each team's return, means over the episodes (one program for all members)."""
    config, members, trainer, actors = run_kept_actors(run_dir)
    keys = jax.random.split(jax.random.key(seed), len(members))
    out = jax.jit(jax.vmap(lambda p, k: run_episodes(trainer, p, k, episodes)))(actors, keys)
    names = [m.name for m in envs.entry(config.env).metrics]
    rows = []
    for i, member in enumerate(members):
        metrics = {n: float(np.mean(out.metrics[i, :, k])) for k, n in enumerate(names)}
        teams = {t: float(np.mean(out.team_returns[i, :, k])) for k, t in enumerate(trainer.spec.team_names)}
        rows.append({"seed": member["seed"], "metrics": metrics, "team_returns": teams})
    return rows


def run_group(a, setting: str, scenario: str, matchup: str, critic_mode: str) -> dict:
    """Train (or resume) one matchup's seeds and measure them; reuse a finished group."""
    run_dir = Path(a.out) / setting / variant(a, scenario) / matchup
    done = run_dir / "table.json"
    config = config_for(a, setting, scenario, critic_mode)
    if done.exists():
        group = json.loads(done.read_text())
        steps = budget(a, setting, scenario)
        if len(group["members"]) != a.seeds or group["env_steps"] != steps:
            sys.exit(
                f"paper_table: {done} holds {len(group['members'])} seeds at {group['env_steps']:,} env steps, "
                f"not --seeds {a.seeds} at {steps:,} env steps; use another --out"
            )
        # A registry default changed since the group trained: its numbers are not this
        # setting's. (Groups written before the config was recorded carry none to compare.)
        changed = config_changes(group["config"], config) if group.get("config") is not None else []
        if changed:
            sys.exit(
                f"paper_table: {done} trained other settings ({', '.join(changed)}); use another --out or remove it"
            )
        return group
    resume = has_checkpoint(run_dir)
    wall = train_seeds(config, a.seeds, run_dir, f"{setting} {scenario} {matchup}")
    t0 = time.perf_counter()
    members = measure(run_dir, a.eval_episodes, seed=a.seed_start + 10_000)
    summary = run_dir / "summary.jsonl"
    for m, row in zip(members, map(json.loads, summary.read_text().splitlines() if summary.exists() else [])):
        m["diverged_at_env_steps"] = row.get("diverged_at_env_steps")
    group = {
        "setting": setting,
        "scenario": scenario,
        "variant": variant(a, scenario),
        "matchup": matchup,
        "critic_mode": critic_mode,
        "config": config.to_dict(),
        "trained_on": datetime.date.today().isoformat(),
        "env_steps": config.total_env_steps,
        "train_wall_s": round(wall, 1),
        "resumed": resume,
        "eval_wall_s": round(time.perf_counter() - t0, 1),
        "members": members,
        "curve": curve(run_dir, scenario, metric_names(a, scenario)),
    }
    atomic_write_text(done, json.dumps(group, indent=1))
    if not a.keep_checkpoints:  # the replay buffers take gigabytes per group; the table keeps its numbers
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return group


def curve(run_dir: Path, scenario: str, names: list[str]) -> dict[str, list]:
    """Each metric evaluated during training, as ``[env_steps, median over seeds]`` pairs: kept
    in the group's record, so the table's figure needs no run directory."""
    series: dict[str, dict[int, list]] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r.get("approx_kl") is not None:  # --set infer_policies=True: the approximations' KL
            series.setdefault("approx_kl", {}).setdefault(r["env_steps"], []).append(r["approx_kl"])
        ev = r.get("eval_metrics")
        if ev is None:
            continue
        for metric in names:
            if metric in ev:
                v = ev[metric]
            elif scenario in DERIVED and metric == DERIVED[scenario][0]:
                v = ev[DERIVED[scenario][1]] - ev[DERIVED[scenario][2]]
            else:
                continue
            series.setdefault(metric, {}).setdefault(r["env_steps"], []).append(v)
    return {m: [[x, float(np.median(v[x]))] for x in sorted(v)] for m, v in series.items()}


# -- baselines: a random policy, and a scripted one where one is easy ----------------------------------


def toward(delta: jax.Array) -> jax.Array:
    """``[..., 2] -> int32 [...]``: the discrete move (no-op, +x, -x, +y, -y) along the
    larger component of ``delta`` (no-op within 0.01)."""
    x, y = delta[..., 0], delta[..., 1]
    along_x = jnp.where(x > 0, 1, 2)
    along_y = jnp.where(y > 0, 3, 4)
    move = jnp.where(jnp.abs(x) >= jnp.abs(y), along_x, along_y)
    return jnp.where(jnp.hypot(x, y) < 0.01, 0, move).astype(jnp.int32)


def goal_position(s, first: int, other: bool = False) -> jax.Array:
    """``[N, 2]``: each env's goal landmark (``other``: the other of two), landmarks from
    entity ``first`` on."""
    index = first + (1 - s.goal if other else s.goal)
    return s.p_pos[jnp.arange(s.p_pos.shape[0]), index]


def scripted(scenario: str):
    """``act(obs, state, key)`` of a hand-written policy (from the env state), or None."""
    a = {"simple_speaker_listener": 2, "simple_tag": 4, "simple_adversary": 3}.get(scenario)
    if scenario == "simple_speaker_listener":  # the speaker names the goal, the listener goes there
        return lambda obs, s, k: jnp.stack([s.goal, toward(goal_position(s, 2) - s.p_pos[:, 1])], -1)
    if scenario == "simple_spread":  # agent i to landmark i (N agents, N landmarks)
        return lambda obs, s, k: toward(s.p_pos[:, s.p_pos.shape[1] // 2 :] - s.p_pos[:, : s.p_pos.shape[1] // 2])
    if scenario == "simple_tag":  # predators run straight at the prey, the prey moves at random

        def act(obs, s, k):
            chase = toward(s.p_pos[:, 3:4] - s.p_pos[:, :3])
            return jnp.concatenate([chase, jax.random.randint(k, (obs.shape[0], 1), 0, 5)], -1)

        return act
    if scenario == "simple_adversary":  # one good agent on the goal, one on the other landmark

        def act(obs, s, k):
            goal, other = goal_position(s, a), goal_position(s, a, other=True)
            middle = s.p_pos[:, a:].mean(1)
            moves = [toward(middle - s.p_pos[:, 0]), toward(goal - s.p_pos[:, 1]), toward(other - s.p_pos[:, 2])]
            return jnp.stack(moves, -1)

        return act
    if scenario == "simple_crypto":  # Alice says goal xor key, Bob decodes with the key, Eve repeats Alice

        def act(obs, s, k):
            heard = jnp.argmax(s.c[:, 2], -1)
            return jnp.stack([heard, (heard + s.key) % 2, (s.goal + s.key) % 2], -1).astype(jnp.int32)

        return act
    if scenario == "simple_push":  # both head for the goal

        def act(obs, s, k):
            goal = goal_position(s, 2)
            return jnp.stack([toward(goal - s.p_pos[:, 0]), toward(goal - s.p_pos[:, 1])], -1)

        return act
    return None


def baselines(a, scenario: str, episodes: int) -> dict:
    """``{"random": {...}, "scripted": {...}}``: each policy's metrics and team returns over
    ``episodes`` (scripted: discrete actions on the paper's scenarios only)."""
    env = env_name(a.env_version, scenario)
    small = dict(total_env_steps=1000, num_envs=8, batch_size=8, buffer_size=64)
    trainer = make_trainer(Config(env=env, env_kwargs={"action_type": a.action_type, **a.env_args}, **small))
    spec = trainer.spec
    sizes = jnp.asarray(spec.act_sizes)

    def random(obs, s, k):
        if spec.discrete:
            return jax.random.randint(k, obs.shape[:2], 0, sizes).astype(jnp.int32)
        uniform = jax.random.uniform(k, obs.shape[:2] + (spec.act_dim,), jnp.float32, -1.0, 1.0)
        return jnp.where(jnp.asarray(spec.action_mask), uniform, 0.0)

    names = [m.name for m in envs.entry(env).metrics]
    hand = scripted(scenario) if (a.env_version == "paper" and spec.discrete) else None
    out = {}
    for name, act in (("random", random), ("scripted", hand)):
        if act is None:
            continue
        ep = jax.jit(lambda k, act=act: run_episodes(trainer, None, k, episodes, act=act))(jax.random.key(7))
        out[name] = {n: float(np.mean(ep.metrics[:, i])) for i, n in enumerate(names)}
        out[name].update({f"return:{t}": float(np.mean(ep.team_returns[:, i])) for i, t in enumerate(spec.team_names)})
        if scenario in DERIVED and names:
            d, x, y = DERIVED[scenario]
            out[name][d] = out[name][x] - out[name][y]
    return out


# -- the results ------------------------------------------------------------------------------------------


def per_seed(group: dict, metric: str) -> list[float]:
    if metric.startswith("return:"):
        return [m["team_returns"][metric.split(":", 1)[1]] for m in group["members"]]
    if group["scenario"] in DERIVED and metric == DERIVED[group["scenario"]][0]:
        _, x, y = DERIVED[group["scenario"]]
        return [m["metrics"][x] - m["metrics"][y] for m in group["members"]]
    return [m["metrics"][metric] for m in group["members"]]


def kl_path(group: dict) -> str:
    """A group with inferred policies: the approximations' KL to the true policies (median
    over seeds) at 10%, 50% and 100% of training, as ``"a → b → c"``."""
    kl = group["curve"]["approx_kl"]
    return " → ".join(f"{kl[min(len(kl) - 1, int(f * len(kl)))][1]:.3g}" for f in (0.1, 0.5, 1.0))


def cell(values: list[float] | None) -> str:
    if not values:
        return "–"
    return f"{np.median(values):.3g} [{min(values):.3g}, {max(values):.3g}]"


def render(a, groups: list[dict], base: dict, command: str) -> str:
    by = {(g["setting"], g["scenario"], g["matchup"]): g for g in groups}
    lines = [
        "## The MADDPG paper's table, reproduced",
        "",
        f"Lowe et al. 2017, Section 5: every experiment and matchup on {VERSIONS[a.env_version]}, "
        f"{a.action_type} actions, {a.seeds} seeds ({a.seed_start}–{a.seed_start + a.seeds - 1}) per matchup in one "
        f"program, {a.total_env_steps:,} env steps each with the paper's setting (the paper: 60,000 episodes of "
        "25 steps = 1.5M) and each scenario's own budget, at most that, with the defaults (the cost table's env "
        "steps). Each "
        f"seed's kept policy is scored without exploration noise over {a.eval_episodes:,} episodes; a cell "
        "gives the median over seeds and [lowest, highest]. `--preset paper` is the paper's code as it ran "
        "(its last policy is kept); `defaults` is the project's recommendation for the scenario (its best "
        "evaluated policy is kept).",
        "",
        f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. Command: `{command}`",
        "",
        "Metrics (each scenario's registry entry; the original `benchmark_data`, reduced per episode): "
        "`target_reached` the listener's disc overlaps the goal landmark's at the episode's end (distance "
        "< 0.115); `landmark_distance` the sum over landmarks of the nearest agent's distance, mean over steps; "
        "`collisions` pairs of agents in contact, summed over steps; `touches` (predator, prey) pairs in contact, "
        "summed over steps; `agents_success` / `adversary_success` within 0.4 of the goal at the end; "
        "`bob_success` / `eve_success` the utterance names the goal at the end, `bob_minus_eve` their "
        "difference per seed (the paper's \"relative success\"); `return:<team>` the team's episode return per "
        "agent (the mean over its agents of each agent's sum of rewards). The paper evaluated its sampled "
        "(stochastic) policy; these are noise-free.",
        "",
    ]
    for scenario in a.scenarios:
        lines += [f"### {scenario}", ""]
        head = "| matchup | metric | paper | " + " | ".join(f"`{s}`" for s in a.settings) + " | random | scripted |"
        lines += [head, "|" + "---|" * (5 + len(a.settings))]
        for matchup in matchups(scenario):
            if not chosen(a, scenario, matchup):
                continue
            for metric in metric_names(a, scenario):
                cells = [
                    cell(per_seed(by[(s, scenario, matchup)], metric)) if (s, scenario, matchup) in by else "–"
                    for s in a.settings
                ]
                b = base.get(scenario, {})
                ref = [f"{b[k][metric]:.3g}" if k in b and metric in b[k] else "–" for k in ("random", "scripted")]
                paper = PAPER.get((scenario, matchup, metric), "")
                lines.append(
                    f"| {matchup_label(scenario, matchup)} | `{metric}` | {paper} | " + " | ".join(cells + ref) + " |"
                )
        lines.append("")
    inferred = [g for g in groups if "approx_kl" in g.get("curve", {})]
    if inferred:
        lines += [
            "The inferred policies' KL to the true ones over training (median over seeds, at 10%, 50%, 100%):",
            "",
        ]
        for g in inferred:
            lines.append(f"- `{g['setting']}` {g['scenario']} {g['matchup']}: {kl_path(g)}")
        lines.append("")
    lines += [
        "### Cost",
        "",
        "| setting | scenario | matchups | env steps each | train wall s | eval wall s | trained on |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    per_setting = {}
    for s in a.settings:
        for scenario in a.scenarios:
            gs = [by[(s, scenario, m)] for m in matchups(scenario) if (s, scenario, m) in by]
            if gs:
                train, ev = sum(g["train_wall_s"] for g in gs), sum(g["eval_wall_s"] for g in gs)
                per_setting[s] = per_setting.get(s, 0.0) + train + ev
                steps = "/".join(f"{n:,}" for n in sorted({g["env_steps"] for g in gs}))
                # The machine's speed varies by day: wall times compare only within one date.
                dates = "/".join(sorted({g.get("trained_on", "–") for g in gs}))
                lines.append(f"| `{s}` | {scenario} | {len(gs)} | {steps} | {train:,.0f} | {ev:,.0f} | {dates} |")
    planned = sum(chosen(a, sc, m) for sc in a.scenarios for m in matchups(sc)) * len(a.settings)
    total = sum(per_setting.values())
    each = "; ".join(f"`{s}` {t:,.0f} s ({t / 60:,.1f} min)" for s, t in per_setting.items())
    lines += [
        "",
        f"Total: {total:,.0f} s ({total / 60:,.1f} min) of training and evaluation ({each}), {len(groups)} of "
        f"{planned} groups (setting, scenario, matchup) finished.",
        "",
    ]
    bare = [g for g in groups if "curve" not in g]
    if bare:  # records written before groups kept their curves
        lines += [f"{len(bare)} of the groups have no curve record and no line in the figure.", ""]
    return "\n".join(lines)


def plot(a, groups: list[dict], path: str) -> None:
    """Each scenario's metrics over training (the noise-free evaluations during the run,
    median over seeds): one panel per (scenario, metric), a line per matchup and setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # The metrics evaluated during training (the env's and the derived one; returns are in the runs' own curves).
    skip = ("final_distance",)
    panels = [(sc, m) for sc in a.scenarios for m in metric_names(a, sc) if m not in skip and ":" not in m]
    cols = 3
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for ax, (scenario, metric) in zip(axes.flat, panels):
        for g in groups:
            if g["scenario"] != scenario:
                continue
            series = g.get("curve", {}).get(metric)
            if series:
                style = "-" if g["setting"] == "paper" else "--"
                ax.plot(*zip(*series), style, label=f"{g['matchup']} ({g['setting']})")
        ax.set_title(f"{scenario}: {metric}", fontsize=9)
        ax.set_xlabel("env steps", fontsize=8)
        if ax.lines:
            ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run: 2 seeds, 30k env steps, 100 episodes")
    p.add_argument("--settings", default=",".join(SETTINGS), help="paper, defaults or both")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--seed-start", type=int, default=0)
    p.add_argument(
        "--total-env-steps",
        type=int,
        default=1_500_000,
        help="the paper setting's budget, and the most the defaults train (each scenario's registry budget up to it)",
    )
    p.add_argument("--eval-episodes", type=int, default=1000)
    p.add_argument("--keep-checkpoints", action="store_true", help="keep each finished group's checkpoints")
    p.add_argument("--render", action="store_true", help="only rewrite the results from the finished groups")
    p.add_argument("--env-version", choices=("paper", "jaxmarl"), default="paper", help="the scenarios' version")
    p.add_argument("--action-type", choices=("discrete", "continuous"), default="discrete")
    p.add_argument(
        "--matchups",
        default="",
        help="only these matchups (e.g. maddpg, maddpg_vs_ddpg, or one scenario's: simple_crypto:maddpg_vs_maddpg)",
    )
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="Config values over both settings")
    p.add_argument(
        "--env-args", nargs="*", default=[], metavar="NAME=VALUE", help="env arguments (e.g. num_agents=2 for spread)"
    )
    p.add_argument("--name", default="paper_table", help="the results files' name")
    p.add_argument(
        "--out", default=None, help="run directories (default runs/paper_table, --quick runs/paper_table_quick)"
    )
    a = p.parse_args(argv)
    if a.quick:
        a.seeds, a.total_env_steps, a.eval_episodes = 2, 30_000, 100
    command = command_line("paper_table.py", p, a, skip=("out", "render"))
    a.registry_budget = True
    a.set = parse_set(a.set)
    a.env_args = parse_set(a.env_args)
    a.matchups = [m for m in a.matchups.split(",") if m]
    a.settings = [s for s in a.settings.split(",") if s]
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    for s in a.settings:
        if s not in SETTINGS:
            p.error(f"--settings: {s!r} is not one of {', '.join(SETTINGS)}")
    for s in a.scenarios:
        if s not in SCENARIOS:
            p.error(f"--scenarios: {s!r} is not one of {', '.join(SCENARIOS)}")
    a.out = a.out or ("runs/paper_table_quick" if a.quick else "runs/paper_table")
    results = a.out if a.quick else "benchmarks/results/mpe"
    os.makedirs(results, exist_ok=True)
    # The paper's direction first, so a table interrupted early has its headline rows.
    order = sorted(
        (
            (s, sc, m, mode)
            for s in a.settings
            for sc in a.scenarios
            for m, mode in matchups(sc).items()
            if chosen(a, sc, m)
        ),
        key=lambda t: ((t[1], t[2]) not in {(k[0], k[1]) for k in PAPER}, SETTINGS.index(t[0])),
    )
    carry_over(a, results)
    base = {scenario: baselines(a, scenario, a.eval_episodes) for scenario in a.scenarios}

    def finished() -> list[dict]:
        # Every finished group in the table's order: the results file never drops a finished
        # group that the loop has not reached yet.
        paths = (Path(a.out) / s / variant(a, sc) / m / "table.json" for s, sc, m, _ in order)
        return [json.loads(path.read_text()) for path in paths if path.exists()]

    for setting, scenario, matchup, mode in [] if a.render else order:
        trained = not (Path(a.out) / setting / variant(a, scenario) / matchup / "table.json").exists()
        try:
            run_group(a, setting, scenario, matchup, mode)
        except RunStopped as e:  # Ctrl-C / SIGTERM: the group saved a checkpoint
            print(f"paper_table: stopped in {setting} {scenario} {matchup} ({e}); the same command goes on from there")
            sys.exit(e.status)
        if trained:
            write(a, finished(), base, command, results)
    write(a, finished(), base, command, results)
    print(f"wrote {os.path.join(results, a.name + '.md')}")


def carry_over(a, results: str) -> None:
    """Restore each finished group of the results file that has no ``table.json`` under
    ``--out`` (a fresh checkout has no ``runs/``): the table goes on from its last finished
    group on any machine that has the committed results, not only the one that trained them."""
    path = Path(results) / (a.name + ".json")
    if a.quick or not path.exists():
        return
    for g in json.loads(path.read_text())["groups"]:
        done = Path(a.out) / g["setting"] / g["variant"] / g["matchup"] / "table.json"
        if not done.exists():
            done.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(done, json.dumps(g, indent=1))


def write(a, groups: list[dict], base: dict, command: str, results: str) -> None:
    name = os.path.join(results, a.name)
    atomic_write_text(name + ".json", json.dumps({"command": command, "groups": groups, "baselines": base}))
    atomic_write_text(name + ".md", render(a, groups, base, command))
    plot(a, groups, name + ".png")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # outside a group's training (baselines, scoring): nothing to save
        print("paper_table: interrupted; the same command goes on from the last finished group", file=sys.stderr)
        sys.exit(130)
