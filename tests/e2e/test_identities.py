"""Other identities end to end: Feide, Pocket and school card identities are added and removed
by affiliated libraries, find the borrower in GetBorrower and Authenticate, and are removed by
maintenance once their delete-after time has come."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select, update

from admin_runner import Admin, admin_environment
from nlr.auth.v1 import authenticate_pb2 as auth_pb
from nlr.auth.v1 import authenticate_pb2_grpc
from nlr.registry.v1 import borrower_pb2, registry_service_pb2_grpc
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.crypto.keyring import Keyring
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import IdentityRow
from register_harness import (
    BERGEN,
    OSLO,
    Registry,
    Servers,
    ServerThread,
    client_channel,
    count_rows,
    create,
    error_details,
    get,
    new_borrower,
    wait_for_audit,
)

FEIDE = borrower_pb2.IDENTITY_KIND_FEIDE
POCKET = borrower_pb2.IDENTITY_KIND_POCKET
SCHOOL_CARD = borrower_pb2.IDENTITY_KIND_SCHOOL_CARD
PIN = "4711"
WRONG_PIN = "0000"
PASSWORD = "correct horse battery staple"
Authenticate = authenticate_pb2_grpc.AuthenticateStub


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def identity(
    kind: int, value: str, delete_after: dt.datetime | None = None
) -> borrower_pb2.Identity:
    message = borrower_pb2.Identity(kind=kind, value=value)  # type: ignore[arg-type]
    if delete_after is not None:
        message.delete_after_time.FromDatetime(delete_after)
    return message


def add(
    registry: Registry, card: str, kind: int, value: str, delete_after: dt.datetime | None = None
) -> borrower_pb2.Borrower:
    return registry.stub.AddIdentity(
        pb.AddIdentityRequest(card_number=card, identity=identity(kind, value, delete_after)),
        metadata=registry.metadata,
    ).borrower


def remove(registry: Registry, card: str, kind: int) -> borrower_pb2.Borrower:
    return registry.stub.RemoveIdentity(
        pb.RemoveIdentityRequest(card_number=card, kind=kind),  # type: ignore[arg-type]
        metadata=registry.metadata,
    ).borrower


def find(registry: Registry, kind: int, value: str) -> borrower_pb2.Borrower:
    key = borrower_pb2.IdentityKey(kind=kind, value=value)  # type: ignore[arg-type]
    return registry.stub.GetBorrower(
        pb.GetBorrowerRequest(identity=key), metadata=registry.metadata
    ).borrower


def refused(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def refusal(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    return error.code(), error_details(error)[0]


def held(borrower: borrower_pb2.Borrower) -> list[tuple[int, str]]:
    return [(i.kind, i.value) for i in borrower.identities]


def identity_rows(url: str) -> int:
    return count_rows(url)["identities"]


def expire(url: str, value: str) -> None:
    """Moves an identity's delete-after time into the past, as if its time had come."""
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            changed = connection.execute(
                update(IdentityRow)
                .where(IdentityRow.value == value)
                .values(delete_after=now() - dt.timedelta(minutes=1))
            )
            assert changed.rowcount == 1
    finally:
        engine.dispose()


def stored_values(url: str) -> list[str]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            return sorted(connection.execute(select(IdentityRow.value)).scalars())
    finally:
        engine.dispose()


@pytest.fixture
def authenticate(server: ServerThread, pki: DevPkiPaths) -> Iterator[Authenticate]:
    with client_channel(server.target, pki, cert=pki.auth_cert, key=pki.auth_key) as channel:
        yield Authenticate(channel)


def auth_identity(kind: int, value: str) -> auth_pb.Identity:
    return auth_pb.Identity(kind=kind, value=value)  # type: ignore[arg-type]


def set_pin(registry: Registry, card: str) -> None:
    registry.stub.SetPin(pb.SetPinRequest(card_number=card, pin=PIN), metadata=registry.metadata)


# --- AddIdentity ---------------------------------------------------------------------------


