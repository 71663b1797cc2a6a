"""A library sets a borrower's PIN or password (already turned into a verifier). Either ends
the borrower's SelfService sessions (domain/session.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from nlr_server.domain.audit import Acting
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.credentials import LoginMethod
from nlr_server.domain.lockout import LoginAttempts
from nlr_server.usecases.changes import change_borrower
from nlr_server.usecases.ports import UnitOfWork, UnitOfWorkFactory


def set_pin(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    card_number: CardNumber,
    verifier: str,
    key_version: int,
    now: dt.datetime,
    keep_session: bytes | None = None,
) -> str:
    """Stores the new PIN verifier and ends any PIN lockout; returns the new etag. The
    borrower's sessions end, but ``keep_session`` (theirs, when they set it themself)."""

    def change(uow: UnitOfWork, borrower: Borrower) -> Borrower:
        assert borrower.id is not None
        version = uow.credentials.set_pin(borrower.id, verifier, key_version)
        uow.credentials.save_attempts(borrower.id, LoginMethod.PIN, LoginAttempts())
        uow.sessions.remove_of_borrower(borrower.id, keep=keep_session)
        return dataclasses.replace(borrower, version=version, has_pin=True)

    return change_borrower(unit_of_work, acting, card_number, now, change, answer_full=False).etag


def set_password(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    card_number: CardNumber,
    verifier: str,
    now: dt.datetime,
    keep_session: bytes | None = None,
) -> str:
    """Stores the new password verifier and ends any password lockout; returns the new etag.
    The borrower's sessions end, but ``keep_session``."""

    def change(uow: UnitOfWork, borrower: Borrower) -> Borrower:
        assert borrower.id is not None
        version = uow.credentials.set_password(borrower.id, verifier)
        uow.credentials.save_attempts(borrower.id, LoginMethod.PASSWORD, LoginAttempts())
        uow.sessions.remove_of_borrower(borrower.id, keep=keep_session)
        return dataclasses.replace(borrower, version=version, has_password=True)

    return change_borrower(unit_of_work, acting, card_number, now, change, answer_full=False).etag
