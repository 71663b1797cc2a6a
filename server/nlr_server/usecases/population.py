"""The population register's changes applied to the borrowers found in it (DESIGN.md §10).

``sync_page`` reads one page of Folkeregisteret's event feed from the sync's place, picks the
events of the register's own borrowers by the blind index (no national id is decrypted),
re-reads those persons in bulk, reads those borrowers in bulk, and applies each one's current
name, sex and registered address (one UPDATE a borrower), in one transaction that also moves
the place on: a page is applied once, in sequence order, and applying a person twice changes
nothing the second time. Only one worker across all servers
reads at a time (the lease in the database).

Address protection follows too: fortrolig protects the address (it is never served),
strengtFortrolig also erases every address held and keeps libraries from writing one, and the
population register lifts only the protection it gave. A death is deleted as DECEASED a grace
period after it was notified (``delete_deceased``), unless the person is reactivated before.
A new identity number re-seals and re-indexes the national id; one that is another
borrower's is set aside for an operator (a duplicate), as is an event that cannot be applied
(by its sequence number only). ``reconcile_batch`` checks the whole register, in batches.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from nlr_server.domain.actor import Actor
from nlr_server.domain.address import AddressProtection
from nlr_server.domain.audit import Acting
from nlr_server.domain.borrower import Borrower, DeletionReason, PersonalData
from nlr_server.domain.errors import EtagMismatch, NotFound, RegisterError
from nlr_server.domain.national_id import NationalId
from nlr_server.domain.population import PopulationPerson, ResidenceKind
from nlr_server.usecases import change_feed
from nlr_server.usecases.borrowers import delete_borrower
from nlr_server.usecases.changes import record_audit
from nlr_server.usecases.ports import (
    PopulationEvent,
    PopulationSource,
    UnitOfWork,
    UnitOfWorkFactory,
)

ACTION = "population register sync"
LEASE = dt.timedelta(minutes=2)
DEFAULT_DEATH_GRACE = dt.timedelta(days=7)
# What a review is about (nlr-admin population review).
DUPLICATE = "duplicate"
FAILED = "failed"
# Tries of a page that fails as a whole (the store refused it) before it is applied one event
# at a time, setting aside those that fail.
PAGE_TRIES = 3


@dataclass(frozen=True, slots=True)
class PageResult:
    """What one call of sync_page did."""

    read: int  # events on the page
    applied: int  # borrowers changed or confirmed (checked against the register)
    caught_up: bool  # the page was empty or unchanged: nothing more to read now
    leased: bool = True  # False: another worker holds the lease, nothing was read


def sync_page(
    unit_of_work: UnitOfWorkFactory,
    source: PopulationSource,
    owner: str,
    now: dt.datetime,
    death_grace: dt.timedelta = DEFAULT_DEATH_GRACE,
) -> PageResult:
    with unit_of_work() as uow:
        state = uow.population.claim(owner, now, now + LEASE)
        uow.commit()
    if state is None:
        return PageResult(0, 0, caught_up=True, leased=False)
    page = source.events(state.next_sequence, state.etag)
    if page is None:
        return PageResult(0, 0, caught_up=True)
    ours: set[str] = set()
    if page.events:
        with unit_of_work(read_only=True) as uow:
            ours = uow.borrowers.registered_national_ids({e.national_id for e in page.events})
    persons = source.persons(sorted(ours)) if ours else {}
    next_sequence = max(e.sequence for e in page.events) + 1 if page.events else state.next_sequence
    acting = Acting(Actor.population_register(), ACTION)
    # In sequence order; a person with several events on the page is applied once, as they
    # are now (their current data is what every one of those events led to).
    todo: list[PopulationEvent] = []
    seen: set[str] = set()
    for event in sorted(page.events, key=lambda e: e.sequence):
        if event.national_id in ours and event.national_id not in seen:
            seen.add(event.national_id)
            todo.append(event)
    read = len(page.events)
    if state.page_failures < PAGE_TRIES:
        try:
            with unit_of_work() as uow:
                applied = _apply_events(uow, acting, todo, persons, now, death_grace)
                if not uow.population.advance(
                    owner, state.next_sequence, next_sequence, page.etag, read, applied, now
                ):
                    # Another worker moved the place (our lease ran out): its run counts.
                    return PageResult(0, 0, caught_up=True, leased=False)
                uow.commit()
        except Exception:
            with unit_of_work() as uow:
                uow.population.count_page_failure(owner, state.next_sequence)
                uow.commit()
            raise
        return PageResult(read, applied, caught_up=not page.events)
    # The page has failed PAGE_TRIES times: one event at a time, and one that fails is set
    # aside (by its sequence number only) so that the feed goes on.
    applied = 0
    for event in todo:
        try:
            with unit_of_work() as uow:
                applied += _apply_events(uow, acting, [event], persons, now, death_grace)
                uow.commit()
        except Exception:
            with unit_of_work() as uow:
                uow.population.add_review(event.sequence, FAILED, (), now)
                uow.commit()
    with unit_of_work() as uow:
        if not uow.population.advance(
            owner, state.next_sequence, next_sequence, page.etag, read, applied, now
        ):
            return PageResult(0, 0, caught_up=True, leased=False)
        uow.commit()
    return PageResult(read, applied, caught_up=not page.events)


def _apply_events(
    uow: UnitOfWork,
    acting: Acting,
    events: list[PopulationEvent],
    persons: dict[str, PopulationPerson | None],
    now: dt.datetime,
    death_grace: dt.timedelta,
) -> int:
    """Applies each event's person in ``uow``; returns how many were applied. A duplicate and
    an event that cannot be applied are set aside for an operator."""
    applied = 0
    # Read in bulk; one that changed since (an etag mismatch) is read again.
    borrowers = uow.borrowers.get_many_by_national_id(
        [event.national_id for event in events if persons.get(event.national_id) is not None]
    )
    for event in events:
        person = persons.get(event.national_id)
        before = borrowers.get(event.national_id)
        if person is None or before is None:
            continue
        try:
            try:
                _follow(uow, acting, before, event.national_id, person, now, death_grace)
            except EtagMismatch:
                if not apply_person(uow, acting, event.national_id, person, now, death_grace):
                    continue
            applied += 1
        except DuplicateBorrowers as duplicate:
            # Never merged here: an operator decides (nlr-admin population review).
            uow.population.add_review(event.sequence, DUPLICATE, duplicate.card_numbers, now)
        except (RegisterError, ValueError):
            # Set aside by its sequence number only, and the feed goes on.
            uow.population.add_review(event.sequence, FAILED, (), now)
    return applied


class DuplicateBorrowers(Exception):
    """The population register gave a borrower's person the national id of another borrower:
    two records of one person, which only an operator may merge."""

    def __init__(self, card_numbers: tuple[str, str]) -> None:
        super().__init__("two borrowers are one person in the population register")
        self.card_numbers = card_numbers


def apply_person(
    uow: UnitOfWork,
    acting: Acting,
    number: str,
    person: PopulationPerson,
    now: dt.datetime,
    death_grace: dt.timedelta = DEFAULT_DEATH_GRACE,
) -> bool:
    """The borrower with ``person``'s national id made to agree with them: name, sex and
    registered address (where given), address protection, a death (deleted as DECEASED once
    ``death_grace`` has passed, unless reactivated before), found in the population register,
    checked now; and a new identity number (the person's current one is not ``number``, the
    one the event came with), re-sealed and re-indexed. False if the register has no borrower
    with ``number``; DuplicateBorrowers if the new number is another borrower's."""
    before = uow.borrowers.get_by_national_id(
        NationalId.parse(number, allow_synthetic=True, today=now.date())
    )
    if before is None:
        return False
    _follow(uow, acting, before, number, person, now, death_grace)
    return True


