"""What the benchmarks share: the machine they ran on, in one line."""

from __future__ import annotations

import contextlib
import os
import platform


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
