"""SelfService sessions end to end: a password login opens a session bound to the portal
certificate it came through; the session slides, ends at LogOut, at its expiry and when the
borrower's password, PIN or level changes; and a call without a live session of this portal
opens nothing."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import grpc
import pytest
from sqlalchemy import create_engine, select, update

from nlr.auth.v1 import authenticate_pb2 as auth_pb
from nlr.auth.v1 import authenticate_pb2_grpc
from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as registry_pb
from nlr.selfservice.v1 import selfservice_pb2 as pb
from nlr_server.crypto import session_token
from nlr_server.domain.actor import ActorKind
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.models import AuditEventRow, SelfServiceSessionRow, table_of
from register_harness import (
    ClientCertificates,
    Registry,
    ServerThread,
    audit_rows,
    client_channel,
    error_details,
    wait_for_audit_rows,
)
from selfservice_harness import (
    PASSWORD,
    Portal,
    SelfServiceStub,
    bearer,
    borrower_with_password,
    portal_client,
)

SESSIONS = table_of(SelfServiceSessionRow)


def session_rows(url: str) -> list[SelfServiceSessionRow]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(select(SESSIONS)).all())  # type: ignore[arg-type]
    finally:
        engine.dispose()


def set_session_expiry(url: str, token: str, expires_at: dt.datetime) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                update(SESSIONS)
                .where(SESSIONS.c.token_digest == session_token.digest(token))
                .values(expires_at=expires_at)
            )
    finally:
        engine.dispose()


def assert_session_invalid(call: object) -> None:
    assert isinstance(call, grpc.RpcError)
    assert call.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error_details(call)[0] == "SESSION_INVALID"


def log_out(portal: Portal) -> None:
    portal.stub.LogOut(pb.LogOutRequest(), metadata=portal.metadata)


def test_a_password_login_opens_a_single_factor_session(
    registry: Registry, portal: Portal, prepared_database: str
) -> None:
    borrower_with_password(registry, "N000180001")

    answer = portal.log_in("N000180001")

    assert answer.session_token.startswith("nlrs_")
    assert answer.card_number == "N000180001"
    assert answer.strength == borrower_pb2.SECURITY_LEVEL_PASSWORD
    assert answer.second_factor_available is False
    assert answer.second_factor_required is False
    expires = answer.expire_time.ToDatetime(dt.UTC)
    assert dt.timedelta(minutes=14) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=15)
    # Only the token's digest is kept, bound to the portal certificate.
    (row,) = session_rows(prepared_database)
    assert row.token_digest == session_token.digest(answer.session_token)
    assert answer.session_token.encode() not in row.token_digest
    assert row.strength == "password"
    assert row.method == "password"


def test_reading_the_record_needs_two_factors(registry: Registry, portal: Portal) -> None:
    borrower_with_password(registry, "N000180002")
    portal.log_in("N000180002")

    with pytest.raises(grpc.RpcError) as refused:
        portal.record()

    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert error_details(refused.value)[0] == "TWO_FACTORS_REQUIRED"


@pytest.mark.parametrize(
    ("card_number", "password"),
    [("N000180003", "not the password at all"), ("N000189999", PASSWORD)],
    ids=["wrong password", "unknown card"],
)
def test_a_wrong_password_or_unknown_card_opens_no_session(
    registry: Registry, portal: Portal, prepared_database: str, card_number: str, password: str
) -> None:
    borrower_with_password(registry, "N000180003")

    with pytest.raises(grpc.RpcError) as refused:
        portal.log_in(card_number, password)

    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error_details(refused.value)[0] == "CREDENTIALS_INVALID"
    assert session_rows(prepared_database) == []


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"card_number": "12345", "password": PASSWORD}, "card_number"),
        ({"card_number": "N000180004", "password": "short"}, "password"),
        (
            {
                "identity": borrower_pb2.IdentityKey(
                    kind=borrower_pb2.IDENTITY_KIND_UNSPECIFIED, value="x"
                ),
                "password": PASSWORD,
            },
            "identity.kind",
        ),
    ],
)
def test_a_malformed_login_names_the_field_and_opens_nothing(
    registry: Registry,
    portal: Portal,
    prepared_database: str,
    request_fields: dict[str, object],
    field: str,
) -> None:
    borrower_with_password(registry, "N000180004")

    with pytest.raises(grpc.RpcError) as refused:
        portal.stub.LogInWithPassword(pb.LogInWithPasswordRequest(**request_fields))  # type: ignore[arg-type]

    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in error_details(refused.value)[1]
    assert session_rows(prepared_database) == []


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        bearer("nlrs_" + "A" * 43),
        (("authorization", "Basic dXNlcjpwYXNz"),),
        bearer("not a token"),
    ],
    ids=["none", "never issued", "not bearer", "malformed"],
)
def test_a_call_without_a_live_session_is_unauthenticated(
    portal: Portal, metadata: tuple[tuple[str, str], ...]
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        portal.stub.GetMyRecord(pb.GetMyRecordRequest(), metadata=metadata)

    assert_session_invalid(refused.value)


def test_a_session_shown_by_another_portal_certificate_is_refused(
    registry: Registry,
    portal: Portal,
    server: ServerThread,
    pki: DevPkiPaths,
    certificates: ClientCertificates,
) -> None:
    borrower_with_password(registry, "N000180005")
    token = portal.log_in("N000180005").session_token

    with (
        portal_client(server.target, pki, certificates, "other_portal") as other,
        pytest.raises(grpc.RpcError) as refused,
    ):
        other.LogOut(pb.LogOutRequest(), metadata=bearer(token))
    assert_session_invalid(refused.value)
    # The session itself goes on through its own portal.
    log_out(portal)


def test_only_a_portal_certificate_may_call_selfservice(
    server: ServerThread, pki: DevPkiPaths
) -> None:
    for cert, key in ((pki.ils_cert, pki.ils_key), (pki.auth_cert, pki.auth_key)):
        with (
            client_channel(server.target, pki, cert=cert, key=key) as channel,
            pytest.raises(grpc.RpcError) as refused,
        ):
            SelfServiceStub(channel).LogInWithPassword(
                pb.LogInWithPasswordRequest(card_number="N000180006", password=PASSWORD)
            )
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert error_details(refused.value)[0] == "ROLE_NOT_ALLOWED"


def test_log_out_ends_the_session(
    registry: Registry, portal: Portal, prepared_database: str
) -> None:
    borrower_with_password(registry, "N000180007")
    portal.log_in("N000180007")

    log_out(portal)

    with pytest.raises(grpc.RpcError) as refused:
        log_out(portal)
    assert_session_invalid(refused.value)
    assert session_rows(prepared_database) == []


def test_an_expired_session_opens_nothing(
    registry: Registry, portal: Portal, prepared_database: str
) -> None:
    borrower_with_password(registry, "N000180008")
    portal.log_in("N000180008")
    set_session_expiry(
        prepared_database, portal.token, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    )

    with pytest.raises(grpc.RpcError) as refused:
        log_out(portal)

    assert_session_invalid(refused.value)


def test_each_use_moves_the_expiry_on(
    registry: Registry, portal: Portal, prepared_database: str
) -> None:
    borrower_with_password(registry, "N000180009")
    portal.log_in("N000180009")
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    set_session_expiry(prepared_database, portal.token, soon)

    with pytest.raises(grpc.RpcError):
        portal.record()  # refused (one factor), but a use of the session all the same

    (row,) = session_rows(prepared_database)
    assert row.expires_at.replace(tzinfo=dt.UTC) - soon > dt.timedelta(minutes=12)


def test_a_new_password_or_pin_from_a_library_ends_the_sessions(
    registry: Registry, portal: Portal, prepared_database: str
) -> None:
    borrower_with_password(registry, "N000180010")
    portal.log_in("N000180010")
    registry.stub.SetPin(
        registry_pb.SetPinRequest(card_number="N000180010", pin="4711"),
        metadata=registry.metadata,
    )
    with pytest.raises(grpc.RpcError) as refused:
        log_out(portal)
    assert_session_invalid(refused.value)

    portal.log_in("N000180010")
    registry.stub.SetPassword(
        registry_pb.SetPasswordRequest(card_number="N000180010", password="another long password"),
        metadata=registry.metadata,
    )
    with pytest.raises(grpc.RpcError) as refused:
        log_out(portal)
    assert_session_invalid(refused.value)
    assert session_rows(prepared_database) == []


def test_a_login_and_each_call_are_audited_as_the_borrower_through_the_portal(
    registry: Registry, portal: Portal, prepared_database: str
) -> None:
    borrower_with_password(registry, "N000180011")
    portal.log_in("N000180011")
    log_out(portal)

    audit = table_of(AuditEventRow)
    wait_for_audit_rows(prepared_database, 2, audit.c.id, where=audit.c.card_number == "N000180011")
    rows = audit_rows(
        prepared_database,
        audit.c.rpc,
        audit.c.outcome,
        audit.c.actor_kind,
        audit.c.actor_id,
        audit.c.library_number,
        audit.c.vendor_id,
        where=(audit.c.card_number == "N000180011")
        & audit.c.rpc.in_(["LogInWithPassword", "LogOut"]),
    )
    assert [row[:5] for row in rows] == [
        ("LogInWithPassword", "OK", None, None, None),
        ("LogOut", "OK", ActorKind.BORROWER.value, "N000180011", None),
    ]
    # Both through the portal certificate's vendor (the ILS's: the test vendor has both).
    vendors = {row[5] for row in rows}
    assert len(vendors) == 1 and None not in vendors


def test_selfservice_and_authenticate_share_the_password_lockout(
    registry: Registry, portal: Portal, server: ServerThread, pki: DevPkiPaths
) -> None:
    borrower_with_password(registry, "N000180012")
    with client_channel(server.target, pki, cert=pki.auth_cert, key=pki.auth_key) as channel:
        authenticate = authenticate_pb2_grpc.AuthenticateStub(channel)
        for _ in range(5):
            with pytest.raises(grpc.RpcError):
                authenticate.VerifyPassword(
                    auth_pb.VerifyPasswordRequest(card_number="N000180012", password="x" * 12)
                )

    with pytest.raises(grpc.RpcError) as refused:
        portal.log_in("N000180012")

    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_details(refused.value)[0] == "LOGIN_LOCKED"


def test_maintenance_removes_expired_sessions(
    registry: Registry, portal: Portal, prepared_database: str, server: ServerThread
) -> None:
    borrower_with_password(registry, "N000180013")
    portal.log_in("N000180013")
    expired = portal.token
    portal.log_in("N000180013")
    set_session_expiry(
        prepared_database, expired, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    )

    done = subprocess.run(
        [sys.executable, "-m", "nlr_server.ops.admin", "maintenance", "--json"],
        env={
            **os.environ,
            "NLR_DATABASE_URL": prepared_database,
            "NLR_KEYRING": str(server.config.keyring),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sessions_expired"] == 1
    (row,) = session_rows(prepared_database)
    assert row.token_digest == session_token.digest(portal.token)
