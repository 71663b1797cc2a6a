"""The rest of the record end to end: temporary address, contact preferences, the primary
contact's phone, the "should be checked" flags, language, card expiry, consent time and the
population-register check, on create, update and in each view."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import text

from admin_runner import Admin, admin_environment
from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.store.database import create_store_engine
from register_harness import (
    BERGEN,
    Registry,
    ServerThread,
    count_rows,
    create,
    error_details,
    get,
    new_borrower,
)

TODAY = dt.datetime.now(dt.UTC).date()
NEXT_YEAR = (TODAY + dt.timedelta(days=365)).isoformat()
CONSENT = dt.datetime(2025, 3, 14, 9, 26, 53, tzinfo=dt.UTC)


def consent_time(moment: dt.datetime = CONSENT) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def temporary_address(
    valid_until: str = NEXT_YEAR, **address: Any
) -> borrower_pb2.TemporaryAddress:
    fields: dict[str, Any] = {
        "lines": ["Studentbyen 4"],
        "postal_code": "7030",
        "city": "Trondheim",
    }
    fields.update(address)
    return borrower_pb2.TemporaryAddress(
        address=borrower_pb2.Address(**fields), valid_until=valid_until
    )


def _admin(server: ServerThread, keyring_path: Path) -> Admin:
    """`nlr-admin` on the server's database, as its operator."""
    return Admin(
        admin_environment(
            NLR_DATABASE_URL=server.config.database_url, NLR_KEYRING=str(keyring_path)
        )
    )


def detailed_borrower(card_number: str, **fields: object) -> borrower_pb2.Borrower:
    values: dict[str, object] = dict(
        home_phone="22 33 44 55",
        temporary_address=temporary_address(),
        primary_phone=borrower_pb2.PHONE_KIND_HOME,
        email_should_be_checked=True,
        preferred_contact_method=borrower_pb2.CONTACT_METHOD_SMS,
        preferred_language="NN",
        card_expiry_date=NEXT_YEAR,
        consent_time=consent_time(),
        primary_contact_phone="22 33 44 57",
        registered_address_should_be_checked=True,
        temporary_address_should_be_checked=True,
    )
    values.update(fields)
    return new_borrower(card_number, **values)


def update(
    registry: Registry, borrower: borrower_pb2.Borrower, *paths: str
) -> borrower_pb2.Borrower:
    return registry.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(borrower=borrower, update_mask=FieldMask(paths=list(paths))),
        metadata=registry.metadata,
    ).borrower


def execute(server: ServerThread, statement: str, **parameters: object) -> None:
    engine = create_store_engine(server.config.database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text(statement), parameters)
    finally:
        engine.dispose()


def test_every_detail_is_stored_and_in_the_full_view(registry: Registry) -> None:
    created = create(registry, detailed_borrower("N000007001"))

    for borrower in (created, get(registry, card_number="N000007001")):
        assert borrower.temporary_address == temporary_address(country_code="NO"), (
            "the country code defaults to NO"
        )
        assert borrower.primary_phone == borrower_pb2.PHONE_KIND_HOME
        assert borrower.home_phone == "+4722334455"
        assert borrower.email_should_be_checked
        assert borrower.primary_contact_phone == "+4722334457"
        assert borrower.registered_address_should_be_checked is True
        assert borrower.temporary_address_should_be_checked is True
        assert borrower.preferred_contact_method == borrower_pb2.CONTACT_METHOD_SMS
        assert borrower.preferred_language == "nn"
        assert borrower.card_expiry_date == NEXT_YEAR
        assert borrower.card_valid
        assert borrower.consent_time.ToDatetime(tzinfo=dt.UTC) == CONSENT
        assert not borrower.HasField("population_register_check_time")


def test_the_basic_view_carries_no_details(registry: Registry) -> None:
    create(registry, detailed_borrower("N000007002"))

    basic = get(registry.as_library(BERGEN), card_number="N000007002")

    assert basic.view == borrower_pb2.BORROWER_VIEW_BASIC
    assert basic.card_valid
    assert basic == borrower_pb2.Borrower(
        card_number="N000007002",
        given_name="Kari",
        family_name="Nordmann",
        birth_year=basic.birth_year,
        card_valid=True,
        view=borrower_pb2.BORROWER_VIEW_BASIC,
    )


