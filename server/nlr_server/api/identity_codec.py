"""A borrower's other identities (Feide, Pocket, school card), proto <-> domain.

The kind numbers are the same in nlr.registry.v1 and nlr.auth.v1, so one mapping serves both.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp

from nlr.registry.v1 import borrower_pb2
from nlr_server.api.borrower_details_codec import timestamp
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.errors import InvalidValue, Violations
from nlr_server.domain.identity import IdentityKind, IdentityValue, check_delete_after
from nlr_server.domain.validation import check, field_path

_KIND_TO_PROTO: dict[IdentityKind, borrower_pb2.IdentityKind.ValueType] = {
    IdentityKind.FEIDE: borrower_pb2.IDENTITY_KIND_FEIDE,
    IdentityKind.POCKET: borrower_pb2.IDENTITY_KIND_POCKET,
    IdentityKind.SCHOOL_CARD: borrower_pb2.IDENTITY_KIND_SCHOOL_CARD,
    IdentityKind.FEIDE_ID: borrower_pb2.IDENTITY_KIND_FEIDE_ID,
}
_KIND_FROM_PROTO: dict[int, IdentityKind] = {
    number: kind for kind, number in _KIND_TO_PROTO.items()
}


def decode_kind(violations: Violations, value: int, field: str) -> IdentityKind | None:
    if value == borrower_pb2.IDENTITY_KIND_UNSPECIFIED:
        violations.add(field, "is required: FEIDE, POCKET, SCHOOL_CARD or FEIDE_ID")
        return None
    kind = _KIND_FROM_PROTO.get(value)
    if kind is None:
        violations.add(field, "unknown value")
    return kind


def decode_identity_key(
    violations: Violations, kind: int, value: str, prefix: str
) -> IdentityValue | None:
    """Kind and value, as in GetBorrower's key, AddIdentity and Authenticate."""
    decoded_kind = decode_kind(violations, kind, field_path(prefix, "kind"))
    value_field = field_path(prefix, "value")
    if not value.strip():
        violations.add(value_field, "is required")
        return None
    if decoded_kind is None:
        return None
    return check(violations, value_field, lambda: IdentityValue.parse(decoded_kind, value))


def decode_delete_after(
    violations: Violations, message: borrower_pb2.Identity, prefix: str, now: dt.datetime
) -> dt.datetime | None:
    """The requested deletion time; None when unset (the server's default lifetime applies)."""
    if not message.HasField("delete_after_time"):
        return None
    field = field_path(prefix, "delete_after_time")
    return check(
        violations,
        field,
        lambda: check_delete_after(_to_datetime(message.delete_after_time), now),
    )


def _to_datetime(value: Timestamp) -> dt.datetime:
    try:
        return value.ToDatetime(tzinfo=dt.UTC)
    except (ValueError, OverflowError):
        raise InvalidValue("must be a valid time") from None


def encode_identities(message: borrower_pb2.Borrower, borrower: Borrower) -> None:
    for identity in borrower.identities:
        message.identities.add(
            kind=_KIND_TO_PROTO[identity.kind],
            value=identity.value,
            create_time=timestamp(identity.created_at),
            delete_after_time=timestamp(identity.delete_after),
        )
