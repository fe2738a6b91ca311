"""Command-line flags the CLI tests share, and the XLA flags every test process compiles with."""

import os
import subprocess
import sys

# A run small enough to train in seconds: 8 envs, batch 32, 2k buffer, (16, 16) networks.
# Train, sweep and pbt flags only (eval takes none of them).
TINY = [
    "--num-envs",
    "8",
    "--batch-size",
    "32",
    "--buffer-size",
    "2048",
    "--updates-per-step",
    "1",
    "--warmup-env-steps",
    "256",
    "--hidden-sizes",
    "16,16",
    "--log-every",
    "128",
    "--no-progress",
    # A checkpoint after every chunk, so the fault tests can stop a run between any two.
    "--checkpoint-every",
    "0",
]

# Tests compile at LLVM optimisation level 0 (see conftest.py), and with XLA:CPU's older
# elemental emitters where this jaxlib still has them: a tiny trainer's compile took 3.9 s
# against 7.3 s with the newer fusion emitters, and its metrics came out the same to the
# last printed digit. Subprocesses that set their own XLA_FLAGS (forced device counts) add
# these too.
OPT_LEVEL_0 = "--xla_backend_optimization_level=0"
LEGACY_EMITTERS = "--xla_cpu_use_fusion_emitters=false"
_CACHED = "MADDPG_JAX_TEST_XLA_FLAGS"  # worked out once per test run; subprocesses inherit it


def _xla_knows(flag: str) -> bool:
    """Whether this jaxlib's XLA accepts ``flag``: an unknown flag in XLA_FLAGS aborts the
    process, so a jaxlib that has dropped it must not get it."""
    env = dict(os.environ, XLA_FLAGS=flag, JAX_PLATFORMS="cpu")
    probe = "import jax.numpy as jnp; jnp.zeros(1).block_until_ready()"
    return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, timeout=120).returncode == 0


def _test_xla_flags() -> str:
    if _CACHED not in os.environ:
        flags = [OPT_LEVEL_0] + ([LEGACY_EMITTERS] if _xla_knows(LEGACY_EMITTERS) else [])
        os.environ[_CACHED] = " ".join(flags)
    return os.environ[_CACHED]


XLA_TEST_FLAGS = _test_xla_flags()


def xla_flags(devices: int) -> str:
    """XLA_FLAGS for a test subprocess with ``devices`` forced CPU devices."""
    return f"--xla_force_host_platform_device_count={devices} {XLA_TEST_FLAGS}"
