"""The real `nlr-server` process: configuration errors, start-up checks, and draining on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import TypeAlias

import grpc
import pytest
from grpc_health.v1 import health_pb2
from sqlalchemy.engine import make_url

from nlr.registry.v1 import registry_service_pb2, registry_service_pb2_grpc
from nlr_server.ops.config import Config
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import (
    OSLO,
    Registry,
    client_channel,
    count_rows,
    new_borrower,
)
from server_process_harness import (
    EXIT_DEADLINE,
    NLR_SERVER,
    START_DEADLINE,
    ServerProcess,
    borrowers_write_locked,
    health_status,
    running_server,
    server_environment,
)

# Once the grace period is over the server must exit promptly, stuck calls or not.
EXIT_AFTER_GRACE = 10.0
CALL_TIMEOUT = 30.0


def run_to_exit(environment: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs nlr-server expecting it to stop on its own, as it must on a start-up error."""
    return subprocess.run(
        [str(NLR_SERVER)],
        env=environment,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=START_DEADLINE,
        check=False,
    )


def wait_for_log(server: ServerProcess, text: str) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while text not in server.log:
        if server.process.poll() is not None:
            pytest.fail(f"nlr-server exited with {server.process.returncode}:\n{server.log}")
        if time.monotonic() > deadline:
            pytest.fail(f"nlr-server did not log {text!r} within {START_DEADLINE}s:\n{server.log}")
        time.sleep(0.1)


# grpc.Future is generic only in the type stubs.
CreateCall: TypeAlias = "grpc.Future[registry_service_pb2.CreateBorrowerResponse]"


def start_create_borrower(channel: grpc.Channel, card_number: str) -> CreateCall:
    """Starts a CreateBorrower for Oslo without waiting for its answer."""
    stub = registry_service_pb2_grpc.BorrowerRegistryStub(channel)
    oslo = Registry(stub, None).as_library(OSLO)
    call: CreateCall = oslo.stub.CreateBorrower.future(
        registry_service_pb2.CreateBorrowerRequest(borrower=new_borrower(card_number)),
        metadata=oslo.metadata,
        timeout=CALL_TIMEOUT,
    )
    return call


def assert_in_flight(call: CreateCall, why: str) -> None:
    if call.done():
        outcome = call.exception() or call.result()
        pytest.fail(f"{why}, but it has already ended with: {outcome!r}")


# --- configuration and start-up errors ---


def test_valid_environment_is_a_valid_configuration(
    pki: DevPkiPaths, keyring_path: Path, tmp_path: Path
) -> None:
    """The control for the errors below: each of them changes one variable of this environment."""
    environment = server_environment(pki, keyring_path, f"sqlite:///{tmp_path / 'nlr.db'}")

    config = Config.from_env(environment)

    assert config.grace_seconds == 10.0
    assert config.tls_cert == pki.server_cert


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NLR_GRACE_SECONDS", "abc"),
        ("NLR_LISTEN_ADDRESS", "nonsense"),
        ("NLR_TLS_CERT", None),
        ("NLR_TLS_CERT", "{tmp}/missing-server.pem"),
        ("NLR_DATABASE_URL", "mysql://x"),
    ],
    ids=["grace-not-a-number", "address-without-port", "cert-unset", "cert-missing", "mysql"],
)
def test_configuration_error_stops_the_server_and_names_the_variable(
    pki: DevPkiPaths, keyring_path: Path, tmp_path: Path, variable: str, value: str | None
) -> None:
    environment = server_environment(
        pki,
        keyring_path,
        f"sqlite:///{tmp_path / 'nlr.db'}",
        **{variable: None if value is None else value.format(tmp=tmp_path)},
    )

    stopped = run_to_exit(environment, tmp_path)

    assert stopped.returncode == 1
    assert "nlr-server: configuration error:" in stopped.stderr
    assert variable in stopped.stderr
    assert "Traceback" not in stopped.stderr


def test_missing_keyring_stops_the_server_and_names_nlr_keyring(
    pki: DevPkiPaths, keyring_path: Path, prepared_database: str, tmp_path: Path
) -> None:
    environment = server_environment(
        pki, keyring_path, prepared_database, NLR_KEYRING=str(tmp_path / "no-keyring.json")
    )

    stopped = run_to_exit(environment, tmp_path)

    assert stopped.returncode == 1
    assert "nlr-server: cannot start: NLR_KEYRING" in stopped.stderr
    assert "Traceback" not in stopped.stderr


