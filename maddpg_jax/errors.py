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


WRITE_FAULT_STATUS = 4


class WriteFault(RuntimeError):
    """A file of the run directory could not be written (a full disk, a read-only folder,
    a file too large). The message is one line: the file, the OS's reason and the last good
    checkpoint; ``maddpg-jax`` exits with `WRITE_FAULT_STATUS`."""

    status = WRITE_FAULT_STATUS


# The write faults a run directory meets, by their OS messages: TensorStore reports them
# inside its own error text rather than as an OSError.
WRITE_ERRNOS = ("ENOSPC", "EFBIG", "EROFS", "EACCES", "EPERM", "EDQUOT", "EIO")


def os_reason(error: BaseException) -> str | None:
    """The OS's reason behind ``error`` (``No space left on device``...), found along its
    chain of causes or in its text; None when it is not an OS error."""
    import errno
    import os

    seen, e = set(), error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.strerror:
            return e.strerror
        for name in WRITE_ERRNOS:
            message = os.strerror(getattr(errno, name, 0) or 0)
            if getattr(errno, name, None) is not None and message in str(e):
                return message
        e = e.__cause__ or e.__context__
    return None
