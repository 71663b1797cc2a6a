"""Malformed and extreme requests to every RPC: a clear refusal, no leak, the server serving on."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from nlr.auth.v1 import authenticate_pb2
from nlr.registry.v1 import borrower_pb2, registry_service_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr.selfservice.v1 import selfservice_pb2
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.models import AuditEventRow
from register_harness import (
    LIBRARY_CODES,
    OSLO,
    ClientCertificates,
    Registry,
    ServerThread,
    client_channel,
    create,
    error_details,
    get,
    new_borrower,
    wait_for_audit_rows,
)
from request_fuzz import FORGED_PAGE_TOKENS, fuzz_cases
from selfservice_harness import Portal, borrower_with_password

REGISTRY = registry_service_pb2.DESCRIPTOR.services_by_name["BorrowerRegistry"]
AUTH = authenticate_pb2.DESCRIPTOR.services_by_name["Authenticate"]
SELF_SERVICE = selfservice_pb2.DESCRIPTOR.services_by_name["SelfService"]
REFUSED_AS_FAILURE = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
# Words of a Python exception, a driver or SQL: none may reach a caller.
LEAKS = (
    "Traceback",
    "Exception",
    "Error parsing",
    "<class",
    "SQL",
    "sqlalchemy",
    "psycopg",
    "sqlite",
    "INSERT",
    "SELECT",
    "parameters",
    "DecodeError",
    "UnicodeDecodeError",
)
MAX_TRAILER_BYTES = 8 * 1024
REGISTRY_METADATA = (("nlr-library-number", OSLO), ("nlr-library-code", LIBRARY_CODES[OSLO]))


def _raw(data: bytes) -> bytes:
    return data


def _trailer_size(error: grpc.RpcError) -> int:
    trailers: Any = error.trailing_metadata() or ()
    size = sum(len(key) + len(value) for key, value in trailers)
    return size + len((error.details() or "").encode())


def _call(channel: grpc.Channel, method: Any, service: Any, payload: bytes, metadata: Any) -> Any:
    """The RPC with raw bytes as its request; the RpcError, or None when it answered OK."""
    name = f"/{service.full_name}/{method.name}"
    try:
        if method.server_streaming:
            stream = channel.unary_stream(name, _raw, _raw)(payload, metadata=metadata, timeout=1.0)
            for _ in stream:
                stream.cancel()
                break
        else:
            channel.unary_unary(name, _raw, _raw)(payload, metadata=metadata, timeout=30)
    except grpc.RpcError as error:
        return error
    return None


def _check_answer(case: str, rpc: str, error: grpc.RpcError | None) -> None:
    if error is None:
        return
    code = error.code()
    if code in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED):
        return  # a stream that was accepted and then ended by the test
    where = f"{rpc} {case}"
    assert code not in REFUSED_AS_FAILURE, f"{where}: {code} {error.details()}"
    details = error.details() or ""
    for word in LEAKS:
        assert word not in details, f"{where}: {word!r} in {details[:300]!r}"
    assert _trailer_size(error) < MAX_TRAILER_BYTES, f"{where}: {_trailer_size(error)} bytes"


@pytest.fixture
def auth_channel(server: ServerThread, pki: DevPkiPaths) -> Iterator[grpc.Channel]:
    with client_channel(server.target, pki, cert=pki.auth_cert, key=pki.auth_key) as channel:
        yield channel


@pytest.fixture
def portal_channel(
    server: ServerThread, pki: DevPkiPaths, certificates: ClientCertificates
) -> Iterator[grpc.Channel]:
    cert, key = certificates.path("portal")
    with client_channel(server.target, pki, cert=cert, key=key) as channel:
        yield channel


def test_every_rpc_answers_malformed_and_extreme_requests_without_failing(
    server: ServerThread,
    channel: grpc.Channel,
    auth_channel: grpc.Channel,
    portal_channel: grpc.Channel,
    registry: Registry,
    portal: Portal,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    # SelfService in a session with two factors, so that every call reaches its servicer.
    borrower_with_password(registry, "N000000802")
    portal.log_in("N000000802")
    portal.enroll()
    calls = 0
    for service, service_channel, metadata in (
        (REGISTRY, channel, REGISTRY_METADATA),
        (AUTH, auth_channel, ()),
        (SELF_SERVICE, portal_channel, portal.metadata),
    ):
        for seed, method in enumerate(service.methods):
            for case in fuzz_cases(method.input_type, seed):
                error = _call(service_channel, method, service, case.payload, metadata)
                _check_answer(case.name, method.name, error)
                calls += 1
    assert calls > 400
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    created = create(registry, new_borrower("N000000801"))
    assert get(registry, card_number="N000000801").etag == created.etag
    tracebacks = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not tracebacks, tracebacks[0].getMessage()


def test_undecodable_request_is_invalid_argument_audited_and_logged_once(
    server: ServerThread,
    channel: grpc.Channel,
    prepared_database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="nlr_server")
    method = REGISTRY.methods_by_name["GetBorrower"]
    payload = b"\x0a\x05N\xff\xfe\x00\x01"  # card_number, 5 bytes that are not UTF-8

    error = _call(channel, method, REGISTRY, payload, REGISTRY_METADATA)

    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    reason, violations = error_details(error)
    assert reason == "INVALID_ARGUMENT"
    assert violations == {"card_number": "is not valid UTF-8"}
    garbage = _call(channel, method, REGISTRY, b"\x0a\xff\xff\xff\x0f", REGISTRY_METADATA)
    assert garbage is not None and garbage.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(garbage)[1] == {
        "request": "does not parse as a protocol buffer message of its type"
    }
    rows = wait_for_audit_rows(
        prepared_database,
        2,
        AuditEventRow.outcome,
        AuditEventRow.vendor_id,
        AuditEventRow.library_number,
        where=AuditEventRow.rpc == "GetBorrower",
    )
    assert [outcome for outcome, _, _ in rows] == ["INVALID_ARGUMENT", "INVALID_ARGUMENT"]
    assert all(vendor is not None and library == OSLO for _, vendor, library in rows)
    lines = [r for r in caplog.records if "did not parse" in r.getMessage()]
    assert len(lines) == 2
    assert all(r.exc_info is None and "\\xff" not in r.getMessage() for r in lines)


@pytest.mark.parametrize("token", FORGED_PAGE_TOKENS)
def test_forged_page_token_is_refused_before_any_query(registry: Registry, token: str) -> None:
    create(registry, new_borrower("N000000802"))
    with pytest.raises(grpc.RpcError) as refused:
        registry.stub.ListAffiliatedBorrowers(
            pb.ListAffiliatedBorrowersRequest(page_size=10, page_token=token),
            metadata=registry.metadata,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(refused.value)[1] == {
        "page_token": "is not a token from ListAffiliatedBorrowers"
    }


@pytest.mark.parametrize("count", [21, 100, 5_000])
def test_thousands_of_bad_mask_paths_give_a_small_bounded_answer(
    registry: Registry, count: int
) -> None:
    created = create(registry, new_borrower("N000000803"))
    paths = [f"no_such_field_{i}" for i in range(count)]
    request = pb.UpdateBorrowerRequest(
        borrower=borrower_pb2.Borrower(card_number=created.card_number, etag=created.etag),
        update_mask=field_mask_pb2.FieldMask(paths=paths),
    )

    with pytest.raises(grpc.RpcError) as refused:
        registry.stub.UpdateBorrower(request, metadata=registry.metadata)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _trailer_size(refused.value) < MAX_TRAILER_BYTES
    status = rpc_status.from_call(refused.value)
    assert status is not None
    info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert status.details[0].Unpack(info) and status.details[1].Unpack(bad_request)
    assert info.metadata["field_violations"] == str(count)
    assert [v.description for v in bad_request.field_violations] == [
        f"'no_such_field_{i}' cannot be changed by UpdateBorrower"
        for i in sorted(map(str, range(count)))[:20]
    ]
    assert (refused.value.details() or "").startswith(f"{count} bad fields, the first 20: ")
    assert get(registry, card_number="N000000803").etag == created.etag
