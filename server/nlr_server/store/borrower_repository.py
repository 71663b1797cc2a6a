"""Borrowers in the database: mapping between rows and the domain record."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Collection
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.domain.address import Address, TemporaryAddress
from nlr_server.domain.borrower import Affiliation, Borrower, DeletionReason, PersonalData, Sex
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.contact import (
    ContactMethod,
    EmailAddress,
    LanguageCode,
    PhoneKind,
    PhoneNumber,
)
from nlr_server.domain.credentials import SecurityLevel
from nlr_server.domain.errors import EtagMismatch, NotFound
from nlr_server.domain.identity import IdentityValue
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.national_id import NationalId
from nlr_server.domain.person_name import PersonName
from nlr_server.store import full_record
from nlr_server.store.erasure import erase_after_commit
from nlr_server.store.full_record import Prefetched
from nlr_server.store.models import (
    AffiliationRow,
    BorrowerRow,
    CardNumberRow,
    FeedEntryRow,
    IdentityRow,
    table_of,
)
from nlr_server.store.prepared import DriverConnection, PreparedRead
from nlr_server.usecases.ports import CardNumberStatus

# Ids per IN list: well under every driver's limit on bound parameters.
_CHUNK = 500
_BORROWERS = table_of(BorrowerRow)
_AFFILIATIONS = table_of(AffiliationRow)
# Everything a record needs, and whether secrets are set, but never the secrets themselves.
_RECORD_COLUMNS = [
    column
    for column in _BORROWERS.c
    if column.name not in ("national_id_ciphertext", "national_id_index")
]
# The hot reads, compiled once (see store/prepared.py).
_RECORD = select(*_RECORD_COLUMNS)
_CARD_NUMBER_IS = _BORROWERS.c.card_number == bindparam("key")
_NATIONAL_ID_IS = _BORROWERS.c.national_id_index == bindparam("key")
_ID_IS = _BORROWERS.c.id == bindparam("key")
_BY_CARD_NUMBER = PreparedRead(_RECORD.where(_CARD_NUMBER_IS))
_BY_NATIONAL_ID = PreparedRead(_RECORD.where(_NATIONAL_ID_IS))
_BY_ID = PreparedRead(_RECORD.where(_ID_IS))
_IDENTITIES = table_of(IdentityRow)
_IDENTITY_IS = _BORROWERS.c.id == (
    select(_IDENTITIES.c.borrower_id)
    .where(
        _IDENTITIES.c.kind == bindparam("kind"),
        _IDENTITIES.c.value == bindparam("value"),
        _IDENTITIES.c.delete_after > bindparam("now"),
    )
    .scalar_subquery()
)
_BY_IDENTITY = PreparedRead(_RECORD.where(_IDENTITY_IS))
_AFFILIATIONS_OF = PreparedRead(
    select(_AFFILIATIONS.c.library_number, _AFFILIATIONS.c.affiliated_at)
    .where(_AFFILIATIONS.c.borrower_id == bindparam("id"))
    .order_by(_AFFILIATIONS.c.affiliated_at)
)
# The same lookups with the whole view in one statement (store/full_record.py), for reading
# units of work.
_FULL = {
    plain: PreparedRead(
        functools.partial(full_record.statement, columns=_RECORD_COLUMNS, condition=is_)
    )
    for plain, is_ in (
        (_BY_CARD_NUMBER, _CARD_NUMBER_IS),
        (_BY_NATIONAL_ID, _NATIONAL_ID_IS),
        (_BY_ID, _ID_IS),
        (_BY_IDENTITY, _IDENTITY_IS),
    )
}


class SqlBorrowerRepository:
    def __init__(
        self,
        session: Session,
        sealer: NationalIdSealer,
        driver: DriverConnection,
        prefetched: Prefetched | None = None,
    ) -> None:
        self._session = session
        self._driver = driver
        self._prefetched = prefetched
        self._sealer = sealer

    def get_by_card_number(self, card_number: CardNumber) -> Borrower | None:
        return self._load(_BY_CARD_NUMBER, {"key": card_number.value})

    def get_by_national_id(self, national_id: NationalId) -> Borrower | None:
        return self._load(_BY_NATIONAL_ID, {"key": self._sealer.index(national_id.value)})

    def get_by_identity(self, identity: IdentityValue, now: dt.datetime) -> Borrower | None:
        """The borrower with this other identity, unless its deletion time has come."""
        return self._load(
            _BY_IDENTITY, {"kind": identity.kind.value, "value": identity.value, "now": now}
        )

    def get_by_id(self, borrower_id: int) -> Borrower | None:
        return self._load(_BY_ID, {"key": borrower_id})

    def get_many(self, borrower_ids: Collection[int]) -> dict[int, Borrower]:
        """The borrowers that exist among ``borrower_ids``, by id: two queries per chunk."""
        found: dict[int, Borrower] = {}
        ids = sorted(set(borrower_ids))
        connection = self._session.connection()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            rows = connection.execute(
                select(*_RECORD_COLUMNS).where(_BORROWERS.c.id.in_(chunk))
            ).all()
            affiliations: dict[int, list[tuple[str, dt.datetime]]] = {}
            for a in connection.execute(
                select(
                    _AFFILIATIONS.c.borrower_id,
                    _AFFILIATIONS.c.library_number,
                    _AFFILIATIONS.c.affiliated_at,
                )
                .where(_AFFILIATIONS.c.borrower_id.in_(chunk))
                .order_by(_AFFILIATIONS.c.affiliated_at)
            ):
                affiliations.setdefault(a.borrower_id, []).append(
                    (a.library_number, a.affiliated_at)
                )
            for row in rows:
                found[row.id] = _to_domain(row, affiliations.get(row.id, []))
        return found

    def affiliated_ids(self, library: LibraryNumber, after_id: int, limit: int) -> list[int]:
        """Internal ids of the library's borrowers above ``after_id``, ascending."""
        return list(
            self._session.execute(
                select(_AFFILIATIONS.c.borrower_id)
                .where(
                    _AFFILIATIONS.c.library_number == library.value,
                    _AFFILIATIONS.c.borrower_id > after_id,
                )
                .order_by(_AFFILIATIONS.c.borrower_id)
                .limit(limit)
            ).scalars()
        )

    def with_expired_temporary_address(self, today: dt.date) -> list[int]:
        """Internal ids of borrowers whose temporary address's last day is before ``today``."""
        return list(
            self._session.execute(
                select(_BORROWERS.c.id).where(_BORROWERS.c.temporary_address_valid_until < today)
            ).scalars()
        )

    def _load(self, statement: PreparedRead, parameters: dict[str, Any]) -> Borrower | None:
        # Reads are the hot path: two indexed lookups, compiled once, plain rows; in a reading
        # unit of work one statement with the links and identities as well.
        if self._prefetched is not None:
            row = _FULL[statement].first(self._driver, parameters)
            if row is None:
                return None
            full_record.prefetch(row, self._prefetched)
            return _to_domain(row, full_record.affiliations(row))
        row = statement.first(self._driver, parameters)
        if row is None:
            return None
        affiliations = _AFFILIATIONS_OF.rows(self._driver, {"id": row.id})
        return _to_domain(row, [(a.library_number, a.affiliated_at) for a in affiliations])

    def card_number_status(self, card_number: CardNumber) -> CardNumberStatus:
        row = self._session.get(CardNumberRow, card_number.value)
        if row is None:
            return CardNumberStatus.UNUSED
        return CardNumberStatus.RETIRED if row.retired_at is not None else CardNumberStatus.IN_USE

    def national_id_matches(self, borrower: Borrower, national_id: NationalId) -> bool:
        row = self._row(borrower)
        return self._sealer.matches(national_id.value, row.national_id_index)

    def add(self, borrower: Borrower, national_id: NationalId) -> Borrower:
        sealed = self._sealer.seal(national_id.value)
        row = BorrowerRow(
            card_number=borrower.card_number.value,
            national_id_ciphertext=sealed.ciphertext,
            national_id_index=sealed.index,
            national_id_key_version=sealed.key_version,
            created_by=borrower.created_by.value,
            created_at=borrower.created_at,
            address_protected=borrower.address_protected,
        )
        _write(row, borrower)
        self._session.add(row)
        self._session.flush()
        self._session.add(CardNumberRow(card_number=row.card_number, borrower_id=row.id))
        self._session.flush()
        return _to_domain(row, _orm_affiliations(row))

    def save(self, borrower: Borrower, *, national_id: NationalId | None = None) -> Borrower:
        row = self._row(borrower)
        if row.version != borrower.version:
            raise EtagMismatch("the borrower changed since it was read; read it again")
        if national_id is not None:
            sealed = self._sealer.seal(national_id.value)
            row.national_id_ciphertext = sealed.ciphertext
            row.national_id_index = sealed.index
            row.national_id_key_version = sealed.key_version
        if row.card_number != borrower.card_number.value:
            self._replace_card(row, borrower.card_number, borrower.last_changed_at)
        _write(row, borrower)
        self._session.flush()
        return _to_domain(row, _orm_affiliations(row))

    def _replace_card(self, row: BorrowerRow, new: CardNumber, now: dt.datetime) -> None:
        """The old number is retired for ever; the new one is registered to the borrower."""
        old = self._session.get(CardNumberRow, row.card_number)
        assert old is not None, "every borrower's card number is registered"
        old.retired_at = now
        old.retired_reason = "replaced"
        old.borrower_id = None
        self._session.add(CardNumberRow(card_number=new.value, borrower_id=row.id))
        row.previous_card_number = row.card_number
        row.card_number = new.value

    def protect_address(self, card_number: CardNumber, protected: bool) -> bool:
        """Sets or clears address protection; False if there is no such borrower."""
        changed = self._session.execute(
            update(BorrowerRow)
            .where(BorrowerRow.card_number == card_number.value)
            # The views change, so the etag does: an update based on the old view is refused.
            .values(address_protected=protected, version=BorrowerRow.version + 1)
            .execution_options(synchronize_session=False)
        )
        return bool(changed.rowcount)  # type: ignore[attr-defined]

    def clear_expired_temporary_addresses(self, today: dt.date) -> int:
        """Clears every temporary address whose last day is before ``today``; returns how many."""
        cleared = self._session.execute(
            update(BorrowerRow)
            .where(BorrowerRow.temporary_address_valid_until < today)
            .values(
                temporary_address_line1=None,
                temporary_address_line2=None,
                temporary_address_line3=None,
                temporary_postal_code=None,
                temporary_city=None,
                temporary_country_code=None,
                temporary_address_valid_until=None,
                version=BorrowerRow.version + 1,
            )
            .execution_options(synchronize_session=False)
        )
        if cleared.rowcount:  # type: ignore[attr-defined]
            erase_after_commit(self._session)
        return int(cleared.rowcount)  # type: ignore[attr-defined]

    def delete(self, borrower: Borrower, reason: DeletionReason, now: dt.datetime) -> None:
        row = self._row(borrower)
        card = self._session.get(CardNumberRow, row.card_number)
        assert card is not None, "every borrower's card number is registered"
        card.retired_at = now
        card.retired_reason = reason.value
        card.borrower_id = None
        # The feed's entries point at the borrower; its tombstones (written at commit) do not.
        self._session.execute(delete(FeedEntryRow).where(FeedEntryRow.borrower_id == row.id))
        self._session.delete(row)
        self._session.flush()
        erase_after_commit(self._session)

    def _row(self, borrower: Borrower) -> BorrowerRow:
        row = self._session.get(BorrowerRow, borrower.id) if borrower.id is not None else None
        if row is None:
            raise NotFound("no borrower with that key")
        return row