def test_three_letter_code_of_a_language_with_a_two_letter_one_is_shortened(
    registry: Registry,
) -> None:
    created = create(registry, new_borrower("N000007003", preferred_language="nob"))
    lule_sami = create(registry, new_borrower("N000007004", preferred_language="smj"))

    assert created.preferred_language == "nb"
    assert lule_sami.preferred_language == "smj"


def test_each_detail_can_be_changed_and_cleared(registry: Registry) -> None:
    created = create(registry, detailed_borrower("N000007005"))
    new_consent = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

    changed = update(
        registry,
        borrower_pb2.Borrower(
            card_number="N000007005",
            etag=created.etag,
            temporary_address=temporary_address(city="Bodø", postal_code="8006"),
            primary_phone=borrower_pb2.PHONE_KIND_MOBILE,
            email_should_be_checked=False,
            preferred_contact_method=borrower_pb2.CONTACT_METHOD_EMAIL,
            preferred_language="se",
            card_expiry_date="2031-12-31",
            consent_time=consent_time(new_consent),
        ),
        "temporary_address",
        "primary_phone",
        "email_should_be_checked",
        "preferred_contact_method",
        "preferred_language",
        "card_expiry_date",
        "consent_time",
    )

    assert changed.temporary_address.address.city == "Bodø"
    assert changed.primary_phone == borrower_pb2.PHONE_KIND_MOBILE
    assert not changed.email_should_be_checked
    assert changed.preferred_contact_method == borrower_pb2.CONTACT_METHOD_EMAIL
    assert changed.preferred_language == "se"
    assert changed.card_expiry_date == "2031-12-31"
    assert changed.consent_time.ToDatetime(tzinfo=dt.UTC) == new_consent
    assert get(registry, card_number="N000007005") == changed

    cleared = update(
        registry,
        borrower_pb2.Borrower(card_number="N000007005", etag=changed.etag),
        "temporary_address",
        "primary_phone",
        "preferred_contact_method",
        "preferred_language",
        "card_expiry_date",
        "consent_time",
    )

    assert not cleared.HasField("temporary_address")
    assert cleared.primary_phone == borrower_pb2.PHONE_KIND_UNSPECIFIED
    assert cleared.preferred_contact_method == borrower_pb2.CONTACT_METHOD_UNSPECIFIED
    assert cleared.preferred_language == ""
    assert cleared.card_expiry_date == ""
    assert not cleared.HasField("consent_time")
    assert cleared.home_phone == "+4722334455", "fields outside the mask stay"


# The fields of the legacy register's last columns: each one's value as sent, as served, and
# as served once cleared.
CONTACT_AND_CHECKS: dict[str, tuple[object, object, object]] = {
    "primary_contact_phone": ("22 33 44 57", "+4722334457", ""),
    "registered_address_should_be_checked": (True, True, False),
    "temporary_address_should_be_checked": (True, True, False),
}


def served(borrower: borrower_pb2.Borrower) -> dict[str, object]:
    return {name: getattr(borrower, name) for name in CONTACT_AND_CHECKS}


def unversioned(borrower: borrower_pb2.Borrower) -> borrower_pb2.Borrower:
    """The borrower without what every change moves on: the etag and the update time."""
    copy = borrower_pb2.Borrower()
    copy.CopyFrom(borrower)
    copy.ClearField("etag")
    copy.ClearField("update_time")
    return copy


def test_the_primary_contact_phone_and_both_address_checks_are_stored_and_in_the_full_view(
    registry: Registry,
) -> None:
    created = create(
        registry,
        new_borrower(
            "N000007015",
            work_phone="22 33 44 56",
            primary_phone=borrower_pb2.PHONE_KIND_WORK,
            temporary_address=temporary_address(),
            primary_contact_phone="+47 22 33 44 57",
            registered_address_should_be_checked=True,
            temporary_address_should_be_checked=True,
        ),
    )
    plain = create(registry, new_borrower("N000007016", temporary_address=temporary_address()))
    # Each flag alone: neither is the other's.
    registered_only = create(
        registry,
        new_borrower(
            "N000007021",
            temporary_address=temporary_address(),
            registered_address_should_be_checked=True,
        ),
    )
    temporary_only = create(
        registry,
        new_borrower(
            "N000007022",
            temporary_address=temporary_address(),
            temporary_address_should_be_checked=True,
        ),
    )

    for borrower in (created, get(registry, card_number="N000007015")):
        assert borrower.view == borrower_pb2.BORROWER_VIEW_FULL
        assert served(borrower) == {
            "primary_contact_phone": "+4722334457",
            "registered_address_should_be_checked": True,
            "temporary_address_should_be_checked": True,
        }
        # The fourth phone is its own field: the three others and the choice among them stay.
        assert (borrower.mobile_phone, borrower.home_phone, borrower.work_phone) == (
            "+4791234567",
            "",
            "+4722334456",
        )
        assert borrower.primary_phone == borrower_pb2.PHONE_KIND_WORK
        assert borrower.email_should_be_checked is False
    for borrower in (plain, get(registry, card_number="N000007016")):
        assert served(borrower) == {
            "primary_contact_phone": "",
            "registered_address_should_be_checked": False,
            "temporary_address_should_be_checked": False,
        }
    for borrower in (registered_only, get(registry, card_number="N000007021")):
        assert served(borrower) == {
            "primary_contact_phone": "",
            "registered_address_should_be_checked": True,
            "temporary_address_should_be_checked": False,
        }
    for borrower in (temporary_only, get(registry, card_number="N000007022")):
        assert served(borrower) == {
            "primary_contact_phone": "",
            "registered_address_should_be_checked": False,
            "temporary_address_should_be_checked": True,
        }