def test_an_added_identity_shows_in_the_full_view_with_its_times(registry: Registry) -> None:
    create(registry, new_borrower("N000001601"))
    delete_after = (now() + dt.timedelta(days=200)).replace(microsecond=0)
    before = now().replace(microsecond=0)

    added = add(registry, "N000001601", FEIDE, "  Kari.Nordmann@UiO.no ", delete_after)

    after = now()
    assert added.view == borrower_pb2.BORROWER_VIEW_FULL
    assert held(added) == [(FEIDE, "kari.nordmann@uio.no")]
    created_at = added.identities[0].create_time.ToDatetime(tzinfo=dt.UTC)
    assert before <= created_at <= after
    assert added.identities[0].delete_after_time.ToDatetime(tzinfo=dt.UTC) == delete_after
    assert list(get(registry, card_number="N000001601").identities) == list(added.identities)


def test_identities_of_every_kind_are_listed_oldest_first(registry: Registry) -> None:
    create(registry, new_borrower("N000001602"))

    add(registry, "N000001602", SCHOOL_CARD, "SK-2026.0042_a")
    add(registry, "N000001602", FEIDE, "kari@uio.no")
    both = add(registry, "N000001602", POCKET, "pocket-77")

    assert held(both) == [
        (SCHOOL_CARD, "SK-2026.0042_a"),
        (FEIDE, "kari@uio.no"),
        (POCKET, "pocket-77"),
    ]


def test_without_a_delete_after_time_the_configured_default_lifetime_applies(
    servers: Servers, pki: DevPkiPaths
) -> None:
    server = servers.start(identity_lifetime_days=30)
    with client_channel(server.target, pki) as channel:
        registry = Registry(registry_service_pb2_grpc.BorrowerRegistryStub(channel), OSLO)
        registry = registry.as_library(OSLO)
        create(registry, new_borrower("N000001603"))

        added = add(registry, "N000001603", POCKET, "p-1603").identities[0]

    lifetime = added.delete_after_time.ToDatetime() - added.create_time.ToDatetime()
    assert lifetime == dt.timedelta(days=30)


BAD_REQUESTS = {
    "unspecified kind": (
        "N000001610",
        borrower_pb2.IDENTITY_KIND_UNSPECIFIED,
        "x1",
        None,
        "identity.kind",
    ),
    "unknown kind": ("N000001610", 9, "x1", None, "identity.kind"),
    "no value": ("N000001610", FEIDE, "  ", None, "identity.value"),
    "feide without realm": ("N000001610", FEIDE, "kari.nordmann", None, "identity.value"),
    "feide realm without a dot": ("N000001610", FEIDE, "kari@localhost", None, "identity.value"),
    "feide not ascii": ("N000001610", FEIDE, "kåre@uio.no", None, "identity.value"),
    "feide two at signs": ("N000001610", FEIDE, "kari@nordmann@uio.no", None, "identity.value"),
    "school card with a space": ("N000001610", SCHOOL_CARD, "SK 42", None, "identity.value"),
    "school card too long": ("N000001610", SCHOOL_CARD, "S" * 65, None, "identity.value"),
    "pocket with a slash": ("N000001610", POCKET, "p/1", None, "identity.value"),
    "delete after in the past": (
        "N000001610",
        POCKET,
        "p-1610",
        dt.timedelta(minutes=-1),
        "identity.delete_after_time",
    ),
    "delete after more than ten years ahead": (
        "N000001610",
        POCKET,
        "p-1610",
        dt.timedelta(days=3653 + 2),
        "identity.delete_after_time",
    ),
    "bad card number": ("N1610", POCKET, "p-1610", None, "card_number"),
}


@pytest.mark.parametrize(
    ("card", "kind", "value", "delete_in", "field"), BAD_REQUESTS.values(), ids=list(BAD_REQUESTS)
)
def test_a_bad_identity_is_refused_naming_the_field_and_nothing_changes(
    registry: Registry,
    server: ServerThread,
    card: str,
    kind: int,
    value: str,
    delete_in: dt.timedelta | None,
    field: str,
) -> None:
    create(registry, new_borrower("N000001610"))
    before = count_rows(server.config.database_url)
    delete_after = now() + delete_in if delete_in is not None else None

    error = refused(lambda: add(registry, card, kind, value, delete_after))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(error)[1]) == [field]
    assert count_rows(server.config.database_url) == before
    assert list(get(registry, card_number="N000001610").identities) == []


