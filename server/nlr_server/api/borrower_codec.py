"""Translates between the proto Borrower and the domain record, validating input at the edge."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from nlr.registry.v1 import borrower_pb2, registry_service_pb2
from nlr_server.api.borrower_details_codec import (
    DETAIL_FIELDS,
    decode_details,
    encode_address,
    encode_details,
    timestamp,
)
from nlr_server.api.identity_codec import (
    decode_delete_after,
    decode_identity_key,
    decode_kind,
    encode_identities,
)
from nlr_server.domain.actor import Actor, ActorKind
from nlr_server.domain.address import Address
from nlr_server.domain.borrower import (
    UPDATABLE_FIELDS,
    Borrower,
    DeletionReason,
    PersonalData,
    PersonalDataPatch,
    Sex,
)
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.contact import EmailAddress, PhoneNumber
from nlr_server.domain.credentials import Pin, SecurityLevel
from nlr_server.domain.errors import InvalidArgument, InvalidValue, Violations
from nlr_server.domain.identity import IdentityKind, IdentityValue
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.national_id import NationalId
from nlr_server.domain.person_name import PersonName
from nlr_server.domain.validation import check, check_optional
from nlr_server.domain.views import BorrowerView, disclosed
from nlr_server.usecases.borrowers import BirthDateAndPin

T = TypeVar("T")

_SEX_TO_PROTO: dict[Sex, borrower_pb2.Sex.ValueType] = {
    Sex.UNSPECIFIED: borrower_pb2.SEX_UNSPECIFIED,
    Sex.FEMALE: borrower_pb2.SEX_FEMALE,
    Sex.MALE: borrower_pb2.SEX_MALE,
}
_SEX_FROM_PROTO: dict[int, Sex] = {number: sex for sex, number in _SEX_TO_PROTO.items()}
_REASON_FROM_PROTO: dict[int, DeletionReason] = {
    borrower_pb2.DELETION_REASON_BORROWER_REQUEST: DeletionReason.BORROWER_REQUEST,
    borrower_pb2.DELETION_REASON_DECEASED: DeletionReason.DECEASED,
}
_VIEW_TO_PROTO = {
    BorrowerView.BASIC: borrower_pb2.BORROWER_VIEW_BASIC,
    BorrowerView.FULL: borrower_pb2.BORROWER_VIEW_FULL,
}
_PHONES = ("mobile_phone", "home_phone", "work_phone", "primary_contact_phone")
_ACTOR_KIND_TO_PROTO: dict[ActorKind, borrower_pb2.ActorKind.ValueType] = {
    ActorKind.LIBRARY: borrower_pb2.ACTOR_KIND_LIBRARY,
    ActorKind.BORROWER: borrower_pb2.ACTOR_KIND_BORROWER,
    ActorKind.POPULATION_REGISTER: borrower_pb2.ACTOR_KIND_POPULATION_REGISTER,
    ActorKind.OPERATOR: borrower_pb2.ACTOR_KIND_OPERATOR,
    ActorKind.SYSTEM: borrower_pb2.ACTOR_KIND_SYSTEM,
}
_SECURITY_TO_PROTO: dict[SecurityLevel, borrower_pb2.SecurityLevel.ValueType] = {
    SecurityLevel.PIN: borrower_pb2.SECURITY_LEVEL_PIN,
    SecurityLevel.PASSWORD: borrower_pb2.SECURITY_LEVEL_PASSWORD,
    SecurityLevel.TWO_FACTOR: borrower_pb2.SECURITY_LEVEL_TWO_FACTOR,
    SecurityLevel.EID: borrower_pb2.SECURITY_LEVEL_EID,
}
_SECURITY_FROM_PROTO: dict[int, SecurityLevel] = {
    number: level for level, number in _SECURITY_TO_PROTO.items()
}


class BorrowerDecoder:
    """Decodes requests; synthetic test national ids only where configuration allows them."""

    def __init__(
        self,
        *,
        allow_synthetic_ids: bool,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._allow_synthetic = allow_synthetic_ids
        self._clock = clock

    def card_number(self, raw: str, field: str) -> CardNumber:
        return _one(field, raw, CardNumber.parse)

    def library_number(self, raw: str, field: str) -> LibraryNumber:
        return _one(field, raw, LibraryNumber.parse)

    def national_id(self, raw: str, field: str) -> NationalId:
        return _one(field, raw, self._parse_national_id)

    def new_borrower(
        self, message: borrower_pb2.Borrower
    ) -> tuple[CardNumber, PersonalData, NationalId]:
        violations = Violations()
        card_number = _required(
            violations, "borrower.card_number", message.card_number, CardNumber.parse
        )
        name = PersonName.parse(message.given_name, message.family_name, violations, "borrower")
        national_id = _required(
            violations, "borrower.national_id", message.national_id, self._parse_national_id
        )
        birth_date = _birth_date(violations, message.birth_date, national_id, required=True)
        sex = _sex(violations, message.sex)
        address = _address(violations, message)
        email = check_optional(violations, "borrower.email", message.email, EmailAddress.parse)
        mobile, home, work, contact = _phones(violations, message, frozenset(_PHONES))
        security_level = _security_level(violations, message.security_level)
        details = decode_details(violations, message, DETAIL_FIELDS, self._clock())
        violations.raise_if_any()
        assert card_number and name and national_id and birth_date  # guaranteed by the checks
        personal = PersonalData(
            name=name,
            birth_date=birth_date,
            sex=sex,
            registered_address=address,
            email=email,
            mobile_phone=mobile,
            home_phone=home,
            work_phone=work,
            security_level=security_level,
            primary_contact_phone=contact,
            **details,
        )
        personal.check_consistency(violations)
        violations.raise_if_any()
        return card_number, personal, national_id

    def patch(
        self, message: borrower_pb2.Borrower, paths: list[str]
    ) -> tuple[PersonalDataPatch, NationalId | None]:
        violations = Violations()
        fields = frozenset(paths)
        if not fields:
            violations.add("update_mask", "name at least one field to change")
        for path in sorted(fields - UPDATABLE_FIELDS):
            violations.add("update_mask", f"{path!r} cannot be changed by UpdateBorrower")
        given = family = None
        if "given_name" in fields:
            given = check(
                violations, "borrower.given_name", lambda: PersonName.parse_part(message.given_name)
            )
        if "family_name" in fields:
            family = check(
                violations,
                "borrower.family_name",
                lambda: PersonName.parse_part(message.family_name),
            )
        national_id = None
        birth_date = None
        if "national_id" in fields:
            national_id = _required(
                violations, "borrower.national_id", message.national_id, self._parse_national_id
            )
            birth_date = _birth_date(violations, message.birth_date, national_id, required=False)
            if birth_date is not None:
                fields |= {"birth_date"}
        elif "birth_date" in fields:
            violations.add(
                "borrower.birth_date",
                "follows the national id: change it together with national_id",
            )
        sex = _sex(violations, message.sex)
        address = _address(violations, message) if "registered_address" in fields else None
        email = check_optional(violations, "borrower.email", message.email, EmailAddress.parse)
        mobile, home, work, contact = _phones(violations, message, fields)
        security_level = _security_level(violations, message.security_level)
        details = decode_details(violations, message, fields, self._clock())
        violations.raise_if_any()
        patch = PersonalDataPatch(
            fields=fields,
            given_name=given,
            family_name=family,
            birth_date=birth_date,
            sex=sex,
            registered_address=address,
            email=email if "email" in fields else None,
            mobile_phone=mobile,
            home_phone=home,
            work_phone=work,
            security_level=security_level,
            primary_contact_phone=contact,
            **details,
        )
        return patch, national_id

    def secret(self, raw: str, field: str, parse: Callable[[str], T]) -> T:
        """A PIN or password: validated, and never echoed in the error."""
        return _one(field, raw, parse)

    def value(self, raw: str, field: str, parse: Callable[[str], T]) -> T:
        """One required field parsed, or INVALID_ARGUMENT naming it (e.g. a new email)."""
        return _one(field, raw, parse)

    def login_key(self, request: Any) -> CardNumber | IdentityValue:
        """Who a login names, by its ``borrower_key``: a card number (also when neither is
        given) or another identity (VerifyPin, VerifyPassword, LogInWithPassword)."""
        if request.WhichOneof("borrower_key") == "identity":
            return self.identity_key(request.identity.kind, request.identity.value, "identity")
        return self.card_number(request.card_number, "card_number")

    def affiliation_proof(
        self, request: registry_service_pb2.AffiliateBorrowerRequest
    ) -> NationalId | BirthDateAndPin:
        kind = request.WhichOneof("proof")
        if kind == "national_id":
            return self.national_id(request.national_id, "national_id")
        if kind == "birth_date_and_pin":
            violations = Violations()
            proof = request.birth_date_and_pin
            birth_date = _required(
                violations, "birth_date_and_pin.birth_date", proof.birth_date, _parse_date
            )
            pin = _required(violations, "birth_date_and_pin.pin", proof.pin, Pin.parse)
            violations.raise_if_any()
            assert birth_date is not None and pin is not None
            return BirthDateAndPin(birth_date, pin)
        raise InvalidArgument.one("proof", "give national_id or birth_date_and_pin")

    def deletion_reason(self, value: int) -> DeletionReason:
        reason = _REASON_FROM_PROTO.get(value)
        if reason is None:
            raise InvalidArgument.one("reason", "must be BORROWER_REQUEST or DECEASED")
        return reason

    def identity_key(self, kind: int, value: str, prefix: str) -> IdentityValue:
        """An identity naming a borrower (``prefix``: e.g. ``identity``)."""
        violations = Violations()
        key = decode_identity_key(violations, kind, value, prefix)
        violations.raise_if_any()
        assert key is not None
        return key

    def new_identity(
        self, message: borrower_pb2.Identity, prefix: str, now: dt.datetime
    ) -> tuple[IdentityValue, dt.datetime | None]:
        """An identity to add, and its deletion time if one is requested."""
        violations = Violations()
        key = decode_identity_key(violations, message.kind, message.value, prefix)
        delete_after = decode_delete_after(violations, message, prefix, now)
        violations.raise_if_any()
        assert key is not None
        return key, delete_after

    def identity_kind(self, value: int, field: str) -> IdentityKind:
        violations = Violations()
        kind = decode_kind(violations, value, field)
        violations.raise_if_any()
        assert kind is not None
        return kind

    def _parse_national_id(self, raw: str) -> NationalId:
        return NationalId.parse(raw, allow_synthetic=self._allow_synthetic)


def encode_borrower(borrower: Borrower, view: BorrowerView) -> borrower_pb2.Borrower:
    """The borrower as the given view shows it; the national id is never among the fields."""
    today = dt.datetime.now(dt.UTC).date()
    borrower = disclosed(borrower, view, today)
    personal = borrower.personal
    message = borrower_pb2.Borrower(
        card_number=borrower.card_number.value,
        given_name=personal.name.given_name,
        family_name=personal.name.family_name,
        birth_year=personal.birth_date.year,
        card_valid=borrower.card_valid_on(today),
        view=_VIEW_TO_PROTO[view],
    )
    if view is not BorrowerView.FULL:
        return message
    message.birth_date = personal.birth_date.isoformat()
    message.sex = _SEX_TO_PROTO[personal.sex]
    message.address_protected = borrower.address_protected
    if personal.registered_address is not None:
        message.registered_address.CopyFrom(encode_address(personal.registered_address))
    message.email = personal.email.value if personal.email else ""
    for field in _PHONES:
        phone: PhoneNumber | None = getattr(personal, field)
        setattr(message, field, phone.value if phone else "")
    message.home_library = borrower.home_library.value
    for affiliation in borrower.affiliations:
        message.affiliations.add(
            library_number=affiliation.library_number.value,
            affiliate_time=timestamp(affiliation.affiliated_at),
        )
    _encode_actor(borrower.created_by, message, "created_by")
    message.create_time.CopyFrom(timestamp(borrower.created_at))
    _encode_actor(borrower.last_changed_by, message, "last_changed_by")
    message.update_time.CopyFrom(timestamp(borrower.last_changed_at))
    message.etag = borrower.etag
    message.security_level = _SECURITY_TO_PROTO[personal.security_level]
    message.has_pin = borrower.has_pin
    message.has_password = borrower.has_password
    message.processing_restricted = borrower.processing_restricted
    if borrower.last_active_on is not None:
        message.last_active_on = borrower.last_active_on.isoformat()
    if borrower.previous_card_number is not None:
        message.previous_card_number = borrower.previous_card_number.value
    encode_details(message, borrower)
    encode_identities(message, borrower)
    for mine, links in (
        (message.guardians, borrower.links.guardians),
        (message.wards, borrower.links.wards),
    ):
        for link in links:
            mine.add(
                card_number=link.card_number.value,
                link_time=timestamp(link.linked_at),
                linked_by=link.linked_by.value,
            )
    return message


def _encode_actor(actor: Actor, message: borrower_pb2.Borrower, field: str) -> None:
    """A library actor's number in the library field (``created_by``), and the kind beside it
    (``created_by_kind``): the number alone is what clients of the first version read."""
    setattr(message, f"{field}_kind", _ACTOR_KIND_TO_PROTO[actor.kind])
    if actor.kind is ActorKind.LIBRARY:
        setattr(message, field, actor.id)


def _one(field: str, raw: str, parse: Callable[[str], T]) -> T:
    violations = Violations()
    value = _required(violations, field, raw, parse)
    violations.raise_if_any()
    assert value is not None
    return value


def _required(violations: Violations, field: str, raw: str, parse: Callable[[str], T]) -> T | None:
    if not raw.strip():
        violations.add(field, "is required")
        return None
    return check(violations, field, lambda: parse(raw))


def _birth_date(
    violations: Violations, raw: str, national_id: NationalId | None, *, required: bool
) -> dt.date | None:
    given = check_optional(violations, "borrower.birth_date", raw, _parse_date)
    if national_id is None:
        return given
    held = national_id.birth_date
    if held is None:
        if given is None and required:
            violations.add("borrower.birth_date", "is required with a DUF number")
        return given
    if given is not None and given != held:
        violations.add("borrower.birth_date", "does not match the national id")
    return held


def _parse_date(raw: str) -> dt.date:
    try:
        date = dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidValue("must be a date as YYYY-MM-DD") from None
    if date > dt.date.today() or date.year < 1880:
        raise InvalidValue("must be a real birth date, not in the future")
    return date


def _phones(
    violations: Violations, message: borrower_pb2.Borrower, fields: frozenset[str]
) -> tuple[PhoneNumber | None, PhoneNumber | None, PhoneNumber | None, PhoneNumber | None]:
    mobile, home, work, contact = (
        check_optional(violations, f"borrower.{f}", getattr(message, f), PhoneNumber.parse)
        if f in fields
        else None
        for f in _PHONES
    )
    return mobile, home, work, contact


def _security_level(violations: Violations, value: int) -> SecurityLevel:
    if value == borrower_pb2.SECURITY_LEVEL_UNSPECIFIED:
        return SecurityLevel.PIN
    level = _SECURITY_FROM_PROTO.get(value)
    if level is None:
        violations.add("borrower.security_level", "unknown value")
        return SecurityLevel.PIN
    return level


def _sex(violations: Violations, value: int) -> Sex:
    sex = _SEX_FROM_PROTO.get(value)
    if sex is None:
        violations.add("borrower.sex", "unknown value")
        return Sex.UNSPECIFIED
    return sex


def _address(violations: Violations, message: borrower_pb2.Borrower) -> Address | None:
    if not message.HasField("registered_address"):
        return None
    address = message.registered_address
    return Address.parse(
        list(address.lines),
        address.postal_code,
        address.city,
        address.country_code,
        violations,
        "borrower.registered_address",
    )


def security_level_to_proto(level: SecurityLevel) -> borrower_pb2.SecurityLevel.ValueType:
    return _SECURITY_TO_PROTO[level]


def security_level_from_proto(value: int) -> SecurityLevel | None:
    """The level of a proto value; None for UNSPECIFIED and unknown values."""
    return _SECURITY_FROM_PROTO.get(value)


def actor_kind_to_proto(kind: ActorKind) -> borrower_pb2.ActorKind.ValueType:
    return _ACTOR_KIND_TO_PROTO[kind]
