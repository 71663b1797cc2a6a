"""Which libraries know a borrower: the home library and ending an affiliation."""

from __future__ import annotations

import datetime as dt

from nlr_server.domain.audit import Acting
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.usecases.changes import change_borrower
from nlr_server.usecases.ports import UnitOfWork, UnitOfWorkFactory


def set_home_library(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    card_number: CardNumber,
    new_home: LibraryNumber,
    now: dt.datetime,
) -> Borrower:
    def change(uow: UnitOfWork, borrower: Borrower) -> Borrower:
        return uow.borrowers.save(borrower.make_home(new_home, acting.actor, now))

    return change_borrower(unit_of_work, acting, card_number, now, change)


def remove_affiliation(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    card_number: CardNumber,
    new_home: LibraryNumber | None,
    now: dt.datetime,
) -> Borrower:
    """Ends the acting library's own affiliation; returns the borrower as it now stands."""
    library = acting.actor.library_number
    assert library is not None, "a library ends its own affiliation"

    def change(uow: UnitOfWork, borrower: Borrower) -> Borrower:
        ended = borrower.without_affiliation(library, new_home, acting.actor, now)
        return uow.borrowers.save(ended)

    return change_borrower(unit_of_work, acting, card_number, now, change, answer_full=False)
