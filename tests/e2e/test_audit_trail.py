"""Every call that reads or changes a borrower, or tries to, leaves an audit event within a
second: who, for which library, which call, which borrower, what outcome; never a value."""

from __future__ import annotations

import dataclasses

import grpc
import pytest

from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.crypto.keyring import Keyring
from register_harness import (
    BERGEN,
    OSLO,
    Registry,
    ServerThread,
    create,
    get,
    national_id,
    new_borrower,
    wait_for_audit,
)


def test_a_read_is_audited_with_vendor_library_call_borrower_and_outcome(
    registry: Registry, server: ServerThread, keyring: Keyring
) -> None:
    created = create(registry, new_borrower("N000000801"))
    get(registry.as_library(BERGEN), card_number="N000000801")

    events = wait_for_audit(server.config.database_url, keyring, "N000000801", 2)

    assert [(e.rpc, e.library_number, e.outcome) for e in events] == [
        ("CreateBorrower", OSLO, "OK"),
        ("GetBorrower", BERGEN, "OK"),
    ]
    assert all(e.vendor_id is not None and e.borrower_id is not None for e in events)
    assert created.card_number == events[1].card_number


def test_a_read_by_national_id_is_audited_under_the_card_number(
    registry: Registry, server: ServerThread, keyring: Keyring
) -> None:
    nid = national_id()
    create(registry, new_borrower("N000000802", national_id=nid))
    get(registry, national_id=nid)

    events = wait_for_audit(server.config.database_url, keyring, "N000000802", 2)

    assert [e.rpc for e in events] == ["CreateBorrower", "GetBorrower"]
    for event in events:
        assert nid not in repr(dataclasses.astuple(event))


def test_a_refused_affiliation_is_audited_with_its_reason(
    registry: Registry, server: ServerThread, keyring: Keyring
) -> None:
    create(registry, new_borrower("N000000803"))
    bergen = registry.as_library(BERGEN)
    with pytest.raises(grpc.RpcError):
        bergen.stub.AffiliateBorrower(
            pb.AffiliateBorrowerRequest(card_number="N000000803", national_id=national_id()),
            metadata=bergen.metadata,
        )

    events = wait_for_audit(server.config.database_url, keyring, "N000000803", 2)

    assert (events[-1].rpc, events[-1].library_number, events[-1].outcome, events[-1].reason) == (
        "AffiliateBorrower",
        BERGEN,
        "PERMISSION_DENIED",
        "AFFILIATION_PROOF_MISMATCH",
    )


def test_a_call_refused_for_a_wrong_code_is_audited(
    registry: Registry, server: ServerThread, keyring: Keyring
) -> None:
    create(registry, new_borrower("N000000804"))
    with pytest.raises(grpc.RpcError):
        get(registry.as_library(OSLO, code="wrong"), card_number="N000000804")

    events = wait_for_audit(server.config.database_url, keyring, "N000000804", 2)

    assert [(e.rpc, e.library_number, e.outcome, e.reason) for e in events] == [
        ("CreateBorrower", OSLO, "OK", None),
        ("GetBorrower", None, "PERMISSION_DENIED", "LIBRARY_CODE_INVALID"),
    ]


def test_audit_events_hold_no_personal_data(
    registry: Registry, server: ServerThread, keyring: Keyring
) -> None:
    create(
        registry,
        new_borrower("N000000805", given_name="Auditname", email="auditname@example.org"),
    )
    get(registry, card_number="N000000805")

    events = wait_for_audit(server.config.database_url, keyring, "N000000805", 2)

    flattened = repr([dataclasses.astuple(e) for e in events])
    assert len(events) == 2
    assert "Auditname" not in flattened
    assert "auditname@example.org" not in flattened
    assert "+4791234567" not in flattened
