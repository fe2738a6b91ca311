"""The MADDPG paper's comparison: MADDPG against independent DDPG, both ways round, on the
competitive MPE scenarios.

    python benchmarks/ddpg_vs_maddpg.py [--seeds 3] [--total-env-steps 200000]
        [--scenarios simple_adversary,simple_tag] [--action-type continuous] [--set FIELD=VALUE ...]

Per scenario (JaxMARL ``simple_adversary``: 1 adversary against 2 good agents;
``simple_tag``: 3 predators against 1 prey) four matches: each team's critics ``joint``
(MADDPG) or ``local`` (DDPG: a critic sees only its own agent's observation and action).
Seeds train in one program per match. Each seed's kept policies play 1,000 noise-free
episodes; reported per team: the per-agent return (median over seeds), and for simple_tag
the predators' touches of the prey per episode (a predator's return / 10: every touch by
any predator pays each predator +10). Writes ``benchmarks/results/mpe/ddpg_vs_maddpg.md`` (with
``--action-type discrete``, ``ddpg_vs_maddpg_discrete.md``). The registry's MPE defaults apply,
except actor lr 1e-2 (the MPE default when the first table was measured) unless ``--set``
names another.
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

from benchmarks.common import command_line, kept_policy_returns, machine, parse_set
from maddpg_jax import Config
from maddpg_jax import members as members_lib
from maddpg_jax.loop import plan_chunks, run_chunks

SCENARIOS = {"simple_adversary": "jaxmarl:MPE_simple_adversary_v3", "simple_tag": "jaxmarl:MPE_simple_tag_v3"}
MODES = {"MADDPG": "joint", "DDPG": "local"}


def match(
    env: str, adversaries: str, agents: str, seeds: int, steps: int, episodes: int, action_type: str, overrides: dict
) -> dict:
    """Train ``seeds`` seeds of one match; noise-free team returns ``[seeds, teams]``."""
    config = Config(
        env=env,
        env_kwargs={"action_type": action_type},
        critic_mode=f"adversaries={MODES[adversaries]},agents={MODES[agents]}",
        total_env_steps=steps,
        buffer_size=min(steps, 1_000_000),
        **{"actor_lr": 1e-2, **overrides},  # 1e-2: the MPE default when the first table was measured
    )
    trainer, runner, placed = members_lib.build(config, members_lib.seed_members(config, seeds))
    keys, hp = members_lib.place(runner, config, placed)
    t0 = time.perf_counter()
    last, _ = run_chunks(runner, runner.init(keys, hp), hp, plan_chunks(config))
    wall = time.perf_counter() - t0
    teams = kept_policy_returns(trainer, config, last.state, seeds, episodes, 777)
    return {"teams": teams, "names": trainer.spec.team_names, "wall_s": wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--total-env-steps", type=int, default=200_000)
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list of " + ", ".join(SCENARIOS))
    p.add_argument("--action-type", default="continuous", choices=["continuous", "discrete"])
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config overrides, every match")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "mpe"))
    a = p.parse_args()
    scenarios = a.scenarios.split(",")
    if unknown := [n for n in scenarios if n not in SCENARIOS]:
        p.error(f"--scenarios: unknown {unknown}; choose from {', '.join(SCENARIOS)}")
    overrides = parse_set(a.set)
    lines = [
        f"# MADDPG against DDPG ({a.seeds} seeds x {a.total_env_steps:,} env steps per match)",
        "",
        f"Machine: {machine()}. `{command_line('ddpg_vs_maddpg.py', p, a)}`. "
        f"{a.action_type.capitalize()} actions; MPE defaults with actor lr {overrides.get('actor_lr', 1e-2):g} "
        "(gamma 0.95, 64-unit layers, 64 envs, one update round of batch 256 per step); noise-free returns over "
        f"{a.episodes} episodes per seed, median over seeds (worst, best).",
        "",
        "| scenario | adversaries | good agents | adversary return | good-agent return | touches / episode | wall s |",
        "|---|---|---|---|---|---:|---:|",
    ]
    for scen in scenarios:
        for adv in MODES:
            for agt in MODES:
                r = match(SCENARIOS[scen], adv, agt, a.seeds, a.total_env_steps, a.episodes, a.action_type, overrides)
                t = dict(zip(r["names"], r["teams"].T))
                fmt = lambda v: f"{np.median(v):.1f} ({np.min(v):.1f}, {np.max(v):.1f})"
                touches = f"{np.median(t['adversaries']) / 10:.2f}" if scen == "simple_tag" else "-"
                lines.append(
                    f"| {scen} | {adv} | {agt} | {fmt(t['adversaries'])} | {fmt(t['agents'])} | {touches} | "
                    f"{r['wall_s']:.0f} |"
                )
                print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    from maddpg_jax.rundir import atomic_write_text

    name = "ddpg_vs_maddpg" + ("_discrete" if a.action_type == "discrete" else "")
    atomic_write_text(os.path.join(a.out, name + ".md"), text)
    print(text)


if __name__ == "__main__":
    main()
