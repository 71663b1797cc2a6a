"""The population register followed: Folkeregisteret's events for the register's borrowers
change their name, sex and registered address, through `nlr-admin population sync`, against a
local fake of Folkeregisteret and Maskinporten; then libraries may no longer change them."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf.field_mask_pb2 import FieldMask

from admin_runner import Admin, admin_environment
from feed_harness import read_feed
from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.api.server import StartupError
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.database import create_store_engine
from population_fake import CLIENT_ID, KEY_ID, PopulationRegisterFake, write_client_key
from register_harness import (
    Registry,
    ServerThread,
    create,
    error_details,
    get,
    make_config,
    national_id,
    new_borrower,
    sqlite_bytes,
)

CARD = "N000009001"
OTHER = "N000009002"


@pytest.fixture(scope="module")
def client_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def fake(client_key: rsa.RSAPrivateKey) -> Iterator[PopulationRegisterFake]:
    with PopulationRegisterFake({KEY_ID: client_key.public_key()}) as running:
        yield running


@pytest.fixture
def key_file(tmp_path: Path, client_key: rsa.RSAPrivateKey) -> Path:
    return write_client_key(tmp_path / "maskinporten.pem", client_key)


def _settings(fake: PopulationRegisterFake, key_file: Path) -> dict[str, str]:
    """The NLR_FREG_* and NLR_MASKINPORTEN_* settings for the fake."""
    return {
        "NLR_FREG_URL": fake.url,
        "NLR_MASKINPORTEN_URL": fake.state.issuer,
        "NLR_MASKINPORTEN_CLIENT_ID": CLIENT_ID,
        "NLR_MASKINPORTEN_KEY": str(key_file),
        "NLR_MASKINPORTEN_KID": KEY_ID,
    }


def _follower(
    fake: PopulationRegisterFake,
    key_file: Path,
    pki: DevPkiPaths,
    keyring_path: Path,
    database_url: str,
) -> ServerThread:
    """A register server on ``database_url`` that follows the fake every 50 ms."""
    settings = {
        name.removeprefix("NLR_").lower(): value
        for name, value in _settings(fake, key_file).items()
    }
    config = make_config(pki, keyring_path, database_url, freg_poll_seconds=0.05, **settings)
    return ServerThread(config).start()


@pytest.fixture
def admin(
    fake: PopulationRegisterFake, server: ServerThread, keyring_path: Path, key_file: Path
) -> Admin:
    return Admin(
        admin_environment(
            NLR_DATABASE_URL=server.config.database_url,
            NLR_KEYRING=str(keyring_path),
            **_settings(fake, key_file),
        )
    )


def _entry(**fields: Any) -> dict[str, Any]:
    return {"erGjeldende": True, "kilde": "KILDE_DSF", **fields}


def _person(number: str) -> dict[str, Any]:
    return {
        "identifikasjonsnummer": [_entry(foedselsEllerDNummer=number)],
        "navn": [_entry(fornavn="Kari", mellomnavn="Marie", etternavn="Berg")],
        "kjoenn": [_entry(kjoenn="kvinne")],
        "bostedsadresse": [
            _entry(
                vegadresse={
                    "adressenavn": "Fjordgata",
                    "adressenummer": {"husnummer": "7"},
                    "poststed": {"poststedsnavn": "TRONDHEIM", "postnummer": "7010"},
                }
            )
        ],
        "status": [_entry(status="bosatt")],
    }


def test_the_events_of_the_registers_borrowers_change_them_once_and_then_they_are_its_own(
    fake: PopulationRegisterFake, admin: Admin, registry: Registry
) -> None:
    number = national_id()
    created = create(registry, new_borrower(CARD, national_id=number))
    untouched = create(registry, new_borrower(OTHER))
    _, cursor = read_feed(registry)
    fake.state.persons[number] = _person(number)
    fake.state.page_size = 2
    fake.state.add_event(number, "endringINavn")
    fake.state.add_event("01017099999", "endringINavn")  # not a borrower of the register
    fake.state.add_event(number, "endringIBostedsadresse")

    summary = admin.json("population", "sync", "--once")

    # Both events of the borrower applied (one per page of two); the second changed nothing.
    assert summary == {"read": 3, "applied": 2, "deleted_deceased": 0, "next_sequence": 4}
    borrower = get(registry, card_number=CARD)
    assert (borrower.given_name, borrower.family_name) == ("Kari Marie", "Berg")
    assert borrower.sex == borrower_pb2.SEX_FEMALE
    address = borrower.registered_address
    assert (list(address.lines), address.postal_code, address.city) == (
        ["Fjordgata 7"],
        "7010",
        "TRONDHEIM",
    )
    assert borrower.last_changed_by_kind == borrower_pb2.ACTOR_KIND_POPULATION_REGISTER
    assert borrower.last_changed_by == ""
    assert borrower.HasField("population_register_check_time")
    assert borrower.population_register_status == "bosatt"
    assert borrower.email == created.email  # what is not the population register's stays
    assert get(registry, card_number=OTHER) == untouched
    # Only the register's own borrower was looked up, in bulk, once a page.
    looked_up = [path.split("?")[0] for _, path, _ in fake.state.requests if "personer" in path]
    assert [path.rpartition("/")[2] for path in looked_up] == ["bulkoppslag", "bulkoppslag"]
    # The library following the feed learns of it, once.
    changes, _ = read_feed(registry, cursor)
    assert [(c.kind, c.borrower.card_number, c.borrower.family_name) for c in changes] == [
        (pb.CHANGE_KIND_UPDATED, CARD, "Berg")
    ]

    # Run again: nothing new to read (the next page is empty, then unchanged: 304).
    assert admin.json("population", "sync", "--once")["read"] == 0
    assert admin.json("population", "sync", "--once")["read"] == 0
    assert fake.state.requests[-1][2].get("If-None-Match")
    assert get(registry, card_number=CARD).etag == borrower.etag
    status = admin.json("population", "status")
    assert (status["next_sequence"], status["events_read"], status["events_applied"]) == (4, 3, 2)
    assert status["lease_owner"] is None and status["last_error"] is None
    assert (status["lag"], status["reviews_open"], status["deaths_pending"]) == (0, 0, 0)
    fake.state.add_event(number, "endringIKjoenn")
    assert admin.json("population", "status")["lag"] == 1


def test_a_library_may_not_change_what_the_population_register_keeps_true(
    fake: PopulationRegisterFake, admin: Admin, registry: Registry
) -> None:
    number = national_id()
    create(registry, new_borrower(CARD, national_id=number))
    fake.state.persons[number] = _person(number)
    fake.state.add_event(number, "personErOppdatert")
    admin("population", "sync", "--once")
    found = get(registry, card_number=CARD)

    for path, value in (
        ("family_name", {"family_name": "Hansen"}),
        ("given_name", {"given_name": "Ola"}),
        ("sex", {"sex": borrower_pb2.SEX_MALE}),
        (
            "registered_address",
            {
                "registered_address": borrower_pb2.Address(
                    lines=["Annen gate 1"], postal_code="0155", city="Oslo"
                )
            },
        ),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            registry.stub.UpdateBorrower(
                pb.UpdateBorrowerRequest(
                    borrower=borrower_pb2.Borrower(card_number=CARD, etag=found.etag, **value),
                    update_mask=FieldMask(paths=[path, "email"]),
                ),
                metadata=registry.metadata,
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        reason, _ = error_details(refused.value)
        assert reason == "OWNED_BY_POPULATION_REGISTER"
        assert path in (refused.value.details() or "")
    assert get(registry, card_number=CARD) == found

    changed = registry.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(
                card_number=CARD, etag=found.etag, email="ny@example.no"
            ),
            update_mask=FieldMask(paths=["email"]),
        ),
        metadata=registry.metadata,
    ).borrower
    assert changed.email == "ny@example.no"
    # A borrower the population register has not found stays the libraries' to correct.
    create(registry, new_borrower(OTHER))
    other = get(registry, card_number=OTHER)
    renamed = registry.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(card_number=OTHER, etag=other.etag, family_name="Lie"),
            update_mask=FieldMask(paths=["family_name"]),
        ),
        metadata=registry.metadata,
    ).borrower
    assert renamed.family_name == "Lie"


def test_without_its_settings_the_sync_says_what_is_missing(
    server: ServerThread, keyring_path: Path
) -> None:
    admin = Admin(
        admin_environment(
            NLR_DATABASE_URL=server.config.database_url,
            NLR_KEYRING=str(keyring_path),
            NLR_FREG_URL="http://127.0.0.1:9",
        )
    )

    message = admin.error("population", "sync", "--once", expect=2)

    assert "NLR_MASKINPORTEN_URL" in message and "needed with NLR_FREG_URL" in message


def test_two_servers_follow_the_population_register_and_apply_each_event_once(
    fake: PopulationRegisterFake,
    admin: Admin,
    registry: Registry,
    prepared_database: str,
    pki: DevPkiPaths,
    keyring_path: Path,
    key_file: Path,
) -> None:
    numbers = [national_id() for _ in range(3)]
    for index, number in enumerate(numbers):
        create(registry, new_borrower(f"N00000910{index}", national_id=number))
        fake.state.persons[number] = _person(number)
    _, cursor = read_feed(registry)
    fake.state.page_size = 2
    for number in [*numbers, *numbers]:
        fake.state.add_event(number, "endringINavn")
    followers = [_follower(fake, key_file, pki, keyring_path, prepared_database) for _ in range(2)]
    try:
        deadline = time.monotonic() + 20
        while admin.json("population", "status")["events_read"] < 6:
            assert time.monotonic() < deadline, "the servers did not read the feed"
            time.sleep(0.05)
        time.sleep(0.3)  # long enough for a second reading, were there one
    finally:
        for follower in followers:
            follower.stop()

    status = admin.json("population", "status")
    assert (status["next_sequence"], status["events_read"], status["events_applied"]) == (7, 6, 6)
    changes, _ = read_feed(registry, cursor)
    assert sorted(c.borrower.card_number for c in changes) == [
        f"N00000910{index}" for index in range(3)
    ]
    assert {c.borrower.family_name for c in changes} == {"Berg"}


def test_a_server_told_to_follow_without_the_means_to_does_not_start(
    prepared_database: str, pki: DevPkiPaths, keyring_path: Path, key_file: Path
) -> None:
    incomplete = make_config(pki, keyring_path, prepared_database, freg_url="http://127.0.0.1:9")
    with pytest.raises(StartupError, match=r"NLR_MASKINPORTEN_URL, .* not set"):
        ServerThread(incomplete).start()

    key_file.chmod(0o644)
    readable = make_config(
        pki,
        keyring_path,
        prepared_database,
        freg_url="http://127.0.0.1:9",
        maskinporten_url="http://127.0.0.1:9/",
        maskinporten_client_id=CLIENT_ID,
        maskinporten_key=str(key_file),
        maskinporten_kid=KEY_ID,
    )
    with pytest.raises(StartupError, match="accessible to group or others"):
        ServerThread(readable).start()


def _protected(person: dict[str, Any], level: str) -> dict[str, Any]:
    return {**person, "adressebeskyttelse": [_entry(graderingsnivaa=level)]}


def test_a_confidential_address_is_never_served_until_the_population_register_lifts_it(
    fake: PopulationRegisterFake, admin: Admin, registry: Registry
) -> None:
    number = national_id()
    create(registry, new_borrower(CARD, national_id=number))
    _, cursor = read_feed(registry)
    fake.state.persons[number] = _protected(_person(number), "fortrolig")
    fake.state.add_event(number, "endringIAdressebeskyttelse")

    admin("population", "sync", "--once")

    hidden = get(registry, card_number=CARD)
    assert hidden.address_protected
    assert not hidden.HasField("registered_address")
    changes, cursor = read_feed(registry, cursor)
    assert [(c.kind, c.borrower.address_protected) for c in changes] == [
        (pb.CHANGE_KIND_UPDATED, True)
    ]

    fake.state.persons[number] = _protected(_person(number), "ugradert")
    fake.state.add_event(number, "endringIAdressebeskyttelse")
    admin("population", "sync", "--once")

    served = get(registry, card_number=CARD)
    assert not served.address_protected
    assert list(served.registered_address.lines) == ["Fjordgata 7"]


def test_an_operators_protection_is_not_lifted_by_the_population_register(
    fake: PopulationRegisterFake, admin: Admin, registry: Registry
) -> None:
    number = national_id()
    create(registry, new_borrower(CARD, national_id=number))
    admin("borrowers", "protect-address", CARD)
    fake.state.persons[number] = _person(number)  # ugradert: no protection given
    fake.state.add_event(number, "endringINavn")

    admin("population", "sync", "--once")

    borrower = get(registry, card_number=CARD)
    assert borrower.address_protected and borrower.family_name == "Berg"


STRICT_LINE = "Qzxyhemmeligveien 41"
STRICT_TEMPORARY_LINE = "Qzxyhyttestien 9"


def test_a_strictly_confidential_address_is_erased_and_no_library_may_write_one(
    fake: PopulationRegisterFake,
    admin: Admin,
    registry: Registry,
    prepared_database: str,
    pki: DevPkiPaths,
    keyring_path: Path,
    key_file: Path,
) -> None:
    number = national_id()
    create(
        registry,
        new_borrower(
            CARD,
            national_id=number,
            registered_address=borrower_pb2.Address(
                lines=[STRICT_LINE], postal_code="0155", city="Oslo"
            ),
            temporary_address=borrower_pb2.TemporaryAddress(
                address=borrower_pb2.Address(
                    lines=[STRICT_TEMPORARY_LINE], postal_code="3580", city="Geilo"
                ),
                valid_until=(dt.date.today() + dt.timedelta(days=30)).isoformat(),
            ),
        ),
    )
    person = _protected(_person(number), "strengtFortrolig")
    person["bostedsadresse"] = [_entry(ukjentBosted={}, adressegradering="strengtFortrolig")]
    fake.state.persons[number] = person
    fake.state.add_event(number, "endringIAdressebeskyttelse")
    follower = _follower(fake, key_file, pki, keyring_path, prepared_database)
    try:
        deadline = time.monotonic() + 20
        while admin.json("population", "status")["events_applied"] < 1:
            assert time.monotonic() < deadline, "the server did not apply the event"
            time.sleep(0.05)
        if prepared_database.startswith("sqlite"):
            # Erased from the file and its write-ahead log (truncated right after the commit).
            deadline = time.monotonic() + 2
            while (raw := sqlite_bytes(prepared_database)) and (
                STRICT_LINE.encode() in raw or STRICT_TEMPORARY_LINE.encode() in raw
            ):
                assert time.monotonic() < deadline, "address bytes left on disk"
                time.sleep(0.05)
    finally:
        follower.stop()

    borrower = get(registry, card_number=CARD)
    assert borrower.address_protected
    assert not borrower.HasField("registered_address")
    assert not borrower.HasField("temporary_address")
    registered = borrower_pb2.Borrower(card_number=CARD, etag=borrower.etag)
    registered.registered_address.CopyFrom(
        borrower_pb2.Address(lines=["Ny gate 1"], postal_code="0155", city="Oslo")
    )
    temporary = borrower_pb2.Borrower(card_number=CARD, etag=borrower.etag)
    temporary.temporary_address.CopyFrom(
        borrower_pb2.TemporaryAddress(
            address=borrower_pb2.Address(lines=["Hytta"], postal_code="3580", city="Geilo"),
            valid_until=(dt.date.today() + dt.timedelta(days=5)).isoformat(),
        )
    )
    for path, change in (("registered_address", registered), ("temporary_address", temporary)):
        with pytest.raises(grpc.RpcError) as refused:
            registry.stub.UpdateBorrower(
                pb.UpdateBorrowerRequest(borrower=change, update_mask=FieldMask(paths=[path])),
                metadata=registry.metadata,
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_details(refused.value)[0] == "ADDRESS_STRICTLY_PROTECTED"
    assert get(registry, card_number=CARD) == borrower


def _dead(person: dict[str, Any]) -> dict[str, Any]:
    return {**person, "doedsfall": {"doedsdato": "2026-11-30"}, "status": [_entry(status="doed")]}


def test_a_death_deletes_the_borrower_after_the_grace_period_and_a_reactivation_cancels_it(
    fake: PopulationRegisterFake, admin: Admin, registry: Registry
) -> None:
    number, other_number = national_id(), national_id()
    create(registry, new_borrower(CARD, national_id=number))
    create(registry, new_borrower(OTHER, national_id=other_number))
    fake.state.persons[number] = _dead(_person(number))
    fake.state.persons[other_number] = _dead(_person(other_number))
    fake.state.add_event(number, "personErDoed")
    fake.state.add_event(other_number, "personErDoed")

    assert admin.json("population", "sync", "--once")["deleted_deceased"] == 0

    assert get(registry, card_number=CARD).family_name == "Berg"  # still there, for now
    assert admin.json("population", "status")["deaths_pending"] == 2
    # The other death was a mistake: the person is reactivated within the grace period.
    fake.state.persons[other_number] = _person(other_number)
    fake.state.add_event(other_number, "personErReaktivert")
    admin("population", "sync", "--once")
    assert admin.json("population", "status")["deaths_pending"] == 1
    _, cursor = read_feed(registry)

    # A third borrower dies, followed with no grace period: deleted in the same run; the first
    # still waits out the week it was given.
    third = national_id()
    create(registry, new_borrower("N000009003", national_id=third))
    _, cursor = read_feed(registry)
    fake.state.persons[third] = _dead(_person(third))
    fake.state.add_event(third, "personErDoed")
    no_grace = Admin({**admin.env, "NLR_FREG_DEATH_GRACE_DAYS": "0"})

    assert no_grace.json("population", "sync", "--once")["deleted_deceased"] == 1

    with pytest.raises(grpc.RpcError) as gone:
        get(registry, card_number="N000009003")
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    assert get(registry, card_number=CARD).card_number == CARD
    assert get(registry, card_number=OTHER).card_number == OTHER
    changes, _ = read_feed(registry, cursor)
    assert [(c.kind, c.tombstone.card_number) for c in changes] == [
        (pb.CHANGE_KIND_DELETED, "N000009003")
    ]
    assert admin.json("population", "status")["deaths_pending"] == 1


def _renumbered(person: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The person as the population register gives them after a new identity number."""
    return {
        **person,
        "identifikasjonsnummer": [
            {**_entry(foedselsEllerDNummer=old), "erGjeldende": False},
            _entry(foedselsEllerDNummer=new),
        ],
    }


