"""A borrower changes their email or mobile phone in SelfService: the new value waits with a
one-time code sent to it (domain/contact_change.py), and becomes the record's when the code
comes back. The code is sent after the waiting change is committed, outside any transaction."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from nlr_server.domain import policy
from nlr_server.domain import session as session_rules
from nlr_server.domain.audit import Acting
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.contact import EmailAddress, PhoneNumber
from nlr_server.domain.contact_change import (
    CODE_ATTEMPTS,
    CODE_LIFETIME,
    ContactKind,
    PendingContact,
    contact_code_invalid,
)
from nlr_server.domain.errors import FailedPrecondition
from nlr_server.usecases.changes import change_borrower, record_audit
from nlr_server.usecases.lookup import BorrowerKey, find
from nlr_server.usecases.ports import UnitOfWork, UnitOfWorkFactory
from nlr_server.usecases.sessions import LiveSession


def request_change(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    live: LiveSession,
    kind: ContactKind,
    value: str,
    code_verifier: bytes,
    now: dt.datetime,
) -> PendingContact:
    """The new value waits for the code (whose verifier is given), in place of one of its kind
    waiting before; at most a few codes an hour (TOO_MANY_CODES). Two factors."""
    session_rules.require_two_factors(live.session)
    policy.require_may_change_fields(acting.actor, frozenset({kind.value}))
    with unit_of_work() as uow:
        borrower = find(uow, BorrowerKey(card_number=CardNumber(live.session.card_number)))
        assert borrower.id is not None
        before = uow.contact_changes.pending(borrower.id, kind)
        sends, started = before.sends_after(now) if before is not None else (1, now)
        pending = PendingContact(
            borrower.id, kind, value, code_verifier, now + CODE_LIFETIME, 0, sends, started
        )
        uow.contact_changes.put(pending)
        record_audit(uow, acting, now, borrower)
        uow.commit()
        return pending


def check_code(
    unit_of_work: UnitOfWorkFactory,
    live: LiveSession,
    kind: ContactKind,
    matches: Callable[[bytes], bool],
    now: dt.datetime,
) -> str:
    """The waiting value if ``matches`` says the code is its; a wrong code counts, and the
    last allowed one drops the change (CODE_INVALID). Two factors."""
    session_rules.require_two_factors(live.session)
    borrower_id = live.session.borrower_id
    with unit_of_work() as uow:
        pending = uow.contact_changes.pending(borrower_id, kind)
        if pending is None or now >= pending.expires_at:
            raise FailedPrecondition(
                "no change of this kind waits for a code: ask for a new code",
                reason="NO_CHANGE_WAITING",
            )
        if matches(pending.code_verifier):
            return pending.value
        left = CODE_ATTEMPTS - pending.attempts - 1
        if left <= 0:
            uow.contact_changes.remove(borrower_id, kind)
        else:
            uow.contact_changes.count_attempt(pending)
        uow.commit()
        raise contact_code_invalid(left)


def apply_change(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    live: LiveSession,
    kind: ContactKind,
    value: str,
    now: dt.datetime,
) -> Borrower:
    """The confirmed value becomes the record's (a change in the feed, audited)."""

    def change(uow: UnitOfWork, borrower: Borrower) -> Borrower:
        assert borrower.id is not None
        personal = borrower.personal
        if kind is ContactKind.EMAIL:
            personal = dataclasses.replace(
                personal, email=EmailAddress.parse(value), email_should_be_checked=False
            )
        else:
            personal = dataclasses.replace(personal, mobile_phone=PhoneNumber.parse(value))
        uow.contact_changes.remove(borrower.id, kind)
        return uow.borrowers.save_personal_data(
            borrower.change_personal_data(personal, acting.actor, now), before=borrower
        )

    card_number = CardNumber(live.session.card_number)
    return change_borrower(unit_of_work, acting, card_number, now, change, answer_full=False)
