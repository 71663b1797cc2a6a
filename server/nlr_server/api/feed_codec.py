"""The change feed on the wire: changes, tombstones and the full sync's page tokens."""

from __future__ import annotations

import base64
import binascii

from nlr.registry.v1 import borrower_pb2, registry_service_pb2
from nlr_server.api.borrower_codec import encode_borrower
from nlr_server.api.borrower_details_codec import timestamp
from nlr_server.domain.borrower import DeletionReason
from nlr_server.domain.change_feed import Change, ChangeKind
from nlr_server.domain.errors import InvalidArgument

_KIND_TO_PROTO: dict[ChangeKind, registry_service_pb2.ChangeKind.ValueType] = {
    ChangeKind.CREATED: registry_service_pb2.CHANGE_KIND_CREATED,
    ChangeKind.UPDATED: registry_service_pb2.CHANGE_KIND_UPDATED,
    ChangeKind.CARD_REPLACED: registry_service_pb2.CHANGE_KIND_CARD_REPLACED,
    ChangeKind.AFFILIATED: registry_service_pb2.CHANGE_KIND_AFFILIATED,
    ChangeKind.AFFILIATION_REMOVED: registry_service_pb2.CHANGE_KIND_AFFILIATION_REMOVED,
    ChangeKind.DELETED: registry_service_pb2.CHANGE_KIND_DELETED,
}
_REASON_TO_PROTO: dict[DeletionReason, borrower_pb2.DeletionReason.ValueType] = {
    DeletionReason.BORROWER_REQUEST: borrower_pb2.DELETION_REASON_BORROWER_REQUEST,
    DeletionReason.DECEASED: borrower_pb2.DELETION_REASON_DECEASED,
}
_TOKEN_VERSION = "1"


def encode_change(change: Change) -> registry_service_pb2.Change:
    message = registry_service_pb2.Change(
        sequence=change.sequence,
        change_time=timestamp(change.occurred_at),
        kind=_KIND_TO_PROTO[change.kind],
    )
    if change.tombstone is not None:
        tombstone = change.tombstone
        message.tombstone.card_number = tombstone.card_number.value
        if tombstone.deletion_reason is not None:
            message.tombstone.deletion_reason = _REASON_TO_PROTO[tombstone.deletion_reason]
    else:
        assert change.borrower is not None
        message.borrower.CopyFrom(encode_borrower(change.borrower, change.view))
    return message


def encode_page_token(cursor: int, last_id: int) -> str:
    raw = f"{_TOKEN_VERSION}:{cursor}:{last_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[int | None, int]:
    """The feed cursor and the last internal id of the previous page; (None, 0) for none."""
    if not token:
        return None, 0
    try:
        padded = token + "=" * (-len(token) % 4)
        version, cursor, last_id = base64.urlsafe_b64decode(padded).decode("ascii").split(":")
        if version != _TOKEN_VERSION:
            raise ValueError(version)
        return _token_number(cursor), _token_number(last_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument.one(
            "page_token", "is not a token from ListAffiliatedBorrowers"
        ) from None


# A token is made by the server, but comes back from the caller: its numbers are checked to
# the range of the columns they are compared with (64-bit signed) before any query sees them.
_MAX_TOKEN_NUMBER = 2**63 - 1


def _token_number(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise ValueError("not a token number")
    number = int(text)
    if number > _MAX_TOKEN_NUMBER:
        raise ValueError("out of range")
    return number
