"""PIN and password verifiers, login attempts (of borrowers and of unknown login keys) and the
last-active day of borrowers."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import BigInteger, Select, bindparam, delete, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.credentials import LoginMethod, SecurityLevel
from nlr_server.domain.identity import IdentityValue
from nlr_server.domain.lockout import LoginAttempts, LoginSubject
from nlr_server.store.models import BorrowerRow, IdentityRow, LoginAttemptsRow, table_of
from nlr_server.store.prepared import DriverConnection, PreparedRead, PreparedWrite
from nlr_server.usecases.ports import LoginCandidate

_BORROWERS = table_of(BorrowerRow)
_ATTEMPTS = table_of(LoginAttemptsRow)
_IDENTITIES = table_of(IdentityRow)


_ATTEMPT_COLUMNS = (
    _ATTEMPTS.c.consecutive_failures,
    _ATTEMPTS.c.lockouts,
    _ATTEMPTS.c.locked_until,
    _ATTEMPTS.c.last_failure_at,
    _ATTEMPTS.c.checks_in_flight,
    _ATTEMPTS.c.in_flight_until,
)


def _upsert(dialect: str) -> Any:
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    values: dict[str, Any] = {
        column: bindparam(column)
        for column in (
            "login_key",
            "method",
            "borrower_id",
            "consecutive_failures",
            "lockouts",
            "locked_until",
            "last_failure_at",
            "checks_in_flight",
            "in_flight_until",
            "last_event_at",
        )
    }
    statement = insert(_ATTEMPTS).values(values)
    return statement.on_conflict_do_update(
        index_elements=[_ATTEMPTS.c.login_key, _ATTEMPTS.c.method],
        set_={
            name: statement.excluded[name] for name in values if name not in ("login_key", "method")
        },
    )


def _candidate(method: LoginMethod, by: str, dialect: str) -> Select[Any]:
    verifier = (
        _BORROWERS.c.pin_verifier if method is LoginMethod.PIN else _BORROWERS.c.password_verifier
    )
    columns = (_BORROWERS.c.id, _BORROWERS.c.card_number, _BORROWERS.c.security_level, verifier)
    if by == "card_number":
        holds = _BORROWERS.c.card_number == bindparam("card_number")
    else:
        holds = (
            _BORROWERS.c.id
            == select(_IDENTITIES.c.borrower_id)
            .where(
                _IDENTITIES.c.kind == bindparam("kind"),
                _IDENTITIES.c.value == bindparam("value"),
                _IDENTITIES.c.delete_after > bindparam("now"),
            )
            .scalar_subquery()
        )
    one = select(literal(1).label("one")).subquery()
    if dialect != "postgresql":
        # The transaction's write lock is held already, so the attempts are read in the same
        # statement: the holder's, or else the key's. One row either way.
        whose = or_(
            _BORROWERS.c.id.is_not(None) & (_ATTEMPTS.c.borrower_id == _BORROWERS.c.id),
            _BORROWERS.c.id.is_(None) & (_ATTEMPTS.c.login_key == bindparam("key_tag")),
        )
        return select(*columns, *_ATTEMPT_COLUMNS).select_from(
            one.outerjoin(_BORROWERS, holds).outerjoin(
                _ATTEMPTS, (_ATTEMPTS.c.method == method.value) & whose
            )
        )
    # On PostgreSQL the same statement takes the login subject's lock (_LOCK_SUBJECT): the
    # holder's, or else the key's (``unknown_lock``). One row either way (nulls: nobody holds
    # the key), so the lookup and the lock cost one round trip, whoever holds the key.
    lock = func.pg_advisory_xact_lock(
        func.coalesce(_BORROWERS.c.id, bindparam("unknown_lock", type_=BigInteger))
    )
    return select(*columns, lock.label("locked")).select_from(one.outerjoin(_BORROWERS, holds))


# Every login runs these (see store/prepared.py).
_CANDIDATES = {
    (method, by): PreparedRead(functools.partial(_candidate, method, by))
    for method in (LoginMethod.PIN, LoginMethod.PASSWORD)
    for by in ("card_number", "identity")
}
_ATTEMPTS_OF = PreparedRead(
    select(*_ATTEMPT_COLUMNS).where(
        _ATTEMPTS.c.login_key == bindparam("key"), _ATTEMPTS.c.method == bindparam("method")
    )
)
_SAVE_ATTEMPTS = PreparedWrite(_upsert)
_CLEAR_ATTEMPTS = PreparedWrite(
    delete(_ATTEMPTS).where(
        _ATTEMPTS.c.login_key == bindparam("key"), _ATTEMPTS.c.method == bindparam("method")
    )
)
# Serialises the attempts of one login subject on PostgreSQL, whether or not any row of it
# exists yet (an unknown key's first attempt has none to lock), without writing anything: a
# transaction-scoped advisory lock. SQLite needs none: every writing transaction holds its
# write lock from the start (BEGIN IMMEDIATE).
_LOCK_SUBJECT = PreparedRead(select(func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger))))


def _stored_key(subject: LoginSubject) -> bytes:
    if subject.borrower_id is not None:
        return b"borrower/%d" % subject.borrower_id
    assert subject.key_tag is not None
    return subject.key_tag


def _lock_key(subject: LoginSubject) -> int:
    """A 64-bit advisory lock key: a borrower's id (positive), or 63 bits of an unknown key's
    tag (negative), so the two kinds never share a lock."""
    if subject.borrower_id is not None:
        return subject.borrower_id
    assert subject.key_tag is not None
    return -(int.from_bytes(subject.key_tag[:8], "big") >> 1) - 1


def _attempts(row: Any) -> LoginAttempts:
    if row is None or row.consecutive_failures is None:
        return LoginAttempts()
    return LoginAttempts(
        consecutive_failures=row.consecutive_failures,
        lockouts=row.lockouts,
        locked_until=row.locked_until,
        last_failure_at=row.last_failure_at,
        checks_in_flight=row.checks_in_flight,
        in_flight_until=row.in_flight_until,
    )


class SqlCredentialRepository:
    def __init__(self, session: Session, driver: DriverConnection) -> None:
        self._session = session
        self._driver = driver
        self._dialect: str | None = None

    def verifier(self, borrower_id: int, method: LoginMethod) -> str | None:
        column = (
            BorrowerRow.pin_verifier if method is LoginMethod.PIN else BorrowerRow.password_verifier
        )
        return self._session.scalar(select(column).where(BorrowerRow.id == borrower_id))

    def claim_login(
        self,
        key: CardNumber | IdentityValue,
        key_tag: bytes,
        method: LoginMethod,
        now: dt.datetime,
    ) -> tuple[LoginCandidate | None, LoginAttempts | None]:
        """The borrower holding the key (an identity only until its deletion time), None if
        nobody does, with the login subject's lock (as lock_login takes it) held from then on:
        the holder's, or else that of the key's tag. One query: on PostgreSQL it takes the
        lock itself; on SQLite the transaction's write lock, taken by it, is the lock, and the
        subject's attempts come with it (None: read them with login_attempts, after it)."""
        if isinstance(key, CardNumber):
            read = _CANDIDATES[method, "card_number"]
            parameters: dict[str, Any] = {"card_number": key.value}
        else:
            read = _CANDIDATES[method, "identity"]
            parameters = {
                "kind": key.kind.value,
                "value": key.value,
                "now": now,
            }
        locks = self._dialect_name() == "postgresql"
        if locks:
            parameters["unknown_lock"] = _lock_key(LoginSubject.of_unknown_key(key_tag))
        else:
            parameters["key_tag"] = key_tag
        row = read.first(self._driver, parameters)
        attempts = None if locks else _attempts(row)
        if row is None or row.id is None:
            return None, attempts
        holder = LoginCandidate(row.id, row.card_number, SecurityLevel(row.security_level), row[3])
        return holder, attempts

    def lock_login(self, subject: LoginSubject) -> None:
        """Serialises the attempts of one subject until the transaction ends."""
        if self._dialect_name() == "postgresql":
            _LOCK_SUBJECT.first(self._driver, {"key": _lock_key(subject)})

    def _dialect_name(self) -> str:
        if self._dialect is None:
            self._dialect = self._driver.get()[1].name
        return self._dialect

    def login_attempts(self, subject: LoginSubject, method: LoginMethod) -> LoginAttempts:
        key = _stored_key(subject)
        return _attempts(_ATTEMPTS_OF.first(self._driver, {"key": key, "method": method.value}))

    def save_login_attempts(
        self, subject: LoginSubject, method: LoginMethod, attempts: LoginAttempts
    ) -> None:
        """Stores the attempts as they now stand (a clean slate: no row); the caller holds the
        subject's lock."""
        key = _stored_key(subject)
        if attempts.clean:
            _CLEAR_ATTEMPTS.run(self._driver, {"key": key, "method": method.value})
            return
        _SAVE_ATTEMPTS.run(
            self._driver,
            {
                "login_key": key,
                "method": method.value,
                "borrower_id": subject.borrower_id,
                "consecutive_failures": attempts.consecutive_failures,
                "lockouts": attempts.lockouts,
                "locked_until": attempts.locked_until,
                "last_failure_at": attempts.last_failure_at,
                "checks_in_flight": attempts.checks_in_flight,
                "in_flight_until": attempts.in_flight_until,
                "last_event_at": attempts.last_event_at,
            },
        )

    def forget_login_attempts(self, last_event_before: dt.datetime) -> int:
        """Removes every subject's attempts whose last event is older; returns how many."""
        result = self._session.execute(
            delete(LoginAttemptsRow).where(
                or_(
                    LoginAttemptsRow.last_event_at.is_(None),
                    LoginAttemptsRow.last_event_at < last_event_before,
                )
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def set_pin(self, borrower_id: int, verifier: str, key_version: int) -> int:
        """Stores a new PIN verifier; returns the borrower's new version."""
        # The login lock before the row's, in the order a login takes them (a success marks
        # the borrower active), so the two never wait for each other in a circle.
        self.lock_login(LoginSubject.of_borrower(borrower_id))
        row = self._locked_borrower(borrower_id)
        row.pin_verifier = verifier
        row.pin_key_version = key_version
        self._session.flush()
        return row.version

    def set_password(self, borrower_id: int, verifier: str) -> int:
        """Stores a new password verifier; returns the borrower's new version."""
        self.lock_login(LoginSubject.of_borrower(borrower_id))  # as in set_pin
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

    def save_attempts(self, borrower_id: int, method: LoginMethod, attempts: LoginAttempts) -> None:
        """Stores a borrower's attempts (a new PIN or password: a clean slate), under the lock
        a login of theirs takes."""
        subject = LoginSubject.of_borrower(borrower_id)
        self.lock_login(subject)
        self.save_login_attempts(subject, method, attempts)

    def mark_active(self, borrower_id: int, day: dt.date) -> None:
        # A plain UPDATE: activity is not a change to the record, so the etag stays.
        self._session.execute(
            update(BorrowerRow)
            .where(BorrowerRow.id == borrower_id)
            .values(last_active_on=day)
            .execution_options(synchronize_session=False)
        )

    def _locked_borrower(self, borrower_id: int) -> BorrowerRow:
        # FOR NO KEY UPDATE (PostgreSQL): does not block rows that merely reference the
        # borrower (a change-feed entry written by a transaction that already holds the feed's
        # lock), which could otherwise deadlock.
        row = self._session.get(BorrowerRow, borrower_id, with_for_update={"key_share": True})
        if row is None:
            raise LookupError("borrower vanished")
        return row
