"""Library cards: a new number for a lost card, the old one retired for ever."""

from __future__ import annotations

import datetime as dt

from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.card_reservation import (
    CardNumberReservation,
    check_reservation_size,
    fits,
)
from nlr_server.domain.change_feed import ChangeKind
from nlr_server.domain.errors import AlreadyExists, CardNumberRetired, FailedPrecondition
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.usecases import change_feed
from nlr_server.usecases.lookup import find_affiliated
from nlr_server.usecases.ports import CardNumberStatus, UnitOfWorkFactory
from nlr_server.usecases.reservations import refuse_others_reservation
from nlr_server.usecases.views import full_view


def replace_card(
    unit_of_work: UnitOfWorkFactory,
    library: LibraryNumber,
    card_number: CardNumber,
    new_card_number: CardNumber,
    now: dt.datetime,
) -> Borrower:
    with unit_of_work() as uow:
        borrower = find_affiliated(uow, library, card_number)
        status = uow.borrowers.card_number_status(new_card_number)
        if status is CardNumberStatus.RETIRED:
            raise CardNumberRetired("the new card number is retired and can never be used again")
        if status is CardNumberStatus.IN_USE:
            raise AlreadyExists(
                "the new card number is already in use", reason="CARD_NUMBER_IN_USE"
            )
        refuse_others_reservation(uow, library, new_card_number)
        saved = uow.borrowers.save(borrower.with_new_card(new_card_number, library, now))
        change_feed.record(uow, borrower, saved, now, ChangeKind.CARD_REPLACED)
        uow.commit()
        return full_view(uow, saved)


def reserve_card_numbers(
    unit_of_work: UnitOfWorkFactory, library: LibraryNumber, count: int, now: dt.datetime
) -> CardNumberReservation:
    check_reservation_size(count)
    with unit_of_work() as uow:
        first = uow.reservations.next_free_number()
        if not fits(first, count):
            raise FailedPrecondition(
                "the card number series has too few numbers left", reason="SERIES_EXHAUSTED"
            )
        reservation = CardNumberReservation(library, first, count, now)
        uow.reservations.add(reservation)
        uow.commit()
        return reservation


def list_reservations(
    unit_of_work: UnitOfWorkFactory, library: LibraryNumber
) -> list[CardNumberReservation]:
    with unit_of_work(read_only=True) as uow:
        return uow.reservations.of_library(library)