def test_a_value_of_the_longest_lifetime_and_length_is_accepted(registry: Registry) -> None:
    create(registry, new_borrower("N000001611"))
    almost_ten_years = (now() + dt.timedelta(days=3650)).replace(microsecond=0)

    added = add(registry, "N000001611", SCHOOL_CARD, "S" * 64, almost_ten_years)

    assert held(added) == [(SCHOOL_CARD, "S" * 64)]
    assert added.identities[0].delete_after_time.ToDatetime(tzinfo=dt.UTC) == almost_ten_years


def test_an_unaffiliated_library_may_not_add_or_remove_and_nothing_changes(
    registry: Registry, server: ServerThread
) -> None:
    create(registry, new_borrower("N000001612"))
    add(registry, "N000001612", FEIDE, "kari@uio.no")
    bergen = registry.as_library(BERGEN)
    before = count_rows(server.config.database_url)

    added = refused(lambda: add(bergen, "N000001612", POCKET, "p-1612"))
    removed = refused(lambda: remove(bergen, "N000001612", FEIDE))

    not_affiliated = (grpc.StatusCode.PERMISSION_DENIED, "NOT_AFFILIATED")
    assert (refusal(added), refusal(removed)) == (not_affiliated, not_affiliated)
    assert count_rows(server.config.database_url) == before
    assert held(get(registry, card_number="N000001612")) == [(FEIDE, "kari@uio.no")]


def test_an_unknown_card_number_is_not_found(registry: Registry, server: ServerThread) -> None:
    before = count_rows(server.config.database_url)

    added = refused(lambda: add(registry, "N000001699", POCKET, "p-1699"))
    removed = refused(lambda: remove(registry, "N000001699", POCKET))

    assert added.code() == removed.code() == grpc.StatusCode.NOT_FOUND
    assert count_rows(server.config.database_url) == before


def test_a_second_identity_of_the_same_kind_is_refused_and_the_first_stays(
    registry: Registry, server: ServerThread
) -> None:
    create(registry, new_borrower("N000001613"))
    add(registry, "N000001613", FEIDE, "kari@uio.no")
    before = count_rows(server.config.database_url)

    error = refused(lambda: add(registry, "N000001613", FEIDE, "kari@ntnu.no"))

    assert refusal(error) == (grpc.StatusCode.ALREADY_EXISTS, "IDENTITY_KIND_TAKEN")
    assert count_rows(server.config.database_url) == before
    assert held(get(registry, card_number="N000001613")) == [(FEIDE, "kari@uio.no")]


def test_a_value_another_borrower_has_is_refused_whatever_its_case(
    registry: Registry, server: ServerThread
) -> None:
    create(registry, new_borrower("N000001614"))
    create(registry, new_borrower("N000001615"))
    add(registry, "N000001614", FEIDE, "kari@uio.no")
    before = count_rows(server.config.database_url)

    error = refused(lambda: add(registry, "N000001615", FEIDE, "KARI@UIO.NO"))

    assert refusal(error) == (grpc.StatusCode.ALREADY_EXISTS, "IDENTITY_IN_USE")
    assert count_rows(server.config.database_url) == before
    assert held(get(registry, card_number="N000001615")) == []


def test_the_same_value_may_name_different_borrowers_in_different_kinds(
    registry: Registry,
) -> None:
    create(registry, new_borrower("N000001616"))
    create(registry, new_borrower("N000001617"))

    add(registry, "N000001616", POCKET, "1234")
    other = add(registry, "N000001617", SCHOOL_CARD, "1234")

    assert held(other) == [(SCHOOL_CARD, "1234")]
    assert find(registry, POCKET, "1234").card_number == "N000001616"
    assert find(registry, SCHOOL_CARD, "1234").card_number == "N000001617"


# --- RemoveIdentity ------------------------------------------------------------------------


def test_a_removed_identity_is_gone_and_removing_it_again_is_not_found(
    registry: Registry, server: ServerThread
) -> None:
    create(registry, new_borrower("N000001620"))
    add(registry, "N000001620", FEIDE, "kari@uio.no")
    add(registry, "N000001620", POCKET, "p-1620")

    after = remove(registry, "N000001620", FEIDE)

    assert after.view == borrower_pb2.BORROWER_VIEW_FULL
    assert held(after) == [(POCKET, "p-1620")]
    gone = refused(lambda: find(registry, FEIDE, "kari@uio.no"))
    assert gone.code() == grpc.StatusCode.NOT_FOUND
    before = count_rows(server.config.database_url)
    again = refused(lambda: remove(registry, "N000001620", FEIDE))
    assert refusal(again) == (grpc.StatusCode.NOT_FOUND, "IDENTITY_NOT_FOUND")
    assert count_rows(server.config.database_url) == before


