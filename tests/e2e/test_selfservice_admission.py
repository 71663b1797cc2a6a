"""Every SelfService RPC is the portal's only, and every one but the logins needs a live
session: each refusal is answered the same way and written to the audit trail."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from nlr.selfservice.v1 import selfservice_pb2
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.models import AuditEventRow, table_of
from register_harness import (
    ClientCertificates,
    ServerThread,
    client_channel,
    error_details,
    wait_for_audit_rows,
)

SELF_SERVICE = selfservice_pb2.DESCRIPTOR.services_by_name["SelfService"]
LOGINS = {"LogInWithPassword", "LogInWithIdPorten", "LogInWithFeide"}
AUDIT = table_of(AuditEventRow)


def _raw(data: bytes) -> bytes:
    return data


def call(channel: grpc.Channel, method: Any, metadata: Any = ()) -> grpc.RpcError:
    """The RPC with an empty request; the error it must answer."""
    with pytest.raises(grpc.RpcError) as refused:
        channel.unary_unary(f"/{SELF_SERVICE.full_name}/{method.name}", _raw, _raw)(
            b"", metadata=metadata, timeout=30
        )
    return refused.value


def test_every_rpc_refuses_a_certificate_of_another_role(
    server: ServerThread, pki: DevPkiPaths
) -> None:
    for cert, key in ((pki.ils_cert, pki.ils_key), (pki.auth_cert, pki.auth_key)):
        with client_channel(server.target, pki, cert=cert, key=key) as channel:
            for method in SELF_SERVICE.methods:
                refused = call(channel, method)
                assert (refused.code(), error_details(refused)[0]) == (
                    grpc.StatusCode.PERMISSION_DENIED,
                    "ROLE_NOT_ALLOWED",
                ), method.name


def test_every_rpc_but_the_logins_needs_a_session_and_each_refusal_is_audited(
    server: ServerThread, pki: DevPkiPaths, certificates: ClientCertificates, prepared_database: str
) -> None:
    cert, key = certificates.path("portal")
    needing = [m for m in SELF_SERVICE.methods if m.name not in LOGINS]
    assert len(needing) == 17
    with client_channel(server.target, pki, cert=cert, key=key) as channel:
        for method in needing:
            refused = call(channel, method, (("authorization", "Bearer nlrs_" + "x" * 43),))
            assert (refused.code(), error_details(refused)[0]) == (
                grpc.StatusCode.UNAUTHENTICATED,
                "SESSION_INVALID",
            ), method.name

    rows = wait_for_audit_rows(
        prepared_database,
        len(needing),
        AUDIT.c.rpc,
        AUDIT.c.outcome,
        AUDIT.c.reason,
        where=AUDIT.c.reason == "SESSION_INVALID",
    )
    assert sorted(rows) == sorted((m.name, "UNAUTHENTICATED", "SESSION_INVALID") for m in needing)
