"""Runs a command so that it dies with the benchmark: ``python -m bench.guard PID COMMAND...``.

The kernel sends the command SIGTERM when the benchmark process (PID) ends, even by SIGKILL,
which no ``finally`` block sees. The setting survives ``exec``, so the guard then becomes the
command itself: no extra process stays around. SIGINT is the default again in the command, even
when the benchmark was started ignoring it.
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
    # A benchmark started in the background (`... &` in a script, nohup) ignores SIGINT, and
    # an ignored signal stays ignored across exec: Python would then never raise
    # KeyboardInterrupt, and a command the benchmark interrupts as Ctrl-C does (the reconcile
    # of bench/population_sync.py) would run on. Each command gets the default back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
