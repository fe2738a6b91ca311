"""Where a trained listener ends, and why it misses: communication or precision.

    python benchmarks/listener_diagnosis.py runs/tune/seeds_100_5/defaults/simple_speaker_listener/maddpg
    python benchmarks/listener_diagnosis.py runs/eval_modes --name listener_diagnosis_paper_preset \
        --trained-by "python benchmarks/eval_modes.py"

For every member of a run of ``paper:simple_speaker_listener`` (a ``train`` or ``sweep``
directory with its checkpoints), plays its kept policy without exploration noise over
``--episodes`` episodes and separates the two ways the listener can miss its target:

- **communication**: ``message_accuracy``, how often the goal can be read off the speaker's
  utterance (its most likely symbol; the best one-to-one reading, so 1/3 is no information),
  and ``nearest_is_goal``, how often the listener ends nearer the goal than either other
  landmark;
- **precision**: ``target_reached`` (the table's metric: within 0.115 at the end), the final
  distance's median and quartiles, ``ever_reached`` (within 0.115 at any step) and
  ``at_centre`` (ending within 0.2 of the landmarks' centroid, the failure the paper
  describes for the other algorithms).

Writes ``benchmarks/results/mpe/trials/<--name>.md``.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import numpy as np

from benchmarks.common import machine, run_kept_actors
from maddpg_jax import envs
from maddpg_jax.envs.mpe_paper import REACH
from maddpg_jax.rundir import atomic_write_text

LISTENER, FIRST_LANDMARK = 1, 2  # entity rows of paper:simple_speaker_listener


def rollouts(trainer, actor_params, key, episodes: int):
    """``(positions [T, N, entities, 2], goal [N], utterance [T, N, 3])`` of ``episodes``
    noise-free episodes, each step's state before any reset."""
    venv = envs.VecEnv(trainer.env, episodes)
    k_reset, k_run = jax.random.split(key)
    obs, state = venv.reset(k_reset, trainer.env_params)

    def body(carry, k):
        obs, state = carry
        actions = trainer.policy(actor_params, obs, None)
        obs, state, _, _, _, info = venv.step(k, state, actions, trainer.env_params)
        after = info["final_state"]
        return (obs, state), (after.p_pos, after.goal, after.c[:, 0])

    horizon = trainer.env.horizon(trainer.env_params)
    _, (pos, goal, said) = jax.lax.scan(body, (obs, state), jax.random.split(k_run, horizon))
    return pos, goal[-1], said


def message_accuracy(goal: np.ndarray, symbol: np.ndarray) -> float:
    """The share of episodes whose goal the best one-to-one reading of the symbol recovers."""
    return max(np.mean(np.asarray(perm)[symbol] == goal) for perm in itertools.permutations(range(3)))


def diagnose(pos: np.ndarray, goal: np.ndarray, said: np.ndarray) -> dict:
    n = goal.shape[0]
    listener = pos[:, :, LISTENER]  # [T, N, 2]
    landmarks = pos[:, :, FIRST_LANDMARK : FIRST_LANDMARK + 3]  # [T, N, 3, 2]
    to_each = np.linalg.norm(landmarks[-1] - listener[-1][:, None], axis=-1)  # [N, 3]
    final = to_each[np.arange(n), goal]
    track = np.linalg.norm(listener - landmarks[:, np.arange(n), goal], axis=-1)  # [T, N]
    centre = np.linalg.norm(landmarks[-1].mean(1) - listener[-1], axis=-1)
    return {
        "target_reached": float(np.mean(final < REACH)),
        "final_distance_median": float(np.median(final)),
        "final_distance_q25": float(np.quantile(final, 0.25)),
        "final_distance_q75": float(np.quantile(final, 0.75)),
        "ever_reached": float(np.mean(track.min(0) < REACH)),
        "nearest_is_goal": float(np.mean(to_each.argmin(1) == goal)),
        "message_accuracy": float(message_accuracy(goal, said[-1].argmax(-1))),
        "at_centre": float(np.mean(centre < 0.2)),
    }


COLUMNS = (
    "message_accuracy",
    "nearest_is_goal",
    "at_centre",
    "target_reached",
    "ever_reached",
    "final_distance_median",
    "final_distance_q25",
    "final_distance_q75",
)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a run directory of paper:simple_speaker_listener with its checkpoints")
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--name", default="listener_diagnosis", help="the results file's name")
    p.add_argument("--trained-by", default="", help="the command that trained the run, for the results file")
    a = p.parse_args(argv)
    config, members, trainer, actors = run_kept_actors(Path(a.run))
    if config.env != "paper:simple_speaker_listener":
        sys.exit(f"listener_diagnosis: {a.run} trained {config.env}, not paper:simple_speaker_listener")
    play = jax.jit(lambda params, key: rollouts(trainer, params, key, a.episodes))
    rows = []
    for i, member in enumerate(members):
        out = play(jax.tree.map(lambda x: x[i], actors), jax.random.key(10_000 + member["seed"]))
        rows.append({"seed": member["seed"], **diagnose(*map(np.asarray, out))})
        print(rows[-1], flush=True)
    lines = [
        "## Where the listener ends: communication against precision",
        "",
        f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. "
        f"Command: `python benchmarks/listener_diagnosis.py {a.run} --episodes {a.episodes}`"
        + (f", on the run `{a.trained_by}` trained. " if a.trained_by else ". ")
        + "The run's config: "
        f"preset `{config.preset}`, {config.total_env_steps:,} env steps, "
        f"`gumbel_mode={config.gumbel_mode}`, hidden sizes {list(config.hidden_sizes)}. Each seed's kept policy, "
        f"noise-free, {a.episodes:,} episodes. Reach: within {REACH:.3f} of the goal landmark.",
        "",
        "| seed | " + " | ".join(f"`{c}`" for c in COLUMNS) + " |",
        "|---:|" + "---:|" * len(COLUMNS),
    ]
    for r in rows:
        lines.append(f"| {r['seed']} | " + " | ".join(f"{r[c]:.3f}" for c in COLUMNS) + " |")
    lines += [
        "",
        "`message_accuracy`: 1 is a speaker that names the goal, 1/3 one that says nothing about it. "
        "`nearest_is_goal` with a low `target_reached`: the listener heads for the right landmark and stops short.",
    ]
    path = Path("benchmarks/results/mpe/trials") / f"{a.name}.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