@pytest.mark.parametrize("path", list(CONTACT_AND_CHECKS))
def test_update_sets_and_clears_each_of_them_alone(registry: Registry, path: str) -> None:
    created = create(registry, new_borrower("N000007017", temporary_address=temporary_address()))
    sent, shown, cleared_value = CONTACT_AND_CHECKS[path]

    changed = update(
        registry,
        borrower_pb2.Borrower(card_number="N000007017", etag=created.etag, **{path: sent}),  # type: ignore[arg-type]
        path,
    )

    expected = unversioned(created)
    setattr(expected, path, shown)
    assert unversioned(changed) == expected, f"only {path} changes"
    assert changed.etag != created.etag
    assert get(registry, card_number="N000007017") == changed

    # Every one of them set, then the one path cleared: the other two stay.
    every = update(
        registry,
        borrower_pb2.Borrower(
            card_number="N000007017",
            etag=changed.etag,
            **{name: values[0] for name, values in CONTACT_AND_CHECKS.items()},  # type: ignore[arg-type]
        ),
        *CONTACT_AND_CHECKS,
    )
    assert served(every) == {name: values[1] for name, values in CONTACT_AND_CHECKS.items()}

    cleared = update(
        registry, borrower_pb2.Borrower(card_number="N000007017", etag=every.etag), path
    )

    expected = unversioned(every)
    setattr(expected, path, cleared_value)
    assert unversioned(cleared) == expected, f"only {path} is cleared"
    assert getattr(cleared, path) == cleared_value
    assert get(registry, card_number="N000007017") == cleared


def test_a_bad_primary_contact_phone_refuses_the_whole_update(registry: Registry) -> None:
    created = create(registry, detailed_borrower("N000007018"))

    with pytest.raises(grpc.RpcError) as raised:
        update(
            registry,
            borrower_pb2.Borrower(
                card_number="N000007018",
                etag=created.etag,
                primary_contact_phone="not a phone",
                registered_address_should_be_checked=False,
                work_phone="22 33 44 56",
            ),
            "primary_contact_phone",
            "registered_address_should_be_checked",
            "work_phone",
        )

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(error_details(raised.value)[1]) == {"borrower.primary_contact_phone"}
    unchanged = get(registry, card_number="N000007018")
    assert unchanged == created
    assert (unchanged.primary_contact_phone, unchanged.work_phone) == ("+4722334457", "")
    assert unchanged.registered_address_should_be_checked is True


def test_a_library_not_affiliated_sees_none_of_them(registry: Registry) -> None:
    create(registry, detailed_borrower("N000007019"))
    full = get(registry, card_number="N000007019")
    assert served(full) == {name: values[1] for name, values in CONTACT_AND_CHECKS.items()}

    basic = get(registry.as_library(BERGEN), card_number="N000007019")

    assert basic.view == borrower_pb2.BORROWER_VIEW_BASIC
    assert served(basic) == {
        "primary_contact_phone": "",
        "registered_address_should_be_checked": False,
        "temporary_address_should_be_checked": False,
    }
    assert {f.name for f, _ in basic.ListFields()} == {
        "card_number",
        "given_name",
        "family_name",
        "birth_year",
        "card_valid",
        "view",
    }


