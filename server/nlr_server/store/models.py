"""The register's tables as typed SQLAlchemy 2 models; the schema itself comes from migrations."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table_of(row: type[Base]) -> Table:
    """The Core table of a mapped row class, typed (``__table__`` is typed as a FromClause)."""
    table = row.__table__
    assert isinstance(table, Table)
    return table


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timestamps are stored in UTC and come back timezone-aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the register works in UTC")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class VendorRow(Base):
    __tablename__ = "vendors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class VendorCertificateRow(Base):
    """An issued client certificate, by the SHA-256 fingerprint of its DER encoding."""

    __tablename__ = "vendor_certificates"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    serial_number: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(300))
    issued_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    not_after: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


class LibraryRow(Base):
    __tablename__ = "libraries"

    library_number: Mapped[str] = mapped_column(String(7), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    municipality_number: Mapped[str | None] = mapped_column(String(4))
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id"), index=True)
    # A salted, slow verifier of the authorization code from Base Bibliotek; never the code.
    code_verifier: Mapped[str | None] = mapped_column(String(200))


class AuditEventRow(Base):
    """One call that read or changed a borrower (or tried to): identifiers only, no values."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    occurred_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    vendor_id: Mapped[int | None] = mapped_column(Integer)
    # SHA-256 of the client certificate, also when it is unknown or revoked (no vendor then).
    certificate_fingerprint: Mapped[str | None] = mapped_column(String(64))
    library_number: Mapped[str | None] = mapped_column(String(7))
    rpc: Mapped[str] = mapped_column(String(64))
    card_number: Mapped[str | None] = mapped_column(String(10), index=True)
    borrower_id: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(64))
    # Who acted (domain/actor.py); empty only for a call refused before its caller was known.
    actor_kind: Mapped[str | None] = mapped_column(String(24))
    actor_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_audit_events_vendor_time", "vendor_id", "occurred_at"),)


class CardNumberRow(Base):
    """Every card number ever issued; a retired one is never accepted again."""

    __tablename__ = "card_numbers"

    card_number: Mapped[str] = mapped_column(String(10), primary_key=True)
    # Null once the borrower is deleted (or, later, the card replaced).
    borrower_id: Mapped[int | None] = mapped_column(
        ForeignKey("borrowers.id", ondelete="SET NULL"), index=True
    )
    retired_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    retired_reason: Mapped[str | None] = mapped_column(String(32))


