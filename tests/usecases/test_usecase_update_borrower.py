"""update_borrower on a real SQLite store: what the policy refuses changes nothing, and a change
commits with its feed entries and its audit event."""

from __future__ import annotations

import dataclasses

import pytest

from nlr_server.domain.actor import Actor
from nlr_server.domain.audit import Acting
from nlr_server.domain.borrower import PersonalDataPatch
from nlr_server.domain.contact import ContactMethod, EmailAddress, PhoneNumber
from nlr_server.domain.credentials import SecurityLevel
from nlr_server.domain.errors import (
    Aborted,
    AlreadyExists,
    EtagMismatch,
    InvalidArgument,
    PermissionDenied,
)
from nlr_server.domain.person_name import PersonName
from nlr_server.usecases.borrowers import update_borrower
from usecases.usecase_harness import (
    BERGEN,
    CERTIFICATE,
    NOW,
    OSLO,
    TROMSO,
    Audited,
    Fed,
    Store,
    personal,
)

LATER = NOW.replace(hour=13)
NEW_EMAIL = EmailAddress("kari.nordmann@example.org")


def _email(address: EmailAddress = NEW_EMAIL) -> PersonalDataPatch:
    return PersonalDataPatch(fields=frozenset({"email"}), email=address)


def test_an_update_is_fed_to_every_affiliated_library_and_audited_once(store: Store) -> None:
    kari = store.enrol("N000000201", OSLO, BERGEN)
    assert kari.borrower.id is not None
    audit_before, feed_before = store.audit_mark(), store.feed_mark()
    updated = update_borrower(
        store.unit_of_work,
        store.library(BERGEN, "UpdateBorrower"),
        kari.card_number,
        kari.borrower.etag,
        _email(),
        None,
        LATER,
    )
    assert updated.personal == personal(email=NEW_EMAIL)
    assert updated.version == kari.borrower.version + 1
    # One change: one sequence number, an entry for each affiliated library.
    assert store.fed(feed_before) == [
        Fed(feed_before + 1, OSLO.value, "updated", kari.borrower.id, None, None),
        Fed(feed_before + 1, BERGEN.value, "updated", kari.borrower.id, None, None),
    ]
    assert store.audited(audit_before) == [
        Audited(
            "UpdateBorrower",
            "OK",
            "library",
            BERGEN.value,
            BERGEN.value,
            store.vendor_id,
            CERTIFICATE,
            kari.card_number.value,
            kari.borrower.id,
            LATER,
        )
    ]
    row = store.row(kari.card_number)
    assert (row.last_changed_by_kind, row.last_changed_by, row.last_changed_at) == (
        "library",
        BERGEN.value,
        LATER,
    )
    assert (row.created_by_kind, row.created_by) == ("library", OSLO.value)
    assert row.email == NEW_EMAIL.value


def test_an_update_whose_audit_event_fails_changes_nothing(store: Store) -> None:
    kari = store.enrol("N000000214", OSLO, BERGEN)
    store.refuse_inserts("audit_events")
    before = store.contents()
    with pytest.raises(Aborted):
        update_borrower(
            store.unit_of_work,
            store.library(BERGEN, "UpdateBorrower"),
            kari.card_number,
            kari.borrower.etag,
            _email(),
            None,
            LATER,
        )
    assert store.contents() == before


def test_a_field_the_actor_does_not_own_is_refused_and_nothing_changes(store: Store) -> None:
    kari = store.enrol("N000000202")
    before = store.contents()
    own_record = Acting(Actor.borrower(kari.card_number.value), "UpdateMyRecord")
    rename = PersonalDataPatch(
        fields=frozenset({"email", "given_name"}), email=NEW_EMAIL, given_name="Kaja"
    )
    with pytest.raises(PermissionDenied) as refused:
        update_borrower(
            store.unit_of_work, own_record, kari.card_number, kari.borrower.etag, rename, None, NOW
        )
    assert refused.value.reason == "FIELD_NOT_OWNED"
    assert str(refused.value) == "not the borrower's to change: given_name"
    assert store.contents() == before


def test_the_population_register_may_not_change_contact_data(store: Store) -> None:
    kari = store.enrol("N000000203")
    before = store.contents()
    with pytest.raises(PermissionDenied) as refused:
        update_borrower(
            store.unit_of_work,
            Acting(Actor.population_register(), "population register sync"),
            kari.card_number,
            kari.borrower.etag,
            _email(),
            None,
            NOW,
        )
    assert refused.value.reason == "FIELD_NOT_OWNED"
    assert store.contents() == before


def test_the_borrower_may_change_their_own_contact_data(store: Store) -> None:
    kari = store.enrol("N000000204")
    audit_before = store.audit_mark()
    own_record = Acting(Actor.borrower(kari.card_number.value), "UpdateMyRecord")
    updated = update_borrower(
        store.unit_of_work, own_record, kari.card_number, kari.borrower.etag, _email(), None, NOW
    )
    assert updated.personal.email == NEW_EMAIL
    assert updated.last_changed_by == Actor.borrower(kari.card_number.value)
    [event] = store.audited(audit_before)
    assert (event.rpc, event.actor_kind, event.actor_id, event.library_number) == (
        "UpdateMyRecord",
        "borrower",
        kari.card_number.value,
        None,
    )


