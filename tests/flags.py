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
