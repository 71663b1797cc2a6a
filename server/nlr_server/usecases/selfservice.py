"""What a borrower does with their own record in SelfService, as the borrower actor: read
everything held, choose their security level."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from nlr_server.domain import policy
from nlr_server.domain import session as session_rules
from nlr_server.domain.audit import Acting, AuditEvent
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.credentials import SecurityLevel
from nlr_server.domain.errors import NotFound
from nlr_server.domain.library import Library
from nlr_server.domain.library_number import LibraryNumber
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


# How many entries a page of the access log holds unless asked for fewer, and at most.
ACCESS_LOG_PAGE = 50
ACCESS_LOG_MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One call that read or changed the borrower's data (or tried to): when, what, how it
    went, who (the actor), through which vendor's system, and the library by name."""

    id: int
    event: AuditEvent
    library: Library | None
    vendor: str | None


@dataclass(frozen=True, slots=True)
class AccessPage:
    entries: tuple[AccessEntry, ...]
    # The id to read on from (the next page's token); None at the end.
    next_before: int | None


def my_access_log(
    unit_of_work: UnitOfWorkFactory,
    live: LiveSession,
    page_size: int,
    before_id: int | None,
) -> AccessPage:
    """Who has seen or changed the session's borrower, newest first (two factors): from the
    audit trail, under the card number and the one it replaced. A read."""
    session_rules.require_two_factors(live.session)
    size = min(page_size or ACCESS_LOG_PAGE, ACCESS_LOG_MAX_PAGE)
    with unit_of_work(read_only=True) as uow:
        borrower = _own(uow, live)
        return _access_page(uow, borrower, size, before_id)


def _access_page(
    uow: UnitOfWork, borrower: Borrower, size: int, before_id: int | None
) -> AccessPage:
    cards = [borrower.card_number.value]
    if borrower.previous_card_number is not None:
        cards.append(borrower.previous_card_number.value)
    rows = uow.audit.of_cards(cards, before_id, size + 1)
    more = len(rows) > size
    rows = rows[:size]
    libraries: dict[str, Library | None] = {}
    vendors: dict[int, str | None] = {}
    entries = []
    for row_id, event in rows:
        library = None
        if event.library_number is not None:
            if event.library_number not in libraries:
                libraries[event.library_number] = uow.libraries.get(
                    LibraryNumber(event.library_number)
                )
            library = libraries[event.library_number]
        vendor = None
        if event.vendor_id is not None:
            if event.vendor_id not in vendors:
                found = uow.vendors.get(event.vendor_id)
                vendors[event.vendor_id] = found.name if found is not None else None
            vendor = vendors[event.vendor_id]
        entries.append(AccessEntry(row_id, event, library, vendor))
    return AccessPage(tuple(entries), rows[-1][0] if more and rows else None)


@dataclass(frozen=True, slots=True)
class MyData:
    """Everything held about the borrower, for their export."""

    record: MyRecord
    access_log: tuple[AccessEntry, ...]


def export_my_data(unit_of_work: UnitOfWorkFactory, acting: Acting, live: LiveSession) -> MyData:
    """The whole record, the libraries, the second factor's state and the whole access log
    (two factors). A read. The national id is not among it: nobody gets it back (DESIGN.md
    §6), not even its holder; the record shows the birth date it gives."""
    record = my_record(unit_of_work, acting, live)
    with unit_of_work(read_only=True) as uow:
        borrower = _own(uow, live)
        entries: list[AccessEntry] = []
        before: int | None = None
        while True:
            page = _access_page(uow, borrower, ACCESS_LOG_MAX_PAGE, before)
            entries.extend(page.entries)
            if page.next_before is None:
                break
            before = page.next_before
    return MyData(record, tuple(entries))


def set_processing_restricted(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    live: LiveSession,
    restricted: bool,
    now: dt.datetime,
) -> bool:
    """Restricts the processing of the borrower's data, or (two factors) lifts it; the
    affiliated libraries' views change, so their feeds get UPDATED. The state now."""
    if not restricted:
        session_rules.require_two_factors(live.session)

    def change(uow: UnitOfWork, borrower: Borrower) -> Borrower:
        if borrower.processing_restricted is restricted:
            return borrower
        return uow.borrowers.restrict_processing(borrower, restricted, acting.actor, now)

    card_number = CardNumber(live.session.card_number)
    changed = change_borrower(unit_of_work, acting, card_number, now, change, answer_full=False)
    return changed.processing_restricted
