"""Population-based training (Jaderberg et al. 2017) on the sweep's member axis.

Members train as in a sweep, one program over devices. Every ``interval`` iterations the
host loop stops between chunks (where it already logs and checkpoints) and calls
`exploit_and_explore`: members are ranked by a recent score (the noise-free
evaluation when policy selection is on, else the 100-episode training mean), each member
of the bottom ``fraction`` copies the actors, critics, targets and optimiser states of a
member drawn from the top ``fraction``, and perturbs (or, with probability ``resample``,
redraws) the hyperparameters it inherits. It keeps its own replay buffer, envs and keys.

All choices come from ``jax.random.fold_in(key(seed), iteration)``: a run is
deterministic, and a resumed run makes the same choices as an uninterrupted one. The copy
is one gather along the member axis of the sharded state, so it works whichever devices
(or processes) the source and destination live on.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from maddpg_jax import rundir
from maddpg_jax.config import HPARAM_NAMES, HParams
from maddpg_jax.parallel import fetch

# How each hyperparameter's range is drawn from: log-uniform for rates and temperatures
# (they matter by orders of magnitude), uniform for the discount and the noise scale.
LOG_SCALE = {"actor_lr": True, "critic_lr": True, "tau": True, "gamma": False, "noise_std": False}
LOG_SCALE["gumbel_temperature"] = True
assert set(LOG_SCALE) == set(HPARAM_NAMES)

PBT_KEY = 0x9B7  # folded into the seed's key so PBT draws never coincide with a member's


@dataclasses.dataclass(frozen=True)
class Range:
    """A hyperparameter's range ``[low, high]``, drawn log-uniform when ``log``."""

    low: float
    high: float
    log: bool

    def to_dict(self) -> dict:
        return {"low": self.low, "high": self.high, "log": self.log}


@dataclasses.dataclass(frozen=True)
class PBTConfig:
    """What ``maddpg-jax pbt`` adapts and how.

    ``ranges``: the hyperparameters that vary (the others stay at the config's values).
    ``interval``: iterations between exploit steps (a multiple of the eval interval, so
    every exploit step ends a compiled chunk). ``fraction``: the bottom share replaced
    (and the top share parents are drawn from). ``perturb``: factors an inherited value is
    multiplied by, one drawn per hyperparameter. ``resample``: probability that a value is
    redrawn from its range instead."""

    ranges: dict[str, Range]
    interval: int
    fraction: float = 0.25
    perturb: tuple[float, ...] = (0.8, 1.25)
    resample: float = 0.25

    def to_dict(self) -> dict:
        return {
            "ranges": {n: r.to_dict() for n, r in self.ranges.items()},
            "interval_iterations": self.interval,
            "fraction": self.fraction,
            "perturb": list(self.perturb),
            "resample": self.resample,
        }

    @classmethod
    def from_dict(cls, d: dict) -> PBTConfig:
        return cls(
            ranges={n: Range(**r) for n, r in d["ranges"].items()},
            interval=int(d["interval_iterations"]),
            fraction=float(d["fraction"]),
            perturb=tuple(float(f) for f in d["perturb"]),
            resample=float(d["resample"]),
        )

    def num_replaced(self, num_members: int) -> int:
        """Members replaced at each exploit step: ``floor(fraction * members)``."""
        return math.floor(self.fraction * num_members)


def draw(key: jax.Array, r: Range, shape=()) -> jax.Array:
    """Values uniform (log-uniform when ``r.log``) in ``[r.low, r.high]``, float32."""
    u = jax.random.uniform(key, shape)
    if r.log:
        lo, hi = math.log(r.low), math.log(r.high)
        return jnp.clip(jnp.exp(lo + u * (hi - lo)), r.low, r.high)
    return jnp.clip(r.low + u * (r.high - r.low), r.low, r.high)


def initial_members(seed: int, base: dict, pbt: PBTConfig, num_members: int) -> list[dict]:
    """Members ``seed + m`` with their varying hyperparameters drawn from the ranges (from
    ``key(seed)``, so the same command draws the same population). ``base``: the config's
    value of every hyperparameter."""
    key = jax.random.fold_in(jax.random.key(seed), PBT_KEY)
    values = {n: np.asarray(draw(jax.random.fold_in(key, i), r, (num_members,))) for i, (n, r) in _indexed(pbt)}
    return [
        {"seed": seed + m, **{n: float(values[n][m]) if n in values else float(base[n]) for n in HPARAM_NAMES}}
        for m in range(num_members)
    ]