class BorrowerRow(Base):
    __tablename__ = "borrowers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    card_number: Mapped[str] = mapped_column(String(10), unique=True)
    previous_card_number: Mapped[str | None] = mapped_column(String(10))
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    # AES-256-GCM ciphertext (key version inside) and HMAC-SHA256 blind index: never plaintext.
    national_id_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    national_id_index: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    # Which key encrypts the national id: lets rotation find what to re-encrypt, and
    # retirement prove that nothing still needs an old key.
    national_id_key_version: Mapped[int] = mapped_column(Integer, index=True)
    # Keyed PIN verifier and PBKDF2 password verifier (self-describing); never the secrets.
    pin_verifier: Mapped[str | None] = mapped_column(String(200))
    pin_key_version: Mapped[int | None] = mapped_column(Integer, index=True)
    password_verifier: Mapped[str | None] = mapped_column(String(200))
    security_level: Mapped[str] = mapped_column(String(16))
    last_active_on: Mapped[dt.date | None] = mapped_column(Date)
    birth_date: Mapped[dt.date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(16))
    address_line1: Mapped[str | None] = mapped_column(String(100))
    address_line2: Mapped[str | None] = mapped_column(String(100))
    address_line3: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(60))
    country_code: Mapped[str | None] = mapped_column(String(2))
    registered_address_should_be_checked: Mapped[bool] = mapped_column(Boolean, default=False)
    # Adressebeskyttelse: the address is never given to any library.
    address_protected: Mapped[bool] = mapped_column(Boolean, default=False)
    # The borrower has restricted the processing of their data (GDPR art. 18): only the home
    # library sees more than the basic view, and no library is newly affiliated.
    processing_restricted: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    temporary_address_line1: Mapped[str | None] = mapped_column(String(100))
    temporary_address_line2: Mapped[str | None] = mapped_column(String(100))
    temporary_address_line3: Mapped[str | None] = mapped_column(String(100))
    temporary_postal_code: Mapped[str | None] = mapped_column(String(10))
    temporary_city: Mapped[str | None] = mapped_column(String(60))
    temporary_country_code: Mapped[str | None] = mapped_column(String(2))
    # Indexed: maintenance clears temporary addresses whose last day has passed.
    temporary_address_valid_until: Mapped[dt.date | None] = mapped_column(Date, index=True)
    temporary_address_should_be_checked: Mapped[bool] = mapped_column(Boolean, default=False)
    email: Mapped[str | None] = mapped_column(String(254))
    email_should_be_checked: Mapped[bool] = mapped_column(Boolean, default=False)
    mobile_phone: Mapped[str | None] = mapped_column(String(20))
    home_phone: Mapped[str | None] = mapped_column(String(20))
    work_phone: Mapped[str | None] = mapped_column(String(20))
    # A fourth phone, the primary contact's (legacy prim_kontakt); primary_phone below names
    # which of mobile, home and work to call first.
    primary_contact_phone: Mapped[str | None] = mapped_column(String(20))
    primary_phone: Mapped[str | None] = mapped_column(String(8))
    preferred_contact_method: Mapped[str | None] = mapped_column(String(8))
    preferred_language: Mapped[str | None] = mapped_column(String(3))
    card_expiry_date: Mapped[dt.date | None] = mapped_column(Date)
    consent_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    population_register_checked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    # Found in the population register when last checked: it then owns name, sex and the
    # registered address (domain/policy.py).
    in_population_register: Mapped[bool] = mapped_column(Boolean, default=False)
    # The person's status there when last checked (bosatt, utflyttet, ...), as it came.
    population_register_status: Mapped[str | None] = mapped_column(String(32))
    # The address protection the population register gave (fortrolig, strengtFortrolig);
    # NULL when none did (an operator's protection is address_protected alone).
    address_protection: Mapped[str | None] = mapped_column(String(24))
    # A death the population register notified: deleted as DECEASED from then on.
    delete_as_deceased_after: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), index=True)
    home_library: Mapped[str] = mapped_column(ForeignKey("libraries.library_number"))
    # Who created the record and who last changed it (domain/actor.py): the kind, and the
    # library number, card number, operator or task by kind. Not a key to libraries: most
    # actors are not libraries.
    created_by_kind: Mapped[str] = mapped_column(String(24))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_changed_by_kind: Mapped[str] = mapped_column(String(24))
    last_changed_by: Mapped[str] = mapped_column(String(64))
    last_changed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer)

    affiliations: Mapped[list[AffiliationRow]] = relationship(
        back_populates="borrower",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="AffiliationRow.affiliated_at",
        lazy="selectin",
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class LoginAttemptsRow(Base):
    """Consecutive failures, lockouts and password checks under way of one login subject's PIN
    or password logins (domain/lockout.py): a borrower, or a login key no borrower holds."""

    __tablename__ = "login_attempts"

    # A borrower's: b"borrower/" and the id (at most 28 bytes); an unknown key's: its 32-byte
    # tag (crypto/login_key_index.py). The lengths keep the two apart.
    login_key: Mapped[bytes] = mapped_column(LargeBinary(40), primary_key=True)
    method: Mapped[str] = mapped_column(String(16), primary_key=True)
    # Set on a borrower's rows, which go with the borrower.
    borrower_id: Mapped[int | None] = mapped_column(
        ForeignKey("borrowers.id", ondelete="CASCADE"), index=True
    )
    consecutive_failures: Mapped[int] = mapped_column(Integer)
    lockouts: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    checks_in_flight: Mapped[int] = mapped_column(Integer)
    in_flight_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    # The latest of the three times above (LoginAttempts.last_event_at): maintenance removes
    # the rows whose last event is older than the lockout's memory.
    last_event_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), index=True)


class CardNumberSeriesRow(Base):
    """One row: the next card number the register hands out in a reservation."""

    __tablename__ = "card_number_series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_number: Mapped[int] = mapped_column(BigInteger)


