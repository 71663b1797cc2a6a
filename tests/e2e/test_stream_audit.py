"""A refused WatchChanges stream is audited once, with the status and reason the caller got:
refused by access control before the first message, or for its request by the stream itself."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grpc
import pytest

from feed_harness import Watch
from nlr.registry.v1 import registry_service_pb2_grpc
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.models import AuditEventRow
from register_harness import (
    LIBRARY_CODES,
    OSLO,
    ClientCertificates,
    Registry,
    ServerThread,
    audit_rows,
    client_channel,
    create,
    error_details,
    new_borrower,
    wait_until,
)

Audited = tuple[str | None, str, str | None]  # library, outcome, reason


def stream_audit(url: str) -> list[Audited]:
    where = AuditEventRow.rpc == "WatchChanges"
    columns = (AuditEventRow.library_number, AuditEventRow.outcome, AuditEventRow.reason)
    return cast(list[Audited], audit_rows(url, *columns, where=where))


def refused_watch(registry: Registry, after: int = 0) -> tuple[grpc.StatusCode, str]:
    watch = Watch(registry, after)
    try:
        with pytest.raises(grpc.RpcError) as raised:
            watch.next_event()
    finally:
        watch.cancel()
    return raised.value.code(), error_details(raised.value)[0]


@dataclass(frozen=True)
class Refusal:
    certificate: str | None  # None: the test vendor's; "auth"; or a name in ClientCertificates
    code: str
    after: int
    status: grpc.StatusCode
    reason: str
    audited_library: str | None  # None when refused before the library was established


OSLO_CODE = LIBRARY_CODES[OSLO]
DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID = grpc.StatusCode.INVALID_ARGUMENT

REFUSALS = {
    "wrong library code": Refusal(None, "not-the-code", 0, DENIED, "LIBRARY_CODE_INVALID", None),
    "auth role": Refusal("auth", OSLO_CODE, 0, DENIED, "ROLE_NOT_ALLOWED", None),
    "revoked certificate": Refusal(
        "revoked", OSLO_CODE, 0, grpc.StatusCode.UNAUTHENTICATED, "CERTIFICATE_REVOKED", None
    ),
    "negative cursor": Refusal(None, OSLO_CODE, -1, INVALID, "INVALID_ARGUMENT", OSLO),
    "cursor beyond the head": Refusal(None, OSLO_CODE, 99, INVALID, "INVALID_ARGUMENT", OSLO),
}


@pytest.fixture
def connect(
    server: ServerThread, pki: DevPkiPaths, certificates: ClientCertificates
) -> Iterator[Callable[[str | None, str], Registry]]:
    """Oslo's client of the server with a certificate (as in Refusal) and a library code."""
    channels: list[grpc.Channel] = []

    def registry(certificate: str | None, code: str) -> Registry:
        cert: Path | None = None
        key: Path | None = None
        if certificate == "auth":
            cert, key = pki.auth_cert, pki.auth_key
        elif certificate is not None:
            cert, key = certificates.path(certificate)
        channel = client_channel(server.target, pki, cert=cert, key=key)
        channels.append(channel)
        return Registry(registry_service_pb2_grpc.BorrowerRegistryStub(channel), OSLO, code)

    yield registry
    for channel in channels:
        channel.close()


@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_refused_stream_is_audited_once_with_the_callers_status_and_reason(
    refusal: str,
    registry: Registry,
    server: ServerThread,
    connect: Callable[[str | None, str], Registry],
) -> None:
    case = REFUSALS[refusal]
    create(registry, new_borrower("N000003201"))  # the feed's head is at 1
    url = server.config.database_url

    answer = refused_watch(connect(case.certificate, case.code), case.after)
    wait_until(lambda: len(stream_audit(url)) >= 1, seconds=2.0)
    time.sleep(0.2)  # a second row, if one were written, would be flushed by now

    assert answer == (case.status, case.reason)
    assert stream_audit(url) == [(case.audited_library, case.status.name, case.reason)]
