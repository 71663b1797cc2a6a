"""The borrowers table's columns of a domain record, both ways: the one place in the store that
spells them out, for the repository (one record) and the import (a bulk load) alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Column

from nlr_server.crypto.national_id_sealer import SealedNationalId
from nlr_server.domain.actor import Actor, ActorKind
from nlr_server.domain.address import Address, AddressProtection, TemporaryAddress
from nlr_server.domain.borrower import Affiliation, Borrower, PersonalData, Sex
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.contact import (
    ContactMethod,
    EmailAddress,
    LanguageCode,
    PhoneKind,
    PhoneNumber,
)
from nlr_server.domain.credentials import SecurityLevel
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.person_name import PersonName
from nlr_server.store.models import BorrowerRow, table_of

_BORROWERS = table_of(BorrowerRow)
# What a record is read from: every column but the sealed national id, which is never loaded
# back into a record (the verifiers are read only to tell whether a PIN or password is set).
RECORD_COLUMNS: list[Column[Any]] = [
    column
    for column in _BORROWERS.c
    if column.name not in ("national_id_ciphertext", "national_id_index")
]
_NO_LINES: tuple[None, ...] = (None, None, None)
# The columns of a record without a temporary address (maintenance clears expired ones in SQL),
# and without its "should be checked" flag, which goes with it.
NO_TEMPORARY_ADDRESS: Mapping[str, bool | None] = {
    **{column.name: None for column in _BORROWERS.c if column.name.startswith("temporary_")},
    "temporary_address_should_be_checked": False,
}


# The population register's address protection as stored (the register's own words).
PROTECTION_COLUMN: dict[AddressProtection, str | None] = {
    AddressProtection.NONE: None,
    AddressProtection.CONFIDENTIAL: "fortrolig",
    AddressProtection.STRICTLY_CONFIDENTIAL: "strengtFortrolig",
}
PROTECTION_OF_COLUMN: dict[str | None, AddressProtection] = {
    column: protection for protection, column in PROTECTION_COLUMN.items()
}


def new_row(borrower: Borrower, national_id: SealedNationalId) -> dict[str, Any]:
    """The borrowers row of a record not yet stored, without its id. The PIN and password
    verifiers are left out (NULL): only the credentials repository writes them."""
    previous = borrower.previous_card_number
    row = changed_columns(borrower)
    row.update(
        card_number=borrower.card_number.value,
        previous_card_number=previous.value if previous is not None else None,
        national_id_ciphertext=national_id.ciphertext,
        national_id_index=national_id.index,
        national_id_key_version=national_id.key_version,
        address_protected=borrower.address_protected,
        processing_restricted=borrower.processing_restricted,
        last_active_on=borrower.last_active_on,
        population_register_checked_at=borrower.population_register_checked_at,
        in_population_register=borrower.in_population_register,
        population_register_status=borrower.population_register_status,
        address_protection=PROTECTION_COLUMN[borrower.address_protection],
        delete_as_deceased_after=borrower.delete_as_deceased_after,
        created_by_kind=borrower.created_by.kind.value,
        created_by=borrower.created_by.id,
        created_at=borrower.created_at,
        version=borrower.version,
    )
    return row


# The names of the columns changed_columns gives values of, in its order.
CHANGED_COLUMNS: tuple[str, ...] = (
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "address_line1",
    "address_line2",
    "address_line3",
    "postal_code",
    "city",
    "country_code",
    "registered_address_should_be_checked",
    "temporary_address_line1",
    "temporary_address_line2",
    "temporary_address_line3",
    "temporary_postal_code",
    "temporary_city",
    "temporary_country_code",
    "temporary_address_valid_until",
    "temporary_address_should_be_checked",
    "email",
    "email_should_be_checked",
    "mobile_phone",
    "home_phone",
    "work_phone",
    "primary_contact_phone",
    "primary_phone",
    "preferred_contact_method",
    "preferred_language",
    "card_expiry_date",
    "consent_time",
    "security_level",
    "home_library",
    "last_changed_by_kind",
    "last_changed_by",
    "last_changed_at",
)


# The borrowers' columns with an index of their own, among those a change writes.
INDEXED_COLUMNS: frozenset[str] = frozenset(
    {"temporary_address_valid_until", "delete_as_deceased_after"}
)


def indexed_values(borrower: Borrower) -> tuple[Any, ...]:
    """What the borrower holds in INDEXED_COLUMNS."""
    temporary = borrower.personal.temporary_address
    return (
        temporary.valid_until if temporary is not None else None,
        borrower.delete_as_deceased_after,
    )


def changed_columns(borrower: Borrower) -> dict[str, Any]:
    """The columns a saved change of the record writes: the personal data, the home library
    and who changed it when. The card number (a replacement retires the old one), the
    creation, address protection and the times other paths keep are not among them."""
    # One literal, no helpers: this runs for every line of a bulk import.
    personal = borrower.personal
    address = personal.registered_address
    lines = _NO_LINES if address is None else (*address.lines, *_NO_LINES)
    temporary = personal.temporary_address
    temporary_address = temporary.address if temporary is not None else None
    temporary_lines = (
        _NO_LINES if temporary_address is None else (*temporary_address.lines, *_NO_LINES)
    )
    email, mobile, home, work, contact = (
        personal.email,
        personal.mobile_phone,
        personal.home_phone,
        personal.work_phone,
        personal.primary_contact_phone,
    )
    primary, method, language = (
        personal.primary_phone,
        personal.preferred_contact_method,
        personal.preferred_language,
    )
    changer = borrower.last_changed_by
    return {
        "given_name": personal.name.given_name,
        "family_name": personal.name.family_name,
        "birth_date": personal.birth_date,
        "sex": personal.sex.value,
        "address_line1": lines[0],
        "address_line2": lines[1],
        "address_line3": lines[2],
        "postal_code": address.postal_code if address is not None else None,
        "city": address.city if address is not None else None,
        "country_code": address.country_code if address is not None else None,
        "registered_address_should_be_checked": personal.registered_address_should_be_checked,
        "temporary_address_line1": temporary_lines[0],
        "temporary_address_line2": temporary_lines[1],
        "temporary_address_line3": temporary_lines[2],
        "temporary_postal_code": (
            temporary_address.postal_code if temporary_address is not None else None
        ),
        "temporary_city": temporary_address.city if temporary_address is not None else None,
        "temporary_country_code": (
            temporary_address.country_code if temporary_address is not None else None
        ),
        "temporary_address_valid_until": temporary.valid_until if temporary is not None else None,
        "temporary_address_should_be_checked": personal.temporary_address_should_be_checked,
        "email": email.value if email is not None else None,
        "email_should_be_checked": personal.email_should_be_checked,
        "mobile_phone": mobile.value if mobile is not None else None,
        "home_phone": home.value if home is not None else None,
        "work_phone": work.value if work is not None else None,
        "primary_contact_phone": contact.value if contact is not None else None,
        "primary_phone": primary.value if primary is not None else None,
        "preferred_contact_method": method.value if method is not None else None,
        "preferred_language": language.value if language is not None else None,
        "card_expiry_date": personal.card_expiry_date,
        "consent_time": personal.consent_time,
        "security_level": personal.security_level.value,
        "home_library": borrower.home_library.value,
        "last_changed_by_kind": changer.kind.value,
        "last_changed_by": changer.id,
        "last_changed_at": borrower.last_changed_at,
    }


def changed_by(actor: Actor, now: dt.datetime) -> dict[str, Any]:
    """Who last changed the record and when, as columns (also for changes made in SQL)."""
    return {
        "last_changed_by_kind": actor.kind.value,
        "last_changed_by": actor.id,
        "last_changed_at": now,
    }


def borrower_of(row: Any, affiliations: list[tuple[str, dt.datetime]]) -> Borrower:
    """The record from a borrowers row (ORM object or Core row: the same attribute names) and
    its affiliations as (library number, since)."""
    address = _address(
        (row.address_line1, row.address_line2, row.address_line3),
        row.postal_code,
        row.city,
        row.country_code,
    )
    temporary_address = _address(
        (row.temporary_address_line1, row.temporary_address_line2, row.temporary_address_line3),
        row.temporary_postal_code,
        row.temporary_city,
        row.temporary_country_code,
    )
    valid_until = row.temporary_address_valid_until
    personal = PersonalData(
        name=PersonName(given_name=row.given_name, family_name=row.family_name),
        birth_date=row.birth_date,
        sex=Sex(row.sex),
        registered_address=address,
        email=EmailAddress(row.email) if row.email else None,
        mobile_phone=PhoneNumber(row.mobile_phone) if row.mobile_phone else None,
        home_phone=PhoneNumber(row.home_phone) if row.home_phone else None,
        work_phone=PhoneNumber(row.work_phone) if row.work_phone else None,
        security_level=SecurityLevel(row.security_level),
        temporary_address=(
            TemporaryAddress(temporary_address, valid_until)
            if temporary_address is not None and valid_until is not None
            else None
        ),
        email_should_be_checked=bool(row.email_should_be_checked),
        primary_phone=PhoneKind(row.primary_phone) if row.primary_phone else None,
        preferred_contact_method=(
            ContactMethod(row.preferred_contact_method) if row.preferred_contact_method else None
        ),
        preferred_language=(
            LanguageCode(row.preferred_language) if row.preferred_language else None
        ),
        card_expiry_date=row.card_expiry_date,
        consent_time=row.consent_time,
        primary_contact_phone=(
            PhoneNumber(row.primary_contact_phone) if row.primary_contact_phone else None
        ),
        registered_address_should_be_checked=bool(row.registered_address_should_be_checked),
        temporary_address_should_be_checked=bool(row.temporary_address_should_be_checked),
    )
    return Borrower(
        id=row.id,
        card_number=CardNumber(row.card_number),
        personal=personal,
        home_library=LibraryNumber(row.home_library),
        affiliations=tuple(Affiliation(LibraryNumber(n), at) for n, at in affiliations),
        created_by=Actor(ActorKind(row.created_by_kind), row.created_by),
        created_at=row.created_at,
        last_changed_by=Actor(ActorKind(row.last_changed_by_kind), row.last_changed_by),
        last_changed_at=row.last_changed_at,
        version=row.version,
        address_protected=bool(row.address_protected),
        previous_card_number=(
            CardNumber(row.previous_card_number) if row.previous_card_number else None
        ),
        has_pin=row.pin_verifier is not None,
        has_password=row.password_verifier is not None,
        last_active_on=row.last_active_on,
        population_register_checked_at=row.population_register_checked_at,
        in_population_register=bool(row.in_population_register),
        population_register_status=row.population_register_status,
        address_protection=PROTECTION_OF_COLUMN[row.address_protection],
        delete_as_deceased_after=row.delete_as_deceased_after,
        processing_restricted=bool(row.processing_restricted),
    )


def _address(
    lines: tuple[str | None, ...],
    postal_code: str | None,
    city: str | None,
    country_code: str | None,
) -> Address | None:
    if postal_code is None or city is None or country_code is None:
        return None
    return Address(
        lines=tuple(line for line in lines if line),
        postal_code=postal_code,
        city=city,
        country_code=country_code,
    )
