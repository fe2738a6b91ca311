"""What the benchmarks share: the machine they ran on, in one line."""

from __future__ import annotations

import ast
import contextlib
import os
import platform


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


def kept_policy_returns(trainer, config, state, seeds: int, episodes: int, seed: int):
    """``[seeds, teams]``: each of the first ``seeds`` members' kept policy (what ``eval``
    and ``load_policy`` use) over ``episodes`` noise-free episodes, mean per team."""
    import jax
    import numpy as np

    from maddpg_jax.evaluation import episode_returns
    from maddpg_jax.train import kept_actor

    actors = jax.device_get(kept_actor(config, state))
    key = jax.random.key(seed)
    return np.stack(
        [episode_returns(trainer, jax.tree.map(lambda x: x[s], actors), episodes, key).mean(0) for s in range(seeds)]
    )
