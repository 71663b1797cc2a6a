"""Borrowers' SelfService sessions in the database, known by the SHA-256 of their tokens."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session as OrmSession

from nlr_server.domain.credentials import LoginMethod, SecurityLevel
from nlr_server.domain.session import Session
from nlr_server.store.models import BorrowerRow, SelfServiceSessionRow, table_of

_SESSIONS = table_of(SelfServiceSessionRow)
_BORROWERS = table_of(BorrowerRow)


class SqlSessionRepository:
    def __init__(self, session: OrmSession) -> None:
        self._orm = session

    def add(self, digest: bytes, session: Session) -> None:
        self._orm.execute(
            insert(_SESSIONS).values(
                token_digest=digest,
                borrower_id=session.borrower_id,
                certificate_fingerprint=session.certificate_fingerprint,
                method=session.method.value,
                strength=session.strength.value,
                created_at=session.created_at,
                expires_at=session.expires_at,
                ends_at=session.ends_at,
            )
        )

    def get(self, digest: bytes) -> tuple[Session, SecurityLevel] | None:
        """The session, with its borrower's security level as it now stands."""
        row = self._orm.execute(
            select(
                _BORROWERS.c.security_level,
                _SESSIONS.c.borrower_id,
                _BORROWERS.c.card_number,
                _SESSIONS.c.certificate_fingerprint,
                _SESSIONS.c.method,
                _SESSIONS.c.strength,
                _SESSIONS.c.created_at,
                _SESSIONS.c.expires_at,
                _SESSIONS.c.ends_at,
            )
            .join(_BORROWERS, _BORROWERS.c.id == _SESSIONS.c.borrower_id)
            .where(_SESSIONS.c.token_digest == digest)
        ).first()
        if row is None:
            return None
        return _session(row), SecurityLevel(row.security_level)

    def save(self, digest: bytes, session: Session) -> None:
        """Stores the session's expiry and strength as they now are."""
        self._orm.execute(
            update(_SESSIONS)
            .where(_SESSIONS.c.token_digest == digest)
            .values(expires_at=session.expires_at, strength=session.strength.value)
        )

    def remove(self, digest: bytes) -> None:
        self._orm.execute(delete(_SESSIONS).where(_SESSIONS.c.token_digest == digest))

    def remove_of_borrower(self, borrower_id: int, keep: bytes | None = None) -> int:
        """Ends every session of the borrower (but ``keep``); how many ended."""
        statement = delete(_SESSIONS).where(_SESSIONS.c.borrower_id == borrower_id)
        if keep is not None:
            statement = statement.where(_SESSIONS.c.token_digest != keep)
        return int(self._orm.execute(statement).rowcount or 0)  # type: ignore[attr-defined]

    def remove_expired(self, now: dt.datetime) -> int:
        result = self._orm.execute(delete(_SESSIONS).where(_SESSIONS.c.expires_at <= now))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _session(row: Any) -> Session:
    return Session(
        borrower_id=row.borrower_id,
        card_number=row.card_number,
        certificate_fingerprint=row.certificate_fingerprint,
        method=LoginMethod(row.method),
        strength=SecurityLevel(row.strength),
        created_at=row.created_at,
        expires_at=row.expires_at,
        ends_at=row.ends_at,
    )
