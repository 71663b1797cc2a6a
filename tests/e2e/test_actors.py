"""Who acts is an actor: a library through its vendor, an operator through nlr-admin, the
register's own maintenance. The record names its creator and last changer; the audit trail
names the actor of every event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from admin_runner import Admin, admin_environment
from nlr.registry.v1 import borrower_pb2, registry_service_pb2_grpc
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.models import AuditEventRow
from register_harness import (
    BERGEN,
    OSLO,
    Registry,
    ServerThread,
    audit_rows,
    client_channel,
    create,
    get,
    make_config,
    national_id,
    new_borrower,
    wait_for_audit_rows,
)

ACTOR = (
    AuditEventRow.rpc,
    AuditEventRow.actor_kind,
    AuditEventRow.actor_id,
    AuditEventRow.outcome,
    AuditEventRow.card_number,
)


def operator_named(name: str, server: ServerThread, keyring_path: Path) -> Admin:
    return Admin(
        admin_environment(
            NLR_DATABASE_URL=server.config.database_url,
            NLR_KEYRING=str(keyring_path),
            NLR_OPERATOR=name,
        )
    )


def test_a_library_creates_and_changes_as_a_library_actor(
    registry: Registry, server: ServerThread
) -> None:
    created = create(registry, new_borrower("N000002101"))

    assert created.created_by_kind == borrower_pb2.ACTOR_KIND_LIBRARY
    assert created.created_by == OSLO
    assert created.last_changed_by_kind == borrower_pb2.ACTOR_KIND_LIBRARY
    assert created.last_changed_by == OSLO
    rows = audit_rows(
        server.config.database_url, *ACTOR, where=AuditEventRow.card_number == "N000002101"
    )
    assert rows == [("CreateBorrower", "library", OSLO, "OK", "N000002101")]


def test_protect_address_by_an_operator_names_the_operator_in_record_and_trail(
    registry: Registry, server: ServerThread, keyring_path: Path
) -> None:
    create(registry, new_borrower("N000002102"))

    operator = operator_named("kari.drift", server, keyring_path)
    operator("borrowers", "protect-address", "N000002102")

    record = get(registry, card_number="N000002102")
    assert record.created_by_kind == borrower_pb2.ACTOR_KIND_LIBRARY
    assert record.created_by == OSLO
    assert record.last_changed_by_kind == borrower_pb2.ACTOR_KIND_OPERATOR
    # The library field holds only a library's number: empty for another kind of actor.
    assert record.last_changed_by == ""
    rows = audit_rows(
        server.config.database_url,
        *ACTOR,
        where=(AuditEventRow.card_number == "N000002102")
        & (AuditEventRow.rpc != "GetBorrower")
        & (AuditEventRow.rpc != "CreateBorrower"),
    )
    assert rows == [
        ("nlr-admin borrowers protect-address", "operator", "kari.drift", "OK", "N000002102")
    ]
    listed = [(e["actor"], e["rpc"]) for e in operator.json("audit", "--card", "N000002102")]
    assert listed[0] == (f"library:{OSLO}", "CreateBorrower")
    assert ("operator:kari.drift", "nlr-admin borrowers protect-address") in listed


def test_an_unknown_card_protected_leaves_a_refusal_for_nobody_and_changes_nothing(
    server: ServerThread, keyring_path: Path
) -> None:
    operator = operator_named("kari.drift", server, keyring_path)

    operator.error("borrowers", "protect-address", "N999999998", expect=1)

    assert (
        audit_rows(
            server.config.database_url,
            *ACTOR,
            where=AuditEventRow.card_number == "N999999998",
        )
        == []
    )


def test_nlr_admin_maintenance_is_audited_with_its_operator(
    server: ServerThread, keyring_path: Path
) -> None:
    operator_named("ola.drift", server, keyring_path)("maintenance")

    rows = audit_rows(
        server.config.database_url, *ACTOR, where=AuditEventRow.rpc == "nlr-admin maintenance"
    )
    assert rows == [("nlr-admin maintenance", "operator", "ola.drift", "OK", None)]


@pytest.fixture
def maintained_server(
    prepared_database: str, pki: DevPkiPaths, keyring_path: Path
) -> Iterator[ServerThread]:
    config = make_config(pki, keyring_path, prepared_database, maintenance_interval_seconds=0.3)
    server = ServerThread(config).start()
    yield server
    server.stop()


def test_the_servers_maintenance_is_audited_as_the_system_per_borrower_and_per_run(
    maintained_server: ServerThread, pki: DevPkiPaths
) -> None:
    url = maintained_server.config.database_url
    with client_channel(maintained_server.target, pki) as channel:
        stub = registry_service_pb2_grpc.BorrowerRegistryStub(channel)
        registry = Registry(stub, OSLO).as_library(OSLO)
        create(registry, new_borrower("N000002103"))
        soon = Timestamp()
        soon.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
        registry.stub.AddIdentity(
            pb.AddIdentityRequest(
                card_number="N000002103",
                identity=borrower_pb2.Identity(
                    kind=borrower_pb2.IDENTITY_KIND_POCKET,
                    value="pocket-2103",
                    delete_after_time=soon,
                ),
            ),
            metadata=registry.metadata,
        )

        removed = wait_for_audit_rows(
            url,
            1,
            *ACTOR,
            where=(AuditEventRow.rpc == "maintenance") & (AuditEventRow.card_number.is_not(None)),
        )
        runs = wait_for_audit_rows(
            url,
            1,
            *ACTOR,
            where=(AuditEventRow.rpc == "maintenance") & (AuditEventRow.card_number.is_(None)),
        )

        assert removed == [("maintenance", "system", "maintenance", "OK", "N000002103")]
        assert runs[0] == ("maintenance", "system", "maintenance", "OK", None)
        assert not get(registry, card_number="N000002103").identities


def test_a_call_refused_before_its_library_is_known_names_no_actor(
    registry: Registry, server: ServerThread
) -> None:
    stranger = registry.as_library("2999900")

    with pytest.raises(grpc.RpcError) as refused:
        get(stranger, card_number="N000002104")

    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    rows = audit_rows(
        server.config.database_url,
        AuditEventRow.actor_kind,
        AuditEventRow.actor_id,
        AuditEventRow.library_number,
        where=AuditEventRow.card_number == "N000002104",
    )
    assert rows == [(None, None, None)]


def test_a_new_affiliation_changes_the_etag_and_names_the_library_last_changer(
    registry: Registry,
) -> None:
    identity_number = national_id()
    created = create(registry, new_borrower("N000002105", national_id=identity_number))
    bergen = registry.as_library(BERGEN)

    affiliated = bergen.stub.AffiliateBorrower(
        pb.AffiliateBorrowerRequest(card_number="N000002105", national_id=identity_number),
        metadata=bergen.metadata,
    ).borrower

    assert affiliated.etag != created.etag
    assert (affiliated.last_changed_by_kind, affiliated.last_changed_by) == (
        borrower_pb2.ACTOR_KIND_LIBRARY,
        BERGEN,
    )
    # A change based on the record as it was before is refused.
    with pytest.raises(grpc.RpcError) as stale:
        registry.stub.UpdateBorrower(
            pb.UpdateBorrowerRequest(
                borrower=borrower_pb2.Borrower(
                    card_number="N000002105", etag=created.etag, email="ny@example.org"
                ),
                update_mask=FieldMask(paths=["email"]),
            ),
            metadata=registry.metadata,
        )
    assert stale.value.code() == grpc.StatusCode.ABORTED
