"""Child processes of a benchmark run: started on loopback, always stopped, even on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import grpc

ROOT = Path(__file__).resolve().parents[1]


class ChildFailed(Exception):
    """A child process did not start or did not finish as expected."""


class Children:
    """Every process the run started; ``stop_all`` ends those still running."""

    def __init__(self) -> None:
        self._running: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdin: int = subprocess.DEVNULL,
        stdout: IO[bytes] | int | None = None,
        stderr: IO[bytes] | int | None = None,
    ) -> subprocess.Popen[bytes]:
        # A session of its own: Ctrl-C reaches only this process, which then stops the children
        # in order (servers drain) instead of every process dying at once. bench.guard makes
        # each child die with this process even when it is killed outright.
        process = subprocess.Popen(
            python_module("bench.guard", str(os.getpid()), *args),
            cwd=ROOT,
            env=dict(env) if env is not None else None,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        self._running.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], grace_seconds: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it is still running after the grace period."""
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                process.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait(timeout=grace_seconds)
        with contextlib.suppress(ValueError):
            self._running.remove(process)

    def stop_all(self) -> None:
        for process in reversed(list(self._running)):
            self.stop(process)


def python_module(module: str, *args: str) -> list[str]:
    """The command that runs ``module`` with this interpreter (the project's virtualenv)."""
    return [sys.executable, "-m", module, *args]


def free_port() -> int:
    """A loopback port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_serving(
    process: subprocess.Popen[bytes],
    target: str,
    credentials: grpc.ChannelCredentials,
    log: Path,
    timeout_seconds: float = 60.0,
) -> None:
    """Returns once a mutual-TLS connection to ``target`` is up; fails if the process exits."""
    deadline = time.monotonic() + timeout_seconds
    with grpc.secure_channel(target, credentials) as channel:
        ready = grpc.channel_ready_future(channel)
        while True:
            try:
                ready.result(timeout=0.25)
                return
            except grpc.FutureTimeoutError:
                pass
            if process.poll() is not None:
                raise ChildFailed(
                    f"{target}: the server exited with status {process.returncode}\n{tail(log)}"
                )
            if time.monotonic() > deadline:
                raise ChildFailed(f"{target}: not serving after {timeout_seconds}s\n{tail(log)}")


def tail(log: Path, lines: int = 20) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
