"""What the use cases need from storage, as protocols the store implements."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

from nlr_server.domain.actor import Actor
from nlr_server.domain.audit import AuditEvent
from nlr_server.domain.borrower import Borrower, DeletionReason
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.card_reservation import CardNumberReservation
from nlr_server.domain.change_feed import FeedEntry, StoredEntry
from nlr_server.domain.contact_change import ContactKind, PendingContact
from nlr_server.domain.credentials import LoginMethod, SecurityLevel
from nlr_server.domain.deletion_notice import DeletionNotice
from nlr_server.domain.guardian import GuardianLinks
from nlr_server.domain.identity import Identity, IdentityKind, IdentityValue
from nlr_server.domain.library import Library
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.lockout import LoginAttempts, LoginSubject
from nlr_server.domain.national_id import NationalId
from nlr_server.domain.population import PopulationPerson
from nlr_server.domain.second_factor import TotpFactor
from nlr_server.domain.session import Session
from nlr_server.domain.vendor import Vendor, VendorCertificate


class CardNumberStatus(enum.Enum):
    UNUSED = "unused"
    IN_USE = "in_use"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class LoginCandidate:
    """The borrower a login key belongs to, with just what a login checks: read in one query,
    as cheap as finding that no borrower holds the key (the whole record is read only after a
    success), so the time of a refusal does not tell the two apart."""

    borrower_id: int
    card_number: str
    security_level: SecurityLevel
    verifier: str | None = field(repr=False)


class BorrowerRepository(Protocol):
    def get_by_card_number(self, card_number: CardNumber) -> Borrower | None: ...

    def get_by_id(self, borrower_id: int) -> Borrower | None: ...

    def get_full_by_card_number(self, card_number: CardNumber) -> Borrower | None:
        """The borrower with their guardian links and identities (the full view)."""
        ...

    def get_many(self, borrower_ids: Collection[int]) -> dict[int, Borrower]: ...

    def get_many_by_national_id(self, national_ids: Collection[str]) -> dict[str, Borrower]:
        """The borrowers with any of ``national_ids``, by national id."""
        ...

    def affiliated_ids(self, library: LibraryNumber, after_id: int, limit: int) -> list[int]:
        """Internal ids of the library's borrowers above ``after_id``, ascending."""
        ...

    def with_expired_temporary_address(self, today: dt.date) -> list[int]: ...

    def get_by_national_id(self, national_id: NationalId) -> Borrower | None: ...

    def national_ids_after(self, after_id: int, limit: int) -> list[tuple[int, str, str]]:
        """(id, card number, national id) after ``after_id`` in id order, decrypted: for a
        lookup in the population register only."""
        ...

    def highest_id(self) -> int: ...

    def deceased_due(self, now: dt.datetime) -> list[CardNumber]:
        """Those the population register notified dead whose grace period is over."""
        ...

    def deceased_pending(self) -> int: ...

    def registered_national_ids(self, national_ids: Collection[str]) -> set[str]:
        """Those of ``national_ids`` (as the population register writes them) that belong to
        a borrower, found by the blind index."""
        ...

    def get_by_identity(self, identity: IdentityValue, now: dt.datetime) -> Borrower | None:
        """The borrower with this other identity, unless its deletion time has come."""
        ...

    def card_number_status(self, card_number: CardNumber) -> CardNumberStatus: ...

    def registration_status(
        self, card_number: CardNumber, national_id: NationalId
    ) -> tuple[CardNumberStatus, bool]:
        """For a new borrower: the card number's status, and whether the national id is
        another borrower's."""
        ...

    def national_id_matches(self, borrower: Borrower, national_id: NationalId) -> bool: ...

    def add(self, borrower: Borrower, national_id: NationalId) -> Borrower:
        """Stores a new borrower; returns it with its internal id."""
        ...

    def save_personal_data(
        self,
        borrower: Borrower,
        *,
        national_id: NationalId | None = None,
        before: Borrower | None = None,
    ) -> Borrower:
        """As save, for a change of the personal data, home library and last changer only;
        ``before``, the borrower as read, spares unchanged indexed columns their write."""
        ...

    def save_followed(
        self,
        borrower: Borrower,
        *,
        national_id: NationalId | None = None,
        erasing: bool = False,
        before: Borrower | None = None,
    ) -> Borrower:
        """As save_personal_data, and what the population register says besides: checked
        when, found, status, address protection, a death's deletion time."""
        ...

    def restrict_processing(
        self, borrower: Borrower, restricted: bool, by: Actor, now: dt.datetime
    ) -> Borrower:
        """Sets or lifts the borrower's restriction of processing (EtagMismatch if changed)."""
        ...

    def save(
        self, borrower: Borrower, *, national_id: NationalId | None = None, erasing: bool = False
    ) -> Borrower:
        """Stores changes if ``borrower.version`` is still current (else EtagMismatch);
        returns the borrower with its new version."""
        ...

    def delete(self, borrower: Borrower, reason: DeletionReason, now: dt.datetime) -> None:
        """Removes every piece of personal data; the card number stays, retired."""
        ...

    def protect_address(
        self, card_number: CardNumber, protected: bool, by: Actor, now: dt.datetime
    ) -> bool:
        """Sets or ends address protection; False if there is no such borrower."""
        ...

    def clear_expired_temporary_addresses(self, today: dt.date, by: Actor, now: dt.datetime) -> int:
        """Clears temporary addresses whose last day is before ``today``; returns how many."""
        ...


