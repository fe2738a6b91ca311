"""Host work off the critical path: one background thread that runs the run directory's
writes (metrics rows, the learning-curve PNG, TensorBoard and W&B logging) in order while
the next compiled chunk runs.

One thread, not a pool: the tasks touch the same files and loggers, and in the order they
were submitted is the order a reader expects (a metrics row before the plot drawn from it).
JAX releases the GIL while a compiled chunk runs, so the thread's Python work overlaps it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class Background:
    """A FIFO of host tasks run by one daemon thread.

    The first task that raises stops the thread from running later ones; the error is
    raised again in the caller's thread by the next `submit` or `flush`, so a
    write fault surfaces between chunks, never silently.
    """

    def __init__(self, name: str = "maddpg-jax-host"):
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            task = self._queue.get()
            try:
                if task is None:
                    return
                if self._error is None:
                    fn, args = task
                    fn(*args)
            except BaseException as e:  # handed to the caller's thread by _raise
                self._error = e
            finally:
                self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, fn: Callable, *args) -> None:
        """Run ``fn(*args)`` after every task submitted before it."""
        self._raise()
        self._queue.put((fn, args))

    def flush(self) -> None:
        """Wait until every submitted task has run; raise the first error one of them raised."""
        self._queue.join()
        self._raise()

    def close(self) -> None:
        """Run what is queued, then stop the thread (errors are dropped: call `flush`
        first where they matter)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
