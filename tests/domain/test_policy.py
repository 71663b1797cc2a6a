"""The domain policy for every kind of actor (which view, whether it may change the record,
which fields it owns), what each view discloses, and how an update's patch applies: the rules
alone, without a store or a server."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from nlr_server.domain.actor import Actor, ActorKind
from nlr_server.domain.address import Address, TemporaryAddress
from nlr_server.domain.borrower import (
    UPDATABLE_FIELDS,
    Affiliation,
    Borrower,
    PersonalData,
    PersonalDataPatch,
    Sex,
)
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.contact import ContactMethod, EmailAddress, LanguageCode, PhoneNumber
from nlr_server.domain.credentials import SecurityLevel
from nlr_server.domain.errors import PermissionDenied
from nlr_server.domain.guardian import GuardianLink, GuardianLinks
from nlr_server.domain.identity import Identity, IdentityKind
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.person_name import PersonName
from nlr_server.domain.policy import (
    BORROWER_FIELDS,
    POPULATION_REGISTER_FIELDS,
    require_may_change,
    require_may_change_fields,
    view_for,
)
from nlr_server.domain.views import BorrowerView, disclosed

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
OSLO, BERGEN, TROMSO = LibraryNumber("2030100"), LibraryNumber("2460100"), LibraryNumber("2540200")
CARD, OTHER_CARD, GUARDIAN_CARD = (
    CardNumber("N000000001"),
    CardNumber("N000000002"),
    CardNumber("N000000003"),
)
STORGATA = Address(("Storgata 1",), "0155", "Oslo", "NO")
HYTTA = Address(("Fjellveien 9",), "3580", "Geilo", "NO")
EMAIL = EmailAddress("kari@example.org")
MOBILE = PhoneNumber("+4791234567")

OPERATOR = Actor.operator("ada")
SYSTEM = Actor.system("maintenance")
POPULATION_REGISTER = Actor.population_register()


def _personal(**changes: object) -> PersonalData:
    personal = PersonalData(
        name=PersonName("Kari", "Nordmann"),
        birth_date=dt.date(1990, 5, 1),
        sex=Sex.FEMALE,
        registered_address=STORGATA,
        temporary_address=TemporaryAddress(HYTTA, TODAY + dt.timedelta(days=10)),
        email=EMAIL,
        mobile_phone=MOBILE,
        preferred_contact_method=ContactMethod.EMAIL,
        preferred_language=LanguageCode("nb"),
    )
    return dataclasses.replace(personal, **changes)  # type: ignore[arg-type]


def _borrower(*libraries: LibraryNumber, **changes: object) -> Borrower:
    """Kari, affiliated with ``libraries`` (the first her home), with contact data, a guardian
    link, an identity and a previous card: everything a view may leave out."""
    home = libraries[0]
    registered = Borrower.register(CARD, _personal(), home, Actor.library(home), NOW)
    full = dataclasses.replace(
        registered,
        affiliations=tuple(Affiliation(library, NOW) for library in libraries),
        previous_card_number=CardNumber("N000000009"),
        links=GuardianLinks(guardians=(GuardianLink(GUARDIAN_CARD, NOW, home),)),
        identities=(Identity(IdentityKind.FEIDE, "kari@uio.no", NOW, NOW + dt.timedelta(days=1)),),
        last_active_on=TODAY,
        population_register_checked_at=NOW,
        id=7,
    )
    return dataclasses.replace(full, **changes)  # type: ignore[arg-type]


# Which view: every kind of actor.


def test_an_affiliated_library_gets_the_full_view() -> None:
    borrower = _borrower(OSLO, BERGEN)
    assert view_for(Actor.library(OSLO), borrower) is BorrowerView.FULL
    assert view_for(Actor.library(BERGEN), borrower) is BorrowerView.FULL


def test_a_library_not_affiliated_gets_the_basic_view() -> None:
    assert view_for(Actor.library(TROMSO), _borrower(OSLO, BERGEN)) is BorrowerView.BASIC


def test_a_borrower_gets_the_full_view_of_their_own_record_only() -> None:
    borrower = _borrower(OSLO)
    assert view_for(Actor.borrower(CARD.value), borrower) is BorrowerView.FULL
    assert view_for(Actor.borrower(OTHER_CARD.value), borrower) is BorrowerView.BASIC


@pytest.mark.parametrize("actor", [OPERATOR, SYSTEM, POPULATION_REGISTER], ids=str)
def test_operators_the_system_and_the_population_register_get_the_full_view(actor: Actor) -> None:
    assert view_for(actor, _borrower(OSLO)) is BorrowerView.FULL


def test_every_kind_of_actor_has_a_view_rule() -> None:
    borrower = _borrower(OSLO)
    actors = {
        ActorKind.LIBRARY: Actor.library(TROMSO),
        ActorKind.BORROWER: Actor.borrower(OTHER_CARD.value),
        ActorKind.POPULATION_REGISTER: POPULATION_REGISTER,
        ActorKind.OPERATOR: OPERATOR,
        ActorKind.SYSTEM: SYSTEM,
    }
    assert set(actors) == set(ActorKind)
    assert {kind: view_for(actor, borrower) for kind, actor in actors.items()} == {
        ActorKind.LIBRARY: BorrowerView.BASIC,
        ActorKind.BORROWER: BorrowerView.BASIC,
        ActorKind.POPULATION_REGISTER: BorrowerView.FULL,
        ActorKind.OPERATOR: BorrowerView.FULL,
        ActorKind.SYSTEM: BorrowerView.FULL,
    }


# Who may change the record.


def test_an_affiliated_library_may_change_the_borrower() -> None:
    borrower = _borrower(OSLO, BERGEN)
    require_may_change(Actor.library(OSLO), borrower)
    require_may_change(Actor.library(BERGEN), borrower)


def test_a_library_not_affiliated_may_not_change_the_borrower() -> None:
    with pytest.raises(PermissionDenied) as refused:
        require_may_change(Actor.library(TROMSO), _borrower(OSLO, BERGEN))
    assert refused.value.reason == "NOT_AFFILIATED"


def test_a_borrower_may_change_their_own_record() -> None:
    require_may_change(Actor.borrower(CARD.value), _borrower(OSLO))


def test_a_borrower_may_not_change_another_borrowers_record() -> None:
    with pytest.raises(PermissionDenied) as refused:
        require_may_change(Actor.borrower(OTHER_CARD.value), _borrower(OSLO))
    assert refused.value.reason == "NOT_OWN_RECORD"


@pytest.mark.parametrize("actor", [OPERATOR, SYSTEM, POPULATION_REGISTER], ids=str)
def test_operators_the_system_and_the_population_register_may_change_any_record(
    actor: Actor,
) -> None:
    # Affiliated with none of the actors: none of them is a library.
    require_may_change(actor, _borrower(TROMSO))


# Which fields each kind of actor owns.


@pytest.mark.parametrize("actor", [Actor.library(OSLO), OPERATOR, SYSTEM], ids=str)
def test_libraries_operators_and_the_system_may_change_every_updatable_field(actor: Actor) -> None:
    require_may_change_fields(actor, UPDATABLE_FIELDS)


def test_a_borrower_may_change_how_to_reach_them_and_their_own_choices() -> None:
    require_may_change_fields(Actor.borrower(CARD.value), BORROWER_FIELDS)
    reaching_and_choices = {"email", "mobile_phone", "temporary_address", "security_level"}
    assert reaching_and_choices <= BORROWER_FIELDS


def test_the_primary_contact_phone_is_the_borrowers_like_the_other_phones_but_no_check_is() -> None:
    phones = {"mobile_phone", "home_phone", "work_phone", "primary_contact_phone"}
    assert phones <= BORROWER_FIELDS
    checks = {
        "email_should_be_checked",
        "registered_address_should_be_checked",
        "temporary_address_should_be_checked",
    }
    assert checks & BORROWER_FIELDS == set()
    assert checks & POPULATION_REGISTER_FIELDS == set()
    require_may_change_fields(Actor.library(OSLO), frozenset(checks | phones))


def test_a_borrower_may_not_change_who_they_are() -> None:
    fields = frozenset({"email", "given_name", "birth_date", "national_id"})
    with pytest.raises(PermissionDenied) as refused:
        require_may_change_fields(Actor.borrower(CARD.value), fields)
    assert refused.value.reason == "FIELD_NOT_OWNED"
    # Each field not owned, sorted; the owned one (email) is not named.
    assert str(refused.value) == "not the borrower's to change: birth_date, given_name, national_id"


def test_the_population_register_changes_only_who_the_person_is() -> None:
    require_may_change_fields(POPULATION_REGISTER, POPULATION_REGISTER_FIELDS)
    who_the_person_is = {
        "given_name",
        "family_name",
        "national_id",
        "birth_date",
        "sex",
        "registered_address",
    }
    assert who_the_person_is == POPULATION_REGISTER_FIELDS
    with pytest.raises(PermissionDenied) as refused:
        require_may_change_fields(POPULATION_REGISTER, frozenset({"sex", "email", "mobile_phone"}))
    assert refused.value.reason == "FIELD_NOT_OWNED"
    assert str(refused.value) == "not the population_register's to change: email, mobile_phone"


@pytest.mark.parametrize(
    "actor",
    [Actor.library(OSLO), Actor.borrower(CARD.value), POPULATION_REGISTER, OPERATOR, SYSTEM],
    ids=str,
)
def test_no_actor_may_change_a_field_that_is_not_updatable(actor: Actor) -> None:
    for field in ("card_number", "home_library", "address_protected", "pin"):
        with pytest.raises(PermissionDenied) as refused:
            require_may_change_fields(actor, frozenset({field}))
        assert refused.value.reason == "FIELD_NOT_OWNED"


@pytest.mark.parametrize(
    "actor",
    [Actor.library(OSLO), Actor.borrower(CARD.value), POPULATION_REGISTER, OPERATOR, SYSTEM],
    ids=str,
)
def test_a_change_that_names_no_field_is_every_actors_to_make(actor: Actor) -> None:
    require_may_change_fields(actor, frozenset())


# What a view discloses.


def test_the_basic_view_keeps_the_card_the_name_and_the_birth_date_only() -> None:
    borrower = _borrower(OSLO, BERGEN)
    basic = disclosed(borrower, BorrowerView.BASIC, TODAY)
    assert basic.card_number == CARD
    assert basic.personal == PersonalData(
        name=PersonName("Kari", "Nordmann"), birth_date=dt.date(1990, 5, 1)
    )
    assert basic.home_library == OSLO


def test_the_basic_view_holds_no_contact_data() -> None:
    personal = disclosed(_borrower(OSLO), BorrowerView.BASIC, TODAY).personal
    assert personal.email is None
    assert personal.mobile_phone is None
    assert personal.home_phone is None
    assert personal.work_phone is None
    assert personal.primary_contact_phone is None
    assert personal.registered_address is None
    assert personal.temporary_address is None
    assert personal.preferred_contact_method is None
    assert personal.preferred_language is None
    assert personal.sex is Sex.UNSPECIFIED


def test_the_basic_view_holds_no_affiliations_links_identities_or_history() -> None:
    basic = disclosed(_borrower(OSLO, BERGEN), BorrowerView.BASIC, TODAY)
    assert basic.affiliations == ()
    assert basic.links == GuardianLinks()
    assert basic.identities == ()
    assert basic.previous_card_number is None
    assert basic.last_active_on is None
    assert basic.population_register_checked_at is None


def test_the_full_view_of_an_unprotected_current_record_is_the_record() -> None:
    borrower = _borrower(OSLO, BERGEN)
    assert disclosed(borrower, BorrowerView.FULL, TODAY) is borrower


def test_the_full_view_of_a_protected_address_holds_neither_address() -> None:
    borrower = _borrower(OSLO, address_protected=True)
    full = disclosed(borrower, BorrowerView.FULL, TODAY)
    assert full.personal.registered_address is None
    assert full.personal.temporary_address is None
    # The rest of the full view stays.
    assert full.personal.email == EMAIL
    assert full.personal.mobile_phone == MOBILE
    assert full.affiliations == borrower.affiliations
    assert full.links == borrower.links
    assert full.identities == borrower.identities
    assert full.address_protected is True


CHECKED = {
    "primary_contact_phone": PhoneNumber("+4722334457"),
    "registered_address_should_be_checked": True,
    "temporary_address_should_be_checked": True,
    "email_should_be_checked": True,
}


def _checks(personal: PersonalData) -> dict[str, object]:
    return {name: getattr(personal, name) for name in CHECKED}


def test_the_full_view_shows_the_primary_contact_phone_and_every_check() -> None:
    borrower = _borrower(OSLO, personal=_personal(**CHECKED))
    full = disclosed(borrower, BorrowerView.FULL, TODAY)
    assert full is borrower
    assert _checks(full.personal) == CHECKED


def test_a_protected_address_withholds_both_address_checks_and_nothing_else() -> None:
    borrower = _borrower(OSLO, personal=_personal(**CHECKED), address_protected=True)
    full = disclosed(borrower, BorrowerView.FULL, TODAY)
    assert _checks(full.personal) == {
        "primary_contact_phone": PhoneNumber("+4722334457"),
        "registered_address_should_be_checked": False,
        "temporary_address_should_be_checked": False,
        "email_should_be_checked": True,
    }
    # Withheld in the view only: the record keeps them.
    assert _checks(borrower.personal) == CHECKED


def test_a_temporary_address_past_its_last_day_takes_its_check_along() -> None:
    expired = TemporaryAddress(HYTTA, TODAY - dt.timedelta(days=1))
    borrower = _borrower(OSLO, personal=_personal(temporary_address=expired, **CHECKED))
    full = disclosed(borrower, BorrowerView.FULL, TODAY)
    assert full.personal.temporary_address is None
    assert _checks(full.personal) == {**CHECKED, "temporary_address_should_be_checked": False}


def test_the_basic_view_holds_neither_the_primary_contact_phone_nor_any_check() -> None:
    borrower = _borrower(OSLO, personal=_personal(**CHECKED))
    basic = disclosed(borrower, BorrowerView.BASIC, TODAY)
    assert _checks(basic.personal) == {
        "primary_contact_phone": None,
        "registered_address_should_be_checked": False,
        "temporary_address_should_be_checked": False,
        "email_should_be_checked": False,
    }


def test_the_basic_view_of_a_protected_address_holds_no_address_either() -> None:
    basic = disclosed(_borrower(OSLO, address_protected=True), BorrowerView.BASIC, TODAY)
    assert basic.personal.registered_address is None
    assert basic.personal.temporary_address is None


def test_a_temporary_address_past_its_last_day_is_not_disclosed() -> None:
    last_day = TODAY - dt.timedelta(days=1)
    borrower = _borrower(
        OSLO, personal=_personal(temporary_address=TemporaryAddress(HYTTA, last_day))
    )
    full = disclosed(borrower, BorrowerView.FULL, TODAY)
    assert full.personal.temporary_address is None
    assert full.personal.registered_address == STORGATA
    assert full.personal.email == EMAIL


def test_a_temporary_address_is_disclosed_up_to_and_including_its_last_day() -> None:
    temporary = TemporaryAddress(HYTTA, TODAY)
    borrower = _borrower(OSLO, personal=_personal(temporary_address=temporary))
    assert disclosed(borrower, BorrowerView.FULL, TODAY).personal.temporary_address == temporary
    tomorrow = TODAY + dt.timedelta(days=1)
    assert disclosed(borrower, BorrowerView.FULL, tomorrow).personal.temporary_address is None


# How an update's patch applies.


def test_a_patch_replaces_the_fields_it_names() -> None:
    new_mobile = PhoneNumber("+4799887766")
    patch = PersonalDataPatch(
        fields=frozenset({"mobile_phone", "sex", "security_level", "card_expiry_date"}),
        mobile_phone=new_mobile,
        sex=Sex.MALE,
        security_level=SecurityLevel.PASSWORD,
        card_expiry_date=dt.date(2030, 1, 31),
    )
    applied = patch.apply(_personal())
    assert applied == _personal(
        mobile_phone=new_mobile,
        sex=Sex.MALE,
        security_level=SecurityLevel.PASSWORD,
        card_expiry_date=dt.date(2030, 1, 31),
    )


def test_a_named_optional_field_without_a_value_is_cleared() -> None:
    patch = PersonalDataPatch(
        fields=frozenset({"email", "temporary_address", "preferred_contact_method"})
    )
    applied = patch.apply(_personal())
    assert applied.email is None
    assert applied.temporary_address is None
    assert applied.preferred_contact_method is None
    assert applied == _personal(email=None, temporary_address=None, preferred_contact_method=None)


def test_fields_a_patch_does_not_name_keep_their_values() -> None:
    # Values for fields not named (and the defaults of sex and security level) are ignored.
    patch = PersonalDataPatch(
        fields=frozenset({"preferred_language"}),
        preferred_language=LanguageCode("nn"),
        email=EmailAddress("someone.else@example.org"),
        registered_address=HYTTA,
    )
    assert patch.apply(_personal()) == _personal(preferred_language=LanguageCode("nn"))


def test_a_patch_naming_nothing_changes_nothing() -> None:
    assert PersonalDataPatch(fields=frozenset()).apply(_personal()) == _personal()


def test_a_named_birth_date_without_a_value_is_kept_as_every_borrower_has_one() -> None:
    patch = PersonalDataPatch(fields=frozenset({"birth_date"}))
    assert patch.apply(_personal()).birth_date == dt.date(1990, 5, 1)


def test_a_patch_changes_the_name_part_by_part() -> None:
    given = PersonalDataPatch(fields=frozenset({"given_name"}), given_name="Kari Anne")
    assert given.apply(_personal()).name == PersonName("Kari Anne", "Nordmann")
    family = PersonalDataPatch(fields=frozenset({"family_name"}), family_name="Hansen")
    assert family.apply(_personal()).name == PersonName("Kari", "Hansen")
    both = PersonalDataPatch(
        fields=frozenset({"given_name", "family_name"}), given_name="Ola", family_name="Hansen"
    )
    assert both.apply(_personal()) == _personal(name=PersonName("Ola", "Hansen"))


def test_a_named_name_part_without_a_value_is_kept_as_a_name_cannot_be_empty() -> None:
    patch = PersonalDataPatch(fields=frozenset({"given_name", "family_name"}))
    assert patch.apply(_personal()).name == PersonName("Kari", "Nordmann")
