"""Per-vendor call rate and failed library codes: RESOURCE_EXHAUSTED with a retry delay."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from nlr.registry.v1 import registry_service_pb2_grpc
from nlr_server.crypto.keyring import Keyring
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import (
    BERGEN,
    LIBRARY_CODES,
    OSLO,
    ClientCertificates,
    Registry,
    ServerThread,
    client_channel,
    create,
    error_details,
    get,
    make_config,
    new_borrower,
    prepare_database,
    retry_delay_seconds,
)

ServerFactory = Callable[..., Registry]


@pytest.fixture
def registry_with(
    tmp_path: Path,
    pki: DevPkiPaths,
    keyring: Keyring,
    keyring_path: Path,
    certificates: ClientCertificates,
) -> Iterator[ServerFactory]:
    """A server on SQLite with some settings changed, and a client acting for Oslo."""
    running: list[tuple[ServerThread, grpc.Channel]] = []

    def start(**settings: object) -> Registry:
        url = f"sqlite:///{tmp_path / f'nlr{len(running)}.db'}"
        prepare_database(url, keyring, pki, certificates)
        server = ServerThread(make_config(pki, keyring_path, url, **settings)).start()
        channel = client_channel(server.target, pki)
        running.append((server, channel))
        stub = registry_service_pb2_grpc.BorrowerRegistryStub(channel)
        return Registry(stub, OSLO, LIBRARY_CODES[OSLO])

    yield start
    for server, channel in running:
        channel.close()
        server.stop()


def test_vendor_over_its_rate_gets_resource_exhausted_with_retry_info(
    registry_with: ServerFactory,
) -> None:
    registry = registry_with(vendor_rate_limit=0.5, vendor_rate_burst=3)
    create(registry, new_borrower("N000000701"))
    get(registry, card_number="N000000701")
    get(registry, card_number="N000000701")

    with pytest.raises(grpc.RpcError) as raised:
        get(registry, card_number="N000000701")

    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_details(raised.value)[0] == "VENDOR_RATE_LIMITED"
    assert 0 < retry_delay_seconds(raised.value) <= 2


def test_within_its_rate_a_vendor_is_not_limited(registry_with: ServerFactory) -> None:
    registry = registry_with(vendor_rate_limit=1000, vendor_rate_burst=50)
    create(registry, new_borrower("N000000702"))

    for _ in range(40):
        get(registry, card_number="N000000702")


def test_repeated_wrong_library_codes_lock_out_that_vendor_and_library(
    registry_with: ServerFactory,
) -> None:
    registry = registry_with(library_code_failures=3, library_code_window_seconds=60)
    create(registry, new_borrower("N000000703"))
    guessing = registry.as_library(OSLO, code="guess")

    outcomes = []
    for _ in range(4):
        with pytest.raises(grpc.RpcError) as raised:
            get(guessing, card_number="N000000703")
        outcomes.append((raised.value.code(), error_details(raised.value)[0]))

    assert outcomes == [
        (grpc.StatusCode.PERMISSION_DENIED, "LIBRARY_CODE_INVALID"),
        (grpc.StatusCode.PERMISSION_DENIED, "LIBRARY_CODE_INVALID"),
        (grpc.StatusCode.PERMISSION_DENIED, "LIBRARY_CODE_INVALID"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "LIBRARY_CODE_ATTEMPTS_EXCEEDED"),
    ]
    # Even the right code waits out the window; another library of the vendor does not.
    with pytest.raises(grpc.RpcError) as raised:
        get(registry, card_number="N000000703")
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert 50 < retry_delay_seconds(raised.value) <= 60
    assert get(registry.as_library(BERGEN), card_number="N000000703").card_number == "N000000703"


def test_a_right_code_clears_earlier_failures(registry_with: ServerFactory) -> None:
    registry = registry_with(library_code_failures=3, library_code_window_seconds=60)
    create(registry, new_borrower("N000000704"))
    guessing = registry.as_library(OSLO, code="guess")

    for _ in range(2):
        with pytest.raises(grpc.RpcError):
            get(guessing, card_number="N000000704")
    get(registry, card_number="N000000704")
    for _ in range(2):
        with pytest.raises(grpc.RpcError) as raised:
            get(guessing, card_number="N000000704")
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