def _write(row: BorrowerRow, borrower: Borrower) -> None:
    personal = borrower.personal
    row.given_name = personal.name.given_name
    row.family_name = personal.name.family_name
    row.birth_date = personal.birth_date
    row.sex = personal.sex.value
    (
        row.address_line1,
        row.address_line2,
        row.address_line3,
        row.postal_code,
        row.city,
        row.country_code,
    ) = _address_columns(personal.registered_address)
    temporary = personal.temporary_address
    (
        row.temporary_address_line1,
        row.temporary_address_line2,
        row.temporary_address_line3,
        row.temporary_postal_code,
        row.temporary_city,
        row.temporary_country_code,
    ) = _address_columns(temporary.address if temporary is not None else None)
    row.temporary_address_valid_until = temporary.valid_until if temporary is not None else None
    row.email = personal.email.value if personal.email is not None else None
    row.email_should_be_checked = personal.email_should_be_checked
    row.mobile_phone = _phone(personal.mobile_phone)
    row.home_phone = _phone(personal.home_phone)
    row.work_phone = _phone(personal.work_phone)
    row.primary_phone = _value(personal.primary_phone)
    row.preferred_contact_method = _value(personal.preferred_contact_method)
    row.preferred_language = _value(personal.preferred_language)
    row.card_expiry_date = personal.card_expiry_date
    row.consent_time = personal.consent_time
    row.security_level = personal.security_level.value
    row.home_library = borrower.home_library.value
    row.last_changed_by = borrower.last_changed_by.value
    row.last_changed_at = borrower.last_changed_at
    wanted = {a.library_number.value for a in borrower.affiliations}
    for gone in [a for a in row.affiliations if a.library_number not in wanted]:
        row.affiliations.remove(gone)
    known = {a.library_number for a in row.affiliations}
    for affiliation in borrower.affiliations:
        if affiliation.library_number.value not in known:
            row.affiliations.append(
                AffiliationRow(
                    library_number=affiliation.library_number.value,
                    affiliated_at=affiliation.affiliated_at,
                )
            )


