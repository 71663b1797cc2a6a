"""The population register's changes applied to the borrowers found in it (DESIGN.md §10).

``sync_page`` reads one page of Folkeregisteret's event feed from the sync's place, picks the
events of the register's own borrowers by the blind index (no national id is decrypted),
re-reads those persons in bulk and applies each one's current name, sex and registered address,
in one transaction that also moves the place on: a page is applied once, in sequence order, and
applying a person twice changes nothing the second time. Only one worker across all servers
reads at a time (the lease in the database).

Address protection follows too: fortrolig protects the address (it is never served),
strengtFortrolig also erases every address held and keeps libraries from writing one, and the
population register lifts only the protection it gave. A death is deleted as DECEASED a grace
period after it was notified (``delete_deceased``), unless the person is reactivated before.
Still to come (issue [5/9]): new identity numbers, duplicates and emigration act on the record;
events that fail are set aside for review.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from nlr_server.domain.actor import Actor
from nlr_server.domain.address import AddressProtection
from nlr_server.domain.audit import Acting
from nlr_server.domain.borrower import DeletionReason, PersonalData
from nlr_server.domain.errors import NotFound
from nlr_server.domain.national_id import NationalId
from nlr_server.domain.population import PopulationPerson, ResidenceKind
from nlr_server.usecases import change_feed
from nlr_server.usecases.borrowers import delete_borrower
from nlr_server.usecases.changes import record_audit
from nlr_server.usecases.ports import PopulationSource, UnitOfWork, UnitOfWorkFactory

ACTION = "population register sync"
LEASE = dt.timedelta(minutes=2)
DEFAULT_DEATH_GRACE = dt.timedelta(days=7)


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
    applied = 0
    with unit_of_work() as uow:
        # In sequence order; a person with several events on the page is applied once, as
        # they are now (their current data is what every one of those events led to).
        done: set[str] = set()
        for event in sorted(page.events, key=lambda e: e.sequence):
            if event.national_id not in ours or event.national_id in done:
                continue
            done.add(event.national_id)
            person = persons.get(event.national_id)
            if person is not None and apply_person(uow, acting, person, now, death_grace):
                applied += 1
        if not uow.population.advance(
            owner, state.next_sequence, next_sequence, page.etag, len(page.events), applied, now
        ):
            # Another worker moved the place (our lease ran out): its run counts, not ours.
            return PageResult(0, 0, caught_up=True, leased=False)
        uow.commit()
    return PageResult(len(page.events), applied, caught_up=not page.events)


def apply_person(
    uow: UnitOfWork,
    acting: Acting,
    person: PopulationPerson,
    now: dt.datetime,
    death_grace: dt.timedelta = DEFAULT_DEATH_GRACE,
) -> bool:
    """The borrower with ``person``'s national id made to agree with them: name, sex and
    registered address (where given), address protection, a death (deleted as DECEASED once
    ``death_grace`` has passed, unless reactivated before), found in the population register,
    checked now. False if the register has no such borrower."""
    national_id = NationalId.parse(person.national_id, allow_synthetic=True, today=now.date())
    before = uow.borrowers.get_by_national_id(national_id)
    if before is None:
        return False
    personal = _followed(before.personal, person)
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
        delete_as_deceased_after=delete_after,
    )
    changed = (personal, protected, protection) != (
        before.personal,
        before.address_protected,
        before.address_protection,
    )
    if changed:
        after = after.change_personal_data(personal, acting.actor, now)
    saved = uow.borrowers.save(after, erasing=erasing)
    if changed:
        change_feed.record(uow, before, saved, now)
    record_audit(uow, acting, now, saved)
    return True


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