def test_removing_needs_a_kind(registry: Registry, server: ServerThread) -> None:
    create(registry, new_borrower("N000001621"))
    add(registry, "N000001621", POCKET, "p-1621")
    before = count_rows(server.config.database_url)

    error = refused(lambda: remove(registry, "N000001621", borrower_pb2.IDENTITY_KIND_UNSPECIFIED))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(error)[1]) == ["kind"]
    assert count_rows(server.config.database_url) == before


def test_a_removed_value_may_be_given_to_another_borrower(registry: Registry) -> None:
    create(registry, new_borrower("N000001622"))
    create(registry, new_borrower("N000001623"))
    add(registry, "N000001622", SCHOOL_CARD, "SK-1")
    remove(registry, "N000001622", SCHOOL_CARD)

    add(registry, "N000001623", SCHOOL_CARD, "SK-1")

    assert find(registry, SCHOOL_CARD, "SK-1").card_number == "N000001623"


def test_deleting_a_borrower_deletes_its_identities(
    registry: Registry, server: ServerThread
) -> None:
    create(registry, new_borrower("N000001624"))
    add(registry, "N000001624", FEIDE, "kari@uio.no")
    add(registry, "N000001624", POCKET, "p-1624")
    assert identity_rows(server.config.database_url) == 2

    registry.stub.DeleteBorrower(
        pb.DeleteBorrowerRequest(
            card_number="N000001624", reason=borrower_pb2.DELETION_REASON_BORROWER_REQUEST
        ),
        metadata=registry.metadata,
    )

    assert identity_rows(server.config.database_url) == 0
    assert refused(lambda: find(registry, FEIDE, "kari@uio.no")).code() == (
        grpc.StatusCode.NOT_FOUND
    )


# --- GetBorrower by identity ---------------------------------------------------------------


def test_an_affiliated_library_finds_the_full_view_by_identity(registry: Registry) -> None:
    create(registry, new_borrower("N000001630"))
    add(registry, "N000001630", FEIDE, "kari@uio.no")

    found = find(registry, FEIDE, " Kari@UiO.no")

    assert (found.card_number, found.view) == ("N000001630", borrower_pb2.BORROWER_VIEW_FULL)
    assert found.email == "kari@example.org"
    assert held(found) == [(FEIDE, "kari@uio.no")]


def test_an_unaffiliated_library_finds_only_the_basic_view_by_identity(
    registry: Registry,
) -> None:
    create(registry, new_borrower("N000001631"))
    add(registry, "N000001631", POCKET, "p-1631")

    found = find(registry.as_library(BERGEN), POCKET, "p-1631")

    assert (found.card_number, found.view) == ("N000001631", borrower_pb2.BORROWER_VIEW_BASIC)
    assert (found.email, found.mobile_phone, list(found.identities)) == ("", "", [])


def test_an_unknown_or_bad_identity_key_finds_nobody(registry: Registry) -> None:
    create(registry, new_borrower("N000001632"))
    add(registry, "N000001632", POCKET, "p-1632")

    unknown = refused(lambda: find(registry, POCKET, "p-9999"))
    other_kind = refused(lambda: find(registry, SCHOOL_CARD, "p-1632"))
    bad_value = refused(lambda: find(registry, FEIDE, "not-feide"))
    no_kind = refused(lambda: find(registry, borrower_pb2.IDENTITY_KIND_UNSPECIFIED, "p-1632"))

    assert unknown.code() == other_kind.code() == grpc.StatusCode.NOT_FOUND
    assert bad_value.code() == no_kind.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(bad_value)[1]) == ["identity.value"]
    assert list(error_details(no_kind)[1]) == ["identity.kind"]


