"""Finding the borrower a request names, and checking the acting library may change it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.errors import NotFound, PermissionDenied
from nlr_server.domain.identity import IdentityValue
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.national_id import NationalId
from nlr_server.usecases.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class BorrowerKey:
    """How a caller names a borrower: by card number, national id or another identity."""

    card_number: CardNumber | None = None
    national_id: NationalId | None = None
    identity: IdentityValue | None = None


def find(uow: UnitOfWork, key: BorrowerKey, now: dt.datetime | None = None) -> Borrower:
    """The borrower; an identity names them only until its deletion time (``now``: the clock)."""
    borrower: Borrower | None = None
    if key.card_number is not None:
        borrower = uow.borrowers.get_by_card_number(key.card_number)
    elif key.national_id is not None:
        borrower = uow.borrowers.get_by_national_id(key.national_id)
    elif key.identity is not None:
        borrower = uow.borrowers.get_by_identity(key.identity, now or dt.datetime.now(dt.UTC))
    if borrower is None:
        raise NotFound("no borrower with that key")
    return borrower


def find_affiliated(uow: UnitOfWork, library: LibraryNumber, card_number: CardNumber) -> Borrower:
    borrower = find(uow, BorrowerKey(card_number=card_number))
    if not borrower.is_affiliated_with(library):
        raise PermissionDenied(
            "only a library affiliated with the borrower may change it", reason="NOT_AFFILIATED"
        )
    return borrower