def _follow(
    uow: UnitOfWork,
    acting: Acting,
    before: Borrower,
    number: str,
    person: PopulationPerson,
    now: dt.datetime,
    death_grace: dt.timedelta,
) -> None:
    """apply_person for ``before``, the borrower read with ``number``."""
    today = now.date()
    new_id = None
    if person.national_id != number:
        new_id = NationalId.parse(person.national_id, allow_synthetic=True, today=today)
        holder = uow.borrowers.get_by_national_id(new_id)
        if holder is not None and holder.id != before.id:
            raise DuplicateBorrowers((before.card_number.value, holder.card_number.value))
    personal = _followed(before.personal, person)
    if new_id is not None and new_id.birth_date is not None:
        personal = dataclasses.replace(personal, birth_date=new_id.birth_date)
    protection = person.protection
    protected = before.address_protected
    if protection is not AddressProtection.NONE:
        protected = True
    elif before.address_protection is not AddressProtection.NONE:
        # The population register lifts the protection it gave (never an operator's).
        protected = False
    erasing = False
    if protection is AddressProtection.STRICTLY_CONFIDENTIAL:
        # No address is available, and every one held about the person is deleted.
        erasing = personal.registered_address is not None or personal.temporary_address is not None
        personal = dataclasses.replace(
            personal,
            registered_address=None,
            temporary_address=None,
            registered_address_should_be_checked=False,
            temporary_address_should_be_checked=False,
        )
    delete_after = before.delete_as_deceased_after
    if person.is_dead and delete_after is None:
        delete_after = now + death_grace
    elif not person.is_dead:
        delete_after = None  # alive (again): a death notified earlier was annulled
    after = dataclasses.replace(
        before,
        personal=personal,
        address_protected=protected,
        address_protection=protection,
        in_population_register=True,
        population_register_checked_at=now,
        population_register_status=(person.status or "")[:32] or None,
        delete_as_deceased_after=delete_after,
    )
    changed = new_id is not None or (personal, protected, protection) != (
        before.personal,
        before.address_protected,
        before.address_protection,
    )
    if changed:
        after = after.change_personal_data(personal, acting.actor, now)
    saved = uow.borrowers.save_followed(after, national_id=new_id, erasing=erasing, before=before)
    if changed:
        change_feed.record(uow, before, saved, now)
    record_audit(uow, acting, now, saved)