class LibraryRepository(Protocol):
    def get(self, number: LibraryNumber) -> Library | None: ...

    def add(self, library: Library) -> None: ...


class VendorRepository(Protocol):
    def get(self, vendor_id: int) -> Vendor | None: ...

    def certificate(self, fingerprint: str) -> VendorCertificate | None: ...


class CredentialRepository(Protocol):
    def verifier(self, borrower_id: int, method: LoginMethod) -> str | None: ...

    def set_pin(self, borrower_id: int, verifier: str, key_version: int) -> int: ...

    def set_password(self, borrower_id: int, verifier: str) -> int: ...

    def rehash_password(self, borrower_id: int, old: str, new: str) -> None: ...

    def claim_login(
        self,
        key: CardNumber | IdentityValue,
        key_tag: bytes,
        method: LoginMethod,
        now: dt.datetime,
    ) -> tuple[LoginCandidate | None, LoginAttempts | None]: ...

    def lock_login(self, subject: LoginSubject) -> None: ...

    def login_attempts(self, subject: LoginSubject, method: LoginMethod) -> LoginAttempts: ...

    def save_login_attempts(
        self, subject: LoginSubject, method: LoginMethod, attempts: LoginAttempts
    ) -> None: ...

    def save_attempts(
        self, borrower_id: int, method: LoginMethod, attempts: LoginAttempts
    ) -> None: ...

    def forget_login_attempts(self, last_event_before: dt.datetime) -> int: ...

    def mark_active(self, borrower_id: int, day: dt.date) -> None: ...


class ReservationRepository(Protocol):
    def next_free_number(self) -> int: ...

    def add(self, reservation: CardNumberReservation) -> None: ...

    def holder_of(self, number: int) -> LibraryNumber | None: ...

    def of_library(self, library: LibraryNumber) -> list[CardNumberReservation]: ...


class GuardianRepository(Protocol):
    def link(self, child_id: int, guardian_id: int, at: dt.datetime, by: LibraryNumber) -> bool: ...

    def unlink(self, child_id: int, guardian_id: int) -> bool: ...

    def guardian_count(self, child_id: int) -> int: ...

    def links_of(self, borrower_id: int) -> GuardianLinks: ...

    def links_of_many(self, borrower_ids: Collection[int]) -> dict[int, GuardianLinks]: ...


