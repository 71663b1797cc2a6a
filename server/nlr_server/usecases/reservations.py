"""The rule that a reserved card number is its library's to issue: one card number at a time
(CreateBorrower, ReplaceCard) or many against ranges loaded once (the import)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.card_reservation import CardNumberReservation, number_of
from nlr_server.domain.errors import FailedPrecondition
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.usecases.ports import UnitOfWork

RESERVED_BY_ANOTHER = "the card number is reserved by another library"


def reserved_for_another(holder: LibraryNumber | None, library: LibraryNumber) -> bool:
    """Whether ``library`` may not issue a card number whose reservation ``holder`` holds."""
    return holder is not None and holder != library


class ReservedRanges:
    """Every reservation, sorted, so the holder of each of many card numbers is found without
    a query each. Reservations never overlap (one locked series hands them out)."""

    def __init__(self, reservations: Iterable[CardNumberReservation]) -> None:
        self._reservations = sorted(reservations, key=lambda r: r.first)
        self._firsts = [r.first for r in self._reservations]

    def holder_of(self, card_number: CardNumber) -> LibraryNumber | None:
        """The library whose reserved range holds ``card_number``, if any."""
        number = number_of(card_number)
        at = bisect_right(self._firsts, number) - 1
        if at < 0 or number > self._reservations[at].last:
            return None
        return self._reservations[at].library_number

    def reserved_for_another(self, card_number: CardNumber, library: LibraryNumber) -> bool:
        return reserved_for_another(self.holder_of(card_number), library)


def refuse_others_reservation(
    uow: UnitOfWork, library: LibraryNumber, card_number: CardNumber
) -> None:
    """A card number inside another library's reserved range is that library's to issue."""
    if reserved_for_another(uow.reservations.holder_of(number_of(card_number)), library):
        raise FailedPrecondition(RESERVED_BY_ANOTHER, reason="CARD_NUMBER_RESERVED")