class CardNumberReservationRow(Base):
    __tablename__ = "card_number_reservations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    library_number: Mapped[str] = mapped_column(ForeignKey("libraries.library_number"), index=True)
    first_number: Mapped[int] = mapped_column(BigInteger, index=True)
    last_number: Mapped[int] = mapped_column(BigInteger)
    reserved_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class GuardianLinkRow(Base):
    __tablename__ = "guardian_links"

    child_id: Mapped[int] = mapped_column(
        ForeignKey("borrowers.id", ondelete="CASCADE"), primary_key=True
    )
    guardian_id: Mapped[int] = mapped_column(
        ForeignKey("borrowers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    linked_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    linked_by: Mapped[str] = mapped_column(ForeignKey("libraries.library_number"))


class IdentityRow(Base):
    """Another identity of a borrower (Feide, Pocket, school card): at most one of each kind per
    borrower, and a value names at most one borrower per kind."""

    __tablename__ = "identities"

    borrower_id: Mapped[int] = mapped_column(
        ForeignKey("borrowers.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    # Indexed: maintenance removes the identities whose time has come.
    delete_after: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)

    __table_args__ = (UniqueConstraint("kind", "value", name="uq_identities_kind_value"),)


class AffiliationRow(Base):
    __tablename__ = "affiliations"

    borrower_id: Mapped[int] = mapped_column(
        ForeignKey("borrowers.id", ondelete="CASCADE"), primary_key=True
    )
    library_number: Mapped[str] = mapped_column(
        ForeignKey("libraries.library_number"), primary_key=True
    )
    affiliated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    borrower: Mapped[BorrowerRow] = relationship(back_populates="affiliations")

    # A library's borrowers in a stable order: the full sync pages through this.
    __table_args__ = (Index("ix_affiliations_library_borrower", "library_number", "borrower_id"),)


class DeletionNoticeRow(Base):
    """The outbox of deletion notices to borrowers (domain.deletion_notice).

    The personal columns (recipient, name, libraries) are emptied as soon as a notice is
    delivered or given up: what stays is a bare record of when it was made and how it ended.
    """

    __tablename__ = "deletion_notices"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # pending, delivered or given_up.
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer)
    # When a pending notice is next due, or its claim by a delivering server runs out; null once
    # it has ended. Indexed: the delivery loop looks for pending notices by it.
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), index=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    recipient: Mapped[str | None] = mapped_column(String(254))
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    # JSON: [[library number, library name], ...] in the order the borrower was affiliated.
    libraries: Mapped[str | None] = mapped_column(Text)


class FeedHeadRow(Base):
    """One row: the last sequence number handed out, and up to where the feed is compacted.

    Every writing transaction that appends to the feed updates this row, so on PostgreSQL too
    sequence numbers become visible in the order they were given: a reader that has seen
    sequence N can never later find a committed entry below N."""

    __tablename__ = "feed_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_sequence: Mapped[int] = mapped_column(BigInteger)
    compacted_through: Mapped[int] = mapped_column(BigInteger)


class FeedEntryRow(Base):
    """One library's entry for one change; every library's entries of a change share the
    sequence number. Entries point at the borrower (and are deleted with it); tombstones carry
    only the card number and reason.

    borrower_id is deliberately no foreign key: checking one would lock the borrower's row while
    the feed's lock is held, and a transaction holding that row and waiting for the feed's lock
    would deadlock with it."""

    __tablename__ = "feed_entries"

    library_number: Mapped[str] = mapped_column(String(7), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)
    kind: Mapped[str] = mapped_column(String(24))
    occurred_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    borrower_id: Mapped[int | None] = mapped_column(Integer, index=True)
    card_number: Mapped[str | None] = mapped_column(String(10))
    deletion_reason: Mapped[str | None] = mapped_column(String(32))


class ImportRow(Base):
    """Progress of one bulk import (`nlr-admin import`), by the SHA-256 of its file.

    Updated in the same transaction as each batch of borrowers, so after an interruption the
    import continues exactly after the last committed batch."""

    __tablename__ = "imports"

    file_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    file_name: Mapped[str] = mapped_column(String(1000))
    file_size: Mapped[int] = mapped_column(BigInteger)
    batch_size: Mapped[int] = mapped_column(Integer)
    # Fixed when the import first starts: the fallback creation time and "today" of every run.
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    # The first borrower id this import used: tells a duplicate within the file from one
    # that was in the register before.
    first_borrower_id: Mapped[int] = mapped_column(Integer)
    lines_done: Mapped[int] = mapped_column(BigInteger)
    # Byte offsets in the input and in the reject file up to which lines are committed.
    input_offset: Mapped[int] = mapped_column(BigInteger)
    rejects_offset: Mapped[int] = mapped_column(BigInteger)
    imported: Mapped[int] = mapped_column(BigInteger)
    rejected: Mapped[int] = mapped_column(BigInteger)


class PopulationSyncRow(Base):
    """The population register sync's place in Folkeregisteret's event feed (one row, id 1):
    the next sequence number to read, the last page's ETag, the lease of the one worker that
    reads (on any server), and what it did last."""

    __tablename__ = "population_sync"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_sequence: Mapped[int] = mapped_column(BigInteger)
    etag: Mapped[str | None] = mapped_column(String(200))
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    events_read: Mapped[int] = mapped_column(BigInteger, default=0)
    events_applied: Mapped[int] = mapped_column(BigInteger, default=0)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    # How often applying the page at failed_sequence has failed (reset when the place moves).
    failed_sequence: Mapped[int | None] = mapped_column(BigInteger)
    page_failures: Mapped[int] = mapped_column(Integer, default=0)
    # The last borrower id a reconcile has looked up (None: no reconcile under way).
    reconciled_through: Mapped[int | None] = mapped_column(BigInteger)


class PopulationReviewRow(Base):
    """Something the population register sync left to an operator: the event's sequence number,
    what it was (``duplicate``: two borrowers the population register says are one person;
    ``failed``: an event that could not be applied) and the card numbers concerned (never a
    national id)."""

    __tablename__ = "population_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sequence: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(24))
    card_numbers: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(100))