def _phone(phone: PhoneNumber | None) -> str | None:
    return phone.value if phone is not None else None


def _value(item: PhoneKind | ContactMethod | LanguageCode | None) -> str | None:
    return item.value if item is not None else None


_NO_ADDRESS: tuple[None, ...] = (None,) * 6


def _address_columns(address: Address | None) -> tuple[str | None, ...]:
    """Three lines, postal code, city and country code, as columns."""
    if address is None:
        return _NO_ADDRESS
    lines: list[str | None] = [*address.lines, None, None, None]
    return (*lines[:3], address.postal_code, address.city, address.country_code)


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


def _orm_affiliations(row: BorrowerRow) -> list[tuple[str, dt.datetime]]:
    return [(a.library_number, a.affiliated_at) for a in row.affiliations]


def _to_domain(row: Any, affiliations: list[tuple[str, dt.datetime]]) -> Borrower:
    """The record from a borrowers row (ORM object or Core row: the same attribute names)."""
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
    )
    return Borrower(
        id=row.id,
        card_number=CardNumber(row.card_number),
        personal=personal,
        home_library=LibraryNumber(row.home_library),
        affiliations=tuple(Affiliation(LibraryNumber(n), at) for n, at in affiliations),
        created_by=LibraryNumber(row.created_by),
        created_at=row.created_at,
        last_changed_by=LibraryNumber(row.last_changed_by),
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
    )
