"""Create, find, change, affiliate and delete borrowers, on behalf of an actor (domain/actor.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from nlr_server.domain import policy
from nlr_server.domain.actor import Actor
from nlr_server.domain.audit import Acting
from nlr_server.domain.borrower import Borrower, DeletionReason, PersonalData, PersonalDataPatch
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.credentials import LoginMethod, Pin, SecurityLevel
from nlr_server.domain.deletion_notice import DeletionNotice
from nlr_server.domain.errors import (
    AlreadyExists,
    CardNumberRetired,
    EtagMismatch,
    FailedPrecondition,
    PermissionDenied,
    Violations,
)
from nlr_server.domain.guardian import GuardianLinks
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.lockout import LockoutPolicy, LoginSubject
from nlr_server.domain.login import method_reaches, refusal_after_success
from nlr_server.domain.national_id import NationalId
from nlr_server.domain.second_factor import totp_not_enrolled
from nlr_server.domain.views import BorrowerView
from nlr_server.usecases import authentication, change_feed, guardians
from nlr_server.usecases.changes import change_borrower, find_changeable, record_audit
from nlr_server.usecases.lookup import BorrowerKey, find
from nlr_server.usecases.ports import CardNumberStatus, UnitOfWork, UnitOfWorkFactory
from nlr_server.usecases.reservations import refuse_others_reservation
from nlr_server.usecases.views import full_view


def create_borrower(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    library: LibraryNumber,
    card_number: CardNumber,
    personal: PersonalData,
    national_id: NationalId,
    now: dt.datetime,
    *,
    guardian: CardNumber | None = None,
    guardian_age: int = 15,
) -> Borrower:
    """A new borrower with ``library`` as home library; one under ``guardian_age`` needs a
    guardian, linked in the same transaction."""
    if personal.security_level is SecurityLevel.TWO_FACTOR:
        raise totp_not_enrolled()  # a new borrower has no second factor yet
    new = Borrower.register(card_number, personal, library, acting.actor, now)
    guardians.require_guardian_if_young(new, guardian, guardian_age, now.date())
    with unit_of_work() as uow:
        status, national_id_taken = uow.borrowers.registration_status(card_number, national_id)
        if status is CardNumberStatus.RETIRED:
            raise CardNumberRetired("the card number is retired and can never be used again")
        if status is CardNumberStatus.IN_USE:
            raise AlreadyExists("the card number is already in use", reason="CARD_NUMBER_IN_USE")
        refuse_others_reservation(uow, library, card_number)
        if national_id_taken:
            raise AlreadyExists(
                "a borrower with this national id already exists", reason="NATIONAL_ID_IN_USE"
            )
        borrower = uow.borrowers.add(new, national_id)
        change_feed.record(uow, None, borrower, now)
        if guardian is not None:
            link = guardians.attach_guardian(uow, borrower, guardian, library, now)
            # The full view as written: a new borrower has no identities, and no links but this.
            borrower = dataclasses.replace(borrower, links=GuardianLinks(guardians=(link,)))
        record_audit(uow, acting, now, borrower)
        uow.commit()
        return borrower


def get_borrower(
    unit_of_work: UnitOfWorkFactory, actor: Actor, key: BorrowerKey
) -> tuple[Borrower, BorrowerView]:
    """The borrower in the view the policy gives ``actor``. A read changes nothing: its audit
    event is the API layer's to write, before it answers."""
    with unit_of_work(read_only=True) as uow:
        borrower = find(uow, key)
        view = policy.view_for(actor, borrower)
        if view is BorrowerView.FULL:
            borrower = full_view(uow, borrower)
        return borrower, view


def require_second_factor_for(uow: UnitOfWork, borrower_id: int, level: SecurityLevel) -> None:
    """A TWO_FACTOR level only for a borrower with a confirmed TOTP second factor: no level is
    set that nothing the borrower has can reach."""
    if level is SecurityLevel.TWO_FACTOR:
        factor = uow.second_factors.totp_of(borrower_id)
        if factor is None or not factor.confirmed:
            raise totp_not_enrolled()


def update_borrower(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    card_number: CardNumber,
    etag: str,
    patch: PersonalDataPatch,
    national_id: NationalId | None,
    now: dt.datetime,
) -> Borrower:
    policy.require_may_change_fields(acting.actor, patch.fields)

    def change(uow: UnitOfWork, borrower: Borrower) -> Borrower:
        _require_current(borrower, etag)
        policy.require_not_followed(acting.actor, borrower, patch.fields)
        if national_id is not None:
            holder = uow.borrowers.get_by_national_id(national_id)
            if holder is not None and holder.card_number != borrower.card_number:
                raise AlreadyExists(
                    "another borrower has this national id", reason="NATIONAL_ID_IN_USE"
                )
        personal = patch.apply(borrower.personal)
        policy.require_may_set_security_level(
            acting.actor, borrower.personal.security_level, personal.security_level
        )
        if personal.security_level is not borrower.personal.security_level:
            assert borrower.id is not None
            require_second_factor_for(uow, borrower.id, personal.security_level)
            uow.sessions.remove_of_borrower(borrower.id)
        violations = Violations()
        personal.check_consistency(violations, patch.fields)
        violations.raise_if_any()
        changed = borrower.change_personal_data(personal, acting.actor, now)
        return uow.borrowers.save_personal_data(changed, national_id=national_id, before=borrower)

    return change_borrower(unit_of_work, acting, card_number, now, change, keeps_full_view=True)


