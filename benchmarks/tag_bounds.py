"""How many touches predator-prey allows: hand-written predators against hand-written prey.

The paper reports MADDPG predators touching a DDPG prey 16.1 times per episode
(Lowe et al. 2017, Section 5.2). This measures what scripted policies reach on the same
scenario (``paper:simple_tag``, discrete actions, 25 steps, the same ``touches`` metric as
the table: (predator, prey) pairs in contact, summed over steps), so a learned number can be
read against an upper bound of the environment rather than against the paper alone.

Predators (all three act alike):
  ``straight``  the discrete move along the larger component of (prey - predator);
  ``lead``      the same toward where the prey will be, its position plus its velocity times
                the time a predator at full speed needs to cover the distance;
  ``surround``  ``lead``, each predator aiming 0.3 off the prey on its own side until close.
Prey:
  ``still``     no-op (a prey that never flees: the most touches a chase can get);
  ``random``    a uniform random move each step (the table's scripted baseline);
  ``flee``      away from the nearest predator, turning back toward the centre beyond 0.9
                (the original scenario's boundary penalty starts there).

    python benchmarks/tag_bounds.py            # 1,000 episodes per pairing

Writes ``benchmarks/results/mpe/trials/tag_bounds.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import command_line, machine
from benchmarks.paper_table import toward
from maddpg_jax import Config, envs
from maddpg_jax.rundir import atomic_write_text
from maddpg_jax.training import make_trainer, run_episodes

PREDATORS, PREY = 3, 3  # entity indices: predators 0-2, the prey 3 (landmarks 4, 5)
PREDATOR_SPEED = 1.0  # the scenario's predator max_speed
CHASES = ("straight", "lead", "surround")
PREY_KINDS = ("still", "random", "flee")


def predator_moves(kind: str, s) -> jax.Array:
    """``int32 [N, 3]``: each predator's move toward the prey (``kind``: straight or lead)."""
    prey = s.p_pos[:, PREY : PREY + 1]  # [N, 1, 2]
    gap = jnp.linalg.norm(prey - s.p_pos[:, :PREDATORS], axis=-1, keepdims=True)  # [N, 3, 1]
    if kind in ("lead", "surround"):
        prey = prey + s.p_vel[:, PREY : PREY + 1] * gap / PREDATOR_SPEED
    if kind == "surround":  # each from its own side (120 degrees apart) until close, then straight in
        angle = jnp.arange(PREDATORS) * 2 * jnp.pi / PREDATORS
        side = 0.3 * jnp.stack([jnp.cos(angle), jnp.sin(angle)], -1)  # [3, 2]
        prey = jnp.where(gap > 0.35, prey + side, prey)
    return toward(prey - s.p_pos[:, :PREDATORS])


def prey_move(kind: str, s, key) -> jax.Array:
    """``int32 [N, 1]``: the prey's move (still, random or flee)."""
    n = s.p_pos.shape[0]
    if kind == "still":
        return jnp.zeros((n, 1), jnp.int32)
    if kind == "random":
        return jax.random.randint(key, (n, 1), 0, 5).astype(jnp.int32)
    me = s.p_pos[:, PREY]  # [N, 2]
    gaps = me[:, None] - s.p_pos[:, :PREDATORS]  # [N, 3, 2]
    nearest = jnp.argmin(jnp.linalg.norm(gaps, axis=-1), axis=-1)
    away = gaps[jnp.arange(n), nearest]
    away = jnp.where(jnp.abs(me) > 0.9, -me, away)  # back toward the centre past the boundary
    return toward(away)[:, None]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=1000)
    a = p.parse_args(argv)
    small = dict(total_env_steps=1000, num_envs=8, batch_size=8, buffer_size=64)
    trainer = make_trainer(Config(env="paper:simple_tag", env_kwargs={"action_type": "discrete"}, **small))
    names = [m.name for m in envs.entry("paper:simple_tag").metrics]
    touches = names.index("touches")
    rows = {}
    for chase in CHASES:
        for flee in PREY_KINDS:

            def act(obs, s, k, chase=chase, flee=flee):
                return jnp.concatenate([predator_moves(chase, s), prey_move(flee, s, k)], -1)

            ep = jax.jit(lambda k, act=act: run_episodes(trainer, None, k, a.episodes, act=act))(jax.random.key(7))
            rows[chase, flee] = np.asarray(ep.metrics[:, touches])
            print(f"{chase} predators vs {flee} prey: {rows[chase, flee].mean():.2f} touches", flush=True)
    lines = [
        "## Predator-prey: touches that scripted predators reach",
        "",
        f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. "
        f"Command: `{command_line('tag_bounds.py', p, a)}`",
        "",
        f"`paper:simple_tag`, discrete actions, {a.episodes:,} episodes per pairing; `touches`: (predator, prey) "
        "pairs in contact summed over the episode's 25 steps, as the paper table scores it. A cell: the mean, "
        "and the 90th percentile over episodes. The paper: MADDPG predators against a DDPG prey, 16.1.",
        "",
        "| predators | still prey | random prey | fleeing prey |",
        "|---|---:|---:|---:|",
    ]
    for chase in CHASES:
        cells = [f"{rows[chase, f].mean():.2f} ({np.percentile(rows[chase, f], 90):.0f})" for f in PREY_KINDS]
        lines.append(f"| {chase} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Predators (all three alike): `straight` the discrete move along the larger component of (prey - predator); "
        "`lead` the same toward the prey's position plus its velocity times the time a predator at full speed needs "
        "to cover the distance; `surround` `lead`, each predator aiming 0.3 off the prey on its own side (120 degrees "
        "apart) until within 0.35. Prey: `still` no-op; `random` a uniform random move each step (the table's "
        "scripted baseline); `fleeing` away from the nearest predator, back toward the centre past 0.9.",
        "",
    ]
    out = Path("benchmarks/results/mpe/trials/tag_bounds.md")
    atomic_write_text(str(out), "\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