def test_a_new_identity_number_is_resealed_and_one_of_another_borrower_left_to_an_operator(
    fake: PopulationRegisterFake, admin: Admin, registry: Registry
) -> None:
    d_number_holder, new_number = (
        national_id(dt.date(1990, 5, 17)),
        national_id(dt.date(1991, 2, 3)),
    )
    create(registry, new_borrower(CARD, national_id=d_number_holder))
    first, second = national_id(), national_id()
    create(registry, new_borrower(OTHER, national_id=first))
    create(registry, new_borrower("N000009003", national_id=second))
    other_before = get(registry, card_number=OTHER)
    fake.state.persons[d_number_holder] = _renumbered(
        _person(d_number_holder), d_number_holder, new_number
    )
    # The population register merged two persons who are both borrowers here.
    fake.state.persons[first] = _renumbered(_person(first), first, second)
    fake.state.add_event(d_number_holder, "endringIIdentifikasjonsnummer")
    fake.state.add_event(first, "personErOpphoertSomDublett")
    # And one it sends in a shape the register cannot read: set aside, the feed goes on.
    broken = national_id()
    create(registry, new_borrower("N000009004", national_id=broken))
    fake.state.persons[broken] = _renumbered(_person(broken), broken, "123")
    fake.state.add_event(broken, "endringIIdentifikasjonsnummer")

    summary = admin.json("population", "sync", "--once")

    assert (summary["read"], summary["applied"], summary["next_sequence"]) == (3, 1, 4)
    renumbered = get(registry, national_id=new_number)
    assert renumbered.card_number == CARD
    assert renumbered.birth_date == "1991-02-03"  # follows the number
    with pytest.raises(grpc.RpcError) as old_number:
        get(registry, national_id=d_number_holder)
    assert old_number.value.code() == grpc.StatusCode.NOT_FOUND
    assert get(registry, card_number=OTHER) == other_before  # never merged by the sync
    reviews = admin.json("population", "review")
    assert [(r["kind"], r["sequence"], r["card_numbers"]) for r in reviews] == [
        ("duplicate", 2, [OTHER, "N000009003"]),
        ("failed", 3, []),
    ]

    assert "review 1 resolved" in admin("population", "review", "--resolve", "1").stdout
    assert [r["id"] for r in admin.json("population", "review")] == [2]
    assert len(admin.json("population", "review", "--all")) == 2
    assert "no open review 1" in admin.error("population", "review", "--resolve", "1", expect=1)


