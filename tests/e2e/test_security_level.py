"""A borrower's security level through UpdateBorrower: a library may raise it or keep it, never
lower it (PERMISSION_DENIED, SECURITY_LEVEL_LOWERING, nothing changed)."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from register_harness import Registry, create, error_details, get, new_borrower

PIN = borrower_pb2.SECURITY_LEVEL_PIN
PASSWORD = borrower_pb2.SECURITY_LEVEL_PASSWORD


def update(
    registry: Registry, card_number: str, etag: str, paths: list[str], **fields: object
) -> borrower_pb2.Borrower:
    borrower = borrower_pb2.Borrower(card_number=card_number, etag=etag, **fields)  # type: ignore[arg-type]
    return registry.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(borrower=borrower, update_mask=FieldMask(paths=paths)),
        metadata=registry.metadata,
    ).borrower


def test_raising_pin_to_password_is_allowed_and_changes_the_etag(registry: Registry) -> None:
    created = create(registry, new_borrower("N000001501"))
    assert created.security_level == PIN

    raised = update(
        registry, "N000001501", created.etag, ["security_level"], security_level=PASSWORD
    )

    assert raised.security_level == PASSWORD
    assert raised.etag != created.etag
    stored = get(registry, card_number="N000001501")
    assert stored.security_level == PASSWORD
    assert stored.etag == raised.etag


@pytest.mark.parametrize(
    ("paths", "fields"),
    [
        (["security_level"], {"security_level": PIN}),
        # With another field in the same request: that one is not changed either.
        (["email", "security_level"], {"security_level": PIN, "email": "ny@example.org"}),
        # Naming the field with no value is asking for the default, the weakest level.
        (["security_level"], {}),
    ],
)
def test_lowering_password_to_pin_is_permission_denied_and_changes_nothing(
    registry: Registry, paths: list[str], fields: dict[str, object]
) -> None:
    created = create(
        registry,
        new_borrower("N000001502", security_level=PASSWORD, email="gammel@example.org"),
    )
    assert created.security_level == PASSWORD

    with pytest.raises(grpc.RpcError) as refused:
        update(registry, "N000001502", created.etag, paths, **fields)

    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_details(refused.value)[0] == "SECURITY_LEVEL_LOWERING"
    after = get(registry, card_number="N000001502")
    assert after.security_level == PASSWORD
    assert after.email == "gammel@example.org"
    assert after.etag == created.etag


@pytest.mark.parametrize("level", [PIN, PASSWORD])
def test_setting_the_same_level_is_fine(registry: Registry, level: int) -> None:
    created = create(registry, new_borrower("N000001503", security_level=level))

    kept = update(
        registry,
        "N000001503",
        created.etag,
        ["security_level", "email"],
        security_level=level,
        email="ny@example.org",
    )

    assert kept.security_level == level
    assert kept.email == "ny@example.org"
    assert get(registry, card_number="N000001503").security_level == level


def test_a_level_raised_by_an_update_cannot_then_be_lowered(registry: Registry) -> None:
    # Raised by the library itself, the level is then as binding as one set on create.
    created = create(registry, new_borrower("N000001504"))
    raised = update(
        registry, "N000001504", created.etag, ["security_level"], security_level=PASSWORD
    )

    with pytest.raises(grpc.RpcError) as refused:
        update(registry, "N000001504", raised.etag, ["security_level"], security_level=PIN)

    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_details(refused.value)[0] == "SECURITY_LEVEL_LOWERING"
    assert get(registry, card_number="N000001504").etag == raised.etag
