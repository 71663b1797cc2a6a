"""A library sets a borrower's PIN or password (already turned into a verifier)."""

from __future__ import annotations

import datetime as dt

from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.credentials import LoginMethod
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.lockout import LoginAttempts
from nlr_server.usecases import change_feed
from nlr_server.usecases.lookup import find_affiliated
from nlr_server.usecases.ports import UnitOfWorkFactory


def set_pin(
    unit_of_work: UnitOfWorkFactory,
    library: LibraryNumber,
    card_number: CardNumber,
    verifier: str,
    key_version: int,
    now: dt.datetime,
) -> str:
    """Stores the new PIN verifier and ends any PIN lockout; returns the new etag."""
    with unit_of_work() as uow:
        borrower = find_affiliated(uow, library, card_number)
        assert borrower.id is not None
        version = uow.credentials.set_pin(borrower.id, verifier, key_version)
        uow.credentials.save_attempts(borrower.id, LoginMethod.PIN, LoginAttempts())
        change_feed.record(uow, borrower, borrower, now)
        uow.commit()
        return f'"{version}"'


def set_password(
    unit_of_work: UnitOfWorkFactory,
    library: LibraryNumber,
    card_number: CardNumber,
    verifier: str,
    now: dt.datetime,
) -> str:
    """Stores the new password verifier and ends any password lockout; returns the new etag."""
    with unit_of_work() as uow:
        borrower = find_affiliated(uow, library, card_number)
        assert borrower.id is not None
        version = uow.credentials.set_password(borrower.id, verifier)
        uow.credentials.save_attempts(borrower.id, LoginMethod.PASSWORD, LoginAttempts())
        change_feed.record(uow, borrower, borrower, now)
        uow.commit()
        return f'"{version}"'
