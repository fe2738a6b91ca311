"""Command-line flags the CLI tests share."""

# A run small enough to train in seconds: 8 envs, batch 32, 2k buffer, (16, 16) networks.
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
]

# Tests compile at LLVM optimisation level 0 (see conftest.py); subprocesses that set their
# own XLA_FLAGS (forced device counts) add this too.
XLA_TEST_FLAGS = "--xla_backend_optimization_level=0"


def xla_flags(devices: int) -> str:
    """XLA_FLAGS for a test subprocess with ``devices`` forced CPU devices."""
    return f"--xla_force_host_platform_device_count={devices} {XLA_TEST_FLAGS}"
