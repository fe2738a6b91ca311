"""Errors a user can fix. The CLI prints them as one line and exits 2; library code raises
them instead of printing, so nothing below the CLI imports the CLI."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input: the message is one line that names the flag, argument or file and what is
    allowed."""
