"""The outbox of deletion notices: queued with a deletion, claimed, delivered and purged."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nlr_server.domain.contact import EmailAddress
from nlr_server.domain.deletion_notice import DeletionNotice, NoticeLibrary
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.person_name import PersonName
from nlr_server.store.erasure import erase_after_commit
from nlr_server.store.models import DeletionNoticeRow, table_of

_NOTICES = table_of(DeletionNoticeRow)

PENDING = "pending"
DELIVERED = "delivered"
GIVEN_UP = "given_up"

# Ending a notice empties every column that says whom it was for.
_PURGED: dict[str, Any] = {
    "next_attempt_at": None,
    "recipient": None,
    "given_name": None,
    "family_name": None,
    "libraries": None,
}


class SqlNoticeRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def queue(self, notice: DeletionNotice) -> int:
        """Adds a notice, due at once; returns its id."""
        row = DeletionNoticeRow(
            status=PENDING,
            created_at=notice.created_at,
            attempts=0,
            next_attempt_at=notice.created_at,
            recipient=notice.recipient.value,
            given_name=notice.borrower_name.given_name,
            family_name=notice.borrower_name.family_name,
            libraries=json.dumps(
                [[library.number.value, library.name] for library in notice.libraries],
                ensure_ascii=False,
            ),
        )
        self._session.add(row)
        self._session.flush()
        return row.id

    def due(
        self, now: dt.datetime, limit: int, *, claim_until: dt.datetime
    ) -> list[DeletionNotice]:
        """Up to ``limit`` pending notices due at ``now``, claimed until ``claim_until``: no other
        server picks them up before then, even after this transaction commits.

        On PostgreSQL rows another server is claiming right now are skipped, not waited for; on
        SQLite write transactions run one at a time (BEGIN IMMEDIATE), which is as safe.
        """
        rows = self._session.execute(
            select(_NOTICES)
            .where(_NOTICES.c.status == PENDING, _NOTICES.c.next_attempt_at <= now)
            .order_by(_NOTICES.c.next_attempt_at, _NOTICES.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if rows:
            self._session.execute(
                update(_NOTICES)
                .where(_NOTICES.c.id.in_([row.id for row in rows]))
                .values(next_attempt_at=claim_until)
            )
        return [_to_domain(row) for row in rows]

    def mark_delivered(self, notice_id: int, now: dt.datetime) -> None:
        """Ends the notice and purges its personal data."""
        self._session.execute(
            update(_NOTICES)
            .where(_NOTICES.c.id == notice_id)
            .values(status=DELIVERED, ended_at=now, **_PURGED)
        )
        erase_after_commit(self._session)

    def mark_failed(self, notice_id: int, next_attempt_at: dt.datetime) -> None:
        """Counts a failed attempt and sets the next one (unless the notice has ended)."""
        self._session.execute(
            update(_NOTICES)
            .where(_NOTICES.c.id == notice_id, _NOTICES.c.status == PENDING)
            .values(attempts=_NOTICES.c.attempts + 1, next_attempt_at=next_attempt_at)
        )

    def give_up_created_before(self, cutoff: dt.datetime, now: dt.datetime) -> list[int]:
        """Ends every pending notice created before ``cutoff`` and purges its personal data;
        returns their ids."""
        ids = list(
            self._session.scalars(
                select(_NOTICES.c.id)
                .where(
                    _NOTICES.c.status == PENDING,
                    _NOTICES.c.next_attempt_at.is_not(None),
                    _NOTICES.c.created_at < cutoff,
                )
                .order_by(_NOTICES.c.id)
                .with_for_update(skip_locked=True)
            )
        )
        if ids:
            self._session.execute(
                update(_NOTICES)
                .where(_NOTICES.c.id.in_(ids))
                .values(status=GIVEN_UP, ended_at=now, **_PURGED)
            )
            erase_after_commit(self._session)
        return ids


def _to_domain(row: Any) -> DeletionNotice:
    return DeletionNotice(
        recipient=EmailAddress(row.recipient),
        borrower_name=PersonName(given_name=row.given_name, family_name=row.family_name),
        libraries=tuple(
            NoticeLibrary(LibraryNumber(number), name) for number, name in json.loads(row.libraries)
        ),
        created_at=row.created_at,
        attempts=row.attempts,
        id=row.id,
    )
