"""The borrower record and the rules for changing it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from dataclasses import dataclass, field, replace

from nlr_server.domain.actor import Actor
from nlr_server.domain.address import Address, AddressProtection, TemporaryAddress
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.contact import (
    ContactMethod,
    EmailAddress,
    LanguageCode,
    PhoneKind,
    PhoneNumber,
)
from nlr_server.domain.credentials import SecurityLevel
from nlr_server.domain.errors import FailedPrecondition, Violations
from nlr_server.domain.guardian import GuardianLinks
from nlr_server.domain.identity import Identity
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.person_name import PersonName


class Sex(enum.StrEnum):
    UNSPECIFIED = "unspecified"
    FEMALE = "female"
    MALE = "male"


class DeletionReason(enum.StrEnum):
    BORROWER_REQUEST = "borrower_request"
    DECEASED = "deceased"


@dataclass(frozen=True, slots=True)
class Affiliation:
    """A library where the borrower's card has been activated, and since when."""

    library_number: LibraryNumber
    affiliated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class PersonalData:
    """The fields a library may set on create and change on update.

    The national id is not among them: it is sealed by the store on the way in and never loaded
    back into a record, so no code path can hand it to a caller by mistake.
    """

    name: PersonName
    birth_date: dt.date
    sex: Sex = Sex.UNSPECIFIED
    registered_address: Address | None = None
    email: EmailAddress | None = None
    mobile_phone: PhoneNumber | None = None
    home_phone: PhoneNumber | None = None
    work_phone: PhoneNumber | None = None
    security_level: SecurityLevel = SecurityLevel.PIN
    temporary_address: TemporaryAddress | None = None
    primary_phone: PhoneKind | None = None
    email_should_be_checked: bool = False
    preferred_contact_method: ContactMethod | None = None
    preferred_language: LanguageCode | None = None
    card_expiry_date: dt.date | None = None
    consent_time: dt.datetime | None = None
    primary_contact_phone: PhoneNumber | None = None
    registered_address_should_be_checked: bool = False
    temporary_address_should_be_checked: bool = False

    def check_consistency(
        self,
        violations: Violations,
        touched: frozenset[str] | None = None,
        prefix: str = "borrower",
    ) -> None:
        """The contact preferences must point at contact data the borrower has.

        With ``touched`` (the fields a change names), only the rules those fields take part in
        are checked, so an unrelated change is not refused for what an earlier one left.
        """

        def involved(*fields: str) -> bool:
            return touched is None or not touched.isdisjoint(fields)

        if (
            involved("primary_phone", "mobile_phone", "home_phone", "work_phone")
            and self.primary_phone is not None
            and getattr(self, self.primary_phone.field) is None
        ):
            violations.add(
                f"{prefix}.primary_phone",
                f"names the {self.primary_phone.value} phone, which the borrower does not have",
            )
        if not involved(
            "preferred_contact_method",
            "email",
            "mobile_phone",
            "registered_address",
            "temporary_address",
        ):
            return
        method = self.preferred_contact_method
        if method is ContactMethod.EMAIL and self.email is None:
            violations.add(f"{prefix}.preferred_contact_method", "EMAIL needs an email address")
        if method is ContactMethod.SMS and self.mobile_phone is None:
            violations.add(f"{prefix}.preferred_contact_method", "SMS needs a mobile phone")
        if (
            method is ContactMethod.LETTER
            and self.registered_address is None
            and self.temporary_address is None
        ):
            violations.add(f"{prefix}.preferred_contact_method", "LETTER needs an address")


# The record's own fields are PersonalData's: everything below is derived from them. An update
# replaces each as it is, except the name, which it changes part by part.
RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(PersonalData))
_REPLACEABLE: tuple[str, ...] = tuple(name for name in RECORD_FIELDS if name != "name")

# The update_mask paths that name a field of the record, in the proto's field names: the
# name's two parts, the national id (sealed by the store, never in PersonalData), the rest.
# Which of them an actor may change is the policy's (domain/policy.py).
UPDATABLE_FIELDS: frozenset[str] = frozenset(
    {"given_name", "family_name", "national_id", *_REPLACEABLE}
)


@dataclass(frozen=True, slots=True)
class PersonalDataPatch:
    """New values for the fields an update names; every other field keeps its value.

    An optional field named in ``fields`` with the value None is cleared. Its fields mirror
    PersonalData's, the name in two parts (tests/domain/test_record_fields.py holds them to it).
    """

    fields: frozenset[str]
    given_name: str | None = None
    family_name: str | None = None
    birth_date: dt.date | None = None
    sex: Sex = Sex.UNSPECIFIED
    registered_address: Address | None = None
    email: EmailAddress | None = None
    mobile_phone: PhoneNumber | None = None
    home_phone: PhoneNumber | None = None
    work_phone: PhoneNumber | None = None
    security_level: SecurityLevel = SecurityLevel.PIN
    temporary_address: TemporaryAddress | None = None
    primary_phone: PhoneKind | None = None
    email_should_be_checked: bool = False
    preferred_contact_method: ContactMethod | None = None
    preferred_language: LanguageCode | None = None
    card_expiry_date: dt.date | None = None
    consent_time: dt.datetime | None = None
    primary_contact_phone: PhoneNumber | None = None
    registered_address_should_be_checked: bool = False
    temporary_address_should_be_checked: bool = False

    def apply(self, personal: PersonalData) -> PersonalData:
        name = PersonName(
            given_name=self.given_name or personal.name.given_name,
            family_name=self.family_name or personal.name.family_name,
        )
        replaced = {f: getattr(self, f) for f in _REPLACEABLE if f in self.fields}
        if replaced.get("birth_date", personal.birth_date) is None:
            replaced.pop("birth_date")
        return replace(personal, name=name, **replaced)


