"""Stop signals while a run trains: the host side's part that turns SIGINT / SIGTERM into a
clean stop (finish the chunk, checkpoint, exit 130 / 143)."""

from __future__ import annotations

import signal
import sys

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """A context in which SIGINT and SIGTERM are recorded instead of ending the process: the
    first says so in one line and the run stops after its current chunk; a second Ctrl-C
    stops at once (KeyboardInterrupt). The handlers before it are restored on exit."""

    def __init__(self):
        self.received: int | None = None  # the first stop signal's number

    def install(self) -> None:
        self._previous = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS}

    def restore(self) -> None:
        """The handlers from before :meth:`install`."""
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def __enter__(self) -> StopSignals:
        self.install()
        return self

    def __exit__(self, *exc) -> None:
        self.restore()

    def _on_signal(self, signum, frame):
        if self.received is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.received = signum
        print(
            f"\n{signal.Signals(signum).name}: finishing the current chunk and saving a checkpoint...",
            file=sys.stderr,
            flush=True,
        )

    @property
    def status(self) -> int:
        """The exit status of the stop: 130 for SIGINT, 143 for SIGTERM."""
        return 130 if self.received == signal.SIGINT else 143
