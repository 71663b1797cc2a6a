"""The access cache as production runs it (NLR_ACCESS_CACHE_SECONDS' default), through a real
server whose cache clock the test moves: an answer remembered for one vendor is never another
vendor's, and revoking or disabling takes effect once the cache's lifetime has passed, not
before and not never."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import grpc
import pytest
from sqlalchemy import update

from nlr.registry.v1 import registry_service_pb2 as pb
from nlr.registry.v1 import registry_service_pb2_grpc
from nlr_server.api import server as server_module
from nlr_server.api.access_control import AccessControl
from nlr_server.crypto.keyring import Keyring
from nlr_server.ops.config import SETTINGS
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import LibraryRow, VendorRow
from register_harness import (
    BERGEN,
    LIBRARY_CODES,
    OSLO,
    OTHER_VENDORS_LIBRARY,
    TEST_VENDOR,
    ClientCertificates,
    Registry,
    Servers,
    ServerThread,
    client_channel,
    error_details,
    revoke_certificate,
)

PRODUCTION_CACHE_SECONDS = float(
    next(s.default or "" for s in SETTINGS if s.name == "NLR_ACCESS_CACHE_SECONDS")
)
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


class MovableClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> MovableClock:
    """The clock of the access caches of every server the test starts."""
    moved = MovableClock()
    monkeypatch.setattr(
        server_module, "AccessControl", functools.partial(AccessControl, clock=moved)
    )
    return moved


@pytest.fixture
def cached_server(clock: MovableClock, servers: Servers) -> ServerThread:
    assert PRODUCTION_CACHE_SECONDS == 5.0
    return servers.start(access_cache_seconds=PRODUCTION_CACHE_SECONDS)


@pytest.fixture
def connect(
    cached_server: ServerThread, pki: DevPkiPaths, certificates: ClientCertificates
) -> Iterator[Callable[..., Registry]]:
    """``connect(library, certificate=None)``: a client of the server with the test vendor's
    certificate, or one named in ClientCertificates, acting for the library with its code."""
    channels: list[grpc.Channel] = []

    def registry(library: str, certificate: str | None = None) -> Registry:
        cert, key = certificates.path(certificate) if certificate else (None, None)
        channel = client_channel(cached_server.target, pki, cert=cert, key=key)
        channels.append(channel)
        stub = registry_service_pb2_grpc.BorrowerRegistryStub(channel)
        return Registry(stub, library, LIBRARY_CODES[library])

    yield registry
    for channel in channels:
        channel.close()


def admitted(registry: Registry) -> None:
    """A cheap call that succeeds once the caller and its library are let in."""
    registry.stub.ListChanges(pb.ListChangesRequest(), metadata=registry.metadata)


def refusal(registry: Registry) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as raised:
        admitted(registry)
    return raised.value.code(), error_details(raised.value)[0]


def sql(url: str, statement: object) -> None:
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(statement)  # type: ignore[call-overload]
    finally:
        engine.dispose()


def test_a_library_remembered_for_its_vendor_is_refused_to_another_vendor_with_the_right_code(
    connect: Callable[..., Registry],
) -> None:
    ours, theirs = connect(OSLO), connect(OTHER_VENDORS_LIBRARY, "other_ils")
    admitted(ours)
    admitted(theirs)

    # Each vendor now has its own library remembered; each asks for the other's, right code.
    other_vendor_for_oslo = connect(OSLO, "other_ils")
    test_vendor_for_drammen = connect(OTHER_VENDORS_LIBRARY)

    refused = PERMISSION_DENIED, "LIBRARY_NOT_ALLOWED"
    assert refusal(other_vendor_for_oslo) == refused
    assert refusal(test_vendor_for_drammen) == refused
    # And the right vendors are still served, from the cache.
    admitted(ours)
    admitted(theirs)


def _revoke(url: str, keyring: Keyring, pki: DevPkiPaths) -> None:
    revoke_certificate(url, keyring, pki.ils_cert)


def _disable_vendor(url: str, keyring: Keyring, pki: DevPkiPaths) -> None:
    sql(url, update(VendorRow).where(VendorRow.name == TEST_VENDOR).values(active=False))


def _disable_library(url: str, keyring: Keyring, pki: DevPkiPaths) -> None:
    sql(url, update(LibraryRow).where(LibraryRow.library_number == BERGEN).values(active=False))


WITHDRAWALS: dict[
    str, tuple[Callable[[str, Keyring, DevPkiPaths], None], tuple[grpc.StatusCode, str]]
] = {
    "revoked certificate": (_revoke, (UNAUTHENTICATED, "CERTIFICATE_REVOKED")),
    "disabled vendor": (_disable_vendor, (PERMISSION_DENIED, "VENDOR_DISABLED")),
    "disabled library": (_disable_library, (PERMISSION_DENIED, "LIBRARY_NOT_ALLOWED")),
}


@pytest.mark.parametrize("withdrawal", WITHDRAWALS)
def test_a_withdrawn_right_is_served_from_the_cache_until_its_lifetime_has_passed(
    withdrawal: str,
    connect: Callable[..., Registry],
    cached_server: ServerThread,
    clock: MovableClock,
    keyring: Keyring,
    pki: DevPkiPaths,
) -> None:
    withdraw, expected = WITHDRAWALS[withdrawal]
    bergen = connect(BERGEN)
    admitted(bergen)

    withdraw(cached_server.config.database_url, keyring, pki)
    clock.advance(PRODUCTION_CACHE_SECONDS - 0.1)
    admitted(bergen)  # still remembered: the cache is on, as in production

    clock.advance(0.2)
    assert refusal(bergen) == expected
    # Refusals are not remembered as rights either: it stays refused.
    assert refusal(bergen) == expected


def test_a_cache_lifetime_of_0_remembers_nothing(
    servers: Servers, clock: MovableClock, pki: DevPkiPaths, keyring: Keyring
) -> None:
    # The control for the harness, which runs every other test with the cache off.
    server = servers.start(access_cache_seconds=0.0)
    with client_channel(server.target, pki) as channel:
        bergen = Registry(
            registry_service_pb2_grpc.BorrowerRegistryStub(channel), BERGEN, LIBRARY_CODES[BERGEN]
        )
        admitted(bergen)
        _revoke(server.config.database_url, keyring, pki)
        assert refusal(bergen) == (UNAUTHENTICATED, "CERTIFICATE_REVOKED")
