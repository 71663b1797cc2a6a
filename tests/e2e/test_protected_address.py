"""A protected address (adressebeskyttelse) is never given to any library, in any view."""

from __future__ import annotations

from pathlib import Path

from google.protobuf.field_mask_pb2 import FieldMask

from admin_runner import Admin, admin_environment
from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from register_harness import BERGEN, Registry, ServerThread, create, get, new_borrower


def test_after_the_operator_protects_it_no_view_carries_the_address(
    registry: Registry, server: ServerThread, keyring_path: Path
) -> None:
    created = create(registry, new_borrower("N000001301"))
    assert created.registered_address.city == "Oslo"  # a control: it is served until protected
    admin = Admin(
        admin_environment(
            NLR_DATABASE_URL=server.config.database_url, NLR_KEYRING=str(keyring_path)
        )
    )

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
    admin = Admin(
        admin_environment(
            NLR_DATABASE_URL=server.config.database_url, NLR_KEYRING=str(keyring_path)
        )
    )

    assert "no borrower" in admin.error("borrowers", "protect-address", "N999999999", expect=1)
    assert "card number" in admin.error("borrowers", "protect-address", "X1", expect=2)
