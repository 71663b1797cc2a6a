"""The rule that a reserved card number is its library's to issue."""

from __future__ import annotations

from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.card_reservation import number_of
from nlr_server.domain.errors import FailedPrecondition
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.usecases.ports import UnitOfWork


def refuse_others_reservation(
    uow: UnitOfWork, library: LibraryNumber, card_number: CardNumber
) -> None:
    """A card number inside another library's reserved range is that library's to issue."""
    holder = uow.reservations.holder_of(number_of(card_number))
    if holder is not None and holder != library:
        raise FailedPrecondition(
            "the card number is reserved by another library", reason="CARD_NUMBER_RESERVED"
        )
