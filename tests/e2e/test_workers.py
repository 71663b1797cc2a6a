"""NLR_WORKERS=2: two server processes on one address under a supervising one, each answering
calls, with the vendor rate and the wrong-code limit shared between them (in the database, or
in Redis), a worker killed with -9 replaced while the other serves, and SIGTERM draining both.

Which worker answered is told the way an operator tells it (`ss -tnp`): by the process that
holds the call's TCP connection, from /proc.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nlr.registry.v1 import registry_service_pb2 as pb
from nlr.registry.v1 import registry_service_pb2_grpc
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import (
    LIBRARY_CODES,
    OSLO,
    OTHER_VENDORS_LIBRARY,
    ClientCertificates,
    Registry,
    count_rows,
    create,
    error_details,
    new_borrower,
)
from server_process_harness import (
    EXIT_DEADLINE,
    START_DEADLINE,
    ServerProcess,
    borrowers_write_locked,
    running_server,
    server_environment,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
RATE_BURST = 20
CODE_FAILURES = 3
LIMITS = {
    "NLR_WORKERS": "2",
    # A burst that a test spends in well under a second, refilled at one call every 10 s.
    "NLR_VENDOR_RATE_LIMIT": "0.1",
    "NLR_VENDOR_RATE_BURST": str(RATE_BURST),
    "NLR_LIBRARY_CODE_FAILURES": str(CODE_FAILURES),
    "NLR_LIBRARY_CODE_WINDOW_SECONDS": "60",
}
OK = grpc.StatusCode.OK
DENIED = (grpc.StatusCode.PERMISSION_DENIED, "LIBRARY_CODE_INVALID")
LOCKED = (grpc.StatusCode.RESOURCE_EXHAUSTED, "LIBRARY_CODE_ATTEMPTS_EXCEEDED")


# --- which worker holds a connection ---


def connections_of(pid: int, port: int) -> set[int]:
    """The client ports of the established TCP connections the process holds on ``port``."""
    sockets = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                sockets.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port and inode in sockets:
                ports.add(int(remote.rsplit(":", 1)[1], 16))
    return ports


def secure_channel(target: str, pki: DevPkiPaths, cert: Path, key: Path) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca_cert.read_bytes(),
        private_key=key.read_bytes(),
        certificate_chain=cert.read_bytes(),
    )
    # A connection of its own: channels of one process otherwise share one to the same target.
    return grpc.secure_channel(target, credentials, options=[("grpc.use_local_subchannel_pool", 1)])


@contextlib.contextmanager
def channel_to_each(
    server: ServerProcess, pki: DevPkiPaths, pids: list[int], cert: Path, key: Path
) -> Iterator[dict[int, grpc.Channel]]:
    """A channel whose connection each worker holds, by pid; the kernel picks the worker of a
    new connection, so channels are opened until every worker has one."""
    port = int(server.target.rsplit(":", 1)[1])
    found: dict[int, grpc.Channel] = {}
    try:
        for _ in range(60):
            before = {pid: connections_of(pid, port) for pid in pids}
            channel = secure_channel(server.target, pki, cert, key)
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            owners = [pid for pid in pids if connections_of(pid, port) - before[pid]]
            if len(owners) == 1 and owners[0] not in found:
                found[owners[0]] = channel
            else:
                channel.close()
            if len(found) == len(pids):
                break
        assert sorted(found) == sorted(pids), f"no connection reached some worker:\n{server.log}"
        yield found
    finally:
        for channel in found.values():
            channel.close()


def registry(channel: grpc.Channel, library: str, code: str | None = None) -> Registry:
    stub = registry_service_pb2_grpc.BorrowerRegistryStub(channel)
    return Registry(stub, library, LIBRARY_CODES[library] if code is None else code)


def get_outcome(caller: Registry, card_number: str) -> tuple[grpc.StatusCode, str]:
    try:
        caller.stub.GetBorrower(
            pb.GetBorrowerRequest(card_number=card_number), metadata=caller.metadata, timeout=10
        )
    except grpc.RpcError as error:
        return error.code(), error_details(error)[0]
    return OK, ""


# --- the supervisor's log ---


def worker_pids(server: ServerProcess) -> dict[int, int]:
    """The pid of each worker that has said it serves, the latest of each number."""
    pids: dict[int, int] = {}
    for number, pid in re.findall(r"worker (\d+) \(pid (\d+)\) serving", server.log):
        pids[int(number)] = int(pid)
    return pids


def wait_until(server: ServerProcess, condition: object, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + START_DEADLINE
    while not condition():
        if server.process.poll() is not None:
            pytest.fail(f"the supervisor exited with {server.process.returncode}:\n{server.log}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {START_DEADLINE}s:\n{server.log}")
        time.sleep(0.1)


@contextlib.contextmanager
def two_workers(
    environment: dict[str, str], pki: DevPkiPaths, cwd: Path
) -> Iterator[ServerProcess]:
    with running_server(environment, pki, cwd) as server:
        wait_until(server, lambda: "all 2 workers serving" in server.log, "both workers serving")
        yield server


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child stays a zombie until the supervisor reaps it: that is not alive.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


# --- the limits, through both workers ---


def assert_limits_hold_across(
    server: ServerProcess, pki: DevPkiPaths, certificates: ClientCertificates
) -> None:
    pids = sorted(worker_pids(server).values())
    assert len(pids) == 2, server.log
    first, second = pids
    with channel_to_each(server, pki, pids, pki.ils_cert, pki.ils_key) as ils:
        # Both answer: each holds a connection, and a call on it is answered.
        create(registry(ils[first], OSLO), new_borrower("N000004001"))
        answered = {pid: get_outcome(registry(ils[pid], OSLO), "N000004001") for pid in pids}
        assert answered == {first: (OK, ""), second: (OK, "")}

        # Wrong codes through both count as one: the third locks, wherever it came.
        guesses = [first, second, first, second, first]
        outcomes = [
            get_outcome(registry(ils[pid], OSLO, code="guess"), "N000004001") for pid in guesses
        ]
        assert outcomes == [DENIED, DENIED, DENIED, LOCKED, LOCKED]
        # Even the right code, which both have verified before, waits out the window.
        assert [get_outcome(registry(ils[pid], OSLO), "N000004001") for pid in pids] == [
            LOCKED,
            LOCKED,
        ]

    # Another vendor's calls, alternately through each worker: the burst is for both together.
    other_cert, other_key = certificates.path("other_ils")
    with channel_to_each(server, pki, pids, other_cert, other_key) as other:
        admitted = {first: 0, second: 0}
        refused = 0
        for index in range(2 * RATE_BURST + 10):
            pid = pids[index % 2]
            outcome = get_outcome(registry(other[pid], OTHER_VENDORS_LIBRARY), "N000004999")
            if outcome == (grpc.StatusCode.NOT_FOUND, "NOT_FOUND"):
                admitted[pid] += 1
            else:
                assert outcome == (grpc.StatusCode.RESOURCE_EXHAUSTED, "VENDOR_RATE_LIMITED")
                refused += 1
    # One more may have been refilled while the calls were made (one every 10 s).
    assert RATE_BURST <= sum(admitted.values()) <= RATE_BURST + 1, admitted
    assert min(admitted.values()) > 0, admitted
    assert refused >= RATE_BURST - 1


def test_two_workers_both_answer_and_share_the_rate_and_the_wrong_code_limit(
    pki: DevPkiPaths,
    keyring_path: Path,
    prepared_database: str,
    certificates: ClientCertificates,
    tmp_path: Path,
) -> None:
    environment = server_environment(pki, keyring_path, prepared_database, **LIMITS)

    with two_workers(environment, pki, tmp_path) as server:
        assert_limits_hold_across(server, pki, certificates)
        # Every line of a worker names it; the supervisor's name it too.
        assert re.search(r"INFO worker 0 nlr_server\S*: serving on", server.log), server.log
        assert re.search(r"INFO worker 1 nlr_server\S*: serving on", server.log), server.log
        assert re.search(r"INFO supervisor nlr_server\S*: started worker 1", server.log)

    rows = count_rows_of_limits(prepared_database)
    assert rows["limit_failures"] == CODE_FAILURES
    assert rows["limit_buckets"] == 2  # one per vendor


def count_rows_of_limits(database_url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from nlr_server.store.database import create_store_engine
    from nlr_server.store.models import Base

    engine = create_store_engine(database_url)
    try:
        with engine.connect() as connection:
            return {
                name: connection.execute(
                    select(func.count()).select_from(Base.metadata.tables[name])
                ).scalar_one()
                for name in ("limit_buckets", "limit_failures")
            }
    finally:
        engine.dispose()


def redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def test_with_redis_the_limits_are_kept_there_and_hold_across_workers(
    pki: DevPkiPaths,
    keyring_path: Path,
    prepared_database: str,
    certificates: ClientCertificates,
    tmp_path: Path,
) -> None:
    if not redis_answers():
        pytest.skip(f"no Redis answers at {REDIS_URL}")
    prefix = f"nlr-test-{uuid.uuid4().hex[:12]}:"
    environment = server_environment(
        pki,
        keyring_path,
        prepared_database,
        NLR_REDIS_URL=REDIS_URL,
        NLR_REDIS_PREFIX=prefix,
        **LIMITS,
    )
    client = redis.Redis.from_url(REDIS_URL)
    try:
        with two_workers(environment, pki, tmp_path) as server:
            assert_limits_hold_across(server, pki, certificates)
            keys = sorted(key.decode() for key in client.scan_iter(match=f"{prefix}*"))
        assert [key.removeprefix(prefix).split(":")[0] for key in keys] == [
            "bucket",
            "bucket",
            "failures",
        ]
        assert count_rows_of_limits(prepared_database) == {"limit_buckets": 0, "limit_failures": 0}
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


# --- a worker killed, and SIGTERM ---


def test_a_worker_killed_is_replaced_while_the_other_serves_and_sigterm_drains_both(
    pki: DevPkiPaths, keyring_path: Path, prepared_database: str, tmp_path: Path
) -> None:
    environment = server_environment(pki, keyring_path, prepared_database, NLR_WORKERS="2")

    with two_workers(environment, pki, tmp_path) as server:
        pids = worker_pids(server)
        killed = pids[1]
        os.kill(killed, signal.SIGKILL)
        # Reaped by the supervisor: every thread of it is gone, and so is its listening socket.
        death = f"worker 1 (pid {killed}) was killed by SIGKILL"
        wait_until(server, lambda: death in server.log, "worker 1's death")

        # The other answers every new connection meanwhile. (One the kernel had given the
        # killed worker while it was dying was reset: a client connects again.)
        for _ in range(5):
            with secure_channel(server.target, pki, pki.ils_cert, pki.ils_key) as channel:
                assert get_outcome(registry(channel, OSLO), "N000004100") == (
                    grpc.StatusCode.NOT_FOUND,
                    "NOT_FOUND",
                )
        wait_until(server, lambda: worker_pids(server)[1] != killed, "a new worker 1")
        replaced = worker_pids(server)
        assert replaced[0] == pids[0]
        assert not alive(killed)

        # Both answer again, and both drain their call in flight on SIGTERM.
        workers = sorted(replaced.values())
        with channel_to_each(server, pki, workers, pki.ils_cert, pki.ils_key) as channels:
            with borrowers_write_locked(prepared_database):
                calls = {
                    pid: registry(channels[pid], OSLO).stub.CreateBorrower.future(
                        pb.CreateBorrowerRequest(borrower=new_borrower(f"N00000420{index}")),
                        metadata=registry(channels[pid], OSLO).metadata,
                        timeout=30,
                    )
                    for index, pid in enumerate(workers)
                }
                time.sleep(0.5)
                assert not any(call.done() for call in calls.values())
                server.process.send_signal(signal.SIGTERM)
                time.sleep(1.0)
                assert not any(call.done() for call in calls.values()), "answered while locked"
                assert all(alive(pid) for pid in workers), "a worker left its call behind"
            answers = {
                pid: call.result(timeout=30).borrower.home_library for pid, call in calls.items()
            }
        exit_code = server.process.wait(timeout=EXIT_DEADLINE)

    assert answers == {pid: OSLO for pid in workers}
    assert exit_code == 0, server.log
    assert not any(alive(pid) for pid in workers)
    assert count_rows(prepared_database)["borrowers"] == 2
