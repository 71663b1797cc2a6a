"""Which process holds which end of a TCP connection, and which listens on a port, from Linux
/proc (what `ss -tnp` shows); empty answers elsewhere or for a process that is gone."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

_ESTABLISHED = "01"
_LISTEN = "0A"


@dataclass(frozen=True)
class _Socket:
    local_port: int
    remote_port: int
    state: str


def connected_ports(pid: int, port: int) -> set[int]:
    """The local ports of the established connections the process holds to ``port`` (a
    client's end)."""
    return {
        held.local_port
        for held in _sockets_of(pid)
        if held.state == _ESTABLISHED and held.remote_port == port
    }


def accepted_ports(pid: int, port: int) -> set[int]:
    """The clients' ports of the established connections the process holds on ``port`` (a
    server's end)."""
    return {
        held.remote_port
        for held in _sockets_of(pid)
        if held.state == _ESTABLISHED and held.local_port == port
    }


def listens(pid: int, port: int) -> bool:
    return any(held.state == _LISTEN and held.local_port == port for held in _sockets_of(pid))


def _sockets_of(pid: int) -> list[_Socket]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    held = []
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            # sl local_address rem_address st ... inode (field 10 of proc_net_tcp).
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                held.append(_Socket(_port(fields[1]), _port(fields[2]), fields[3]))
    return held


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)