def _followed(personal: PersonalData, person: PopulationPerson) -> PersonalData:
    """``personal`` with what the population register says of who the person is."""
    followed = personal
    if person.name is not None:
        followed = dataclasses.replace(followed, name=person.name)
    if person.sex is not None:
        followed = dataclasses.replace(followed, sex=person.sex)
    if person.residence is ResidenceKind.ADDRESS and person.address != personal.registered_address:
        followed = dataclasses.replace(
            followed,
            registered_address=person.address,
            registered_address_should_be_checked=False,
        )
    elif person.residence is ResidenceKind.UNKNOWN:
        followed = dataclasses.replace(followed, registered_address=None)
    return followed


def delete_deceased(unit_of_work: UnitOfWorkFactory, now: dt.datetime) -> int:
    """Deletes, as DECEASED, the borrowers whose death the population register notified a
    grace period ago; returns how many."""
    with unit_of_work(read_only=True) as uow:
        due = uow.borrowers.deceased_due(now)
    acting = Acting(Actor.population_register(), ACTION)
    deleted = 0
    for card_number in due:
        try:
            delete_borrower(unit_of_work, acting, card_number, DeletionReason.DECEASED, None, now)
        except NotFound:
            continue  # deleted meanwhile
        deleted += 1
    return deleted


RECONCILE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class ReconcileBatch:
    """One batch of a reconcile: how far it got, and the borrowers the population register did
    not find (listed for an operator; never deleted)."""

    through_id: int
    looked_up: int
    found: int
    not_found: tuple[str, ...]
    done: bool


def reconcile_batch(
    unit_of_work: UnitOfWorkFactory,
    source: PopulationSource,
    now: dt.datetime,
    death_grace: dt.timedelta = DEFAULT_DEATH_GRACE,
    size: int = RECONCILE_BATCH,
) -> ReconcileBatch:
    """Looks up the next ``size`` borrowers (by id, after where the reconcile stands) in the
    population register in bulk and applies each one found, as an event would; the place moves
    on in the same transaction, so an interrupted reconcile goes on where it stopped."""
    with unit_of_work(read_only=True) as uow:
        after = uow.population.reconciled_through() or 0
        borrowers = uow.borrowers.national_ids_after(after, size)
    if not borrowers:
        with unit_of_work() as uow:
            uow.population.set_reconciled_through(None)
            uow.commit()
        return ReconcileBatch(after, 0, 0, (), done=True)
    persons = source.persons([number for _, _, number in borrowers])
    acting = Acting(Actor.population_register(), "population register reconcile")
    found = 0
    not_found: list[str] = []
    with unit_of_work() as uow:
        read = uow.borrowers.get_many([borrower_id for borrower_id, _, _ in borrowers])
        for borrower_id, card, number in borrowers:
            person = persons.get(number)
            if person is None:
                not_found.append(card)
                continue
            before = read.get(borrower_id)
            if before is None:
                continue  # deleted meanwhile
            try:
                try:
                    _follow(uow, acting, before, number, person, now, death_grace)
                except EtagMismatch:
                    if not apply_person(uow, acting, number, person, now, death_grace):
                        continue
                found += 1
            except DuplicateBorrowers as duplicate:
                uow.population.add_review(0, DUPLICATE, duplicate.card_numbers, now)
            except (RegisterError, ValueError):
                uow.population.add_review(0, FAILED, (card,), now)
        through = borrowers[-1][0]
        uow.population.set_reconciled_through(through)
        uow.commit()
    return ReconcileBatch(through, len(borrowers), found, tuple(not_found), done=False)
