"""What a borrower does with their own record in SelfService, as the borrower actor: read
everything held, choose their security level."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from nlr_server.domain import policy
from nlr_server.domain import session as session_rules
from nlr_server.domain.audit import Acting
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.credentials import SecurityLevel
from nlr_server.domain.errors import NotFound
from nlr_server.domain.library import Library
from nlr_server.domain.views import BorrowerView
from nlr_server.usecases.borrowers import require_second_factor_for
from nlr_server.usecases.changes import change_borrower
from nlr_server.usecases.ports import UnitOfWork, UnitOfWorkFactory
from nlr_server.usecases.sessions import LiveSession
from nlr_server.usecases.views import full_view


@dataclass(frozen=True, slots=True)
class MyRecord:
    borrower: Borrower
    # The record's libraries (home first, then by affiliation), as named in the directory.
    libraries: tuple[Library, ...]
    totp_enabled: bool
    recovery_codes_left: int


def my_record(unit_of_work: UnitOfWorkFactory, acting: Acting, live: LiveSession) -> MyRecord:
    """Everything held about the session's borrower (two factors). A read: its audit event is
    the API layer's to write."""
    session_rules.require_two_factors(live.session)
    with unit_of_work(read_only=True) as uow:
        borrower = _own(uow, live)
        if policy.view_for(acting.actor, borrower) is not BorrowerView.FULL:
            raise NotFound("no borrower with that key")  # never: a session is its borrower's
        borrower = full_view(uow, borrower)
        numbers = [borrower.home_library] + [
            a.library_number
            for a in borrower.affiliations
            if a.library_number != borrower.home_library
        ]
        libraries = tuple(
            library for library in (uow.libraries.get(n) for n in numbers) if library is not None
        )
        assert borrower.id is not None
        factor = uow.second_factors.totp_of(borrower.id)
        left = len(uow.second_factors.recovery_codes(borrower.id))
        return MyRecord(borrower, libraries, factor is not None and factor.confirmed, left)


def _own(uow: UnitOfWork, live: LiveSession) -> Borrower:
    borrower = uow.borrowers.get_by_id(live.session.borrower_id)
    if borrower is None:
        raise NotFound("no borrower with that key")
    return borrower


def set_my_security_level(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    live: LiveSession,
    level: SecurityLevel,
    now: dt.datetime,
) -> SecurityLevel:
    """The borrower's chosen level: never above the session's strength, lowered only with two
    factors, TWO_FACTOR only with a confirmed TOTP factor. Ends their other sessions."""

    def change(uow: UnitOfWork, borrower: Borrower) -> Borrower:
        assert borrower.id is not None
        old = borrower.personal.security_level
        session_rules.require_may_choose(live.session, old, level)
        if level is old:
            return borrower
        policy.require_may_set_security_level(acting.actor, old, level)
        require_second_factor_for(uow, borrower.id, level)
        personal = dataclasses.replace(borrower.personal, security_level=level)
        saved = uow.borrowers.save_personal_data(
            borrower.change_personal_data(personal, acting.actor, now), before=borrower
        )
        uow.sessions.remove_of_borrower(borrower.id, keep=live.digest)
        return saved

    card_number = CardNumber(live.session.card_number)
    changed = change_borrower(unit_of_work, acting, card_number, now, change, answer_full=False)
    return changed.personal.security_level