def test_reconcile_looks_every_borrower_up_goes_on_after_an_interruption_and_deletes_no_one(
    fake: PopulationRegisterFake, admin: Admin, registry: Registry, tmp_path: Path
) -> None:
    numbers = [national_id() for _ in range(3)]
    cards = [f"N00000920{index}" for index in range(3)]
    for card, number in zip(cards, numbers, strict=True):
        create(registry, new_borrower(card, national_id=number))
    for number in numbers[:2]:
        fake.state.persons[number] = _person(number)
    fake.state.bulk_lookups_before_failing = 1

    message = admin.error("population", "reconcile", "--batch-size", "1", "--no-progress", expect=2)

    assert "HTTP 500" in message and "run the command again to go on" in message
    assert get(registry, card_number=cards[0]).family_name == "Berg"
    assert get(registry, card_number=cards[1]).family_name == "Nordmann"
    fake.state.bulk_lookups_before_failing = None
    not_found = tmp_path / "not-found.txt"

    summary = admin.json(
        "population",
        "reconcile",
        "--batch-size",
        "1",
        "--not-found",
        str(not_found),
        "--no-progress",
    )

    # The first borrower was done before the interruption: the rest only.
    assert (summary["looked_up"], summary["found"], summary["not_found"]) == (2, 1, 1)
    assert not_found.read_text() == f"{cards[2]}\n"
    assert get(registry, card_number=cards[1]).family_name == "Berg"
    assert get(registry, card_number=cards[2]).family_name == "Nordmann"  # not found: kept
    # Found ones are the population register's now; the one not found stays the library's.
    for card, refused in ((cards[1], True), (cards[2], False)):
        etag = get(registry, card_number=card).etag
        request = pb.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(card_number=card, etag=etag, family_name="Lie"),
            update_mask=FieldMask(paths=["family_name"]),
        )
        if refused:
            with pytest.raises(grpc.RpcError) as error:
                registry.stub.UpdateBorrower(request, metadata=registry.metadata)
            assert error_details(error.value)[0] == "OWNED_BY_POPULATION_REGISTER"
        else:
            registry.stub.UpdateBorrower(request, metadata=registry.metadata)
    # Run again when done: every borrower is looked up anew.
    assert admin.json("population", "reconcile", "--no-progress")["looked_up"] == 3


