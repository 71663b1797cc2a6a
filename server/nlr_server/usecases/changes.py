"""The one way a use case changes a borrower: find them, ask the policy, change them, record
the change in the feed and the audit trail, commit, and answer with the record as it now is.

The audit event goes into the same unit of work as the change, so the two commit together or
not at all. A change that leaves the guardian links and identities as they are reads them with
the record, and its answer is built from what it wrote: nothing is read after the commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from nlr_server.domain import policy
from nlr_server.domain.actor import Actor
from nlr_server.domain.audit import Acting
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.change_feed import ChangeKind
from nlr_server.domain.errors import NotFound
from nlr_server.usecases import change_feed
from nlr_server.usecases.lookup import BorrowerKey, find
from nlr_server.usecases.ports import UnitOfWork, UnitOfWorkFactory
from nlr_server.usecases.views import full_view

# Makes the change in the unit of work and returns the borrower as saved.
Change = Callable[[UnitOfWork, Borrower], Borrower]


def change_borrower(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    card_number: CardNumber,
    now: dt.datetime,
    change: Change,
    *,
    kind: ChangeKind = ChangeKind.UPDATED,
    answer_full: bool = True,
    keeps_full_view: bool = False,
) -> Borrower:
    """Runs ``change`` on the borrower with ``card_number``, if the actor may change them.

    Returns the full view of the borrower as changed, or (``answer_full=False``) the record as
    saved, without what only the full view loads. ``keeps_full_view``: the change leaves the
    guardian links and identities as they are (and keeps them in the borrower it returns), so
    they are read with the record and the answer needs no read after the commit.
    """
    with unit_of_work() as uow:
        before = find_changeable(uow, acting.actor, card_number, full=keeps_full_view)
        after = change(uow, before)
        change_feed.record(uow, before, after, now, kind)
        record_audit(uow, acting, now, after)
        uow.commit()
        if keeps_full_view or not answer_full:
            return after
        return full_view(uow, after)


def find_changeable(
    uow: UnitOfWork, actor: Actor, card_number: CardNumber, *, full: bool = False
) -> Borrower:
    """The borrower, if the policy lets ``actor`` change them (domain/policy.py); with
    ``full``, with their guardian links and identities, read in the same statement."""
    if full:
        borrower = uow.borrowers.get_full_by_card_number(card_number)
        if borrower is None:
            raise NotFound("no borrower with that key")
    else:
        borrower = find(uow, BorrowerKey(card_number=card_number))
    policy.require_may_change(actor, borrower)
    return borrower


def record_audit(uow: UnitOfWork, acting: Acting, now: dt.datetime, borrower: Borrower) -> None:
    """The audit event of an act on ``borrower``, committed with the unit of work."""
    uow.audit.append(
        [acting.event(now, card_number=borrower.card_number.value, borrower_id=borrower.id)]
    )
