"""Which libraries know a borrower: the home library and ending an affiliation."""

from __future__ import annotations

import datetime as dt

from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.usecases import change_feed
from nlr_server.usecases.lookup import find_affiliated
from nlr_server.usecases.ports import UnitOfWorkFactory
from nlr_server.usecases.views import full_view


def set_home_library(
    unit_of_work: UnitOfWorkFactory,
    library: LibraryNumber,
    card_number: CardNumber,
    new_home: LibraryNumber,
    now: dt.datetime,
) -> Borrower:
    with unit_of_work() as uow:
        borrower = find_affiliated(uow, library, card_number)
        saved = uow.borrowers.save(borrower.make_home(new_home, library, now))
        change_feed.record(uow, borrower, saved, now)
        uow.commit()
        return full_view(uow, saved)


def remove_affiliation(
    unit_of_work: UnitOfWorkFactory,
    library: LibraryNumber,
    card_number: CardNumber,
    new_home: LibraryNumber | None,
    now: dt.datetime,
) -> Borrower:
    """Ends the acting library's own affiliation; returns the borrower as it now stands."""
    with unit_of_work() as uow:
        borrower = find_affiliated(uow, library, card_number)
        saved = uow.borrowers.save(borrower.without_affiliation(library, new_home, now))
        change_feed.record(uow, borrower, saved, now)
        uow.commit()
        return saved
