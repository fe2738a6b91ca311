"""Sweep members (seeds x hyperparameters) and where they run.

A member is a dict: its ``seed`` and any sweepable hyperparameters that differ from the
config's. One convention everywhere (CLI, benchmarks, tests): member ``m`` of a sweep with
``--seed S`` has seed ``S + m`` (per grid point), and its key is ``config.key(seed)``,
so a benchmark's seed 0 is the CLI's seed 0.
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp

from maddpg_jax.config import HPARAM_NAMES, Config, HParams
from maddpg_jax.parallel import MemberRunner
from maddpg_jax.training import make_trainer


def seed_members(config: Config, seeds: int) -> list[dict]:
    """``seeds`` members with the config's hyperparameters and seeds ``config.seed + s``."""
    return [{"seed": config.seed + s} for s in range(seeds)]


def member_hparams(config: Config, members: list[dict]) -> HParams:
    """Every member's hyperparameters stacked: each leaf ``[members]`` float32."""
    cols = {n: [float(m.get(n, getattr(config, n))) for m in members] for n in HPARAM_NAMES}
    return HParams(**{n: jnp.asarray(v, jnp.float32) for n, v in cols.items()})


def member_keys(members: list[dict], config: Config | None = None) -> jax.Array:
    """``[members]`` keys, ``config.key(seed)`` each (``jax.random.key(seed)`` without a
    config)."""
    make = config.key if config is not None else jax.random.key
    return jnp.stack([make(int(m["seed"])) for m in members])


def data_parallel_devices(config: Config, num_members: int) -> int:
    """Devices one run is spread over: all of them for a single member when the config
    asks for it and its envs, batch and buffer divide evenly; otherwise 1."""
    d = len(jax.devices())
    if num_members != 1 or not config.data_parallel or d == 1:
        return 1
    if any(getattr(config, n) % d for n in ("num_envs", "batch_size", "buffer_size")):
        return 1
    return d


def build(config: Config, members: list[dict], member_chunk: int | None = None, **trainer_kwargs):
    """``(trainer, runner, members as placed)``: members spread over devices, or one run
    data-parallel over all of them. ``member_chunk``: see `MemberRunner`;
    ``trainer_kwargs`` go to `make_trainer` (``network_factory``, ``env``...)."""
    shards = data_parallel_devices(config, len(members))
    if shards > 1:
        trainer = make_trainer(config, data_axis="members", data_shards=shards, **trainer_kwargs)
        return trainer, MemberRunner(trainer, shards), members * shards
    trainer = make_trainer(config, **trainer_kwargs)
    return trainer, MemberRunner(trainer, len(members), member_chunk=member_chunk), members


def place(runner: MemberRunner, config: Config, members: list[dict]):
    """``(keys, hparams)`` of ``members``, padded and sharded over the runner's devices."""
    return runner.place(member_keys(members, config)), runner.place(member_hparams(config, members))


def state_bytes(shapes) -> int:
    """Bytes of a training state from its shapes alone (``shapes``: arrays or
    ``jax.ShapeDtypeStruct`` leaves, e.g. the ``out_info`` of the lowered init; replay
    buffers dominate). Nothing is allocated or compiled."""
    size = 0
    for x in jax.tree.leaves(shapes):
        itemsize = 8 if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x.dtype.itemsize
        size += math.prod(x.shape) * itemsize
    return size


def device_memory_bytes() -> int | None:
    """Memory of all devices together: the accelerators' limit, or the host's RAM on CPU."""
    dev = jax.devices()[0]
    try:
        stats = dev.memory_stats()
        if stats and "bytes_limit" in stats:
            return int(stats["bytes_limit"]) * len(jax.devices())
    except Exception:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None
