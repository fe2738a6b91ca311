"""``maddpg-jax``: the command-line entry point.

Deliberately light: it imports nothing heavy before ``main`` runs, so a Ctrl-C at any
moment, even while JAX is still importing or compiling, ends in one line and exit 130
rather than a traceback. The commands live in :mod:`maddpg_jax.commands`.
"""

from __future__ import annotations

import sys


def main(argv=None) -> int:
    """Run ``maddpg-jax`` with ``argv`` (default: the command line); returns the exit status."""
    try:
        from maddpg_jax.commands import main as run

        return run(argv)
    except KeyboardInterrupt:  # before the run's own handler is installed, or a second Ctrl-C
        print("\nmaddpg-jax: interrupted", file=sys.stderr)
        return 130


def __getattr__(name):
    # cli.build_parser and friends, for callers that knew them here.
    from maddpg_jax import commands

    return getattr(commands, name)


if __name__ == "__main__":
    sys.exit(main())
