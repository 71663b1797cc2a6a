"""Linking and unlinking guardians, and the guardian a young borrower must have."""

from __future__ import annotations

import datetime as dt

from nlr_server.domain.audit import Acting
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from nlr_server.domain.guardian import ADULT_AGE, GuardianLink
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.usecases import change_feed
from nlr_server.usecases.changes import change_borrower
from nlr_server.usecases.ports import UnitOfWork, UnitOfWorkFactory


def require_guardian_if_young(
    borrower: Borrower, guardian: CardNumber | None, guardian_age: int, today: dt.date
) -> None:
    if guardian is None and borrower.age_on(today) < guardian_age:
        raise InvalidArgument.one(
            "guardian_card_number", f"is required for a borrower under {guardian_age}"
        )


def attach_guardian(
    uow: UnitOfWork,
    child: Borrower,
    guardian_card_number: CardNumber,
    library: LibraryNumber,
    now: dt.datetime,
) -> GuardianLink:
    """Links the guardian to ``child``; returns the link as the child's record shows it."""
    guardian = uow.borrowers.get_by_card_number(guardian_card_number)
    if guardian is None or guardian.id is None:
        raise NotFound("no borrower with the guardian's card number", reason="GUARDIAN_NOT_FOUND")
    if guardian.card_number == child.card_number:
        raise FailedPrecondition("a borrower cannot be their own guardian", reason="SELF_GUARDIAN")
    if guardian.age_on(now.date()) < ADULT_AGE:
        raise FailedPrecondition("a guardian must be an adult", reason="GUARDIAN_NOT_ADULT")
    assert child.id is not None
    if not uow.guardians.link(child.id, guardian.id, now, library):
        raise AlreadyExists("that guardian is already linked", reason="GUARDIAN_ALREADY_LINKED")
    change_feed.record(uow, guardian, guardian, now)
    return GuardianLink(guardian.card_number, now, library)


def link_guardian(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    card_number: CardNumber,
    guardian_card_number: CardNumber,
    now: dt.datetime,
) -> Borrower:
    library = acting.actor.library_number
    assert library is not None, "a library links guardians"

    def change(uow: UnitOfWork, child: Borrower) -> Borrower:
        attach_guardian(uow, child, guardian_card_number, library, now)
        return child

    return change_borrower(unit_of_work, acting, card_number, now, change)


def unlink_guardian(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    card_number: CardNumber,
    guardian_card_number: CardNumber,
    guardian_age: int,
    now: dt.datetime,
) -> Borrower:
    def change(uow: UnitOfWork, child: Borrower) -> Borrower:
        guardian = uow.borrowers.get_by_card_number(guardian_card_number)
        assert child.id is not None
        if guardian is None or guardian.id is None:
            raise NotFound("no such guardian link", reason="GUARDIAN_LINK_NOT_FOUND")
        young = child.age_on(now.date()) < guardian_age
        if young and uow.guardians.guardian_count(child.id) <= 1:
            raise FailedPrecondition(
                f"a borrower under {guardian_age} keeps at least one guardian",
                reason="GUARDIAN_REQUIRED",
            )
        if not uow.guardians.unlink(child.id, guardian.id):
            raise NotFound("no such guardian link", reason="GUARDIAN_LINK_NOT_FOUND")
        change_feed.record(uow, guardian, guardian, now)
        return child

    return change_borrower(unit_of_work, acting, card_number, now, change)