def test_calls_by_identity_are_audited_with_the_borrowers_card_number(
    registry: Registry, server: ServerThread, keyring: Keyring
) -> None:
    create(registry, new_borrower("N000001633"))
    add(registry, "N000001633", FEIDE, "kari@uio.no")
    find(registry.as_library(BERGEN), FEIDE, "kari@uio.no")
    remove(registry, "N000001633", FEIDE)

    events = wait_for_audit(server.config.database_url, keyring, "N000001633", 4)

    assert [(e.rpc, e.library_number, e.outcome) for e in events] == [
        ("CreateBorrower", OSLO, "OK"),
        ("AddIdentity", OSLO, "OK"),
        ("GetBorrower", BERGEN, "OK"),
        ("RemoveIdentity", OSLO, "OK"),
    ]
    assert len({e.borrower_id for e in events}) == 1 and events[0].borrower_id is not None


# --- Authenticate by identity --------------------------------------------------------------


def test_a_borrower_logs_in_by_identity_with_pin_or_password(
    registry: Registry, authenticate: Authenticate
) -> None:
    create(registry, new_borrower("N000001640"))
    add(registry, "N000001640", FEIDE, "kari@uio.no")
    set_pin(registry, "N000001640")
    registry.stub.SetPassword(
        pb.SetPasswordRequest(card_number="N000001640", password=PASSWORD),
        metadata=registry.metadata,
    )

    by_pin = authenticate.VerifyPin(
        auth_pb.VerifyPinRequest(identity=auth_identity(FEIDE, "KARI@uio.no"), pin=PIN)
    ).borrower
    by_password = authenticate.VerifyPassword(
        auth_pb.VerifyPasswordRequest(
            identity=auth_identity(FEIDE, "kari@uio.no"), password=PASSWORD
        )
    ).borrower

    assert (by_pin.card_number, by_pin.assurance_level, by_pin.home_library) == (
        "N000001640",
        auth_pb.ASSURANCE_LEVEL_PIN,
        OSLO,
    )
    assert (by_password.card_number, by_password.assurance_level) == (
        "N000001640",
        auth_pb.ASSURANCE_LEVEL_PASSWORD,
    )


def test_an_unknown_identity_gets_the_same_answer_as_a_wrong_pin(
    registry: Registry, authenticate: Authenticate, server: ServerThread
) -> None:
    create(registry, new_borrower("N000001641"))
    add(registry, "N000001641", POCKET, "p-1641")
    set_pin(registry, "N000001641")

    def verify(value: str, pin: str) -> grpc.RpcError:
        request = auth_pb.VerifyPinRequest(identity=auth_identity(POCKET, value), pin=pin)
        return refused(lambda: authenticate.VerifyPin(request))

    unknown = verify("p-9999", PIN)
    wrong_pin = verify("p-1641", WRONG_PIN)
    unknown_password = refused(
        lambda: authenticate.VerifyPassword(
            auth_pb.VerifyPasswordRequest(
                identity=auth_identity(POCKET, "p-9999"), password=PASSWORD
            )
        )
    )

    assert (
        refusal(unknown)
        == refusal(wrong_pin)
        == refusal(unknown_password)
        == (
            grpc.StatusCode.UNAUTHENTICATED,
            "CREDENTIALS_INVALID",
        )
    )
    assert unknown.details() == wrong_pin.details()


def test_a_malformed_identity_is_refused_naming_the_field(authenticate: Authenticate) -> None:
    error = refused(
        lambda: authenticate.VerifyPin(
            auth_pb.VerifyPinRequest(identity=auth_identity(FEIDE, "no realm"), pin=PIN)
        )
    )

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(error)[1]) == ["identity.value"]


