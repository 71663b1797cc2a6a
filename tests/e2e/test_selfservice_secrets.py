"""A borrower sets their own PIN and password in SelfService (two factors): the new one works
at once on every login path, the old one no longer, and their other sessions end."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from nlr.auth.v1 import authenticate_pb2 as auth_pb
from nlr.auth.v1 import authenticate_pb2_grpc
from nlr.selfservice.v1 import selfservice_pb2 as pb
from nlr_server.domain.actor import ActorKind
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.models import AuditEventRow, table_of
from register_harness import (
    ClientCertificates,
    Registry,
    ServerThread,
    client_channel,
    error_details,
    wait_for_audit_rows,
)
from selfservice_harness import PASSWORD, Portal, borrower_with_password, portal_client

AUDIT = table_of(AuditEventRow)


@pytest.fixture
def other_portal(
    server: ServerThread, pki: DevPkiPaths, certificates: ClientCertificates
) -> Iterator[Portal]:
    with portal_client(server.target, pki, certificates) as stub:
        yield Portal(stub)


@pytest.fixture
def authenticate(
    server: ServerThread, pki: DevPkiPaths
) -> Iterator[authenticate_pb2_grpc.AuthenticateStub]:
    with client_channel(server.target, pki, cert=pki.auth_cert, key=pki.auth_key) as channel:
        yield authenticate_pb2_grpc.AuthenticateStub(channel)


def test_a_new_pin_works_at_once_and_ends_the_other_sessions(
    registry: Registry,
    portal: Portal,
    other_portal: Portal,
    authenticate: authenticate_pb2_grpc.AuthenticateStub,
    prepared_database: str,
) -> None:
    borrower_with_password(registry, "N000184001")
    portal.log_in("N000184001")
    portal.enroll()
    other_portal.log_in("N000184001")

    portal.stub.SetMyPin(pb.SetMyPinRequest(pin="8642"), metadata=portal.metadata)

    answer = authenticate.VerifyPin(auth_pb.VerifyPinRequest(card_number="N000184001", pin="8642"))
    assert answer.borrower.card_number == "N000184001"
    with pytest.raises(grpc.RpcError) as ended:
        other_portal.stub.LogOut(pb.LogOutRequest(), metadata=other_portal.metadata)
    assert error_details(ended.value)[0] == "SESSION_INVALID"
    portal.stub.LogOut(pb.LogOutRequest(), metadata=portal.metadata)  # this one went on
    rows = wait_for_audit_rows(
        prepared_database,
        1,
        AUDIT.c.actor_kind,
        AUDIT.c.actor_id,
        where=(AUDIT.c.rpc == "SetMyPin") & (AUDIT.c.card_number == "N000184001"),
    )
    assert rows == [(ActorKind.BORROWER.value, "N000184001")]


def test_a_new_password_replaces_the_old_one(registry: Registry, portal: Portal) -> None:
    borrower_with_password(registry, "N000184002")
    portal.log_in("N000184002")
    portal.enroll()

    portal.stub.SetMyPassword(
        pb.SetMyPasswordRequest(password="a brand new passphrase"), metadata=portal.metadata
    )

    assert portal.log_in("N000184002", "a brand new passphrase").card_number == "N000184002"
    with pytest.raises(grpc.RpcError) as old:
        portal.log_in("N000184002", PASSWORD)
    assert error_details(old.value)[0] == "CREDENTIALS_INVALID"


@pytest.mark.parametrize(
    ("rpc", "request_message", "field"),
    [
        ("SetMyPin", pb.SetMyPinRequest(pin="12"), "pin"),
        ("SetMyPin", pb.SetMyPinRequest(pin="12ab"), "pin"),
        ("SetMyPassword", pb.SetMyPasswordRequest(password="short"), "password"),
    ],
)
def test_a_malformed_secret_names_its_field_and_changes_nothing(
    registry: Registry,
    portal: Portal,
    rpc: str,
    request_message: pb.SetMyPinRequest | pb.SetMyPasswordRequest,
    field: str,
) -> None:
    borrower_with_password(registry, "N000184003")
    portal.log_in("N000184003")
    portal.enroll()

    with pytest.raises(grpc.RpcError) as bad:
        getattr(portal.stub, rpc)(request_message, metadata=portal.metadata)

    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(bad.value)[1]) == [field]
    # The secret is never echoed.
    secret = (
        request_message.pin
        if isinstance(request_message, pb.SetMyPinRequest)
        else (request_message.password)
    )
    assert secret not in (bad.value.details() or "")
    assert portal.log_in("N000184003").card_number == "N000184003"


def test_secrets_are_changed_only_with_two_factors(registry: Registry, portal: Portal) -> None:
    borrower_with_password(registry, "N000184004")
    portal.log_in("N000184004")

    with pytest.raises(grpc.RpcError) as pin:
        portal.stub.SetMyPin(pb.SetMyPinRequest(pin="8642"), metadata=portal.metadata)
    with pytest.raises(grpc.RpcError) as password:
        portal.stub.SetMyPassword(
            pb.SetMyPasswordRequest(password="a brand new passphrase"), metadata=portal.metadata
        )

    for refused in (pin.value, password.value):
        assert refused.code() is grpc.StatusCode.PERMISSION_DENIED
        assert error_details(refused)[0] == "TWO_FACTORS_REQUIRED"
    assert portal.log_in("N000184004").card_number == "N000184004"