class LimitBucketRow(Base):
    """A token bucket that every worker and server leases calls from (api/rate_limit.py): one
    vendor's call rate. Times are seconds since the epoch, on the leasing server's clock."""

    __tablename__ = "limit_buckets"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    # The size of the last lease, so that one statement can both take and tell it.
    granted: Mapped[int] = mapped_column(Integer)


class LimitFailureRow(Base):
    """One failed attempt counted by a shared limit (a wrong library code, by vendor and
    library), at seconds since the epoch; removed once older than the limit's window."""

    __tablename__ = "limit_failures"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    key: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[float] = mapped_column(Float, index=True)

    __table_args__ = (Index("ix_limit_failures_key_failed_at", "key", "failed_at"),)


class TotpCredentialRow(Base):
    """A borrower's TOTP second factor: the secret sealed under the keyring (never in the
    clear), when it was confirmed by a first code (None: enrolment begun, not finished), and
    the last time step a code was accepted for (a code is accepted once)."""

    __tablename__ = "totp_credentials"

    borrower_id: Mapped[int] = mapped_column(
        ForeignKey("borrowers.id", ondelete="CASCADE"), primary_key=True
    )
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    # Which key seals the secret: rotation re-seals, retirement checks none is left.
    key_version: Mapped[int] = mapped_column(Integer, index=True)
    enrolled_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    last_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCodeRow(Base):
    """One recovery code of a borrower's TOTP second factor, as a salted SHA-256 verifier;
    used once."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    borrower_id: Mapped[int] = mapped_column(
        ForeignKey("borrowers.id", ondelete="CASCADE"), index=True
    )
    verifier: Mapped[bytes] = mapped_column(LargeBinary(48))
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


class SelfServiceSessionRow(Base):
    """A borrower's SelfService session: known by the SHA-256 of its token (the token itself is
    never stored), bound to the portal certificate it was opened through. It lasts until
    ``expires_at``, which each use moves on, up to ``ends_at``."""

    __tablename__ = "selfservice_sessions"

    token_digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    borrower_id: Mapped[int] = mapped_column(
        ForeignKey("borrowers.id", ondelete="CASCADE"), index=True
    )
    certificate_fingerprint: Mapped[str] = mapped_column(String(64))
    # The login's first factor (LoginMethod) and how strong the session now is (SecurityLevel).
    method: Mapped[str] = mapped_column(String(16))
    strength: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    ends_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class ContactChangeRow(Base):
    """A borrower's new email or mobile phone waiting for the one-time code sent to it: the
    code only as salted SHA-256; removed when confirmed, dropped after too many wrong codes."""

    __tablename__ = "contact_changes"

    borrower_id: Mapped[int] = mapped_column(
        ForeignKey("borrowers.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(254))
    code_verifier: Mapped[bytes] = mapped_column(LargeBinary(48))
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer)
    sends: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
