"""Library cards: a new number for a lost card, the old one retired for ever."""

from __future__ import annotations

import datetime as dt

from nlr_server.domain.audit import Acting
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
from nlr_server.usecases.changes import change_borrower
from nlr_server.usecases.ports import CardNumberStatus, UnitOfWork, UnitOfWorkFactory
from nlr_server.usecases.reservations import refuse_others_reservation


def replace_card(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    card_number: CardNumber,
    new_card_number: CardNumber,
    now: dt.datetime,
) -> Borrower:
    library = acting.actor.library_number
    assert library is not None, "a library issues cards"

    def change(uow: UnitOfWork, borrower: Borrower) -> Borrower:
        status = uow.borrowers.card_number_status(new_card_number)
        if status is CardNumberStatus.RETIRED:
            raise CardNumberRetired("the new card number is retired and can never be used again")
        if status is CardNumberStatus.IN_USE:
            raise AlreadyExists(
                "the new card number is already in use", reason="CARD_NUMBER_IN_USE"
            )
        refuse_others_reservation(uow, library, new_card_number)
        return uow.borrowers.save(borrower.with_new_card(new_card_number, acting.actor, now))

    return change_borrower(
        unit_of_work, acting, card_number, now, change, kind=ChangeKind.CARD_REPLACED
    )


def reserve_card_numbers(
    unit_of_work: UnitOfWorkFactory, acting: Acting, count: int, now: dt.datetime
) -> CardNumberReservation:
    library = acting.actor.library_number
    assert library is not None, "a library reserves card numbers"
    check_reservation_size(count)
    with unit_of_work() as uow:
        first = uow.reservations.next_free_number()
        if not fits(first, count):
            raise FailedPrecondition(
                "the card number series has too few numbers left", reason="SERIES_EXHAUSTED"
            )
        reservation = CardNumberReservation(library, first, count, now)
        uow.reservations.add(reservation)
        uow.audit.append([acting.event(now)])
        uow.commit()
        return reservation


def list_reservations(
    unit_of_work: UnitOfWorkFactory, library: LibraryNumber
) -> list[CardNumberReservation]:
    with unit_of_work(read_only=True) as uow:
        return uow.reservations.of_library(library)
