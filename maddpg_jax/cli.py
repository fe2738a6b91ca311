"""``maddpg-jax``: the command-line entry point.

Deliberately light: it imports nothing heavy before ``main`` runs, so a Ctrl-C at any
moment, even while JAX is still importing or compiling, ends in one line and exit 130
rather than a traceback. The commands live in `maddpg_jax.commands`.
"""

from __future__ import annotations

import os
import signal
import sys


def _interrupted(signum, frame):
    # Until a run installs its own handler (finish the chunk, checkpoint), a Ctrl-C stops at
    # once: nothing is saved yet. Exiting here rather than raising KeyboardInterrupt keeps
    # it one line even when the signal lands inside a callback (JAX's garbage-collection
    # hook), where Python would print an ignored exception's traceback and carry on.
    sys.stdout.flush()
    print("\nmaddpg-jax: interrupted", file=sys.stderr, flush=True)
    os._exit(130)


def main(argv=None) -> int:
    """Run ``maddpg-jax`` with ``argv`` (default: the command line); returns the exit status."""
    # Installed whatever the inherited disposition: a process started with SIGINT ignored (a
    # background job of a non-interactive shell, as some CI runners start their scripts) would
    # otherwise ignore Ctrl-C until the run's own handler is installed and honour it after,
    # carrying on to exit 0 after a Ctrl-C in its first seconds.
    previous = signal.getsignal(signal.SIGINT)
    installed = False
    if previous in (signal.default_int_handler, signal.SIG_DFL, signal.SIG_IGN):
        try:
            signal.signal(signal.SIGINT, _interrupted)
            installed = True
        except ValueError:  # not the main thread: keep the caller's handler
            pass
    try:
        from maddpg_jax.commands import main as run

        return run(argv)
    except KeyboardInterrupt:  # before the run's own handler is installed, or a second Ctrl-C
        print("\nmaddpg-jax: interrupted", file=sys.stderr)
        return 130
    finally:
        if installed:  # callers in Python get their handler back
            signal.signal(signal.SIGINT, previous)


def __getattr__(name):
    # cli.build_parser and friends, for callers that knew them here. Dunder names are never
    # forwarded: ``from maddpg_jax.cli import main`` (the console script) asks for ``__path__``,
    # and forwarding it would import JAX before ``main`` installs the Ctrl-C handler.
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from maddpg_jax import commands

    return getattr(commands, name)


if __name__ == "__main__":
    sys.exit(main())