def test_wrong_pins_count_towards_one_lockout_whichever_key_is_used(
    registry: Registry, authenticate: Authenticate
) -> None:
    create(registry, new_borrower("N000001642"))
    add(registry, "N000001642", SCHOOL_CARD, "SK-1642")
    set_pin(registry, "N000001642")
    by_card = auth_pb.VerifyPinRequest(card_number="N000001642", pin=WRONG_PIN)
    by_identity = auth_pb.VerifyPinRequest(
        identity=auth_identity(SCHOOL_CARD, "SK-1642"), pin=WRONG_PIN
    )

    # Four wrong by card do not lock (the limit is five); the fifth, by identity, does.
    for _ in range(4):
        assert refusal(refused(lambda: authenticate.VerifyPin(by_card))) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "CREDENTIALS_INVALID",
        )
    refused(lambda: authenticate.VerifyPin(by_identity))

    locked = (grpc.StatusCode.RESOURCE_EXHAUSTED, "LOGIN_LOCKED")
    right_by_card = auth_pb.VerifyPinRequest(card_number="N000001642", pin=PIN)
    right_by_identity = auth_pb.VerifyPinRequest(
        identity=auth_identity(SCHOOL_CARD, "SK-1642"), pin=PIN
    )
    assert refusal(refused(lambda: authenticate.VerifyPin(right_by_card))) == locked
    assert refusal(refused(lambda: authenticate.VerifyPin(right_by_identity))) == locked


# --- Expiry and maintenance ----------------------------------------------------------------


def test_an_identity_past_its_time_finds_nobody_even_before_maintenance(
    registry: Registry, authenticate: Authenticate, server: ServerThread
) -> None:
    create(registry, new_borrower("N000001650"))
    create(registry, new_borrower("N000001651"))
    add(registry, "N000001650", POCKET, "p-1650")
    set_pin(registry, "N000001650")
    expire(server.config.database_url, "p-1650")

    not_found = refused(lambda: find(registry, POCKET, "p-1650"))
    login = refused(
        lambda: authenticate.VerifyPin(
            auth_pb.VerifyPinRequest(identity=auth_identity(POCKET, "p-1650"), pin=PIN)
        )
    )
    # Its value and its kind are free again: for another borrower, and for the same one.
    other = add(registry, "N000001651", POCKET, "p-1650")
    again = add(registry, "N000001650", POCKET, "p-1650b")

    assert not_found.code() == grpc.StatusCode.NOT_FOUND
    assert refusal(login) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")
    assert held(other) == [(POCKET, "p-1650")]
    assert held(again) == [(POCKET, "p-1650b")]


def test_nlr_admin_maintenance_removes_identities_past_their_time(
    registry: Registry, server: ServerThread, keyring_path: Path
) -> None:
    url = server.config.database_url
    create(registry, new_borrower("N000001652"))
    create(registry, new_borrower("N000001653"))
    add(registry, "N000001652", FEIDE, "kari@uio.no")
    add(registry, "N000001652", POCKET, "p-1652")
    add(registry, "N000001653", FEIDE, "ola@uio.no")
    expire(url, "kari@uio.no")
    expire(url, "ola@uio.no")
    admin = Admin(admin_environment(NLR_DATABASE_URL=url, NLR_KEYRING=str(keyring_path)))

    first = admin("maintenance").stdout
    second = admin.json("maintenance")

    assert first.splitlines() == [
        "identities removed: 2",
        "temporary addresses cleared: 0",
        "feed entries compacted: 0",
        "login attempts forgotten: 0",
        "sessions expired: 0",
    ]
    assert second == {
        "identities_removed": 0,
        "temporary_addresses_cleared": 0,
        "feed_entries_compacted": 0,
        "login_attempts_forgotten": 0,
        "sessions_expired": 0,
    }
    assert stored_values(url) == ["p-1652"]
    assert held(get(registry, card_number="N000001652")) == [(POCKET, "p-1652")]


def test_the_server_removes_identities_past_their_time_every_interval(
    servers: Servers, pki: DevPkiPaths
) -> None:
    server = servers.start(maintenance_interval_seconds=0.2)
    url = server.config.database_url
    with client_channel(server.target, pki) as channel:
        registry = Registry(registry_service_pb2_grpc.BorrowerRegistryStub(channel), OSLO)
        registry = registry.as_library(OSLO)
        create(registry, new_borrower("N000001654"))
        add(registry, "N000001654", FEIDE, "kari@uio.no")
        add(registry, "N000001654", SCHOOL_CARD, "SK-1654")

        expire(url, "SK-1654")
        deadline = time.monotonic() + 10
        while stored_values(url) != ["kari@uio.no"] and time.monotonic() < deadline:
            time.sleep(0.1)

        assert stored_values(url) == ["kari@uio.no"]
        assert held(get(registry, card_number="N000001654")) == [(FEIDE, "kari@uio.no")]