def test_an_emigration_is_recorded_and_the_borrower_kept(
    fake: PopulationRegisterFake, admin: Admin, registry: Registry
) -> None:
    number = national_id()
    create(registry, new_borrower(CARD, national_id=number))
    assert get(registry, card_number=CARD).population_register_status == ""
    fake.state.persons[number] = {**_person(number), "status": [_entry(status="utflyttet")]}
    fake.state.add_event(number, "personErUtflyttet")

    admin("population", "sync", "--once")

    emigrated = get(registry, card_number=CARD)
    assert emigrated.population_register_status == "utflyttet"
    assert emigrated.card_valid
    assert admin.json("population", "status")["deaths_pending"] == 0


def test_a_run_stopped_half_way_applies_nothing_and_the_next_applies_each_event_once(
    fake: PopulationRegisterFake, admin: Admin, registry: Registry
) -> None:
    number = national_id()
    create(registry, new_borrower(CARD, national_id=number))
    _, cursor = read_feed(registry)
    fake.state.persons[number] = _person(number)
    fake.state.add_event(number, "endringIKjoenn")
    fake.state.add_event(number, "endringIBostedsadresseUtenFlytting")
    fake.state.bulk_lookups_before_failing = 0  # the page is read, the lookup fails

    message = admin.error("population", "sync", "--once", expect=2)

    assert "HTTP 500" in message
    status = admin.json("population", "status")
    assert (status["next_sequence"], status["events_applied"]) == (1, 0)
    assert status["last_error"] == "Folkeregisteret answered HTTP 500"
    assert get(registry, card_number=CARD).family_name == "Nordmann"
    fake.state.bulk_lookups_before_failing = None
    # Told to wait twice (429, Retry-After in milliseconds): the sync waits and goes on.
    fake.state.throttle, fake.state.retry_after_ms = 2, 100

    assert admin.json("population", "sync", "--once")["applied"] == 1

    assert get(registry, card_number=CARD).family_name == "Berg"
    changes, _ = read_feed(registry, cursor)
    assert [c.kind for c in changes] == [pb.CHANGE_KIND_UPDATED]
    assert admin.json("population", "status")["last_error"] is None


