"""The full view of a borrower: the record with what is loaded only for affiliated libraries."""

from __future__ import annotations

import dataclasses

from nlr_server.domain.borrower import Borrower
from nlr_server.usecases.ports import UnitOfWork


def full_view(uow: UnitOfWork, borrower: Borrower) -> Borrower:
    """The borrower with its guardian links and other identities."""
    assert borrower.id is not None
    return dataclasses.replace(
        borrower,
        links=uow.guardians.links_of(borrower.id),
        identities=uow.identities.of_borrower(borrower.id),
    )
