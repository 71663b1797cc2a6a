"""A protected address (adressebeskyttelse) is never given to any library, in any view."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from admin_runner import Admin, admin_environment
from feed_harness import read_feed
from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from register_harness import (
    BERGEN,
    Registry,
    ServerThread,
    create,
    error_details,
    get,
    new_borrower,
)


def operator(server: ServerThread, keyring_path: Path) -> Admin:
    return Admin(
        admin_environment(
            NLR_DATABASE_URL=server.config.database_url, NLR_KEYRING=str(keyring_path)
        )
    )


def update_email(registry: Registry, card: str, etag: str, email: str) -> borrower_pb2.Borrower:
    return registry.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(card_number=card, etag=etag, email=email),
            update_mask=FieldMask(paths=["email"]),
        ),
        metadata=registry.metadata,
    ).borrower


def test_after_the_operator_protects_it_no_view_carries_the_address(
    registry: Registry, server: ServerThread, keyring_path: Path
) -> None:
    created = create(registry, new_borrower("N000001301"))
    assert created.registered_address.city == "Oslo"  # a control: it is served until protected
    admin = operator(server, keyring_path)

    admin("borrowers", "protect-address", "N000001301")

    full = get(registry, card_number="N000001301")
    assert full.view == borrower_pb2.BORROWER_VIEW_FULL
    assert full.address_protected
    assert not full.HasField("registered_address")
    assert not get(registry.as_library(BERGEN), card_number="N000001301").HasField(
        "registered_address"
    )
    # Even an update that writes a new address does not hand it back.
    updated = registry.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(
                card_number="N000001301",
                etag=full.etag,
                registered_address=borrower_pb2.Address(
                    lines=["Hemmelig vei 1"], postal_code="0001", city="Oslo"
                ),
            ),
            update_mask=FieldMask(paths=["registered_address"]),
        ),
        metadata=registry.metadata,
    ).borrower
    assert not updated.HasField("registered_address")

    admin("borrowers", "unprotect-address", "N000001301")
    assert get(registry, card_number="N000001301").registered_address.lines == ["Hemmelig vei 1"]


def test_protecting_an_unknown_card_is_not_found(server: ServerThread, keyring_path: Path) -> None:
    admin = operator(server, keyring_path)

    assert "no borrower" in admin.error("borrowers", "protect-address", "N999999999", expect=1)
    assert "card number" in admin.error("borrowers", "protect-address", "X1", expect=2)


@pytest.mark.parametrize("command", ["protect-address", "unprotect-address"])
def test_protecting_or_unprotecting_gives_a_new_etag_and_the_old_one_is_aborted(
    registry: Registry, server: ServerThread, keyring_path: Path, command: str
) -> None:
    create(registry, new_borrower("N000001302"))
    admin = operator(server, keyring_path)
    if command == "unprotect-address":
        admin("borrowers", "protect-address", "N000001302")
    read = get(registry, card_number="N000001302")
    _, cursor = read_feed(registry)

    admin("borrowers", command, "N000001302")

    now = get(registry, card_number="N000001302")
    assert now.address_protected is (command == "protect-address")
    assert now.etag != read.etag
    with pytest.raises(grpc.RpcError) as stale:
        update_email(registry, "N000001302", read.etag, "stale@example.no")
    assert stale.value.code() == grpc.StatusCode.ABORTED
    assert error_details(stale.value)[0] == "ETAG_MISMATCH"
    assert get(registry, card_number="N000001302") == now  # the refused update changed nothing
    # Libraries following the feed get the change with the new etag.
    changes, _ = read_feed(registry, cursor)
    assert [(c.kind, c.borrower.card_number, c.borrower.etag) for c in changes] == [
        (pb.CHANGE_KIND_UPDATED, "N000001302", now.etag)
    ]
    assert changes[0].borrower.HasField("registered_address") is (command != "protect-address")
    assert update_email(registry, "N000001302", now.etag, "fresh@example.no").email == (
        "fresh@example.no"
    )
