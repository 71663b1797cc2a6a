"""PIN and password verifiers, login attempts and the last-active day of borrowers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, bindparam, delete, select, update
from sqlalchemy.orm import Session

from nlr_server.domain.credentials import LoginMethod
from nlr_server.domain.lockout import LoginAttempts
from nlr_server.store.models import BorrowerRow, LoginAttemptsRow, table_of
from nlr_server.store.prepared import DriverConnection, PreparedRead

_BORROWERS = table_of(BorrowerRow)
_ATTEMPTS = table_of(LoginAttemptsRow)


def _login_secrets(method: LoginMethod) -> Select[Any]:
    verifier = (
        _BORROWERS.c.pin_verifier if method is LoginMethod.PIN else _BORROWERS.c.password_verifier
    )
    return (
        select(
            verifier,
            _ATTEMPTS.c.consecutive_failures,
            _ATTEMPTS.c.lockouts,
            _ATTEMPTS.c.locked_until,
        )
        .select_from(_BORROWERS)
        .outerjoin(
            _ATTEMPTS,
            (_ATTEMPTS.c.borrower_id == _BORROWERS.c.id) & (_ATTEMPTS.c.method == method.value),
        )
        .where(_BORROWERS.c.id == bindparam("id"))
    )


# Every login runs these (see store/prepared.py).
_LOGIN_SECRETS = {method: PreparedRead(_login_secrets(method)) for method in LoginMethod}
# FOR NO KEY UPDATE (PostgreSQL): serialises attempts on the borrower, yet does not block rows
# that merely reference it (a change-feed entry written by a transaction that already holds
# the feed's lock), which could otherwise deadlock. SQLite's write lock serialises anyway.
_LOCK_FOR_ATTEMPT = PreparedRead(
    select(_BORROWERS.c.id)
    .where(_BORROWERS.c.id == bindparam("id"))
    .with_for_update(key_share=True)
)


class SqlCredentialRepository:
    def __init__(self, session: Session, driver: DriverConnection) -> None:
        self._session = session
        self._driver = driver

    def verifier(self, borrower_id: int, method: LoginMethod) -> str | None:
        column = (
            BorrowerRow.pin_verifier if method is LoginMethod.PIN else BorrowerRow.password_verifier
        )
        return self._session.scalar(select(column).where(BorrowerRow.id == borrower_id))

    def login_secrets(
        self, borrower_id: int, method: LoginMethod
    ) -> tuple[str | None, LoginAttempts]:
        """The verifier and the attempts of one login method, in one query."""
        row = _LOGIN_SECRETS[method].first(self._driver, {"id": borrower_id})
        assert row is not None, "the caller has just read the borrower"
        if row.consecutive_failures is None:
            return row[0], LoginAttempts()
        return row[0], LoginAttempts(row.consecutive_failures, row.lockouts, row.locked_until)

    def set_pin(self, borrower_id: int, verifier: str, key_version: int) -> int:
        """Stores a new PIN verifier; returns the borrower's new version."""
        row = self._locked_borrower(borrower_id)
        row.pin_verifier = verifier
        row.pin_key_version = key_version
        self._session.flush()
        return row.version

    def set_password(self, borrower_id: int, verifier: str) -> int:
        """Stores a new password verifier; returns the borrower's new version."""
        row = self._locked_borrower(borrower_id)
        row.password_verifier = verifier
        self._session.flush()
        return row.version

    def rehash_password(self, borrower_id: int, old: str, new: str) -> None:
        """Replaces the verifier only if it is still ``old``, without changing the etag."""
        self._session.execute(
            update(BorrowerRow)
            .where(BorrowerRow.id == borrower_id, BorrowerRow.password_verifier == old)
            .values(password_verifier=new)
            .execution_options(synchronize_session=False)
        )

    def attempts(self, borrower_id: int, method: LoginMethod) -> LoginAttempts:
        row = self._session.get(LoginAttemptsRow, (borrower_id, method.value))
        if row is None:
            return LoginAttempts()
        return LoginAttempts(
            consecutive_failures=row.consecutive_failures,
            lockouts=row.lockouts,
            locked_until=row.locked_until,
        )

    def lock_for_attempt(self, borrower_id: int) -> bool:
        """Serialises concurrent attempts on one borrower; False if the borrower is gone."""
        return _LOCK_FOR_ATTEMPT.first(self._driver, {"id": borrower_id}) is not None

    def save_attempts(self, borrower_id: int, method: LoginMethod, attempts: LoginAttempts) -> None:
        if attempts == LoginAttempts():
            self._session.execute(
                delete(LoginAttemptsRow).where(
                    LoginAttemptsRow.borrower_id == borrower_id,
                    LoginAttemptsRow.method == method.value,
                )
            )
            return
        row = self._session.get(LoginAttemptsRow, (borrower_id, method.value))
        if row is None:
            row = LoginAttemptsRow(borrower_id=borrower_id, method=method.value)
            self._session.add(row)
        row.consecutive_failures = attempts.consecutive_failures
        row.lockouts = attempts.lockouts
        row.locked_until = attempts.locked_until
        self._session.flush()

    def mark_active(self, borrower_id: int, day: dt.date) -> None:
        # A plain UPDATE: activity is not a change to the record, so the etag stays.
        self._session.execute(
            update(BorrowerRow)
            .where(BorrowerRow.id == borrower_id)
            .values(last_active_on=day)
            .execution_options(synchronize_session=False)
        )

    def _locked_borrower(self, borrower_id: int) -> BorrowerRow:
        # Locked as _LOCK_FOR_ATTEMPT locks it.
        row = self._session.get(BorrowerRow, borrower_id, with_for_update={"key_share": True})
        if row is None:
            raise LookupError("borrower vanished")
        return row