class SessionRepository(Protocol):
    """Borrowers' SelfService sessions, known by the digest of their tokens."""

    def add(self, digest: bytes, session: Session) -> None: ...

    def get(self, digest: bytes) -> tuple[Session, SecurityLevel] | None:
        """The session, with its borrower's security level as it now stands."""
        ...

    def save(self, digest: bytes, session: Session) -> None: ...

    def remove(self, digest: bytes) -> None: ...

    def remove_of_borrower(self, borrower_id: int, keep: bytes | None = None) -> int: ...

    def remove_expired(self, now: dt.datetime) -> int: ...


class ContactChangeRepository(Protocol):
    """New emails and mobile phones waiting for their one-time codes."""

    def pending(self, borrower_id: int, kind: ContactKind) -> PendingContact | None: ...

    def put(self, pending: PendingContact) -> None: ...

    def count_attempt(self, pending: PendingContact) -> None: ...

    def remove(self, borrower_id: int, kind: ContactKind) -> None: ...


class SecondFactorRepository(Protocol):
    """Borrowers' TOTP second factors (sealed secrets) and recovery codes (verifiers)."""

    def totp_of(self, borrower_id: int) -> TotpFactor | None: ...

    def begin_totp(
        self, borrower_id: int, ciphertext: bytes, key_version: int, now: dt.datetime
    ) -> None: ...

    def confirm_totp(
        self, borrower_id: int, step: int, now: dt.datetime, recovery_verifiers: list[bytes]
    ) -> None: ...

    def accept_step(self, borrower_id: int, step: int) -> bool: ...

    def remove_totp(self, borrower_id: int) -> bool: ...

    def recovery_codes(self, borrower_id: int) -> list[tuple[int, bytes]]: ...

    def use_recovery_code(self, code_id: int, now: dt.datetime) -> bool: ...


class IdentityRepository(Protocol):
    def of_borrower(self, borrower_id: int) -> tuple[Identity, ...]: ...

    def of_borrowers(self, borrower_ids: Collection[int]) -> dict[int, tuple[Identity, ...]]: ...

    def add(self, borrower_id: int, identity: Identity) -> bool:
        """Adds the identity; False if its kind (for the borrower) or value is taken."""
        ...

    def remove(self, borrower_id: int, kind: IdentityKind) -> bool: ...

    def expired_holders(self, now: dt.datetime) -> list[int]: ...

    def remove_expired(self, now: dt.datetime) -> int: ...

    def remove_expired_in_the_way(
        self, borrower_id: int, value: IdentityValue, now: dt.datetime
    ) -> None: ...


class AuditRepository(Protocol):
    def append(self, events: Sequence[AuditEvent]) -> None: ...

    def of_cards(
        self, card_numbers: Collection[str], before_id: int | None, limit: int
    ) -> list[tuple[int, AuditEvent]]:
        """The events of these card numbers, newest first, with their ids (before
        ``before_id``, when given)."""
        ...


class NoticeRepository(Protocol):
    """The outbox of deletion notices."""

    def queue(self, notice: DeletionNotice) -> int: ...

    def due(
        self, now: dt.datetime, limit: int, *, claim_until: dt.datetime
    ) -> list[DeletionNotice]:
        """Pending notices due at ``now``, claimed (no other server takes them) until
        ``claim_until``."""
        ...

    def mark_delivered(self, notice_id: int, now: dt.datetime) -> None:
        """Ends the notice and purges its personal data."""
        ...

    def mark_failed(self, notice_id: int, next_attempt_at: dt.datetime) -> None: ...

    def give_up_created_before(self, cutoff: dt.datetime, now: dt.datetime) -> list[int]:
        """Ends the pending notices created before ``cutoff``, purging their personal data;
        returns their ids."""
        ...


@dataclass(frozen=True, slots=True)
class PopulationEvent:
    """One entry of the population register's event feed."""

    sequence: int
    national_id: str
    kind: str  # hendelsetype, e.g. endringINavn


@dataclass(frozen=True, slots=True)
class PopulationEvents:
    """A page of the feed, and the tag that says it has not changed since."""

    events: tuple[PopulationEvent, ...]
    etag: str | None


