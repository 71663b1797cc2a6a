"""Address protection: set or ended by an operator (later also by the population register),
after which no caller receives the borrower's addresses (domain/views.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from nlr_server.domain.audit import Acting
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.errors import NotFound
from nlr_server.usecases.changes import change_borrower
from nlr_server.usecases.ports import UnitOfWork, UnitOfWorkFactory


def protect_address(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    card_number: CardNumber,
    protected: bool,
    now: dt.datetime,
) -> Borrower:
    """Sets (or ends) the protection; libraries following the feed learn that the address is
    no longer (or again) theirs."""

    def change(uow: UnitOfWork, borrower: Borrower) -> Borrower:
        if not uow.borrowers.protect_address(card_number, protected, acting.actor, now):
            raise NotFound("no borrower with that card number")
        return dataclasses.replace(
            borrower,
            address_protected=protected,
            version=borrower.version + 1,
            last_changed_by=acting.actor,
            last_changed_at=now,
        )

    return change_borrower(unit_of_work, acting, card_number, now, change, answer_full=False)
