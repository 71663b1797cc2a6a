"""The full view of a borrower: the record with what is loaded only for affiliated libraries."""

from __future__ import annotations

import dataclasses

from nlr_server.domain.borrower import Borrower
from nlr_server.domain.guardian import GuardianLinks
from nlr_server.usecases.ports import UnitOfWork


def full_views(uow: UnitOfWork, borrowers: list[Borrower]) -> list[Borrower]:
    """As full_view, for many borrowers at once: one query per kind of thing loaded."""
    ids = [b.id for b in borrowers if b.id is not None]
    links = uow.guardians.links_of_many(ids)
    identities = uow.identities.of_borrowers(ids)
    empty = GuardianLinks()
    return [
        dataclasses.replace(
            b,
            links=links.get(b.id or 0, empty),
            identities=identities.get(b.id or 0, ()),
        )
        for b in borrowers
    ]


def full_view(uow: UnitOfWork, borrower: Borrower) -> Borrower:
    """The borrower with its guardian links and other identities."""
    assert borrower.id is not None
    return dataclasses.replace(
        borrower,
        links=uow.guardians.links_of(borrower.id),
        identities=uow.identities.of_borrower(borrower.id),
    )