class PopulationSource(Protocol):
    """The population register, as the sync reads it (population/ adapts Folkeregisteret)."""

    def events(self, sequence: int, etag: str | None) -> PopulationEvents | None:
        """The events from ``sequence`` on (a page); None if unchanged since ``etag``."""
        ...

    def persons(self, national_ids: Sequence[str]) -> dict[str, PopulationPerson | None]:
        """Each person as the register holds them now (None: not found there)."""
        ...


@dataclass(frozen=True, slots=True)
class PopulationSyncState:
    """Where the population register sync is in Folkeregisteret's event feed."""

    next_sequence: int
    etag: str | None
    lease_owner: str | None
    lease_until: dt.datetime | None
    events_read: int
    events_applied: int
    last_run_at: dt.datetime | None
    last_error: str | None
    # How often applying the page at next_sequence has failed so far.
    page_failures: int = 0


@dataclass(frozen=True, slots=True)
class PopulationReview:
    """Something the sync left to an operator (see store/models.py PopulationReviewRow)."""

    id: int
    sequence: int
    kind: str
    card_numbers: tuple[str, ...]
    created_at: dt.datetime
    resolved_at: dt.datetime | None = None
    resolved_by: str | None = None


class PopulationSyncRepository(Protocol):
    """The sync's place in the feed and the lease of the one worker that reads it."""

    def add_review(
        self, sequence: int, kind: str, card_numbers: Sequence[str], now: dt.datetime
    ) -> None: ...

    def reviews(self, *, open_only: bool) -> list[PopulationReview]: ...

    def resolve_review(self, review_id: int, by: str, now: dt.datetime) -> bool: ...

    def state(self) -> PopulationSyncState: ...

    def claim(
        self, owner: str, now: dt.datetime, until: dt.datetime
    ) -> PopulationSyncState | None: ...

    def advance(
        self,
        owner: str,
        read_at: int,
        next_sequence: int,
        etag: str | None,
        read: int,
        applied: int,
        now: dt.datetime,
    ) -> bool: ...

    def record_error(self, owner: str, error: str, now: dt.datetime) -> None: ...

    def count_page_failure(self, owner: str, sequence: int) -> None: ...

    def release(self, owner: str) -> None: ...

    def reconciled_through(self) -> int | None: ...

    def set_reconciled_through(self, borrower_id: int | None) -> None: ...


class FeedRepository(Protocol):
    def record(self, entries: list[FeedEntry], at: dt.datetime) -> None:
        """Appends one change's entries when the unit of work commits."""
        ...

    def head(self) -> tuple[int, int]:
        """The last sequence committed, and the last one compacted away."""
        ...

    def for_library(
        self, library: LibraryNumber, after: int, through: int, limit: int
    ) -> list[StoredEntry]: ...

    def all_after(self, after: int, through: int, limit: int) -> list[StoredEntry]: ...

    def compact(self, before: dt.datetime) -> int: ...


class UnitOfWork(Protocol):
    """One transaction: everything inside commits together or not at all."""

    @property
    def borrowers(self) -> BorrowerRepository: ...

    @property
    def libraries(self) -> LibraryRepository: ...

    @property
    def vendors(self) -> VendorRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def credentials(self) -> CredentialRepository: ...

    @property
    def reservations(self) -> ReservationRepository: ...

    @property
    def guardians(self) -> GuardianRepository: ...

    @property
    def notices(self) -> NoticeRepository: ...

    @property
    def identities(self) -> IdentityRepository: ...

    @property
    def population(self) -> PopulationSyncRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def second_factors(self) -> SecondFactorRepository: ...

    @property
    def contact_changes(self) -> ContactChangeRepository: ...

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    @property
    def feed(self) -> FeedRepository: ...

    def commit(self) -> None: ...


class WriterBusy(Exception):
    """A unit of work made not to wait found another writer at work; it did nothing."""


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> UnitOfWork: ...
