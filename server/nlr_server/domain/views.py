"""Which view of a borrower a library is entitled to: the least data that serves it."""

from __future__ import annotations

import enum

from nlr_server.domain.borrower import Borrower
from nlr_server.domain.library_number import LibraryNumber


class BorrowerView(enum.Enum):
    # Card number, name, birth year, card validity: enough to confirm the person at the desk.
    BASIC = "basic"
    # Everything but the national id, which nobody gets back.
    FULL = "full"


def view_for(borrower: Borrower, library: LibraryNumber) -> BorrowerView:
    return BorrowerView.FULL if borrower.is_affiliated_with(library) else BorrowerView.BASIC
