"""Ranges of card numbers a library reserves to print on cards before they are issued."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.errors import InvalidArgument
from nlr_server.domain.library_number import LibraryNumber

MAX_RESERVATION = 100_000
# Card numbers are "N" and nine digits.
_LAST_NUMBER = 999_999_999


@dataclass(frozen=True, slots=True)
class CardNumberReservation:
    library_number: LibraryNumber
    first: int
    count: int
    reserved_at: dt.datetime

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    @property
    def first_card_number(self) -> CardNumber:
        return card_number_of(self.first)

    @property
    def last_card_number(self) -> CardNumber:
        return card_number_of(self.last)


def card_number_of(number: int) -> CardNumber:
    return CardNumber(f"N{number:09d}")


def number_of(card_number: CardNumber) -> int:
    return int(card_number.value[1:])


def check_reservation_size(count: int) -> None:
    if not 1 <= count <= MAX_RESERVATION:
        raise InvalidArgument.one("count", f"must be 1 to {MAX_RESERVATION}")


def fits(first: int, count: int) -> bool:
    return first + count - 1 <= _LAST_NUMBER
