"""Finding the borrower a request names."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.errors import NotFound
from nlr_server.domain.identity import IdentityValue
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
