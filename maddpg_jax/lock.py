"""One writer per run directory: an advisory lock that dies with its process.

``fcntl.flock`` on ``DIR/.lock``: the kernel drops it when the holder exits, however it
exits (SIGKILL included), so no stale lock is ever left for a user to delete. The holder
writes its PID into the file, so a second writer is told who holds it. Readers (``eval``,
``plot``, ``load_policy``) take no lock: every file they read is replaced atomically.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from maddpg_jax.errors import UsageError

LOCK = ".lock"


class RunLock:
    """Hold the write lock of ``run_dir`` (created if missing) until `release`."""

    def __init__(self, run_dir: Path | str):
        self.path = Path(run_dir) / LOCK
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(self._fd)
            raise UsageError(
                f"--out: {self.path.parent} is being written by another process (PID {holder}); "
                f"wait for it to finish or stop it, or choose another --out"
            ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
