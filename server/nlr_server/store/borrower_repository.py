"""Borrowers in the database: mapping between rows and the domain record."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Collection
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session

from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.domain.actor import Actor
from nlr_server.domain.borrower import Borrower, DeletionReason
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.errors import EtagMismatch, NotFound
from nlr_server.domain.identity import IdentityValue
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.national_id import NationalId
from nlr_server.store import full_record, record_columns
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
from nlr_server.store.prepared import DriverConnection, PreparedRead, PreparedWrite
from nlr_server.usecases.ports import CardNumberStatus

# Ids per IN list: well under every driver's limit on bound parameters.
_CHUNK = 500
_BORROWERS = table_of(BorrowerRow)
_AFFILIATIONS = table_of(AffiliationRow)
_RECORD_COLUMNS = record_columns.RECORD_COLUMNS
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

_CARD_NUMBERS = table_of(CardNumberRow)
_ADD = insert(_BORROWERS).returning(_BORROWERS.c.id)
# Whether a new borrower's card number is retired (true), in use (false) or free (NULL), and
# whether their national id is taken.
_REGISTRATION = PreparedRead(
    select(
        select(_CARD_NUMBERS.c.retired_at.is_not(None))
        .where(_CARD_NUMBERS.c.card_number == bindparam("card_number"))
        .scalar_subquery()
        .label("retired"),
        exists()
        .where(_BORROWERS.c.national_id_index == bindparam("national_id_index"))
        .label("national_id_taken"),
    )
)
_NATIONAL_ID_COLUMNS = ("national_id_ciphertext", "national_id_index", "national_id_key_version")


def _save_personal_data(*extra: str, indexed: bool = True) -> PreparedWrite:
    """The UPDATE of a change of the personal data: only if the version read is current, and
    the version moves on (the etag changes). Without ``indexed``, it leaves the indexed
    columns alone: a database updates an index whose column an UPDATE sets even to the value it
    had, which at 5 million borrowers costs more than the rest of the UPDATE."""
    columns = [
        name
        for name in (*record_columns.CHANGED_COLUMNS, *extra)
        if indexed or name not in record_columns.INDEXED_COLUMNS
    ]
    return PreparedWrite(
        update(_BORROWERS)
        .where(_BORROWERS.c.id == bindparam("key_id"))
        .where(_BORROWERS.c.version == bindparam("key_version"))
        .values(
            {name: bindparam(f"new_{name}") for name in columns}
            | {"version": _BORROWERS.c.version + 1}
        )
    )


_SAVE_PERSONAL_DATA = _save_personal_data()
_SAVE_PERSONAL_DATA_AND_NATIONAL_ID = _save_personal_data(*_NATIONAL_ID_COLUMNS)
# What following the population register writes besides the personal data.
_POPULATION_COLUMNS = (
    "population_register_checked_at",
    "in_population_register",
    "population_register_status",
    "address_protected",
    "address_protection",
    "delete_as_deceased_after",
)
_SAVE_FOLLOWED = _save_personal_data(*_POPULATION_COLUMNS)
_SAVE_FOLLOWED_AND_NATIONAL_ID = _save_personal_data(*_POPULATION_COLUMNS, *_NATIONAL_ID_COLUMNS)
# The same, for a change that leaves every indexed column as it was (most).
_SAVE_PERSONAL_DATA_UNINDEXED = _save_personal_data(indexed=False)
_SAVE_FOLLOWED_UNINDEXED = _save_personal_data(*_POPULATION_COLUMNS, indexed=False)


def _without_indexed(values: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value
        for name, value in values.items()
        if name.removeprefix("new_") not in record_columns.INDEXED_COLUMNS
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

    def national_ids_after(self, after_id: int, limit: int) -> list[tuple[int, str, str]]:
        """(id, card number, national id) of up to ``limit`` borrowers after ``after_id``, in id
        order: the national ids decrypted, for a lookup in the population register only."""
        rows = self._session.execute(
            select(BorrowerRow.id, BorrowerRow.card_number, BorrowerRow.national_id_ciphertext)
            .where(BorrowerRow.id > after_id)
            .order_by(BorrowerRow.id)
            .limit(limit)
        )
        return [(i, card, self._sealer.open(ciphertext)) for i, card, ciphertext in rows]

    def highest_id(self) -> int:
        return int(self._session.execute(select(func.max(BorrowerRow.id))).scalar_one() or 0)

    def deceased_due(self, now: dt.datetime) -> list[CardNumber]:
        """The borrowers the population register notified dead whose grace period is over."""
        return [
            CardNumber(card)
            for card in self._session.execute(
                select(BorrowerRow.card_number)
                .where(BorrowerRow.delete_as_deceased_after <= now)
                .order_by(BorrowerRow.delete_as_deceased_after)
            ).scalars()
        ]

    def deceased_pending(self) -> int:
        """How many borrowers wait out the grace period after a notified death."""
        return int(
            self._session.execute(
                select(func.count()).where(BorrowerRow.delete_as_deceased_after.is_not(None))
            ).scalar_one()
        )

    def registered_national_ids(self, national_ids: Collection[str]) -> set[str]:
        """Those of ``national_ids`` that belong to a borrower (by the blind index)."""
        by_index = {self._sealer.index(value): value for value in national_ids}
        found: set[str] = set()
        keys = list(by_index)
        for start in range(0, len(keys), 1000):
            rows = self._session.execute(
                select(BorrowerRow.national_id_index).where(
                    BorrowerRow.national_id_index.in_(keys[start : start + 1000])
                )
            ).scalars()
            found.update(by_index[bytes(index)] for index in rows)
        return found

    def get_by_identity(self, identity: IdentityValue, now: dt.datetime) -> Borrower | None:
        """The borrower with this other identity, unless its deletion time has come."""
        return self._load(
            _BY_IDENTITY, {"kind": identity.kind.value, "value": identity.value, "now": now}
        )

    def get_by_id(self, borrower_id: int) -> Borrower | None:
        return self._load(_BY_ID, {"key": borrower_id})

    def get_full_by_card_number(self, card_number: CardNumber) -> Borrower | None:
        """The borrower with their guardian links and identities (the full view), in one
        statement, for a change that leaves those as they are and answers with the full view."""
        row = _FULL[_BY_CARD_NUMBER].first(self._driver, {"key": card_number.value})
        if row is None:
            return None
        if self._prefetched is not None:
            full_record.prefetch(row, self._prefetched)
        borrower = record_columns.borrower_of(row, full_record.affiliations(row))
        return dataclasses.replace(
            borrower, links=full_record.links(row), identities=full_record.identities(row)
        )

    def get_many(self, borrower_ids: Collection[int]) -> dict[int, Borrower]:
        """The borrowers that exist among ``borrower_ids``, by id: two queries per chunk."""
        return self._many(_BORROWERS.c.id, sorted(set(borrower_ids)))

    def get_many_by_national_id(self, national_ids: Collection[str]) -> dict[str, Borrower]:
        """The borrowers with any of ``national_ids`` (by the blind index), by national id: two
        queries per chunk."""
        by_index = {self._sealer.index(value): value for value in national_ids}
        found = self._many(_BORROWERS.c.national_id_index, list(by_index))
        return {by_index[bytes(index)]: borrower for index, borrower in found.items()}

    def _many(self, column: Any, keys: list[Any]) -> dict[Any, Borrower]:
        """The borrowers whose ``column`` is one of ``keys``, by that column's value."""
        found: dict[Any, Borrower] = {}
        connection = self._session.connection()
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            rows = connection.execute(
                select(*_RECORD_COLUMNS, column.label("many_key")).where(column.in_(chunk))
            ).all()
            affiliations: dict[int, list[tuple[str, dt.datetime]]] = {}
            for a in connection.execute(
                select(
                    _AFFILIATIONS.c.borrower_id,
                    _AFFILIATIONS.c.library_number,
                    _AFFILIATIONS.c.affiliated_at,
                )
                .where(_AFFILIATIONS.c.borrower_id.in_([row.id for row in rows]))
                .order_by(_AFFILIATIONS.c.affiliated_at)
            ):
                affiliations.setdefault(a.borrower_id, []).append(
                    (a.library_number, a.affiliated_at)
                )
            for row in rows:
                found[row.many_key] = record_columns.borrower_of(row, affiliations.get(row.id, []))
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
            return record_columns.borrower_of(row, full_record.affiliations(row))
        row = statement.first(self._driver, parameters)
        if row is None:
            return None
        affiliations = _AFFILIATIONS_OF.rows(self._driver, {"id": row.id})
        return record_columns.borrower_of(
            row, [(a.library_number, a.affiliated_at) for a in affiliations]
        )

    def registration_status(
        self, card_number: CardNumber, national_id: NationalId
    ) -> tuple[CardNumberStatus, bool]:
        """For a new borrower, in one statement: the card number's status, and whether another
        borrower has the national id."""
        row = _REGISTRATION.first(
            self._driver,
            {
                "card_number": card_number.value,
                "national_id_index": self._sealer.index(national_id.value),
            },
        )
        assert row is not None
        if row.retired is None:
            status = CardNumberStatus.UNUSED
        else:
            status = CardNumberStatus.RETIRED if row.retired else CardNumberStatus.IN_USE
        return status, bool(row.national_id_taken)

    def card_number_status(self, card_number: CardNumber) -> CardNumberStatus:
        row = self._session.get(CardNumberRow, card_number.value)
        if row is None:
            return CardNumberStatus.UNUSED
        return CardNumberStatus.RETIRED if row.retired_at is not None else CardNumberStatus.IN_USE

    def national_id_matches(self, borrower: Borrower, national_id: NationalId) -> bool:
        row = self._row(borrower)
        return self._sealer.matches(national_id.value, row.national_id_index)

    def add(self, borrower: Borrower, national_id: NationalId) -> Borrower:
        connection = self._session.connection()
        row = record_columns.new_row(borrower, self._sealer.seal(national_id.value))
        borrower_id = int(connection.execute(_ADD, row).scalar_one())
        if borrower.affiliations:
            connection.execute(
                insert(_AFFILIATIONS),
                [
                    {
                        "borrower_id": borrower_id,
                        "library_number": a.library_number.value,
                        "affiliated_at": a.affiliated_at,
                    }
                    for a in borrower.affiliations
                ],
            )
        connection.execute(
            insert(_CARD_NUMBERS),
            {"card_number": borrower.card_number.value, "borrower_id": borrower_id},
        )
        return dataclasses.replace(borrower, id=borrower_id)

    def save_personal_data(
        self,
        borrower: Borrower,
        *,
        national_id: NationalId | None = None,
        before: Borrower | None = None,
    ) -> Borrower:
        """Stores a change of the personal data, home library and last changer (and the
        national id, if given) in one statement, if ``borrower.version`` is still current (else
        EtagMismatch); returns the borrower with its new version. The affiliations and card
        number stay as stored. ``before``: the borrower as read, so that indexed columns are
        written only when they change."""
        assert borrower.id is not None
        values = {
            f"new_{name}": value for name, value in record_columns.changed_columns(borrower).items()
        }
        values.update(key_id=borrower.id, key_version=borrower.version)
        statement = _SAVE_PERSONAL_DATA
        if national_id is None and _indexed_unchanged(before, borrower):
            statement, values = _SAVE_PERSONAL_DATA_UNINDEXED, _without_indexed(values)
        if national_id is not None:
            sealed = self._sealer.seal(national_id.value)
            values.update(
                new_national_id_ciphertext=sealed.ciphertext,
                new_national_id_index=sealed.index,
                new_national_id_key_version=sealed.key_version,
            )
            statement = _SAVE_PERSONAL_DATA_AND_NATIONAL_ID
        if statement.run(self._driver, values) != 1:
            raise EtagMismatch("the borrower changed since it was read; read it again")
        return dataclasses.replace(borrower, version=borrower.version + 1)

    def save_followed(
        self,
        borrower: Borrower,
        *,
        national_id: NationalId | None = None,
        erasing: bool = False,
        before: Borrower | None = None,
    ) -> Borrower:
        """As save_personal_data, with what the population register says besides (checked when,
        found, status, address protection, a death's deletion time), in one statement; the
        version moves on even if only the check's time did, as ``save`` does."""
        assert borrower.id is not None
        values = {
            f"new_{name}": value for name, value in record_columns.changed_columns(borrower).items()
        }
        values.update(
            key_id=borrower.id,
            key_version=borrower.version,
            new_population_register_checked_at=borrower.population_register_checked_at,
            new_in_population_register=borrower.in_population_register,
            new_population_register_status=borrower.population_register_status,
            new_address_protected=borrower.address_protected,
            new_address_protection=record_columns.PROTECTION_COLUMN[borrower.address_protection],
            new_delete_as_deceased_after=borrower.delete_as_deceased_after,
        )
        statement = _SAVE_FOLLOWED
        if national_id is None and _indexed_unchanged(before, borrower):
            statement, values = _SAVE_FOLLOWED_UNINDEXED, _without_indexed(values)
        if national_id is not None:
            sealed = self._sealer.seal(national_id.value)
            values.update(
                new_national_id_ciphertext=sealed.ciphertext,
                new_national_id_index=sealed.index,
                new_national_id_key_version=sealed.key_version,
            )
            statement = _SAVE_FOLLOWED_AND_NATIONAL_ID
        if statement.run(self._driver, values) != 1:
            raise EtagMismatch("the borrower changed since it was read; read it again")
        if erasing:
            erase_after_commit(self._session)
        return dataclasses.replace(borrower, version=borrower.version + 1)

    def save(
        self, borrower: Borrower, *, national_id: NationalId | None = None, erasing: bool = False
    ) -> Borrower:
        """Stores the whole record; ``erasing``: what it no longer holds is personal data to
        erase from disk once the transaction commits (store/erasure.py)."""
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
        row.population_register_checked_at = borrower.population_register_checked_at
        row.in_population_register = borrower.in_population_register
        row.population_register_status = borrower.population_register_status
        row.address_protected = borrower.address_protected
        row.processing_restricted = borrower.processing_restricted
        row.address_protection = record_columns.PROTECTION_COLUMN[borrower.address_protection]
        row.delete_as_deceased_after = borrower.delete_as_deceased_after
        if erasing:
            erase_after_commit(self._session)
        self._session.flush()
        return record_columns.borrower_of(row, _orm_affiliations(row))

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

    def protect_address(
        self, card_number: CardNumber, protected: bool, by: Actor, now: dt.datetime
    ) -> bool:
        """Sets or clears address protection; False if there is no such borrower."""
        changed = self._session.execute(
            update(BorrowerRow)
            .where(BorrowerRow.card_number == card_number.value)
            # The views change, so the etag does: an update based on the old view is refused.
            .values(
                address_protected=protected,
                version=BorrowerRow.version + 1,
                **record_columns.changed_by(by, now),
            )
            .execution_options(synchronize_session=False)
        )
        return bool(changed.rowcount)  # type: ignore[attr-defined]

    def restrict_processing(
        self, borrower: Borrower, restricted: bool, by: Actor, now: dt.datetime
    ) -> Borrower:
        """Sets or lifts the restriction, if ``borrower.version`` is current (else
        EtagMismatch); the views change, so the etag does."""
        assert borrower.id is not None
        changed = self._session.execute(
            update(BorrowerRow)
            .where(BorrowerRow.id == borrower.id, BorrowerRow.version == borrower.version)
            .values(
                processing_restricted=restricted,
                version=BorrowerRow.version + 1,
                **record_columns.changed_by(by, now),
            )
            .execution_options(synchronize_session=False)
        )
        if not changed.rowcount:  # type: ignore[attr-defined]
            raise EtagMismatch("the borrower changed since it was read; read it again")
        return dataclasses.replace(
            borrower,
            processing_restricted=restricted,
            version=borrower.version + 1,
            last_changed_by=by,
            last_changed_at=now,
        )

    def clear_expired_temporary_addresses(self, today: dt.date, by: Actor, now: dt.datetime) -> int:
        """Clears every temporary address whose last day is before ``today``; returns how many."""
        cleared = self._session.execute(
            update(BorrowerRow)
            .where(BorrowerRow.temporary_address_valid_until < today)
            .values(
                **record_columns.NO_TEMPORARY_ADDRESS,
                version=BorrowerRow.version + 1,
                **record_columns.changed_by(by, now),
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
    for name, value in record_columns.changed_columns(borrower).items():
        setattr(row, name, value)
    _write_affiliations(row, borrower)


def _write_affiliations(row: BorrowerRow, borrower: Borrower) -> None:
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


def _orm_affiliations(row: BorrowerRow) -> list[tuple[str, dt.datetime]]:
    return [(a.library_number, a.affiliated_at) for a in row.affiliations]


def _indexed_unchanged(before: Borrower | None, after: Borrower) -> bool:
    return before is not None and record_columns.indexed_values(
        before
    ) == record_columns.indexed_values(after)