def test_another_borrower_is_refused_and_nothing_changes(store: Store) -> None:
    kari = store.enrol("N000000205")
    before = store.contents()
    someone_else = Acting(Actor.borrower("N000000299"), "UpdateMyRecord")
    with pytest.raises(PermissionDenied) as refused:
        update_borrower(
            store.unit_of_work,
            someone_else,
            kari.card_number,
            kari.borrower.etag,
            _email(),
            None,
            NOW,
        )
    assert refused.value.reason == "NOT_OWN_RECORD"
    assert store.contents() == before


def test_a_library_not_affiliated_is_refused_and_nothing_changes(store: Store) -> None:
    kari = store.enrol("N000000206", OSLO, BERGEN)
    before = store.contents()
    with pytest.raises(PermissionDenied) as refused:
        update_borrower(
            store.unit_of_work,
            store.library(TROMSO, "UpdateBorrower"),
            kari.card_number,
            kari.borrower.etag,
            _email(),
            None,
            NOW,
        )
    assert refused.value.reason == "NOT_AFFILIATED"
    assert store.contents() == before


def test_an_update_from_an_old_read_is_refused_and_nothing_changes(store: Store) -> None:
    kari = store.enrol("N000000207")
    first = update_borrower(
        store.unit_of_work,
        store.library(OSLO, "UpdateBorrower"),
        kari.card_number,
        kari.borrower.etag,
        _email(),
        None,
        NOW,
    )
    assert first.etag != kari.borrower.etag
    before = store.contents()
    mobile = PhoneNumber("+4799887766")
    with pytest.raises(EtagMismatch):
        update_borrower(
            store.unit_of_work,
            store.library(OSLO, "UpdateBorrower"),
            kari.card_number,
            kari.borrower.etag,
            PersonalDataPatch(fields=frozenset({"mobile_phone"}), mobile_phone=mobile),
            None,
            LATER,
        )
    assert store.contents() == before


def _security_level(level: SecurityLevel) -> PersonalDataPatch:
    return PersonalDataPatch(fields=frozenset({"security_level"}), security_level=level)


def test_a_library_may_raise_the_security_level_but_not_lower_it(store: Store) -> None:
    kari = store.enrol("N000000208")
    oslo = store.library(OSLO, "UpdateBorrower")
    raised = update_borrower(
        store.unit_of_work,
        oslo,
        kari.card_number,
        kari.borrower.etag,
        _security_level(SecurityLevel.PASSWORD),
        None,
        NOW,
    )
    assert raised.personal.security_level is SecurityLevel.PASSWORD
    before = store.contents()
    with pytest.raises(PermissionDenied) as refused:
        update_borrower(
            store.unit_of_work,
            oslo,
            kari.card_number,
            raised.etag,
            _security_level(SecurityLevel.PIN),
            None,
            LATER,
        )
    assert refused.value.reason == "SECURITY_LEVEL_LOWERING"
    assert store.contents() == before
    assert store.row(kari.card_number).security_level == "password"


def test_the_borrower_may_lower_their_own_security_level(store: Store) -> None:
    kari = store.enrol("N000000209", security_level=SecurityLevel.PASSWORD)
    own_record = Acting(Actor.borrower(kari.card_number.value), "SetMySecurityLevel")
    lowered = update_borrower(
        store.unit_of_work,
        own_record,
        kari.card_number,
        kari.borrower.etag,
        _security_level(SecurityLevel.PIN),
        None,
        NOW,
    )
    assert lowered.personal.security_level is SecurityLevel.PIN
    assert store.row(kari.card_number).security_level == "pin"


def test_a_national_id_another_borrower_has_is_refused_and_nothing_changes(store: Store) -> None:
    kari = store.enrol("N000000210")
    ola = store.enrol("N000000211", name=PersonName("Ola", "Hansen"))
    before = store.contents()
    with pytest.raises(AlreadyExists) as refused:
        update_borrower(
            store.unit_of_work,
            store.library(OSLO, "UpdateBorrower"),
            kari.card_number,
            kari.borrower.etag,
            PersonalDataPatch(fields=frozenset({"national_id"})),
            ola.national_id,
            NOW,
        )
    assert refused.value.reason == "NATIONAL_ID_IN_USE"
    assert store.contents() == before


def test_contact_preferences_left_without_their_contact_data_are_refused(store: Store) -> None:
    kari = store.enrol("N000000212", preferred_contact_method=ContactMethod.EMAIL)
    before = store.contents()
    with pytest.raises(InvalidArgument) as refused:
        update_borrower(
            store.unit_of_work,
            store.library(OSLO, "UpdateBorrower"),
            kari.card_number,
            kari.borrower.etag,
            PersonalDataPatch(fields=frozenset({"email"})),
            None,
            NOW,
        )
    assert [(v.field, v.description) for v in refused.value.violations] == [
        ("borrower.preferred_contact_method", "EMAIL needs an email address")
    ]
    assert store.contents() == before


def test_an_update_naming_only_some_fields_keeps_the_others(store: Store) -> None:
    kari = store.enrol("N000000213")
    patch = PersonalDataPatch(
        fields=frozenset({"mobile_phone", "family_name"}), family_name="Hansen"
    )
    updated = update_borrower(
        store.unit_of_work,
        store.library(OSLO, "UpdateBorrower"),
        kari.card_number,
        kari.borrower.etag,
        patch,
        None,
        NOW,
    )
    expected = dataclasses.replace(personal(), name=PersonName("Kari", "Hansen"), mobile_phone=None)
    assert updated.personal == expected
    assert store.borrower(kari.card_number) == updated
