"""Every JaxMARL MPE scenario trained, beside a random policy.

    python benchmarks/mpe_suite.py [--seeds 3] [--total-env-steps 200000] [--action-type continuous]

Per scenario, ``--seeds`` seeds train in one program with the registry's MPE defaults
(gamma 0.95, actor lr 1e-3, critic lr 1e-2, 64-unit layers, 64 envs, one update round of
batch 256 per step). Per
team it reports the random policy (the 100-episode mean of the random warm-up, in the same
run), and the kept policies' noise-free return over 1,000 episodes per seed (median and
worst over seeds). Returns are per agent (the mean over a team's agents of each agent's
episode sum, 26 steps), each seed's, and simple_tag's predator touches per episode (the
paper's metric). Writes ``benchmarks/results/mpe/mpe_suite_<action type>.md``, the learning
curves, one panel per scenario, beside it as ``.png``, and every figure unrounded as ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from maddpg_jax.parallel import configure_host_devices

configure_host_devices()

import numpy as np

from benchmarks.common import command_line, kept_policy_returns, machine, parse_set
from maddpg_jax import Config
from maddpg_jax import members as members_lib
from maddpg_jax.envs.jaxmarl_adapter import MPE_SCENARIOS
from maddpg_jax.loop import plan_chunks, run_chunks


def scenario(env: str, action_type: str, seeds: int, steps: int, episodes: int, overrides=None) -> dict:
    config = Config(
        env=env,
        env_kwargs={"action_type": action_type},
        total_env_steps=steps,
        buffer_size=min(steps, 1_000_000),
        **(overrides or {}),
    )
    trainer, runner, placed = members_lib.build(config, members_lib.seed_members(config, seeds))
    keys, hp = members_lib.place(runner, config, placed)
    random, curve, steps_at = [], [], []

    def on_chunk(chunk):
        if chunk.end == config.warmup_iterations:  # the random warm-up's window, per team
            random.append(chunk.metrics.team_returns[:seeds, -1])
        curve.append(chunk.metrics.team_returns[:seeds, -1])  # [seeds, teams], 100-episode means
        steps_at.append(int(chunk.metrics.env_steps[0, -1]))

    t0 = time.perf_counter()
    last, _ = run_chunks(runner, runner.init(keys, hp), hp, plan_chunks(config), on_chunk)
    wall = time.perf_counter() - t0
    trained = kept_policy_returns(trainer, config, last.state, seeds, episodes, 4242)  # [seeds, teams]
    return {
        "teams": trainer.spec.team_names,
        "agents": trainer.spec.num_agents,
        "random": np.median(random[0], 0) if random else None,
        "trained": trained,
        "wall_s": wall,
        "curve": (np.array(steps_at), np.stack(curve, 0)),  # [chunks], [chunks, seeds, teams]
    }


def plot(results: dict, path: str, title: str) -> None:
    """One panel per scenario: each team's training mean (median over seeds, band from the
    worst to the best seed) against env steps, random as a dotted line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    cols = 3
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), dpi=100, squeeze=False)
    for ax, name in zip(axes.flat, names):
        r = results[name]
        x, y = r["curve"]
        for t, team in enumerate(r["teams"]):
            yt = y[:, :, t]
            ax.plot(x, np.nanmedian(yt, 1), color=f"C{t}", lw=1.4, label=team)
            ax.fill_between(x, np.nanmin(yt, 1), np.nanmax(yt, 1), color=f"C{t}", alpha=0.2, lw=0)
            if r["random"] is not None:
                ax.axhline(r["random"][t], color=f"C{t}", ls=":", lw=1)
        ax.set_title(name.removeprefix("MPE_"), fontsize=9)
        ax.tick_params(labelsize=7)
        if len(r["teams"]) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.supxlabel("env steps", fontsize=9)
    fig.supylabel("training mean return per agent (100 episodes)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--total-env-steps", type=int, default=200_000)
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--action-type", default="continuous", choices=["continuous", "discrete"])
    p.add_argument("--scenarios", default=",".join(MPE_SCENARIOS), help="comma list (default: all nine)")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config overrides, every scenario")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "mpe"))
    a = p.parse_args()

    lines = [
        f"# The MPE suite: {a.seeds} seeds x {a.total_env_steps:,} env steps per scenario ({a.action_type})",
        "",
        f"Machine: {machine()}. `{command_line('mpe_suite.py', p, a)}`. Per team: "
        "random policy (100-episode mean of the warm-up) | trained: kept policies, noise-free, "
        f"{a.episodes} episodes per seed, median (worst) over seeds, and each seed's. Per-agent returns over 26 "
        "steps.",
        "",
        "The paper's metric, where it has one: simple_tag's predator touches of the prey per episode "
        "(a predator's return / 10: every touch pays each predator +10).",
        "",
        "| scenario | agents | team | random | trained: median (worst) | per seed | paper's metric | wall s |",
        "|---|---:|---|---:|---:|---|---:|---:|",
    ]
    results = {}
    for name in a.scenarios.split(","):
        r = results[name] = scenario(
            "jaxmarl:" + name, a.action_type, a.seeds, a.total_env_steps, a.episodes, parse_set(a.set)
        )
        for t, team in enumerate(r["teams"]):
            rand = "-" if r["random"] is None else f"{r['random'][t]:.1f}"
            col = r["trained"][:, t]
            metric = f"{np.median(col) / 10:.2f} touches" if name.startswith("MPE_simple_tag") and t == 0 else "-"
            lines.append(
                f"| {name} | {r['agents']} | {team} | {rand} | {np.median(col):.1f} ({col.min():.1f}) | "
                f"{' / '.join(f'{v:.1f}' for v in col)} | {metric} | {r['wall_s']:.0f} |"
            )
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    from maddpg_jax.rundir import atomic_write_text

    os.makedirs(a.out, exist_ok=True)
    atomic_write_text(os.path.join(a.out, f"mpe_suite_{a.action_type}.md"), text)
    summary = {
        "machine": machine(),
        "args": vars(a),
        "scenarios": {
            name: {
                "teams": list(r["teams"]),
                "random": None if r["random"] is None else np.asarray(r["random"]).tolist(),
                "trained": np.asarray(r["trained"]).tolist(),  # [seeds][teams], kept policies, noise-free
                "wall_s": r["wall_s"],
            }
            for name, r in results.items()
        },
    }
    atomic_write_text(os.path.join(a.out, f"mpe_suite_{a.action_type}.json"), json.dumps(summary, indent=1) + "\n")
    plot(
        results,
        os.path.join(a.out, f"mpe_suite_{a.action_type}.png"),
        f"MPE, {a.action_type} actions: {a.seeds} seeds x {a.total_env_steps:,} env steps (median, worst-best band)",
    )
    print(text)


if __name__ == "__main__":
    main()