def _indexed(pbt: PBTConfig):
    """``(index, (name, range))`` in HPARAM_NAMES order: a name's draws depend on its place
    in that fixed order, not on which other names vary."""
    return [(HPARAM_NAMES.index(n), (n, pbt.ranges[n])) for n in HPARAM_NAMES if n in pbt.ranges]


def scores_of(metrics, use_eval: bool) -> np.ndarray:
    """``[members]`` scores from the last row of a chunk's host metrics: the latest
    noise-free evaluation when ``use_eval``, else the 100-episode mean; NaN (no episode
    or evaluation yet) ranks last."""
    s = np.asarray(metrics.eval_return if use_eval else metrics.mean_return)[:, -1]
    return np.where(np.isfinite(s), s, -np.inf).astype(np.float32)


def choose(key: jax.Array, scores: jax.Array, hp: HParams, pbt: PBTConfig, num_members: int):
    """The exploit and explore decisions of one step.

    Args:
        key: this step's key.
        scores: ``[size]`` float32, higher is better (entries from ``num_members`` on are
            padding and never chosen or replaced).
        hp: every member's hyperparameters, each leaf ``[size]``.
    Returns:
        ``(source [size] int32, new hp)``: member ``m`` takes its parameters from member
        ``source[m]`` (itself unless replaced); replaced members get perturbed or
        resampled copies of their parent's hyperparameters, clipped to the ranges.
    """
    size, k = scores.shape[0], pbt.num_replaced(num_members)
    source = jnp.arange(size, dtype=jnp.int32)
    if k == 0:
        return source, hp
    k_parent, k_factor, k_resample, k_draw = jax.random.split(key, 4)
    # Stable: among equal scores the lower member index ranks higher.
    order = jnp.argsort(-scores[:num_members], stable=True).astype(jnp.int32)
    top, bottom = order[:k], order[num_members - k :]
    parents = top[jax.random.randint(k_parent, (k,), 0, k)]
    source = source.at[bottom].set(parents)
    factors = jnp.asarray(pbt.perturb, jnp.float32)
    new = {}
    for i, name in enumerate(HPARAM_NAMES):
        value = getattr(hp, name)
        if name not in pbt.ranges:
            new[name] = value
            continue
        r = pbt.ranges[name]
        inherited = value[parents]
        perturbed = inherited * factors[jax.random.randint(jax.random.fold_in(k_factor, i), (k,), 0, len(pbt.perturb))]
        redrawn = draw(jax.random.fold_in(k_draw, i), r, (k,))
        fresh = jax.random.uniform(jax.random.fold_in(k_resample, i), (k,)) < pbt.resample
        new[name] = value.at[bottom].set(jnp.clip(jnp.where(fresh, redrawn, perturbed), r.low, r.high))
    return source, HParams(**new)


def learned(state) -> dict:
    """The parts of a training state a replaced member copies from its parent: actors,
    critics, targets, optimiser states, update count, kept actors and their score. The
    replay buffer, envs, episode statistics and keys stay the member's own."""
    return {
        "agents": state.agents,
        "updates": state.updates,
        "best_actor": state.best_actor,
        "best_eval_return": state.best_eval_return,
    }


def copy_members(parts: dict, source: jax.Array) -> dict:
    """``parts`` (from `learned`, members on axis 0) with member ``m`` taken from
    member ``source[m]``: one gather along the member axis."""
    return jax.tree.map(lambda x: jnp.take(x, source, axis=0), parts)


def make_step(pbt: PBTConfig, num_members: int, sharding):
    """The jitted exploit-and-explore step on the sharded member axis:
    ``(state, hp, key, scores) -> (state, hp, source)``. Only the learned parts pass
    through the program (the replay buffers are not copied); outputs keep ``sharding``."""

    @jax.jit
    def gather(parts, hp, key_data, scores):
        source, hp = choose(jax.random.wrap_key_data(key_data), scores, hp, pbt, num_members)
        parts = copy_members(parts, source)
        parts, hp = jax.lax.with_sharding_constraint((parts, hp), sharding)
        return parts, hp, source

    def step(state, hp, key, scores):
        # Host values (numpy) rather than device arrays: every process of a multi-process
        # job passes the same ones, which jit takes as replicated.
        key_data = np.asarray(jax.random.key_data(key))
        parts, hp, source = gather(learned(state), hp, key_data, np.asarray(scores, np.float32))
        return state.replace(**parts), hp, source

    return step


