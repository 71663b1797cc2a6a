"""Runs a command so that it dies with the benchmark: ``python -m bench.guard PID COMMAND...``.

The kernel sends the command SIGTERM when the benchmark process (PID) ends, even by SIGKILL,
which no ``finally`` block sees. The setting survives ``exec``, so the guard then becomes the
command itself: no extra process stays around.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit("usage: python -m bench.guard PARENT_PID COMMAND [ARG...]")
    parent, command = int(argv[0]), argv[1:]
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        sys.exit("bench.guard: the benchmark ended before the command started")
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
