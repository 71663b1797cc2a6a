"""The borrower's details beyond name, identity and registered contact data, proto ↔ domain:
temporary address, contact preferences, the "should be checked" flags, language, card expiry
and consent."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from nlr.registry.v1 import borrower_pb2
from nlr_server.domain.address import Address, TemporaryAddress
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.contact import ContactMethod, LanguageCode, PhoneKind
from nlr_server.domain.errors import InvalidValue, Violations
from nlr_server.domain.validation import check, check_optional

T = TypeVar("T")

# Every field this module decodes, by its update_mask path (= PersonalData field name).
DETAIL_FIELDS = frozenset(
    {
        "temporary_address",
        "email_should_be_checked",
        "registered_address_should_be_checked",
        "temporary_address_should_be_checked",
        "primary_phone",
        "preferred_contact_method",
        "preferred_language",
        "card_expiry_date",
        "consent_time",
    }
)

_PHONE_KIND_TO_PROTO: dict[PhoneKind, borrower_pb2.PhoneKind.ValueType] = {
    PhoneKind.MOBILE: borrower_pb2.PHONE_KIND_MOBILE,
    PhoneKind.HOME: borrower_pb2.PHONE_KIND_HOME,
    PhoneKind.WORK: borrower_pb2.PHONE_KIND_WORK,
}
_PHONE_KIND_FROM_PROTO: dict[int, PhoneKind] = {
    number: kind for kind, number in _PHONE_KIND_TO_PROTO.items()
}
_METHOD_TO_PROTO: dict[ContactMethod, borrower_pb2.ContactMethod.ValueType] = {
    ContactMethod.EMAIL: borrower_pb2.CONTACT_METHOD_EMAIL,
    ContactMethod.SMS: borrower_pb2.CONTACT_METHOD_SMS,
    ContactMethod.LETTER: borrower_pb2.CONTACT_METHOD_LETTER,
}
_METHOD_FROM_PROTO: dict[int, ContactMethod] = {
    number: method for method, number in _METHOD_TO_PROTO.items()
}

# A temporary address is for a while: up to ten years ahead.
_LONGEST_TEMPORARY = dt.timedelta(days=3653)
# Clocks differ a little: a consent time this far ahead of ours is still accepted.
_CLOCK_SKEW = dt.timedelta(minutes=5)


def decode_details(
    violations: Violations,
    message: borrower_pb2.Borrower,
    fields: frozenset[str],
    now: dt.datetime,
) -> dict[str, Any]:
    """The named detail fields' new values (None clears one), as PersonalData keyword arguments.

    Each bad field is recorded in ``violations``.
    """
    values: dict[str, Any] = {}
    if "temporary_address" in fields:
        values["temporary_address"] = _temporary_address(violations, message, now.date())
    if "email_should_be_checked" in fields:
        values["email_should_be_checked"] = message.email_should_be_checked
    if "registered_address_should_be_checked" in fields:
        values["registered_address_should_be_checked"] = (
            message.registered_address_should_be_checked
        )
    if "temporary_address_should_be_checked" in fields:
        values["temporary_address_should_be_checked"] = message.temporary_address_should_be_checked
    if "primary_phone" in fields:
        values["primary_phone"] = _enum(
            violations, "borrower.primary_phone", message.primary_phone, _PHONE_KIND_FROM_PROTO
        )
    if "preferred_contact_method" in fields:
        values["preferred_contact_method"] = _enum(
            violations,
            "borrower.preferred_contact_method",
            message.preferred_contact_method,
            _METHOD_FROM_PROTO,
        )
    if "preferred_language" in fields:
        values["preferred_language"] = check_optional(
            violations,
            "borrower.preferred_language",
            message.preferred_language,
            LanguageCode.parse,
        )
    if "card_expiry_date" in fields:
        values["card_expiry_date"] = check_optional(
            violations, "borrower.card_expiry_date", message.card_expiry_date, _card_expiry
        )
    if "consent_time" in fields:
        values["consent_time"] = (
            check(violations, "borrower.consent_time", lambda: _consent(message.consent_time, now))
            if message.HasField("consent_time")
            else None
        )
    return values


def encode_details(message: borrower_pb2.Borrower, borrower: Borrower) -> None:
    """Fills the detail fields of a full view, of a borrower as disclosed (domain/views.py)."""
    personal = borrower.personal
    temporary = personal.temporary_address
    if temporary is not None:
        message.temporary_address.address.CopyFrom(encode_address(temporary.address))
        message.temporary_address.valid_until = temporary.valid_until.isoformat()
    message.email_should_be_checked = personal.email_should_be_checked
    message.registered_address_should_be_checked = personal.registered_address_should_be_checked
    message.temporary_address_should_be_checked = personal.temporary_address_should_be_checked
    if personal.primary_phone is not None:
        message.primary_phone = _PHONE_KIND_TO_PROTO[personal.primary_phone]
    if personal.preferred_contact_method is not None:
        message.preferred_contact_method = _METHOD_TO_PROTO[personal.preferred_contact_method]
    if personal.preferred_language is not None:
        message.preferred_language = personal.preferred_language.value
    if personal.card_expiry_date is not None:
        message.card_expiry_date = personal.card_expiry_date.isoformat()
    if personal.consent_time is not None:
        message.consent_time.CopyFrom(timestamp(personal.consent_time))
    if borrower.population_register_checked_at is not None:
        message.population_register_check_time.CopyFrom(
            timestamp(borrower.population_register_checked_at)
        )
    if borrower.population_register_status is not None:
        message.population_register_status = borrower.population_register_status


def encode_address(address: Address) -> borrower_pb2.Address:
    return borrower_pb2.Address(
        lines=address.lines,
        postal_code=address.postal_code,
        city=address.city,
        country_code=address.country_code,
    )


def timestamp(moment: dt.datetime) -> Timestamp:
    # Whole seconds and nanoseconds directly: Timestamp.FromDatetime is slow on the hot path.
    return Timestamp(seconds=int(moment.timestamp()), nanos=moment.microsecond * 1000)


def _temporary_address(
    violations: Violations, message: borrower_pb2.Borrower, today: dt.date
) -> TemporaryAddress | None:
    if not message.HasField("temporary_address"):
        return None
    temporary = message.temporary_address
    prefix = "borrower.temporary_address"
    address = None
    if temporary.HasField("address"):
        given = temporary.address
        address = Address.parse(
            list(given.lines),
            given.postal_code,
            given.city,
            given.country_code,
            violations,
            f"{prefix}.address",
        )
    else:
        violations.add(f"{prefix}.address", "is required")
    field = f"{prefix}.valid_until"
    valid_until = None
    if not temporary.valid_until.strip():
        violations.add(field, "is required")
    else:
        valid_until = check(violations, field, lambda: _valid_until(temporary.valid_until, today))
    if address is None or valid_until is None:
        return None
    return TemporaryAddress(address, valid_until)


def _valid_until(raw: str, today: dt.date) -> dt.date:
    day = _date(raw)
    if day < today:
        raise InvalidValue("must be today or later")
    if day > today + _LONGEST_TEMPORARY:
        raise InvalidValue("must be at most 10 years ahead")
    return day


def _card_expiry(raw: str) -> dt.date:
    day = _date(raw)
    if not 2000 <= day.year <= 2199:
        raise InvalidValue("must be a date between 2000 and 2199")
    return day


def _date(raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidValue("must be a date as YYYY-MM-DD") from None


def _consent(given: Timestamp, now: dt.datetime) -> dt.datetime:
    try:
        moment = given.ToDatetime(tzinfo=dt.UTC)
    except (ValueError, OverflowError):
        raise InvalidValue("must be a valid time") from None
    if moment > now + _CLOCK_SKEW:
        raise InvalidValue("must not be in the future")
    if moment.year < 2000:
        raise InvalidValue("must be in the year 2000 or later")
    return moment


def _enum(violations: Violations, field: str, value: int, known: dict[int, T]) -> T | None:
    if value == 0:
        return None
    item = known.get(value)
    if item is None:
        violations.add(field, "unknown value")
    return item