def step_key(seed: int, iteration: int) -> jax.Array:
    """The key of the exploit step after ``iteration`` iterations."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), PBT_KEY), iteration)


def lineage_rows(env_steps: int, source: np.ndarray, old: HParams, new: HParams, pbt: PBTConfig, num_members: int):
    """``pbt.jsonl`` rows of one step: per replaced member its parent and its
    hyperparameters before and after (only those that vary)."""
    rows = []
    for m in range(num_members):
        if int(source[m]) == m:
            continue
        rows.append(
            {
                "env_steps": env_steps,
                "member": m,
                "parent": int(source[m]),
                "old": {n: _short(getattr(old, n)[m]) for n in pbt.ranges},
                "new": {n: _short(getattr(new, n)[m]) for n in pbt.ranges},
            }
        )
    return rows


def _short(x) -> float:
    """A float32 value as the shortest decimal that reads back as the same float32."""
    return float(np.format_float_positional(np.float32(x), unique=True, trim="-"))


def schedules(members: list[dict], rows: list[dict], names) -> dict[str, dict[int, tuple[list, list]]]:
    """Each hyperparameter's value over the run per member, as steps: ``{name: {member:
    (env_steps, values)}}`` from the initial members and the ``pbt.jsonl`` rows."""
    out = {n: {m: ([0], [float(member[n])]) for m, member in enumerate(members)} for n in names}
    for r in rows:
        for n in names:
            if n in r["new"]:
                xs, ys = out[n][r["member"]]
                xs.append(r["env_steps"])
                ys.append(r["new"][n])
    return out


class Exploiter:
    """The host loop's ``adapt`` hook for a PBT session: after each chunk that ends on an
    interval (the run's last iteration included, so that a run continued with ``--resume``
    makes the choices of one straight run), rank, copy, perturb, and append the lineage to
    ``pbt.jsonl`` (process 0 only, before the chunk's checkpoint, which holds the new
    hyperparameters; a resumed run truncates the file to its checkpoint)."""

    def __init__(self, session, runner):
        self.session, self.pbt = session, session.pbt
        self.num_members = len(session.members)
        self.step = make_step(self.pbt, self.num_members, runner.sharding)

    def adapt(self, chunk):
        c, state, hp = self.session.config, chunk.state, chunk.hparams
        due = chunk.learn and chunk.end % self.pbt.interval == 0
        if not due:
            return state, hp
        scores = scores_of(chunk.metrics, c.eval_episodes > 0)
        # A diverged (frozen) member ranks last, so it is replaced first; the copy it gets
        # from a top member is finite, and trains on.
        diverged = np.asarray(chunk.metrics.diverged_at)[:, -1] >= 0
        scores = jnp.where(jnp.asarray(diverged), -jnp.inf, scores)
        new_state, new_hp, source = self.step(state, hp, step_key(c.seed, chunk.end), scores)
        old, new, source = fetch((hp, new_hp, source))  # a collective: every process calls it
        if self.session.primary:
            rows = lineage_rows(chunk.end * c.num_envs, source, old, new, self.pbt, self.num_members)
            rundir.append_jsonl(self.session.out / rundir.PBT, rows)
        return new_state, new_hp


def plot_schedules(run_dir) -> dict:
    """``plot_curves`` keyword arguments that draw a PBT run's hyperparameter schedules
    (``{}`` for a run without ``pbt.jsonl``)."""
    run_dir = Path(run_dir)
    if not (run_dir / rundir.PBT).exists():
        return {}
    saved = json.loads((run_dir / rundir.CONFIG).read_text())
    pbt = PBTConfig.from_dict(saved["pbt"])
    rows = rundir.read_jsonl(run_dir / rundir.PBT)
    per_name = schedules(saved["members"], rows, list(pbt.ranges))
    logged = rundir.read_jsonl(run_dir / rundir.METRICS) if (run_dir / rundir.METRICS).exists() else []
    end = max((r["env_steps"] for r in logged + rows), default=0)
    for lines in per_name.values():  # each value holds until the last logged step
        for xs, ys in lines.values():
            if xs[-1] < end:
                xs.append(end)
                ys.append(ys[-1])
    return {
        "schedules": {n: {f"member {m}": xy for m, xy in lines.items()} for n, lines in per_name.items()},
        "log_scale": {n for n, r in pbt.ranges.items() if r.log},
    }