def _poison_updates_of(url: str, card_number: str) -> None:
    """A trigger that makes the database refuse every update of one borrower: a page holding
    their event fails as a whole, whatever the register does."""
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql(
                    "CREATE TRIGGER poison BEFORE UPDATE ON borrowers "
                    f"WHEN NEW.card_number = '{card_number}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            else:
                connection.exec_driver_sql(
                    "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.card_number = '{card_number}' THEN RAISE EXCEPTION 'refused'; "
                    "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
                )
                connection.exec_driver_sql(
                    "CREATE TRIGGER poison BEFORE UPDATE ON borrowers "
                    "FOR EACH ROW EXECUTE FUNCTION poison()"
                )
    finally:
        engine.dispose()


def test_a_page_the_store_refuses_is_tried_a_few_times_then_its_failing_event_set_aside(
    fake: PopulationRegisterFake, admin: Admin, registry: Registry, prepared_database: str
) -> None:
    good, poisoned = national_id(), national_id()
    create(registry, new_borrower(CARD, national_id=good))
    create(registry, new_borrower(OTHER, national_id=poisoned))
    for number in (good, poisoned):
        fake.state.persons[number] = _person(number)
    fake.state.add_event(poisoned, "endringINavn")
    fake.state.add_event(good, "endringINavn")
    _poison_updates_of(prepared_database, OTHER)

    for _ in range(3):
        message = admin.error("population", "sync", "--once", expect=2)
        assert "applying the page failed" in message and "refused" not in message
        assert get(registry, card_number=CARD).family_name == "Nordmann"  # all or nothing
    status = admin.json("population", "status")
    assert status["next_sequence"] == 1
    # The error by its class only: the database's message could quote a value.
    assert status["last_error"].isidentifier() and "refused" not in status["last_error"]

    summary = admin.json("population", "sync", "--once")

    assert (summary["read"], summary["applied"], summary["next_sequence"]) == (2, 1, 3)
    assert get(registry, card_number=CARD).family_name == "Berg"
    assert get(registry, card_number=OTHER).family_name == "Nordmann"
    assert [(r["kind"], r["sequence"]) for r in admin.json("population", "review")] == [
        ("failed", 1)
    ]