def test_unmigrated_database_stops_the_server_with_a_hint_to_migrate_it(
    pki: DevPkiPaths, keyring_path: Path, database_url: str, tmp_path: Path
) -> None:
    environment = server_environment(pki, keyring_path, database_url)

    stopped = run_to_exit(environment, tmp_path)

    assert stopped.returncode == 1
    assert "nlr-server: cannot start:" in stopped.stderr
    named = make_url(database_url).render_as_string(hide_password=True)
    assert f"NLR_DATABASE_URL={named} nlr-admin migrate" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    if database_url.startswith("sqlite"):
        # A missing SQLite file is named, and not made: an empty one would look like a register.
        missing = Path(str(make_url(database_url).database))
        assert f"the SQLite database {missing.resolve()} does not exist" in stopped.stderr
        assert not missing.exists()


# --- one address, one server ---


def test_a_second_server_on_a_served_address_refuses_to_start_and_names_it(
    pki: DevPkiPaths, keyring_path: Path, prepared_database: str, tmp_path: Path
) -> None:
    environment = server_environment(pki, keyring_path, prepared_database)
    address = environment["NLR_LISTEN_ADDRESS"]
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()

    with running_server(environment, pki, tmp_path / "first") as first:
        second = run_to_exit(environment, tmp_path / "second")

        assert second.returncode == 1
        assert f"nlr-server: cannot start: NLR_LISTEN_ADDRESS: cannot listen on {address}" in (
            second.stderr
        )
        assert "NLR_SHARED_PORT=true" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.process.poll() is None
        assert health_status(address, pki) == health_pb2.HealthCheckResponse.SERVING


def test_with_shared_ports_asked_for_two_servers_serve_one_address(
    pki: DevPkiPaths, keyring_path: Path, prepared_database: str, tmp_path: Path
) -> None:
    environment = server_environment(pki, keyring_path, prepared_database, NLR_SHARED_PORT="true")
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()

    with (
        running_server(environment, pki, tmp_path / "first") as first,
        running_server(environment, pki, tmp_path / "second") as second,
    ):
        # The first answers for both until it stops; then only the second can.
        wait_for_log(second, "serving on")
        first.process.send_signal(signal.SIGTERM)
        assert first.process.wait(timeout=EXIT_DEADLINE) == 0, first.log

        assert health_status(environment["NLR_LISTEN_ADDRESS"], pki) == (
            health_pb2.HealthCheckResponse.SERVING
        ), second.log


# --- SIGTERM ---


def test_sigterm_drains_the_in_flight_call_then_exits_0(
    pki: DevPkiPaths, keyring_path: Path, prepared_database: str, tmp_path: Path
) -> None:
    grace = 10.0
    environment = server_environment(
        pki, keyring_path, prepared_database, NLR_GRACE_SECONDS=str(grace)
    )
    with (
        running_server(environment, pki, tmp_path) as server,
        client_channel(server.target, pki) as channel,
    ):
        with borrowers_write_locked(prepared_database):
            call = start_create_borrower(channel, "N000000901")
            time.sleep(0.5)
            assert_in_flight(call, "the call should wait for the lock")
            signalled_at = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert_in_flight(call, "draining should let the call run within the grace period")
            assert server.process.poll() is None, "the server must wait for the in-flight call"

        response = call.result(timeout=CALL_TIMEOUT)
        exit_code = server.process.wait(timeout=grace)
        exited_after = time.monotonic() - signalled_at

    assert response.borrower.card_number == "N000000901"
    assert response.borrower.home_library == OSLO
    assert exit_code == 0, server.log
    assert exited_after < grace
    with pytest.raises(grpc.RpcError) as refused:
        health_status(server.target, pki)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_call_stuck_in_the_database_past_the_grace_period_is_cancelled_and_the_server_exits_0(
    pki: DevPkiPaths, keyring_path: Path, prepared_database: str, tmp_path: Path
) -> None:
    grace = 1.0
    environment = server_environment(
        pki, keyring_path, prepared_database, NLR_GRACE_SECONDS=str(grace)
    )
    # The lock is held until the server has exited: the call can never get its turn.
    with (
        running_server(environment, pki, tmp_path) as server,
        client_channel(server.target, pki) as channel,
        borrowers_write_locked(prepared_database),
    ):
        call = start_create_borrower(channel, "N000000902")
        time.sleep(0.5)
        assert_in_flight(call, "the call should wait for the lock")
        signalled_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        with pytest.raises(grpc.RpcError) as cancelled:
            call.result(timeout=CALL_TIMEOUT)
        cancelled_after = time.monotonic() - signalled_at
        exit_code = server.process.wait(timeout=grace + EXIT_AFTER_GRACE)

    assert cancelled.value.code() == grpc.StatusCode.UNAVAILABLE, server.log
    assert cancelled_after >= grace * 0.9, "cancelled before the grace period ended"
    assert exit_code == 0, server.log
    assert count_rows(prepared_database)["borrowers"] == 0, "the cancelled call left a borrower"