@dataclass(frozen=True, slots=True)
class BirthDateAndPin:
    """Proof by what the borrower knows, for a library without an identity document to see."""

    birth_date: dt.date
    pin: Pin


def affiliate_borrower(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    card_number: CardNumber,
    proof: NationalId | BirthDateAndPin,
    now: dt.datetime,
    pin_matches: Callable[[Pin, str | None], bool],
    lockout: LockoutPolicy,
) -> Borrower:
    """The acting library becomes one the borrower is affiliated with, on proof that the
    borrower is present: their national id, or their birth date and PIN."""
    library = acting.actor.library_number
    assert library is not None, "a library affiliates a borrower"
    with unit_of_work() as uow:
        borrower = find(uow, BorrowerKey(card_number=card_number))
        assert borrower.id is not None
        if isinstance(proof, NationalId):
            proven = uow.borrowers.national_id_matches(borrower, proof)
        else:
            # A PIN given here is checked and counted as one given at login (the borrower's
            # PIN lockout, under the same lock), and opens nothing for a borrower who logs in
            # with a password only: refused as a wrong PIN would be.
            birth_date_matches = proof.birth_date == borrower.personal.birth_date
            pin = proof.pin
            subject = LoginSubject.of_borrower(borrower.id)
            uow.credentials.lock_login(subject)
            check = authentication.check_pin(
                uow,
                subject,
                uow.credentials.verifier(borrower.id, LoginMethod.PIN),
                method_reaches(LoginMethod.PIN, borrower.personal.security_level),
                lambda verifier: pin_matches(pin, verifier) and birth_date_matches,
                now,
                lockout,
            )
            if check.locked:
                raise check.refusal(now)
            proven = check.matched
            if check.save(uow):
                uow.commit()
            # The same rules as at login (domain/login.py): an expired card's PIN proves
            # nothing either.
            expired = refusal_after_success(borrower, now.date()) if proven else None
            if expired is not None:
                raise expired
        if not proven:
            raise PermissionDenied(
                "the proof does not match the borrower", reason="AFFILIATION_PROOF_MISMATCH"
            )
        if borrower.is_affiliated_with(library):
            saved = borrower
        elif borrower.processing_restricted:
            raise FailedPrecondition(
                "the borrower has restricted the processing of their data: no library is "
                "newly affiliated until they lift it",
                reason="PROCESSING_RESTRICTED",
            )
        else:
            saved = uow.borrowers.save(borrower.affiliate(library, acting.actor, now))
            change_feed.record(uow, borrower, saved, now)
        record_audit(uow, acting, now, saved)
        uow.commit()
        return full_view(uow, saved)


def delete_borrower(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    card_number: CardNumber,
    reason: DeletionReason,
    etag: str | None,
    now: dt.datetime,
) -> bool:
    """Deletes the borrower; at their own request, a notice listing the libraries that knew
    them is queued in the same transaction. True if a notice was queued."""
    with unit_of_work() as uow:
        borrower = find_changeable(uow, acting.actor, card_number)
        if etag:
            _require_current(borrower, etag)
        notice = None
        if reason is DeletionReason.BORROWER_REQUEST:
            notice = DeletionNotice.for_deleted(borrower, _library_names(uow, borrower), now)
        assert borrower.id is not None
        linked = uow.guardians.links_of(borrower.id)
        uow.borrowers.delete(borrower, reason, now)
        change_feed.record(uow, borrower, None, now, deletion_reason=reason)
        # Their guardians and wards lose the link: a change to each of them.
        for link in (*linked.guardians, *linked.wards):
            other = uow.borrowers.get_by_card_number(link.card_number)
            if other is not None:
                change_feed.record(uow, other, other, now)
        if notice is not None:
            uow.notices.queue(notice)
        record_audit(uow, acting, now, borrower)
        uow.commit()
        return notice is not None


def _library_names(uow: UnitOfWork, borrower: Borrower) -> dict[LibraryNumber, str]:
    names: dict[LibraryNumber, str] = {}
    for affiliation in borrower.affiliations:
        found = uow.libraries.get(affiliation.library_number)
        if found is not None:
            names[affiliation.library_number] = found.name
    return names


def _require_current(borrower: Borrower, etag: str) -> None:
    if etag != borrower.etag:
        raise EtagMismatch("the borrower changed since it was read; read it again")


__all__ = [
    "BorrowerKey",
    "affiliate_borrower",
    "create_borrower",
    "delete_borrower",
    "get_borrower",
    "update_borrower",
]
