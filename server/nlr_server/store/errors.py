"""Database failures as the register's errors, and as log text that carries none of their words.

A driver's or SQLAlchemy's message may quote a statement's parameters or a row's values
("Key (email)=(...) already exists"), so nothing of it is passed on: an error is known by its
class, its SQLSTATE (PostgreSQL) or its result code name (SQLite), and the names of the
constraint or column involved, which the schema fixes.
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy import exc as sa_exc

from nlr_server.domain import errors

# How long a caller is asked to wait before trying again when the store cannot be reached.
RETRY_AFTER_SECONDS = 1.0

# PostgreSQL SQLSTATE classes and codes (appendix A of its manual).
_UNAVAILABLE_CLASSES = ("08", "53", "57")  # connection exception, resources, operator
_ABORTED_CODES = frozenset({"40001", "40P01", "25P02", "55P03", "57014"})
_UNIQUE_VIOLATION = "23505"
_INTEGRITY_CLASS = "23"

# SQLite result code names (https://sqlite.org/rescode.html), by prefix.
_SQLITE_UNAVAILABLE = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_READONLY",
    "SQLITE_IOERR",
    "SQLITE_CANTOPEN",
    "SQLITE_FULL",
    "SQLITE_PERM",
    "SQLITE_PROTOCOL",
)
_SQLITE_UNIQUE = ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")

# A uniqueness race the use cases check for, by a word of its constraint's or column's name,
# with the reason the unraced path gives.
_UNIQUE_REASONS = (
    ("national_id", "NATIONAL_ID_IN_USE", "a borrower with this national id already exists"),
    ("card_number", "CARD_NUMBER_IN_USE", "the card number is already in use"),
    ("identit", "IDENTITY_IN_USE", "another borrower has this identity"),
    ("guardian", "GUARDIAN_ALREADY_LINKED", "that guardian is already linked"),
)


class ConnectionLost(errors.Aborted):
    """The database connection ended under a transaction: nothing of it was committed, unless
    the loss came during the commit itself. A read met by it is tried again once."""


def as_register_error(error: BaseException) -> errors.RegisterError | None:
    """The register's error for a database failure; None if it is not one (or not foreseen)."""
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection came free in time
        return _unavailable()
    if isinstance(error, sa_exc.PendingRollbackError):
        return _aborted()
    driver = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    at_connect = isinstance(error, sa_exc.DBAPIError) and error.statement is None
    if isinstance(driver, psycopg.Error):
        return _from_postgresql(driver, at_connect=at_connect)
    if isinstance(driver, sqlite3.Error):
        return _from_sqlite(driver)
    return None


def describe(error: BaseException) -> str:
    """What a log line may say of a failure: its class, and its SQLSTATE or result code."""
    driver = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    text = type(error).__name__
    if driver is not error and driver is not None:
        text += f"/{type(driver).__name__}"
    if isinstance(driver, psycopg.Error) and driver.sqlstate:
        text += f" SQLSTATE {driver.sqlstate}"
    elif isinstance(driver, sqlite3.Error):
        text += f" {getattr(driver, 'sqlite_errorname', 'SQLITE_ERROR')}"
    return text


def _from_postgresql(error: psycopg.Error, *, at_connect: bool) -> errors.RegisterError | None:
    state = error.sqlstate or ""
    if state == _UNIQUE_VIOLATION:
        return _already_exists(error.diag.constraint_name or "")
    if state.startswith(_INTEGRITY_CLASS):
        # A row this one refers to went away under a concurrent change: read again.
        return _aborted()
    if state in _ABORTED_CODES:
        return _aborted()
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError) or state.startswith(
        _UNAVAILABLE_CLASSES
    ):
        # Refused before any work began: unavailable. Lost mid-way: the transaction is gone.
        if at_connect or state == "57P03":
            return _unavailable()
        return ConnectionLost(_LOST)
    return None


def _from_sqlite(error: sqlite3.Error) -> errors.RegisterError | None:
    name = getattr(error, "sqlite_errorname", "")
    if name.startswith(_SQLITE_UNIQUE):
        # "UNIQUE constraint failed: borrowers.card_number": names from the schema only.
        return _already_exists(str(error).rpartition(":")[2])
    if name.startswith("SQLITE_CONSTRAINT"):
        return _aborted()
    if name.startswith(_SQLITE_UNAVAILABLE):
        return _unavailable()
    return None


def _already_exists(constraint: str) -> errors.AlreadyExists:
    for word, reason, message in _UNIQUE_REASONS:
        if word in constraint:
            return errors.AlreadyExists(message, reason=reason)
    return errors.AlreadyExists("a concurrent request registered the same thing")


def _unavailable() -> errors.Unavailable:
    return errors.Unavailable(
        "the register's database cannot be reached; nothing was changed, try again",
        retry_after=RETRY_AFTER_SECONDS,
    )


_LOST = "the transaction was lost before it completed; read again and retry"


def _aborted() -> errors.Aborted:
    return errors.Aborted(_LOST)
