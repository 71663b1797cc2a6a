"""Guardian links in the database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.guardian import GuardianLink, GuardianLinks
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.store.full_record import Prefetched
from nlr_server.store.models import BorrowerRow, GuardianLinkRow, table_of
from nlr_server.store.prepared import DriverConnection, PreparedRead

_LINKS = table_of(GuardianLinkRow)
_LINK_COLUMNS = (_LINKS.c.child_id, _LINKS.c.guardian_id, _LINKS.c.linked_at, _LINKS.c.linked_by)
# One borrower's links: part of every full view, a hot read (see store/prepared.py).
_LINKS_OF_ONE = PreparedRead(
    select(*_LINK_COLUMNS)
    .where((_LINKS.c.child_id == bindparam("id")) | (_LINKS.c.guardian_id == bindparam("id")))
    .order_by(_LINKS.c.linked_at)
)


class SqlGuardianRepository:
    def __init__(
        self, session: Session, driver: DriverConnection, prefetched: Prefetched | None = None
    ) -> None:
        self._session = session
        self._driver = driver
        self._prefetched = prefetched

    def link(self, child_id: int, guardian_id: int, at: dt.datetime, by: LibraryNumber) -> bool:
        """Adds the link; False if it already exists."""
        if self._session.get(GuardianLinkRow, (child_id, guardian_id)) is not None:
            return False
        self._session.add(
            GuardianLinkRow(
                child_id=child_id, guardian_id=guardian_id, linked_at=at, linked_by=by.value
            )
        )
        self._session.flush()
        return True

    def unlink(self, child_id: int, guardian_id: int) -> bool:
        """Removes the link; False if there was none."""
        removed = self._session.execute(
            delete(GuardianLinkRow).where(
                GuardianLinkRow.child_id == child_id, GuardianLinkRow.guardian_id == guardian_id
            )
        )
        return bool(removed.rowcount)  # type: ignore[attr-defined]

    def guardian_count(self, child_id: int) -> int:
        return (
            self._session.scalar(select(func.count()).where(GuardianLinkRow.child_id == child_id))
            or 0
        )

    def links_of(self, borrower_id: int) -> GuardianLinks:
        if self._prefetched is not None and borrower_id in self._prefetched.links:
            return self._prefetched.links[borrower_id]
        rows = _LINKS_OF_ONE.rows(self._driver, {"id": borrower_id})
        return self._links(rows, {borrower_id}).get(borrower_id, GuardianLinks())

    def links_of_many(self, borrower_ids: Collection[int]) -> dict[int, GuardianLinks]:
        """The links of each of the borrowers that has any."""
        # One indexed query finds both sides; most borrowers have no links, so the card
        # numbers are looked up only when there are some.
        ids = set(borrower_ids)
        rows = self._session.execute(
            select(*_LINK_COLUMNS)
            .where(_LINKS.c.child_id.in_(ids) | _LINKS.c.guardian_id.in_(ids))
            .order_by(_LINKS.c.linked_at)
        ).all()
        return self._links(rows, ids)

    def _links(self, rows: Sequence[Any], ids: set[int]) -> dict[int, GuardianLinks]:
        if not rows:
            return {}
        everyone = {r.guardian_id for r in rows} | {r.child_id for r in rows}
        cards = dict(
            self._session.execute(
                select(BorrowerRow.id, BorrowerRow.card_number).where(BorrowerRow.id.in_(everyone))
            ).all()
        )

        def link(other: int, row: Any) -> GuardianLink:
            return GuardianLink(
                CardNumber(cards[other]), row.linked_at, LibraryNumber(row.linked_by)
            )

        guardians: dict[int, list[GuardianLink]] = {}
        wards: dict[int, list[GuardianLink]] = {}
        for row in rows:
            if row.child_id in ids:
                guardians.setdefault(row.child_id, []).append(link(row.guardian_id, row))
            if row.guardian_id in ids:
                wards.setdefault(row.guardian_id, []).append(link(row.child_id, row))
        return {
            borrower_id: GuardianLinks(
                guardians=tuple(guardians.get(borrower_id, ())),
                wards=tuple(wards.get(borrower_id, ())),
            )
            for borrower_id in guardians.keys() | wards.keys()
        }
