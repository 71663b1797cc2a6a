"""Borrowers' other identities (Feide, Pocket, school card) in the database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from sqlalchemy import bindparam, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nlr_server.domain.identity import Identity, IdentityKind, IdentityValue
from nlr_server.store.erasure import erase_after_commit
from nlr_server.store.full_record import Prefetched
from nlr_server.store.models import IdentityRow, table_of
from nlr_server.store.prepared import DriverConnection, PreparedRead

_IDENTITIES = table_of(IdentityRow)
_COLUMNS = (
    _IDENTITIES.c.borrower_id,
    _IDENTITIES.c.kind,
    _IDENTITIES.c.value,
    _IDENTITIES.c.created_at,
    _IDENTITIES.c.delete_after,
)
_ORDER = (_IDENTITIES.c.created_at, _IDENTITIES.c.kind)
# One borrower's identities: part of every full view, a hot read (see store/prepared.py).
_OF_ONE = PreparedRead(
    select(*_COLUMNS).where(_IDENTITIES.c.borrower_id == bindparam("id")).order_by(*_ORDER)
)


class SqlIdentityRepository:
    def __init__(
        self, session: Session, driver: DriverConnection, prefetched: Prefetched | None = None
    ) -> None:
        self._session = session
        self._driver = driver
        self._prefetched = prefetched

    def of_borrower(self, borrower_id: int) -> tuple[Identity, ...]:
        """The borrower's identities, oldest first."""
        if self._prefetched is not None and borrower_id in self._prefetched.identities:
            return self._prefetched.identities[borrower_id]
        return tuple(_identity(r) for r in _OF_ONE.rows(self._driver, {"id": borrower_id}))

    def of_borrowers(self, borrower_ids: Collection[int]) -> dict[int, tuple[Identity, ...]]:
        """The identities of each of the borrowers that has any, oldest first."""
        rows = self._session.execute(
            select(*_COLUMNS)
            .where(_IDENTITIES.c.borrower_id.in_(set(borrower_ids)))
            .order_by(*_ORDER)
        ).all()
        held: dict[int, list[Identity]] = {}
        for r in rows:
            held.setdefault(r.borrower_id, []).append(_identity(r))
        return {borrower_id: tuple(identities) for borrower_id, identities in held.items()}

    def add(self, borrower_id: int, identity: Identity) -> bool:
        """Adds the identity; False if the borrower has one of its kind or another borrower has
        its value. The unique constraints decide (in a savepoint, so the transaction goes on),
        so two concurrent requests cannot both succeed."""
        try:
            with self._session.begin_nested():
                self._session.add(
                    IdentityRow(
                        borrower_id=borrower_id,
                        kind=identity.kind.value,
                        value=identity.value,
                        created_at=identity.created_at,
                        delete_after=identity.delete_after,
                    )
                )
        except IntegrityError:
            return False
        return True

    def remove(self, borrower_id: int, kind: IdentityKind) -> bool:
        """Removes the borrower's identity of ``kind``; False if there was none."""
        removed = self._session.execute(
            delete(IdentityRow).where(
                IdentityRow.borrower_id == borrower_id, IdentityRow.kind == kind.value
            )
        )
        if removed.rowcount:  # type: ignore[attr-defined]
            erase_after_commit(self._session)
        return bool(removed.rowcount)  # type: ignore[attr-defined]

    def expired_holders(self, now: dt.datetime) -> list[int]:
        """Internal ids of borrowers with an identity whose deletion time has come."""
        return list(
            self._session.execute(
                select(IdentityRow.borrower_id).where(IdentityRow.delete_after <= now).distinct()
            ).scalars()
        )

    def remove_expired(self, now: dt.datetime) -> int:
        """Removes every identity whose deletion time has come; returns how many."""
        removed = self._session.execute(delete(IdentityRow).where(IdentityRow.delete_after <= now))
        if removed.rowcount:  # type: ignore[attr-defined]
            erase_after_commit(self._session)
        return int(removed.rowcount)  # type: ignore[attr-defined]

    def remove_expired_in_the_way(
        self, borrower_id: int, value: IdentityValue, now: dt.datetime
    ) -> None:
        """Removes expired identities that would stop the borrower getting ``value``: theirs of
        that kind, or anyone's with that value."""
        removed = self._session.execute(
            delete(IdentityRow).where(
                IdentityRow.delete_after <= now,
                IdentityRow.kind == value.kind.value,
                or_(IdentityRow.borrower_id == borrower_id, IdentityRow.value == value.value),
            )
        )
        if removed.rowcount:  # type: ignore[attr-defined]
            erase_after_commit(self._session)


def _identity(row: Any) -> Identity:
    return Identity(IdentityKind(row.kind), row.value, row.created_at, row.delete_after)
