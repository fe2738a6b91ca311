"""Every JaxMARL MPE scenario trained, beside a random policy.

    python benchmarks/mpe_suite.py [--seeds 3] [--total-env-steps 200000] [--action-type continuous]

Per scenario, ``--seeds`` seeds train in one program with the registry's MPE defaults
(gamma 0.95, actor lr 1e-3, critic lr 1e-2, 64-unit layers, 64 envs, one update round of
batch 256 per step). Per
team it reports the random policy (the 100-episode mean of the random warm-up, in the same
run), and the kept policies' noise-free return over 1,000 episodes per seed (median and
worst over seeds). Returns are per agent (the mean over a team's agents of each agent's
episode sum, 26 steps). Writes ``benchmarks/results/mpe_suite_<action type>.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from maddpg_jax.parallel import configure_host_devices

configure_host_devices()

import numpy as np

from benchmarks.common import kept_policy_returns, machine, parse_set
from envs.jaxmarl_adapter import MPE_SCENARIOS
from maddpg_jax import Config
from maddpg_jax import members as members_lib
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
    random = []

    def on_chunk(chunk):
        if chunk.end == config.warmup_iterations:  # the random warm-up's window, per team
            random.append(chunk.metrics.team_returns[:seeds, -1])

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
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--total-env-steps", type=int, default=200_000)
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--action-type", default="continuous", choices=["continuous", "discrete"])
    p.add_argument("--scenarios", default=",".join(MPE_SCENARIOS), help="comma list (default: all nine)")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config overrides, every scenario")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    a = p.parse_args()

    lines = [
        f"# The MPE suite: {a.seeds} seeds x {a.total_env_steps:,} env steps per scenario ({a.action_type})",
        "",
        f"Machine: {machine()}. `python benchmarks/mpe_suite.py --action-type {a.action_type}`. Per team: "
        "random policy (100-episode mean of the warm-up) | trained: kept policies, noise-free, "
        f"{a.episodes} episodes per seed, median (worst) over seeds, and each seed's. Per-agent returns over 26 "
        "steps." + (f" Overrides: {' '.join(a.set)}." if a.set else ""),
        "",
        "| scenario | agents | team | random | trained: median (worst) | per seed | wall s |",
        "|---|---:|---|---:|---:|---|---:|",
    ]
    for name in a.scenarios.split(","):
        r = scenario("jaxmarl:" + name, a.action_type, a.seeds, a.total_env_steps, a.episodes, parse_set(a.set))
        for t, team in enumerate(r["teams"]):
            rand = "-" if r["random"] is None else f"{r['random'][t]:.1f}"
            col = r["trained"][:, t]
            lines.append(
                f"| {name} | {r['agents']} | {team} | {rand} | {np.median(col):.1f} ({col.min():.1f}) | "
                f"{' / '.join(f'{v:.1f}' for v in col)} | {r['wall_s']:.0f} |"
            )
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    from maddpg_jax.rundir import atomic_write_text

    atomic_write_text(os.path.join(a.out, f"mpe_suite_{a.action_type}.md"), text)
    print(text)


if __name__ == "__main__":
    main()
