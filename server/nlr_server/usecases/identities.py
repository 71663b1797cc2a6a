"""Adding and removing a borrower's other identities (Feide, Pocket, school card), and removing
those whose deletion time has come."""

from __future__ import annotations

import datetime as dt

from nlr_server.domain import policy
from nlr_server.domain.audit import Acting
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.errors import AlreadyExists, NotFound
from nlr_server.domain.identity import Identity, IdentityKind, IdentityValue, new_identity
from nlr_server.usecases import change_feed
from nlr_server.usecases.changes import change_borrower
from nlr_server.usecases.ports import UnitOfWork, UnitOfWorkFactory


def add_identity(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    card_number: CardNumber,
    value: IdentityValue,
    delete_after: dt.datetime | None,
    default_lifetime: dt.timedelta,
    now: dt.datetime,
) -> Borrower:
    """Adds the identity, deleted after ``delete_after`` or else after the default lifetime."""
    policy.require_may_link(acting.actor, value.kind)

    def change(uow: UnitOfWork, borrower: Borrower) -> Borrower:
        assert borrower.id is not None
        # Expired ones not yet removed by maintenance are gone already as far as callers know.
        uow.identities.remove_expired_in_the_way(borrower.id, value, now)
        identity = new_identity(value, now, delete_after, default_lifetime)
        if not uow.identities.add(borrower.id, identity):
            raise _taken(uow.identities.of_borrower(borrower.id), value)
        return borrower

    return change_borrower(unit_of_work, acting, card_number, now, change)


def _taken(held: tuple[Identity, ...], value: IdentityValue) -> AlreadyExists:
    if any(identity.kind is value.kind for identity in held):
        return AlreadyExists(
            "the borrower already has an identity of this kind: remove it first",
            reason="IDENTITY_KIND_TAKEN",
        )
    return AlreadyExists("another borrower has this identity", reason="IDENTITY_IN_USE")


def remove_identity(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    card_number: CardNumber,
    kind: IdentityKind,
    now: dt.datetime,
) -> Borrower:
    def change(uow: UnitOfWork, borrower: Borrower) -> Borrower:
        assert borrower.id is not None
        if not uow.identities.remove(borrower.id, kind):
            raise NotFound("the borrower has no identity of this kind", reason="IDENTITY_NOT_FOUND")
        return borrower

    return change_borrower(unit_of_work, acting, card_number, now, change)


def expire_identities(uow: UnitOfWork, now: dt.datetime) -> int:
    """Removes every identity whose deletion time has come; returns how many. The caller
    commits."""
    holders = uow.identities.expired_holders(now)
    removed = uow.identities.remove_expired(now)
    change_feed.record_updates(uow, holders, now)
    return removed