def test_a_protected_address_withholds_both_address_checks(
    registry: Registry, server: ServerThread, keyring_path: Path
) -> None:
    created = create(registry, detailed_borrower("N000007020"))
    assert (
        created.registered_address_should_be_checked,
        created.temporary_address_should_be_checked,
    ) == (True, True)
    admin = _admin(server, keyring_path)

    admin("borrowers", "protect-address", "N000007020")

    protected = get(registry, card_number="N000007020")
    assert protected.address_protected
    assert protected.view == borrower_pb2.BORROWER_VIEW_FULL
    assert served(protected) == {
        "primary_contact_phone": "+4722334457",
        "registered_address_should_be_checked": False,
        "temporary_address_should_be_checked": False,
    }
    assert protected.email_should_be_checked is True, "only the address flags are withheld"
    # An update of something else answers with the same view.
    changed = update(
        registry,
        borrower_pb2.Borrower(
            card_number="N000007020", etag=protected.etag, preferred_language="se"
        ),
        "preferred_language",
    )
    assert served(changed) == served(protected)

    admin("borrowers", "unprotect-address", "N000007020")

    # Withheld, not lost: the flags are served again with the addresses.
    again = get(registry, card_number="N000007020")
    assert not again.address_protected
    assert served(again) == {name: values[1] for name, values in CONTACT_AND_CHECKS.items()}


BAD_DETAILS: list[tuple[dict[str, object], set[str]]] = [
    (
        {"temporary_address": temporary_address(valid_until="2020-01-01")},
        {"borrower.temporary_address.valid_until"},
    ),
    (
        {"temporary_address": temporary_address(valid_until="")},
        {"borrower.temporary_address.valid_until"},
    ),
    (
        {"temporary_address": temporary_address(valid_until="2030-02-30")},
        {"borrower.temporary_address.valid_until"},
    ),
    (
        {"temporary_address": temporary_address(valid_until="2199-01-01")},
        {"borrower.temporary_address.valid_until"},
    ),
    (
        {"temporary_address": temporary_address(postal_code="70")},
        {"borrower.temporary_address.address.postal_code"},
    ),
    (
        {"temporary_address": borrower_pb2.TemporaryAddress(valid_until=NEXT_YEAR)},
        {"borrower.temporary_address.address"},
    ),
    ({"primary_contact_phone": "abc"}, {"borrower.primary_contact_phone"}),
    ({"primary_contact_phone": "+47 1"}, {"borrower.primary_contact_phone"}),
    (
        {"primary_contact_phone": "12", "work_phone": "x"},
        {"borrower.primary_contact_phone", "borrower.work_phone"},
    ),
    ({"primary_phone": 9}, {"borrower.primary_phone"}),
    ({"primary_phone": borrower_pb2.PHONE_KIND_WORK}, {"borrower.primary_phone"}),
    ({"preferred_contact_method": 7}, {"borrower.preferred_contact_method"}),
    (
        {"preferred_contact_method": borrower_pb2.CONTACT_METHOD_EMAIL, "email": ""},
        {"borrower.preferred_contact_method"},
    ),
    (
        {"preferred_contact_method": borrower_pb2.CONTACT_METHOD_SMS, "mobile_phone": ""},
        {"borrower.preferred_contact_method"},
    ),
    ({"preferred_language": "xx"}, {"borrower.preferred_language"}),
    ({"preferred_language": "norsk"}, {"borrower.preferred_language"}),
    ({"card_expiry_date": "31.12.2030"}, {"borrower.card_expiry_date"}),
    ({"card_expiry_date": "1899-12-31"}, {"borrower.card_expiry_date"}),
    (
        {"consent_time": consent_time(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))},
        {"borrower.consent_time"},
    ),
    (
        {"preferred_language": "xx", "card_expiry_date": "soon", "primary_phone": 9},
        {"borrower.preferred_language", "borrower.card_expiry_date", "borrower.primary_phone"},
    ),
]


@pytest.mark.parametrize(("fields", "violations"), BAD_DETAILS)
def test_bad_details_on_create_are_named_and_nothing_is_written(
    registry: Registry, server: ServerThread, fields: dict[str, object], violations: set[str]
) -> None:
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        create(registry, new_borrower("N000007006", **fields))

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(error_details(raised.value)[1]) == violations
    assert count_rows(server.config.database_url) == before


@pytest.mark.parametrize(("fields", "violations"), BAD_DETAILS)
def test_bad_details_on_update_are_named_and_change_nothing(
    registry: Registry, fields: dict[str, object], violations: set[str]
) -> None:
    created = create(registry, new_borrower("N000007007"))

    with pytest.raises(grpc.RpcError) as raised:
        update(
            registry,
            borrower_pb2.Borrower(card_number="N000007007", etag=created.etag, **fields),  # type: ignore[arg-type]
            *fields,
        )

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(error_details(raised.value)[1]) == violations
    assert get(registry, card_number="N000007007") == created


