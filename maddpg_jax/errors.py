"""Errors a user can fix. The CLI prints them as one line and exits 2; library code raises
them instead of printing, so nothing below the CLI imports the CLI."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input: the message is one line that names the flag, argument or file and what is
    allowed."""


class RunStopped(RuntimeError):
    """A run that stopped before its end (non-finite values, SIGINT / SIGTERM after a
    checkpoint); ``status`` is the exit status ``maddpg-jax`` gives the same stop."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)