@dataclass(frozen=True, slots=True)
class Borrower:
    """One card holder as the register holds them; ``version`` backs the etag."""

    card_number: CardNumber
    personal: PersonalData
    home_library: LibraryNumber
    affiliations: tuple[Affiliation, ...]
    created_by: Actor
    created_at: dt.datetime
    last_changed_by: Actor
    last_changed_at: dt.datetime
    version: int = 1
    previous_card_number: CardNumber | None = None
    address_protected: bool = False
    # Loaded only for the full view (see usecases.views.full_view).
    links: GuardianLinks = field(default_factory=GuardianLinks)
    identities: tuple[Identity, ...] = ()
    has_pin: bool = False
    has_password: bool = False
    last_active_on: dt.date | None = None
    population_register_checked_at: dt.datetime | None = None
    # Found in the population register when last checked: it owns their name, sex and
    # registered address (domain/policy.py).
    in_population_register: bool = False
    # The person's status there when last checked: bosatt, utflyttet (emigrated: recorded, not
    # acted on), doed, ...; as the population register gave it.
    population_register_status: str | None = None
    # The protection the population register gave the address (an operator's is NONE here,
    # with address_protected set): strictly confidential keeps every address out of the record.
    address_protection: AddressProtection = AddressProtection.NONE
    # The population register notified a death: deleted as DECEASED from then on (a grace
    # period after the notice), unless the person is reactivated before.
    delete_as_deceased_after: dt.datetime | None = None
    # Restricted by the borrower (GDPR art. 18): domain/policy.py.
    processing_restricted: bool = False
    id: int | None = field(default=None, compare=False)

    @classmethod
    def register(
        cls,
        card_number: CardNumber,
        personal: PersonalData,
        home_library: LibraryNumber,
        by: Actor,
        now: dt.datetime,
    ) -> Borrower:
        """A new borrower: the home library is also the first affiliation."""
        return cls(
            card_number=card_number,
            personal=personal,
            home_library=home_library,
            affiliations=(Affiliation(home_library, now),),
            created_by=by,
            created_at=now,
            last_changed_by=by,
            last_changed_at=now,
        )

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    def card_valid_on(self, day: dt.date) -> bool:
        expiry = self.personal.card_expiry_date
        return expiry is None or day <= expiry

    def temporary_address_on(self, day: dt.date) -> TemporaryAddress | None:
        """The temporary address if it still applies on ``day``."""
        temporary = self.personal.temporary_address
        return temporary if temporary is not None and temporary.applies_on(day) else None

    def age_on(self, day: dt.date) -> int:
        """Age in whole years on ``day``."""
        birth = self.personal.birth_date
        return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))

    def is_affiliated_with(self, library: LibraryNumber) -> bool:
        return any(a.library_number == library for a in self.affiliations)

    def affiliate(self, library: LibraryNumber, by: Actor, now: dt.datetime) -> Borrower:
        """The borrower with ``library`` among their libraries: a change of the record (the
        etag changes, and so does who last changed it)."""
        if self.is_affiliated_with(library):
            return self
        return replace(
            self,
            affiliations=(*self.affiliations, Affiliation(library, now)),
            last_changed_by=by,
            last_changed_at=now,
        )

    def make_home(self, library: LibraryNumber, by: Actor, now: dt.datetime) -> Borrower:
        """The borrower's chosen home library, which must be one they are affiliated with."""
        if not self.is_affiliated_with(library):
            raise FailedPrecondition(
                "the new home library is not affiliated with the borrower",
                reason="HOME_LIBRARY_NOT_AFFILIATED",
            )
        return replace(self, home_library=library, last_changed_by=by, last_changed_at=now)

    def without_affiliation(
        self, library: LibraryNumber, new_home: LibraryNumber | None, by: Actor, now: dt.datetime
    ) -> Borrower:
        """Ends one affiliation; the home library goes only with a new home named."""
        remaining = tuple(a for a in self.affiliations if a.library_number != library)
        if not remaining:
            raise FailedPrecondition(
                "the last affiliation cannot be removed: delete the borrower instead",
                reason="LAST_AFFILIATION",
            )
        home = self.home_library
        if library == home:
            if new_home is None:
                raise FailedPrecondition(
                    "name the new home library when the home library leaves",
                    reason="HOME_LIBRARY_REQUIRED",
                )
            if not any(a.library_number == new_home for a in remaining):
                raise FailedPrecondition(
                    "the new home library is not affiliated with the borrower",
                    reason="HOME_LIBRARY_NOT_AFFILIATED",
                )
            home = new_home
        return replace(
            self,
            affiliations=remaining,
            home_library=home,
            last_changed_by=by,
            last_changed_at=now,
        )

    def with_new_card(self, card_number: CardNumber, by: Actor, now: dt.datetime) -> Borrower:
        return replace(
            self,
            card_number=card_number,
            previous_card_number=self.card_number,
            last_changed_by=by,
            last_changed_at=now,
        )

    def change_personal_data(self, personal: PersonalData, by: Actor, now: dt.datetime) -> Borrower:
        return replace(self, personal=personal, last_changed_by=by, last_changed_at=now)