def test_clearing_the_phone_the_preferences_point_at_is_refused(registry: Registry) -> None:
    created = create(registry, detailed_borrower("N000007008"))

    with pytest.raises(grpc.RpcError) as raised:
        update(
            registry,
            borrower_pb2.Borrower(card_number="N000007008", etag=created.etag),
            "home_phone",
            "mobile_phone",
        )

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(error_details(raised.value)[1]) == {
        "borrower.primary_phone",
        "borrower.preferred_contact_method",
    }
    assert get(registry, card_number="N000007008") == created


def test_an_expired_temporary_address_is_no_longer_served(
    registry: Registry, server: ServerThread
) -> None:
    create(registry, detailed_borrower("N000007009"))
    control = get(registry, card_number="N000007009")
    assert control.HasField("temporary_address")
    assert control.temporary_address_should_be_checked is True

    yesterday = TODAY - dt.timedelta(days=1)
    execute(
        server,
        "UPDATE borrowers SET temporary_address_valid_until = :day WHERE card_number = :card",
        day=yesterday,
        card="N000007009",
    )

    expired = get(registry, card_number="N000007009")
    assert not expired.HasField("temporary_address")
    assert expired.temporary_address_should_be_checked is False, "withheld with its address"
    assert expired.registered_address_should_be_checked is True


def test_card_past_its_expiry_date_is_not_valid_in_any_view(registry: Registry) -> None:
    created = create(registry, new_borrower("N000007010", card_expiry_date=NEXT_YEAR))
    assert created.card_valid  # control
    yesterday = (TODAY - dt.timedelta(days=1)).isoformat()

    expired = update(
        registry,
        borrower_pb2.Borrower(
            card_number="N000007010", etag=created.etag, card_expiry_date=yesterday
        ),
        "card_expiry_date",
    )

    assert not expired.card_valid
    assert not get(registry.as_library(BERGEN), card_number="N000007010").card_valid
    assert get(registry, card_number="N000007010").card_expiry_date == yesterday


def test_a_protected_address_hides_the_temporary_address_too(
    registry: Registry, server: ServerThread, keyring_path: Path
) -> None:
    create(registry, detailed_borrower("N000007011"))
    admin = _admin(server, keyring_path)

    admin("borrowers", "protect-address", "N000007011")

    full = get(registry, card_number="N000007011")
    assert full.address_protected
    assert not full.HasField("temporary_address")
    assert not full.HasField("registered_address")


def test_population_register_check_time_is_output_only(
    registry: Registry, server: ServerThread
) -> None:
    checked = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
    created = create(
        registry,
        new_borrower("N000007012", population_register_check_time=consent_time(checked)),
    )
    assert not created.HasField("population_register_check_time")

    execute(
        server,
        "UPDATE borrowers SET population_register_checked_at = :at WHERE card_number = :card",
        at=checked,
        card="N000007012",
    )

    shown = get(registry, card_number="N000007012").population_register_check_time
    assert shown.ToDatetime(tzinfo=dt.UTC) == checked


def test_maintenance_clears_temporary_addresses_past_their_last_day(
    registry: Registry, server: ServerThread, keyring_path: Path
) -> None:
    create(registry, detailed_borrower("N000007013"))
    create(registry, detailed_borrower("N000007014"))
    execute(
        server,
        "UPDATE borrowers SET temporary_address_valid_until = :day WHERE card_number = :card",
        day=TODAY - dt.timedelta(days=1),
        card="N000007013",
    )
    admin = _admin(server, keyring_path)

    report = admin.json("maintenance")

    assert report["temporary_addresses_cleared"] == 1
    assert get(registry, card_number="N000007014").temporary_address.valid_until == NEXT_YEAR
    engine = create_store_engine(server.config.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT card_number, temporary_city, temporary_address_line1,"
                    " temporary_address_should_be_checked, registered_address_should_be_checked"
                    " FROM borrowers ORDER BY card_number"
                )
            ).all()
    finally:
        engine.dispose()
    assert [(row[0], row[1], row[2], bool(row[3]), bool(row[4])) for row in rows] == [
        ("N000007013", None, None, False, True),
        ("N000007014", "Trondheim", "Studentbyen 4", True, True),
    ]
