"""NLR_WORKERS: several server processes on one address, under a parent that restarts a worker
that dies and, on SIGTERM or SIGINT, drains them all.

Each worker is `python -m nlr_server --worker N --lifeline FD`: a whole server of its own
(api/server.py), listening with SO_REUSEPORT, so the kernel spreads new connections over the
workers. The lifeline is one end of a socket pair: the worker writes on it once it serves, and
reads its end-of-file when the parent is gone (even killed with -9), and then drains and exits
as on SIGTERM. The parent holds no database connection and serves nothing.

A worker that cannot start while the deployment starts stops it (its own message says why);
one that dies later is started again, at once if it had served a while, else after a pause
that doubles up to half a minute, so a worker that cannot start (the database gone) is not
restarted in a tight loop while the others serve.
"""

from __future__ import annotations

import logging
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from types import FrameType

from nlr_server.ops.config import Config

log = logging.getLogger(__name__)

WORKER_OPTION = "--worker"
LIFELINE_OPTION = "--lifeline"
# What a worker writes on its lifeline once it serves.
SERVING = b"serving"

# A worker that served this long before it died is restarted at once.
STEADY_SECONDS = 10.0
FIRST_PAUSE_SECONDS = 0.5
LONGEST_PAUSE_SECONDS = 30.0
# Beyond the grace period, how long a draining worker may take to exit before it is killed.
EXIT_MARGIN_SECONDS = 10.0
POLL_SECONDS = 0.2


@dataclass
class _Worker:
    number: int
    process: subprocess.Popen[bytes]
    lifeline: socket.socket
    started_at: float
    serving_since: float | None = None
    # The worker's end of the lifeline closed: it is exiting.
    hung_up: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid


class Supervisor:
    """Runs ``config.workers`` server processes until SIGTERM or SIGINT; ``run`` answers the
    exit status: 0 when every worker drained and exited 0."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._workers: dict[int, _Worker] = {}
        self._restart_at: dict[int, float] = {}
        self._pause: dict[int, float] = {}
        self._stopping = False

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        count = self._config.workers
        log.info("starting %d workers on %s", count, self._config.listen_address)
        for number in range(count):
            self._workers[number] = self._spawn(number)
        deployed = False
        while not self._stopping:
            self._wait_for_news()
            for worker in list(self._workers.values()):
                code = worker.process.poll()
                if code is None:
                    continue
                del self._workers[worker.number]
                worker.lifeline.close()
                if not deployed:
                    log.error(
                        "worker %d (pid %d) could not start (%s): stopping the others",
                        worker.number,
                        worker.pid,
                        _exit_description(code),
                    )
                    self._drain()
                    return 1
                self._schedule_restart(worker, code)
            if not deployed and self._all_serving(count):
                deployed = True
                log.info("all %d workers serving", count)
            now = time.monotonic()
            for number, due in list(self._restart_at.items()):
                if due <= now and not self._stopping:
                    del self._restart_at[number]
                    self._workers[number] = self._spawn(number)
        return self._drain()

    def _all_serving(self, count: int) -> bool:
        workers = self._workers.values()
        return len(workers) == count and all(w.serving_since is not None for w in workers)

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        if not self._stopping:
            log.info("stopping: draining %d workers", len(self._workers))
        self._stopping = True

    def _spawn(self, number: int) -> _Worker:
        ours, theirs = socket.socketpair()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nlr_server",
                WORKER_OPTION,
                str(number),
                LIFELINE_OPTION,
                str(theirs.fileno()),
            ],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        log.info("started worker %d (pid %d)", number, process.pid)
        return _Worker(number, process, ours, started_at=time.monotonic())

    def _wait_for_news(self) -> None:
        """Waits a moment, or until a worker says it serves (or hangs up)."""
        listening = [w for w in self._workers.values() if w.serving_since is None and not w.hung_up]
        if not listening:
            time.sleep(POLL_SECONDS)
            return
        readable, _, _ = select.select([w.lifeline for w in listening], [], [], POLL_SECONDS)
        for worker in listening:
            if worker.lifeline not in readable:
                continue
            try:
                said = worker.lifeline.recv(64)
            except OSError:
                said = b""
            if said.startswith(SERVING):
                worker.serving_since = time.monotonic()
                log.info("worker %d (pid %d) serving", worker.number, worker.pid)
            else:
                worker.hung_up = True

    def _schedule_restart(self, worker: _Worker, code: int) -> None:
        steady = (
            worker.serving_since is not None
            and time.monotonic() - worker.serving_since >= STEADY_SECONDS
        )
        pause = (
            0.0
            if steady
            else min(
                LONGEST_PAUSE_SECONDS,
                max(FIRST_PAUSE_SECONDS, self._pause.get(worker.number, 0.0) * 2),
            )
        )
        self._pause[worker.number] = pause
        self._restart_at[worker.number] = time.monotonic() + pause
        log.warning(
            "worker %d (pid %d) %s: starting another in %.1fs",
            worker.number,
            worker.pid,
            _exit_description(code),
            pause,
        )

    def _drain(self) -> int:
        """SIGTERM to every worker; each drains within the grace period. 0 if all exit 0."""
        for worker in self._workers.values():
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._config.grace_seconds + EXIT_MARGIN_SECONDS
        status = 0
        for worker in self._workers.values():
            try:
                code = worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker %d (pid %d) did not exit: killing it", worker.number, worker.pid)
                worker.process.kill()
                code = worker.process.wait()
            worker.lifeline.close()
            if code != 0:
                log.error(
                    "worker %d (pid %d) %s", worker.number, worker.pid, _exit_description(code)
                )
                status = 1
        self._workers.clear()
        if status == 0:
            log.info("stopped")
        return status


def _exit_description(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with {code}"
