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
  ``still``     no-op (a prey that never flees);
  ``random``    a uniform random move each step (the table's scripted baseline);
  ``flee``      away from the nearest predator, turning back toward the centre beyond 0.9
                (the original scenario's boundary penalty starts there).

Each pairing also plays ``--mpe2-episodes`` episodes on the reference MPE (``mpe2``'s
``simple_tag_v3``) as it ships and with the original code's integration order
(`original_integration`).

    python benchmarks/tag_bounds.py            # 1,000 episodes per pairing, 100 on each mpe2

Writes ``benchmarks/results/mpe/trials/tag_bounds.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import sys
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

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
    if kind == "random":  # (on_mpe2 draws its own)
        if key is None:
            return jnp.zeros((n, 1), jnp.int32)
        return jax.random.randint(key, (n, 1), 0, 5).astype(jnp.int32)
    me = s.p_pos[:, PREY]  # [N, 2]
    gaps = me[:, None] - s.p_pos[:, :PREDATORS]  # [N, 3, 2]
    nearest = jnp.argmin(jnp.linalg.norm(gaps, axis=-1), axis=-1)
    away = gaps[jnp.arange(n), nearest]
    away = jnp.where(jnp.abs(me) > 0.9, -me, away)  # back toward the centre past the boundary
    return toward(away)[:, None]


TO_MPE2 = np.array([0, 2, 1, 4, 3])  # ours (the original's one-hot order) -> mpe2's: 1 is -x there, 2 +x


@contextlib.contextmanager
def original_integration():
    """mpe2 with the original code's integration order (damping, force, speed clamp, then the
    position with the new velocity) in place of its own (the position first, with the old
    velocity), for as long as the block runs."""
    from mpe2._mpe_utils import core

    def integrate_state(self, p_force):  # openai/multiagent-particle-envs, multiagent/core.py
        for i, entity in enumerate(self.entities):
            if not entity.movable:
                continue
            entity.state.p_vel = entity.state.p_vel * (1 - self.damping)
            if p_force[i] is not None:
                entity.state.p_vel += (p_force[i] / entity.mass) * self.dt
            speed = np.linalg.norm(entity.state.p_vel)
            if entity.max_speed is not None and speed > entity.max_speed:
                entity.state.p_vel = entity.state.p_vel / speed * entity.max_speed
            entity.state.p_pos += entity.state.p_vel * self.dt

    own = core.World.integrate_state
    core.World.integrate_state = integrate_state
    try:
        yield
    finally:
        core.World.integrate_state = own


def on_mpe2(chase: str, flee: str, episodes: int, seed: int = 0) -> np.ndarray:
    """``[episodes]`` touches of the same scripted pairing on the reference MPE (``mpe2``'s
    ``simple_tag_v3``: 3 predators, 1 prey, 2 obstacles, 25 steps, discrete actions), the
    policies reading positions and velocities from its world each step."""
    from mpe2 import simple_tag_v3

    env = simple_tag_v3.parallel_env(max_cycles=25, continuous_actions=False)
    rng = np.random.default_rng(seed)
    out = np.zeros(episodes)
    for e in range(episodes):
        env.reset(seed=seed + e)
        world = env.unwrapped.world
        while env.agents:
            entities = world.agents + world.landmarks
            state = SimpleNamespace(
                p_pos=jnp.asarray(np.stack([x.state.p_pos for x in entities])[None], jnp.float32),
                p_vel=jnp.asarray(np.stack([x.state.p_vel for x in entities])[None], jnp.float32),
            )
            moves = np.concatenate([predator_moves(chase, state), prey_move(flee, state, None)], -1)[0]
            if flee == "random":
                moves[PREY] = rng.integers(0, 5)
            env.step({name: int(TO_MPE2[m]) for name, m in zip(env.agents, moves)})
            prey = world.agents[PREY].state.p_pos
            out[e] += sum(np.linalg.norm(x.state.p_pos - prey) < 0.125 for x in world.agents[:PREDATORS])
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--mpe2-episodes", type=int, default=100, help="episodes per pairing on mpe2 (0: none)")
    a = p.parse_args(argv)
    small = dict(total_env_steps=1000, num_envs=8, batch_size=8, buffer_size=64)
    trainer = make_trainer(Config(env="paper:simple_tag", env_kwargs={"action_type": "discrete"}, **small))
    names = [m.name for m in envs.entry("paper:simple_tag").metrics]
    touches = names.index("touches")
    rows = {}  # (predators, where) -> {prey: touches per episode}
    for chase in CHASES:
        for flee in PREY_KINDS:

            def act(obs, s, k, chase=chase, flee=flee):
                return jnp.concatenate([predator_moves(chase, s), prey_move(flee, s, k)], -1)

            ep = jax.jit(lambda k, act=act: run_episodes(trainer, None, k, a.episodes, act=act))(jax.random.key(7))
            rows.setdefault((chase, "paper"), {})[flee] = np.asarray(ep.metrics[:, touches])
            if a.mpe2_episodes:
                rows.setdefault((chase, "mpe2"), {})[flee] = on_mpe2(chase, flee, a.mpe2_episodes)
                with original_integration():
                    rows.setdefault((chase, "mpe2_original"), {})[flee] = on_mpe2(chase, flee, a.mpe2_episodes)
            print(chase, flee, {w: f"{r[flee].mean():.2f}" for (c, w), r in rows.items() if c == chase}, flush=True)
    where = {
        "paper": f"`paper:simple_tag` ({a.episodes:,} episodes)",
        "mpe2": f"mpe2 ({a.mpe2_episodes:,})",
        "mpe2_original": f"mpe2, the original's integration order ({a.mpe2_episodes:,})",
    }
    lines = [
        "## Predator-prey: touches that scripted predators reach",
        "",
        f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. "
        f"Command: `{command_line('tag_bounds.py', p, a)}`",
        "",
        "Discrete actions, 25 steps; `touches`: (predator, prey) pairs in contact summed over the episode, as the "
        "paper table scores it. A cell: the mean ± standard error over episodes. The paper: MADDPG predators "
        "against a DDPG prey, 16.1 per episode. Each pairing runs on this project's `paper:simple_tag` and, "
        f"through PettingZoo, on the reference MPE (`mpe2` {version('mpe2')}, `simple_tag_v3`: the same "
        "agents, sizes, speeds and obstacles) as it ships, and with its `World.integrate_state` replaced by the "
        "original code's order (openai/multiagent-particle-envs: damping, force, speed clamp, then the position "
        "with the new velocity; mpe2 moves the position first, with the old velocity).",
        "",
        "| predators | on | still prey | random prey | fleeing prey |",
        "|---|---|---:|---:|---:|",
    ]
    for (chase, w), r in rows.items():
        cells = [f"{r[f].mean():.2f} ± {r[f].std() / np.sqrt(r[f].size):.2f}" for f in PREY_KINDS]
        lines.append(f"| {chase} | {where[w]} | " + " | ".join(cells) + " |")
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
