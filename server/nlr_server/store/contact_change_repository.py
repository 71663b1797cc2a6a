"""Borrowers' new emails and mobile phones waiting for their one-time codes."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from nlr_server.domain.contact_change import ContactKind, PendingContact
from nlr_server.store.erasure import erase_after_commit
from nlr_server.store.models import ContactChangeRow, table_of

_CHANGES = table_of(ContactChangeRow)


class SqlContactChangeRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def pending(self, borrower_id: int, kind: ContactKind) -> PendingContact | None:
        row = self._session.execute(
            select(_CHANGES).where(
                _CHANGES.c.borrower_id == borrower_id, _CHANGES.c.kind == kind.value
            )
        ).first()
        if row is None:
            return None
        return PendingContact(
            row.borrower_id,
            ContactKind(row.kind),
            row.value,
            row.code_verifier,
            row.expires_at,
            row.attempts,
            row.sends,
            row.window_started_at,
        )

    def put(self, pending: PendingContact) -> None:
        """The waiting change, in place of any of its kind."""
        self._session.execute(
            delete(_CHANGES).where(
                _CHANGES.c.borrower_id == pending.borrower_id,
                _CHANGES.c.kind == pending.kind.value,
            )
        )
        self._session.add(
            ContactChangeRow(
                borrower_id=pending.borrower_id,
                kind=pending.kind.value,
                value=pending.value,
                code_verifier=pending.code_verifier,
                expires_at=pending.expires_at,
                attempts=pending.attempts,
                sends=pending.sends,
                window_started_at=pending.window_started_at,
            )
        )
        self._session.flush()

    def count_attempt(self, pending: PendingContact) -> None:
        self._session.execute(
            update(_CHANGES)
            .where(
                _CHANGES.c.borrower_id == pending.borrower_id,
                _CHANGES.c.kind == pending.kind.value,
            )
            .values(attempts=_CHANGES.c.attempts + 1)
        )

    def remove(self, borrower_id: int, kind: ContactKind) -> None:
        """Removes the waiting change, and what it held from the disk."""
        self._session.execute(
            delete(_CHANGES).where(
                _CHANGES.c.borrower_id == borrower_id, _CHANGES.c.kind == kind.value
            )
        )
        erase_after_commit(self._session)
