"""What the benchmarks share: one way to set up a run's program, the machine they ran on in
one line, a run's speed."""

from __future__ import annotations

import ast
import contextlib
import os
import platform
import time


def parse_set(items) -> dict:
    """``["field=value", ...]`` -> {field: value}, values parsed as Python literals where
    they are one (``3``, ``1e-3``, ``True``), else kept as strings."""
    out = {}
    for item in items:
        k, v = item.split("=", 1)
        try:
            out[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            out[k] = v
    return out


def command_line(script: str, parser, args, skip=("out",)) -> str:
    """The command that reproduces a benchmark's run: ``python benchmarks/SCRIPT`` and every
    option whose value differs from the parser's default (``skip``: options that only say
    where the output goes)."""
    parts = []
    for act in parser._actions:
        if not act.option_strings or act.dest in ("help", *skip):
            continue
        value = getattr(args, act.dest)
        if value == act.default:
            continue
        if isinstance(value, bool):  # a store_true / store_false flag: its name alone
            parts.append(act.option_strings[0])
            continue
        text = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f"{act.option_strings[0]} {text}")
    return " ".join([f"python benchmarks/{script}", *parts])


def config_changes(saved: dict, config) -> list[str]:
    """``"field old -> new"`` for each field where a finished run's saved config (its
    ``to_dict()``) differs from ``config``: a benchmark that reuses finished runs stops on
    these instead of reporting a run of other settings under the current ones."""
    import json

    from maddpg_jax import Config

    # Both through from_dict and JSON: fields added since fill in as the run ran them, and
    # tuples compare with the lists JSON gives back.
    old = json.loads(json.dumps(Config.from_dict(saved).to_dict()))
    new = json.loads(json.dumps(config.to_dict()))
    return [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def train_seeds(config, seeds: int, run_dir, label: str) -> float:
    """Train ``seeds`` seeds of ``config`` into ``run_dir`` through `maddpg_jax.sweep` (the
    user's path), resuming where its checkpoints stopped; returns the run's training wall
    seconds by its own clock, which a resumed run carries on from its checkpoint (pauses
    between sessions excluded). A run where every member went non-finite (status 3) still
    returns: their last finite policies are what gets measured."""
    import json
    from pathlib import Path

    from maddpg_jax import RunStopped, sweep
    from maddpg_jax.rundir import has_checkpoint

    run_dir = Path(run_dir)
    # A finished checkpoint, as `maddpg_jax.sweep` judges one: one cut off before its
    # checksums does not count, so such a run starts over instead of being refused.
    resume = has_checkpoint(run_dir)
    print(f"{label}: {'resuming' if resume else 'training'} {seeds} seeds", flush=True)
    # Checkpoints every 15 minutes: an interrupted benchmark loses at most that much of a run.
    try:
        sweep(config, seeds, out=run_dir, resume=resume, progress=False, checkpoint_every=900)
    except RunStopped as e:
        if e.status != 3:
            raise
    return json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["wall_s"]


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo``'s model name where there is one)."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    return cpu


def machine() -> str:
    """``CPU, N cores, D x device kind, jax version``."""
    import jax

    dev = jax.devices()
    return f"{cpu_name()}, {os.cpu_count()} cores, {len(dev)} x {dev[0].device_kind}, jax {jax.__version__}"


def program(config, members=1, member_chunk=None):
    """``(trainer, runner, state, hparams)``: ``config``'s program for ``members`` (an int:
    that many seeds from ``config.seed``; or member dicts), built, placed on the devices and
    initialised as `maddpg_jax.sweep` does it. Nothing of the loop is compiled yet; run it
    with ``maddpg_jax.loop.run_chunks`` (the user's chunks) or ``runner.run``."""
    from maddpg_jax import members as members_lib

    if isinstance(members, int):
        members = members_lib.seed_members(config, members)
    trainer, runner, placed = members_lib.build(config, members, member_chunk)
    keys, hp = members_lib.place(runner, config, placed)
    return trainer, runner, runner.init(keys, hp), hp


def run_kept_actors(run_dir):
    """``(config, members, trainer, actors)`` of a run directory with its checkpoints: each
    member's kept policy (what ``eval`` and ``load_policy`` use), leaves ``[members, A, ...]``
    (a sweep's padding members dropped)."""
    import jax

    from maddpg_jax.evaluation import load_run, read_run_for
    from maddpg_jax.training import kept_actor

    config, members = read_run_for(run_dir)
    trainer, state = load_run(run_dir, config, members)
    actors = jax.tree.map(lambda x: x[: len(members)], kept_actor(config, state))
    return config, members, trainer, actors


def kept_policy_returns(trainer, config, state, seeds: int, episodes: int, seed: int):
    """``[seeds, teams]``: each of the first ``seeds`` members' kept policy (what ``eval``
    and ``load_policy`` use) over ``episodes`` noise-free episodes, mean per team."""
    import jax
    import numpy as np

    from maddpg_jax.evaluation import episode_returns
    from maddpg_jax.training import kept_actor

    actors = jax.device_get(kept_actor(config, state))
    key = jax.random.key(seed)
    return np.stack(
        [episode_returns(trainer, jax.tree.map(lambda x: x[s], actors), episodes, key).mean(0) for s in range(seeds)]
    )


def env_steps_per_second(config, seconds: float = 6.0) -> tuple[float, float, float]:
    """``(env steps/s with learning, update rounds/s, compile s)`` of one run of ``config``
    (set ``warmup_env_steps=0`` and a large ``total_env_steps``): the buffer is filled past
    one batch, one chunk is compiled (timed apart) and warmed, then chunks of learning
    iterations run for at least ``seconds``."""
    import jax

    e, b, u = config.num_envs, config.batch_size, config.updates_per_step
    trainer, runner, state, hp = program(config)
    state, _ = runner.run(state, hp, max(1, b // e + 1), False)
    n = max(8, min(2000, int(2e5 // e)))
    t0 = time.perf_counter()
    runner.compile(state, hp, n, True)
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(runner.run(state, hp, n, True))  # warm
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or reps < 2:
        state, m = runner.run(state, hp, n, True)
        jax.block_until_ready(m)
        reps += 1
    dt = time.perf_counter() - t0
    return e * n * reps / dt, u * n * reps / dt, compile_s
