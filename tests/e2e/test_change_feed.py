"""The change feed end to end: which library learns what about each change, with the borrower's
current full view or a tombstone; paging, the full sync and its cursor, the live stream with
heartbeats and resumption, another server's commits, and compaction."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import update

from admin_runner import Admin, admin_environment
from feed_harness import Watch, feed_head, list_page, read_feed, stored_entries, subject_card
from nlr.registry.v1 import borrower_pb2, registry_service_pb2_grpc
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import BorrowerRow, FeedEntryRow, IdentityRow
from register_harness import (
    BERGEN,
    LIBRARY_CODES,
    OSLO,
    TROMSO,
    Registry,
    Servers,
    ServerThread,
    client_channel,
    create,
    error_details,
    get,
    national_id,
    new_borrower,
)

CREATED = pb.CHANGE_KIND_CREATED
UPDATED = pb.CHANGE_KIND_UPDATED
CARD_REPLACED = pb.CHANGE_KIND_CARD_REPLACED
AFFILIATED = pb.CHANGE_KIND_AFFILIATED
AFFILIATION_REMOVED = pb.CHANGE_KIND_AFFILIATION_REMOVED
DELETED = pb.CHANGE_KIND_DELETED
NO_REASON = borrower_pb2.DELETION_REASON_UNSPECIFIED
BORROWER_REQUEST = borrower_pb2.DELETION_REASON_BORROWER_REQUEST
DECEASED = borrower_pb2.DELETION_REASON_DECEASED
LIBRARIES = (OSLO, BERGEN, TROMSO)


# --- Helpers ---------------------------------------------------------------------------------


def affiliate(registry: Registry, card: str, nid: str) -> borrower_pb2.Borrower:
    return registry.stub.AffiliateBorrower(
        pb.AffiliateBorrowerRequest(card_number=card, national_id=nid), metadata=registry.metadata
    ).borrower


def update_email(registry: Registry, card: str, email: str) -> borrower_pb2.Borrower:
    current = get(registry, card_number=card)
    return registry.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(card_number=card, etag=current.etag, email=email),
            update_mask=FieldMask(paths=["email"]),
        ),
        metadata=registry.metadata,
    ).borrower


def delete(registry: Registry, card: str, reason: int) -> None:
    registry.stub.DeleteBorrower(
        pb.DeleteBorrowerRequest(card_number=card, reason=reason),  # type: ignore[arg-type]
        metadata=registry.metadata,
    )


def named(kind: int) -> str:
    return pb.ChangeKind.Name(kind)  # type: ignore[arg-type]


def summary(changes: list[pb.Change]) -> list[tuple[str, str]]:
    """(kind, card number) of each change: what the assertions compare, readably."""
    return [(named(change.kind), subject_card(change)) for change in changes]


def tombstone(change: pb.Change, kind: int, card: str, reason: int) -> pb.Change:
    """The whole message a tombstone must be: sequence, time, kind, card number and reason."""
    return pb.Change(
        sequence=change.sequence,
        change_time=change.change_time,
        kind=kind,  # type: ignore[arg-type]
        tombstone=pb.Tombstone(card_number=card, deletion_reason=reason),  # type: ignore[arg-type]
    )


def sql(url: str, statement: object) -> None:
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(statement)  # type: ignore[call-overload]
    finally:
        engine.dispose()


class Feeds:
    """Oslo, Bergen and Tromsø each following their feed with ListChanges from 0."""

    def __init__(self, registry: Registry) -> None:
        self.registries = {library: registry.as_library(library) for library in LIBRARIES}
        self.cursors = dict.fromkeys(LIBRARIES, 0)

    def expect(self, **expected: list[tuple[int, str]]) -> dict[str, list[pb.Change]]:
        """Reads each library's new changes; they must be exactly ``expected`` (keyed oslo,
        bergen, tromso), each non-tombstone carrying the borrower's current full view."""
        new: dict[str, list[pb.Change]] = {}
        for library, registry in self.registries.items():
            new[library], cursor = read_feed(registry, self.cursors[library])
            assert all(c.sequence > self.cursors[library] for c in new[library])
            self.cursors[library] = cursor
        by_name = {OSLO: "oslo", BERGEN: "bergen", TROMSO: "tromso"}
        assert {library: summary(changes) for library, changes in new.items()} == {
            library: [(named(kind), card) for kind, card in expected.get(by_name[library], [])]
            for library in LIBRARIES
        }
        for library, changes in new.items():
            for change in changes:
                if change.WhichOneof("subject") == "borrower":
                    now_seen = get(
                        self.registries[library], card_number=change.borrower.card_number
                    )
                    assert now_seen.view == borrower_pb2.BORROWER_VIEW_FULL
                    assert change.borrower == now_seen
        return new


@pytest.fixture
def admin(server: ServerThread, keyring_path: Path) -> Admin:
    return Admin(
        admin_environment(
            NLR_DATABASE_URL=server.config.database_url, NLR_KEYRING=str(keyring_path)
        )
    )


@pytest.fixture
def connect(pki: DevPkiPaths) -> Iterator[Callable[[ServerThread], Registry]]:
    """Oslo's client of a server started by the test."""
    channels: list[grpc.Channel] = []

    def registry_of(server: ServerThread) -> Registry:
        channel = client_channel(server.target, pki)
        channels.append(channel)
        return Registry(registry_service_pb2_grpc.BorrowerRegistryStub(channel), OSLO).as_library(
            OSLO
        )

    yield registry_of
    for channel in channels:
        channel.close()


# --- Which library gets which kind -----------------------------------------------------------


def test_each_change_reaches_each_affiliated_library_with_its_kind_and_the_current_view(
    registry: Registry, server: ServerThread, admin: Admin
) -> None:
    url = server.config.database_url
    feeds = Feeds(registry)
    oslo, bergen, tromso = (feeds.registries[library] for library in LIBRARIES)
    card, new_card, guardian, nid = "N000002001", "N000002002", "N000002003", national_id()

    create(oslo, new_borrower(card, national_id=nid))
    feeds.expect(oslo=[(CREATED, card)])
    create(tromso, new_borrower(guardian))
    feeds.expect(tromso=[(CREATED, guardian)])

    affiliate(bergen, card, nid)
    feeds.expect(oslo=[(UPDATED, card)], bergen=[(AFFILIATED, card)])

    update_email(oslo, card, "ny@example.org")
    both = feeds.expect(oslo=[(UPDATED, card)], bergen=[(UPDATED, card)])
    assert both[BERGEN][0].borrower.email == "ny@example.org"

    oslo.stub.SetHomeLibrary(
        pb.SetHomeLibraryRequest(card_number=card, library_number=BERGEN), metadata=oslo.metadata
    )
    both = feeds.expect(oslo=[(UPDATED, card)], bergen=[(UPDATED, card)])
    assert both[OSLO][0].borrower.home_library == BERGEN

    oslo.stub.ReplaceCard(
        pb.ReplaceCardRequest(card_number=card, new_card_number=new_card), metadata=oslo.metadata
    )
    both = feeds.expect(oslo=[(CARD_REPLACED, new_card)], bergen=[(CARD_REPLACED, new_card)])
    assert [c.borrower.previous_card_number for c in both[OSLO] + both[BERGEN]] == [card, card]

    oslo.stub.SetPin(pb.SetPinRequest(card_number=new_card, pin="4711"), metadata=oslo.metadata)
    both = feeds.expect(oslo=[(UPDATED, new_card)], bergen=[(UPDATED, new_card)])
    assert both[BERGEN][0].borrower.has_pin
    bergen.stub.SetPassword(
        pb.SetPasswordRequest(card_number=new_card, password="correct horse battery staple"),
        metadata=bergen.metadata,
    )
    both = feeds.expect(oslo=[(UPDATED, new_card)], bergen=[(UPDATED, new_card)])
    assert both[OSLO][0].borrower.has_password

    feide = borrower_pb2.Identity(kind=borrower_pb2.IDENTITY_KIND_FEIDE, value="kari@uio.no")
    oslo.stub.AddIdentity(
        pb.AddIdentityRequest(card_number=new_card, identity=feide), metadata=oslo.metadata
    )
    feeds.expect(oslo=[(UPDATED, new_card)], bergen=[(UPDATED, new_card)])
    oslo.stub.RemoveIdentity(
        pb.RemoveIdentityRequest(card_number=new_card, kind=borrower_pb2.IDENTITY_KIND_FEIDE),
        metadata=oslo.metadata,
    )
    feeds.expect(oslo=[(UPDATED, new_card)], bergen=[(UPDATED, new_card)])

    # A guardian link changes both borrowers: each library hears of the one it knows.
    link = pb.LinkGuardianRequest(card_number=new_card, guardian_card_number=guardian)
    oslo.stub.LinkGuardian(link, metadata=oslo.metadata)
    both = feeds.expect(
        oslo=[(UPDATED, new_card)], bergen=[(UPDATED, new_card)], tromso=[(UPDATED, guardian)]
    )
    assert [w.card_number for w in both[TROMSO][0].borrower.wards] == [new_card]
    oslo.stub.UnlinkGuardian(
        pb.UnlinkGuardianRequest(card_number=new_card, guardian_card_number=guardian),
        metadata=oslo.metadata,
    )
    both = feeds.expect(
        oslo=[(UPDATED, new_card)], bergen=[(UPDATED, new_card)], tromso=[(UPDATED, guardian)]
    )
    assert list(both[TROMSO][0].borrower.wards) == []

    # Maintenance removing an expired identity and a past temporary address.
    pocket = borrower_pb2.Identity(kind=borrower_pb2.IDENTITY_KIND_POCKET, value="p-2001")
    oslo.stub.AddIdentity(
        pb.AddIdentityRequest(card_number=new_card, identity=pocket), metadata=oslo.metadata
    )
    feeds.expect(oslo=[(UPDATED, new_card)], bergen=[(UPDATED, new_card)])
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    sql(url, update(IdentityRow).where(IdentityRow.value == "p-2001").values(delete_after=past))
    assert admin.json("maintenance")["identities_removed"] == 1
    both = feeds.expect(oslo=[(UPDATED, new_card)], bergen=[(UPDATED, new_card)])
    assert list(both[OSLO][0].borrower.identities) == []

    current = get(oslo, card_number=new_card)
    next_year = (dt.date.today() + dt.timedelta(days=365)).isoformat()
    oslo.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(
                card_number=new_card,
                etag=current.etag,
                temporary_address=borrower_pb2.TemporaryAddress(
                    address=borrower_pb2.Address(
                        lines=["Studentbyen 4"], postal_code="7030", city="Trondheim"
                    ),
                    valid_until=next_year,
                ),
            ),
            update_mask=FieldMask(paths=["temporary_address"]),
        ),
        metadata=oslo.metadata,
    )
    both = feeds.expect(oslo=[(UPDATED, new_card)], bergen=[(UPDATED, new_card)])
    assert both[OSLO][0].borrower.temporary_address.address.city == "Trondheim"
    yesterday = dt.date.today() - dt.timedelta(days=2)
    sql(
        url,
        update(BorrowerRow)
        .where(BorrowerRow.card_number == new_card)
        .values(temporary_address_valid_until=yesterday),
    )
    assert admin.json("maintenance")["temporary_addresses_cleared"] == 1
    both = feeds.expect(oslo=[(UPDATED, new_card)], bergen=[(UPDATED, new_card)])
    assert not both[OSLO][0].borrower.HasField("temporary_address")

    admin("borrowers", "protect-address", new_card)
    both = feeds.expect(oslo=[(UPDATED, new_card)], bergen=[(UPDATED, new_card)])
    assert both[OSLO][0].borrower.address_protected

    # Bergen, the home library, leaves: a tombstone for Bergen, an update for Oslo.
    bergen.stub.RemoveAffiliation(
        pb.RemoveAffiliationRequest(card_number=new_card, new_home_library=OSLO),
        metadata=bergen.metadata,
    )
    both = feeds.expect(oslo=[(UPDATED, new_card)], bergen=[(AFFILIATION_REMOVED, new_card)])
    left = both[BERGEN][0]
    assert left == tombstone(left, AFFILIATION_REMOVED, new_card, NO_REASON)
    assert both[OSLO][0].borrower.home_library == OSLO

    oslo.stub.LinkGuardian(link, metadata=oslo.metadata)
    feeds.expect(oslo=[(UPDATED, new_card)], tromso=[(UPDATED, guardian)])
    delete(oslo, new_card, DECEASED)
    gone = feeds.expect(oslo=[(DELETED, new_card)], tromso=[(UPDATED, guardian)])
    assert gone[OSLO][0] == tombstone(gone[OSLO][0], DELETED, new_card, DECEASED)
    assert list(gone[TROMSO][0].borrower.wards) == []


def test_a_deletion_is_a_tombstone_with_the_reason_for_every_affiliated_library(
    registry: Registry,
) -> None:
    feeds = Feeds(registry)
    oslo, bergen, tromso = (feeds.registries[library] for library in LIBRARIES)
    card, other, nid = "N000002011", "N000002012", national_id()
    create(oslo, new_borrower(card, national_id=nid))
    affiliate(bergen, card, nid)
    affiliate(tromso, card, nid)
    create(oslo, new_borrower(other))
    feeds.expect(
        oslo=[(CREATED, card), (UPDATED, card), (UPDATED, card), (CREATED, other)],
        bergen=[(AFFILIATED, card), (UPDATED, card)],
        tromso=[(AFFILIATED, card)],
    )
    sent = dt.datetime.now(dt.UTC)

    delete(bergen, card, BORROWER_REQUEST)

    gone = feeds.expect(oslo=[(DELETED, card)], bergen=[(DELETED, card)], tromso=[(DELETED, card)])
    sequences = {gone[library][0].sequence for library in LIBRARIES}
    assert len(sequences) == 1  # one change: one sequence for every library
    for library in LIBRARIES:
        change = gone[library][0]
        assert change == tombstone(change, DELETED, card, BORROWER_REQUEST)
        assert abs(change.change_time.ToDatetime(dt.UTC) - sent) < dt.timedelta(seconds=30)
    # Read again from the start, nothing of the borrower but the tombstone is left.
    for library in LIBRARIES:
        changes, _ = read_feed(feeds.registries[library])
        assert [c for c in summary(changes) if c[1] == card] == [("CHANGE_KIND_DELETED", card)]


# --- Scope -----------------------------------------------------------------------------------


def test_a_library_sees_only_its_own_borrowers_in_list_and_watch(registry: Registry) -> None:
    oslo, bergen, tromso = (registry.as_library(library) for library in LIBRARIES)
    nids = {card: national_id() for card in ("N000002021", "N000002024", "N000002025")}
    create(oslo, new_borrower("N000002021", national_id=nids["N000002021"], given_name="Olea"))
    create(bergen, new_borrower("N000002022", given_name="Berit"))
    create(tromso, new_borrower("N000002023", given_name="Tora"))
    create(oslo, new_borrower("N000002024", national_id=nids["N000002024"]))
    affiliate(bergen, "N000002024", nids["N000002024"])
    create(tromso, new_borrower("N000002025", national_id=nids["N000002025"]))
    affiliate(oslo, "N000002025", nids["N000002025"])
    affiliate(bergen, "N000002025", nids["N000002025"])
    update_email(oslo, "N000002021", "olea@example.org")
    update_email(bergen, "N000002022", "berit@example.org")
    update_email(tromso, "N000002023", "tora@example.org")
    update_email(bergen, "N000002025", "alle@example.org")
    # Bergen leaves N000002024: its earlier entries for that borrower are not served any more.
    bergen.stub.RemoveAffiliation(
        pb.RemoveAffiliationRequest(card_number="N000002024"), metadata=bergen.metadata
    )

    expected = {
        OSLO: [
            ("CHANGE_KIND_CREATED", "N000002021"),
            ("CHANGE_KIND_CREATED", "N000002024"),
            ("CHANGE_KIND_UPDATED", "N000002024"),
            ("CHANGE_KIND_AFFILIATED", "N000002025"),
            ("CHANGE_KIND_UPDATED", "N000002025"),
            ("CHANGE_KIND_UPDATED", "N000002021"),
            ("CHANGE_KIND_UPDATED", "N000002025"),
            ("CHANGE_KIND_UPDATED", "N000002024"),
        ],
        BERGEN: [
            ("CHANGE_KIND_CREATED", "N000002022"),
            ("CHANGE_KIND_AFFILIATED", "N000002025"),
            ("CHANGE_KIND_UPDATED", "N000002022"),
            ("CHANGE_KIND_UPDATED", "N000002025"),
            ("CHANGE_KIND_AFFILIATION_REMOVED", "N000002024"),
        ],
        TROMSO: [
            ("CHANGE_KIND_CREATED", "N000002023"),
            ("CHANGE_KIND_CREATED", "N000002025"),
            ("CHANGE_KIND_UPDATED", "N000002025"),
            ("CHANGE_KIND_UPDATED", "N000002025"),
            ("CHANGE_KIND_UPDATED", "N000002023"),
            ("CHANGE_KIND_UPDATED", "N000002025"),
        ],
    }
    for library, caller in ((OSLO, oslo), (BERGEN, bergen), (TROMSO, tromso)):
        listed, _ = read_feed(caller)
        watch = Watch(caller)
        try:
            watched = watch.changes(len(expected[library]))
            assert watch.quiet(0.3) == []
        finally:
            watch.cancel()
        assert summary(listed) == expected[library], library
        assert watched == listed, library
        for change in listed:
            if change.WhichOneof("subject") == "borrower":
                affiliated = [a.library_number for a in change.borrower.affiliations]
                assert library in affiliated, (library, change.borrower.card_number)
    removed = read_feed(bergen)[0][-1]
    assert removed == tombstone(removed, AFFILIATION_REMOVED, "N000002024", NO_REASON)


# --- ListChanges paging and bad requests -----------------------------------------------------


def test_list_changes_pages_and_the_cursor_moves_past_other_libraries_entries(
    registry: Registry,
) -> None:
    bergen = registry.as_library(BERGEN)
    makers = [registry, bergen, registry, registry, bergen, registry, registry, bergen]
    for number, maker in enumerate(makers, start=1):
        create(maker, new_borrower(f"N0000021{number:02d}"))
    # Oslo's entries are 1, 3, 4, 6, 7; Bergen's 2, 5, 8.

    def pages(page_size: int) -> list[tuple[list[int], int, bool]]:
        seen, after = [], 0
        while True:
            page = list_page(registry, after, page_size)
            seen.append(([c.sequence for c in page.changes], page.cursor, page.more))
            after = page.cursor
            if not page.more:
                return seen

    assert pages(2) == [([1, 3], 3, True), ([4, 6], 6, True), ([7], 8, False)]
    assert pages(3) == [([1, 3, 4], 4, True), ([6, 7], 8, False)]
    assert pages(5) == [([1, 3, 4, 6, 7], 8, False)]
    assert pages(1000) == [([1, 3, 4, 6, 7], 8, False)]
    bergen_first, bergen_last = list_page(bergen, 0, 2), list_page(bergen, 5, 2)
    assert ([c.sequence for c in bergen_first.changes], bergen_first.cursor) == ([2, 5], 5)
    assert ([c.sequence for c in bergen_last.changes], bergen_last.cursor) == ([8], 8)
    assert (bergen_first.more, bergen_last.more) == (True, False)
    # At the head: nothing, the same cursor, nothing more.
    assert list_page(registry, 8, 2) == pb.ListChangesResponse(cursor=8, more=False)
    assert list_page(registry, 7, 2) == pb.ListChangesResponse(cursor=8, more=False)


def test_a_page_size_of_0_means_100(registry: Registry) -> None:
    for number in range(101):
        create(registry, new_borrower(f"N0000022{number:02d}" if number < 100 else "N000002300"))

    first = list_page(registry, 0, 0)
    rest = list_page(registry, first.cursor, 0)

    assert ([c.sequence for c in first.changes], first.cursor, first.more) == (
        list(range(1, 101)),
        100,
        True,
    )
    assert ([c.sequence for c in rest.changes], rest.cursor, rest.more) == ([101], 101, False)


BAD_REQUESTS: dict[str, tuple[Callable[[Registry, int], object], str]] = {
    "ListChanges page_size -1": (lambda r, head: list_page(r, 0, -1), "page_size"),
    "ListChanges page_size 1001": (lambda r, head: list_page(r, 0, 1001), "page_size"),
    "ListChanges after -1": (lambda r, head: list_page(r, -1, 10), "after"),
    "ListChanges after beyond the head": (lambda r, head: list_page(r, head + 1, 10), "after"),
    "WatchChanges after -1": (lambda r, head: Watch(r, -1).next_event(), "after"),
    "WatchChanges after beyond the head": (
        lambda r, head: Watch(r, head + 1).next_event(),
        "after",
    ),
    "ListAffiliatedBorrowers page_size -1": (
        lambda r, head: r.stub.ListAffiliatedBorrowers(
            pb.ListAffiliatedBorrowersRequest(page_size=-1), metadata=r.metadata
        ),
        "page_size",
    ),
    "ListAffiliatedBorrowers page_size 1001": (
        lambda r, head: r.stub.ListAffiliatedBorrowers(
            pb.ListAffiliatedBorrowersRequest(page_size=1001), metadata=r.metadata
        ),
        "page_size",
    ),
    "ListAffiliatedBorrowers page_token garbage": (
        lambda r, head: r.stub.ListAffiliatedBorrowers(
            pb.ListAffiliatedBorrowersRequest(page_token="not a token!"), metadata=r.metadata
        ),
        "page_token",
    ),
    "ListAffiliatedBorrowers page_token of another version": (
        lambda r, head: r.stub.ListAffiliatedBorrowers(
            pb.ListAffiliatedBorrowersRequest(page_token="OTo0OjU"),  # "9:4:5"
            metadata=r.metadata,
        ),
        "page_token",
    ),
    "ListAffiliatedBorrowers page_token with a cursor before the feed": (
        lambda r, head: r.stub.ListAffiliatedBorrowers(
            pb.ListAffiliatedBorrowersRequest(page_token="MTotNTow"),  # "1:-5:0"
            metadata=r.metadata,
        ),
        "page_token",
    ),
    "ListAffiliatedBorrowers page_token with a cursor beyond the head": (
        lambda r, head: r.stub.ListAffiliatedBorrowers(
            pb.ListAffiliatedBorrowersRequest(page_token="MTo5OTk5OTk6MA"),  # "1:999999:0"
            metadata=r.metadata,
        ),
        "page_token",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_bad_request_is_invalid_argument_naming_the_field(
    case: str, registry: Registry, server: ServerThread
) -> None:
    create(registry, new_borrower("N000002401"))
    create(registry, new_borrower("N000002402"))
    head, _ = feed_head(server.config.database_url)
    assert head == 2
    call, field = BAD_REQUESTS[case]

    with pytest.raises(grpc.RpcError) as raised:
        call(registry, head)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(raised.value)[1].keys() == {field}
    # The limits themselves are accepted.
    assert len(list_page(registry, head, 1000).changes) == 0
    assert len(list_page(registry, 0, 1).changes) == 1


REFUSED = {
    "auth role": ("auth", OSLO, LIBRARY_CODES[OSLO], grpc.StatusCode.PERMISSION_DENIED),
    "no library metadata": ("ils", None, None, grpc.StatusCode.UNAUTHENTICATED),
    "wrong library code": ("ils", OSLO, "not-the-code", grpc.StatusCode.PERMISSION_DENIED),
}
REFUSED_REASONS = {
    "auth role": "ROLE_NOT_ALLOWED",
    "no library metadata": "LIBRARY_MISSING",
    "wrong library code": "LIBRARY_CODE_INVALID",
}
FEED_CALLS: dict[str, Callable[[Registry], object]] = {
    "ListChanges": lambda r: list_page(r),
    "WatchChanges": lambda r: Watch(r).next_event(),
    "ListAffiliatedBorrowers": lambda r: r.stub.ListAffiliatedBorrowers(
        pb.ListAffiliatedBorrowersRequest(), metadata=r.metadata
    ),
}


@pytest.mark.parametrize("rpc", list(FEED_CALLS))
def test_callers_without_the_right_get_nothing_of_the_feed(
    rpc: str, registry: Registry, server: ServerThread, pki: DevPkiPaths
) -> None:
    create(registry, new_borrower("N000002411", given_name="Feedperson"))

    outcomes = {}
    for name, (certificate, library, code, _) in REFUSED.items():
        cert, key = (pki.auth_cert, pki.auth_key) if certificate == "auth" else (None, None)
        with client_channel(server.target, pki, cert=cert, key=key) as channel:
            caller = Registry(
                registry_service_pb2_grpc.BorrowerRegistryStub(channel), library, code
            )
            with pytest.raises(grpc.RpcError) as raised:
                FEED_CALLS[rpc](caller)
        outcomes[name] = (raised.value.code(), error_details(raised.value)[0])
        assert "Feedperson" not in (raised.value.details() or "")

    assert outcomes == {
        name: (status, REFUSED_REASONS[name]) for name, (*_, status) in REFUSED.items()
    }


# --- ListAffiliatedBorrowers -----------------------------------------------------------------


def test_the_full_sync_pages_every_borrower_once_and_the_feed_continues_from_its_cursor(
    registry: Registry,
) -> None:
    bergen = registry.as_library(BERGEN)
    mine = [f"N00000250{n}" for n in range(1, 8)]
    for card in mine[:6]:
        create(registry, new_borrower(card))
    create(bergen, new_borrower("N000002511"))  # Bergen's only
    nid = national_id()
    create(bergen, new_borrower(mine[6], national_id=nid))
    affiliate(registry, mine[6], nid)  # Bergen's, and now Oslo's too
    create(registry, new_borrower("N000002512"))
    nid2 = national_id()
    create(bergen, new_borrower("N000002513", national_id=nid2))
    affiliate(registry, "N000002513", nid2)
    registry.stub.RemoveAffiliation(
        pb.RemoveAffiliationRequest(card_number="N000002513"), metadata=registry.metadata
    )  # Oslo's no more
    delete(registry, "N000002512", BORROWER_REQUEST)

    def page(token: str) -> pb.ListAffiliatedBorrowersResponse:
        return registry.stub.ListAffiliatedBorrowers(
            pb.ListAffiliatedBorrowersRequest(page_size=3, page_token=token),
            metadata=registry.metadata,
        )

    first = page("")
    # Between pages: one borrower already listed changes, a new one comes, one not yet
    # listed is deleted. The feed after the cursor has all three.
    update_email(registry, mine[0], "etter@example.org")
    create(registry, new_borrower("N000002521"))
    delete(registry, mine[5], DECEASED)
    second = page(first.next_page_token)
    third = page(second.next_page_token)

    assert [len(p.borrowers) for p in (first, second, third)] == [3, 3, 1]
    assert first.next_page_token and second.next_page_token
    assert third.next_page_token == ""
    assert first.cursor == second.cursor == third.cursor > 0
    listed = [b.card_number for p in (first, second, third) for b in p.borrowers]
    # Oldest first; a borrower deleted before its page is not on it, a new one may be.
    assert listed == [*mine[:5], mine[6], "N000002521"]
    for borrower in first.borrowers:
        assert borrower.view == borrower_pb2.BORROWER_VIEW_FULL
    assert first.borrowers[1] == get(registry, card_number=first.borrowers[1].card_number)
    assert third.borrowers[0] == get(registry, card_number="N000002521")

    after, cursor = read_feed(registry, first.cursor)
    assert summary(after) == [
        ("CHANGE_KIND_UPDATED", mine[0]),
        ("CHANGE_KIND_CREATED", "N000002521"),
        ("CHANGE_KIND_DELETED", mine[5]),
    ]
    assert after[0].borrower.email == "etter@example.org"
    # A new sync starts at the feed's present position, with the same borrowers.
    again = registry.stub.ListAffiliatedBorrowers(
        pb.ListAffiliatedBorrowersRequest(page_size=1000), metadata=registry.metadata
    )
    assert again.cursor == cursor
    assert [b.card_number for b in again.borrowers] == listed
    assert again.next_page_token == ""


# --- WatchChanges ----------------------------------------------------------------------------


def test_watch_replays_then_delivers_live_each_library_its_own_kind(registry: Registry) -> None:
    bergen = registry.as_library(BERGEN)
    nid = national_id()
    create(registry, new_borrower("N000002601", national_id=nid))
    update_email(registry, "N000002601", "en@example.org")
    create(bergen, new_borrower("N000002602"))
    oslo_watch, bergen_watch = Watch(registry), Watch(bergen)
    try:
        replayed = oslo_watch.changes(2)
        listed = read_feed(registry)[0]
        assert bergen_watch.changes(1)[0].borrower.card_number == "N000002602"

        affiliate(bergen, "N000002601", nid)
        live_oslo, live_bergen = oslo_watch.changes(1), bergen_watch.changes(1)
        update_email(bergen, "N000002601", "to@example.org")
        later_oslo, later_bergen = oslo_watch.changes(1), bergen_watch.changes(1)
        quiet = oslo_watch.quiet(0.3) + bergen_watch.quiet(0.1)
    finally:
        oslo_watch.cancel()
        bergen_watch.cancel()

    assert summary(replayed) == [
        ("CHANGE_KIND_CREATED", "N000002601"),
        ("CHANGE_KIND_UPDATED", "N000002601"),
    ]
    # Replayed changes carry the view as it is when read, as ListChanges does.
    assert replayed == listed
    assert summary(live_oslo) == [("CHANGE_KIND_UPDATED", "N000002601")]
    assert summary(live_bergen) == [("CHANGE_KIND_AFFILIATED", "N000002601")]
    assert live_oslo[0].sequence == live_bergen[0].sequence
    assert summary(later_oslo) == summary(later_bergen) == [("CHANGE_KIND_UPDATED", "N000002601")]
    assert later_bergen[0].borrower == get(bergen, card_number="N000002601")
    assert quiet == []
    whole = read_feed(registry)[0]
    assert [(c.sequence, c.kind) for c in replayed + live_oslo + later_oslo] == [
        (c.sequence, c.kind) for c in whole
    ]


def test_an_idle_stream_gets_heartbeats_with_the_feed_position(
    servers: Servers, connect: Callable[[ServerThread], Registry]
) -> None:
    server = servers.start(feed_heartbeat_seconds=0.2)
    oslo = connect(server)
    bergen = oslo.as_library(BERGEN)
    create(oslo, new_borrower("N000002611"))
    watch = Watch(oslo)
    try:
        assert watch.changes(1)[0].sequence == 1
        started = time.monotonic()
        first = watch.heartbeat(timeout=3)
        waited = time.monotonic() - started
        for number in range(2, 5):
            create(bergen, new_borrower(f"N00000261{number}"))  # not Oslo's
        deadline = time.monotonic() + 5
        beat = watch.heartbeat(timeout=3)
        while beat.cursor < 4 and time.monotonic() < deadline:
            beat = watch.heartbeat(timeout=3)
    finally:
        watch.cancel()

    assert 0.1 < waited < 2.0
    assert first.cursor == 1
    assert abs(first.time.ToDatetime(dt.UTC) - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=30)
    assert beat.cursor == 4
    # Resuming from a heartbeat's cursor skips only other libraries' entries.
    assert list_page(oslo, beat.cursor) == pb.ListChangesResponse(cursor=4, more=False)


def test_a_stream_resumed_from_the_last_sequence_gets_every_change_once_in_order(
    registry: Registry,
) -> None:
    cards = [f"N00000262{n}" for n in range(10)]
    for card in cards[:4]:
        create(registry, new_borrower(card))
    first = Watch(registry)
    received = first.changes(2)
    first.cancel()
    # While away: more changes, for this library and another.
    for card in cards[4:7]:
        create(registry, new_borrower(card))
    create(registry.as_library(BERGEN), new_borrower("N000002630"))
    update_email(registry, cards[0], "borte@example.org")

    second = Watch(registry, received[-1].sequence)
    try:
        received += second.changes(6)
        for card in cards[7:]:
            create(registry, new_borrower(card))
        received += second.changes(3)
        assert second.quiet(0.3) == []
    finally:
        second.cancel()

    sequences = [c.sequence for c in received]
    assert sequences == sorted(set(sequences))
    assert summary(received) == [
        *[("CHANGE_KIND_CREATED", card) for card in cards[:7]],
        ("CHANGE_KIND_UPDATED", cards[0]),
        *[("CHANGE_KIND_CREATED", card) for card in cards[7:]],
    ]
    assert sequences == [c.sequence for c in read_feed(registry)[0]]


def test_a_stream_on_one_server_gets_changes_committed_through_another(
    servers: Servers, connect: Callable[[ServerThread], Registry]
) -> None:
    writer = servers.start(feed_poll_seconds=0.05)
    follower = servers.start(feed_poll_seconds=0.05)
    through_writer, through_follower = connect(writer), connect(follower)
    create(through_writer, new_borrower("N000002641"))
    watch = Watch(through_follower)
    try:
        replayed = watch.changes(1)
        create(through_writer, new_borrower("N000002642"))
        update_email(through_writer, "N000002641", "annen@example.org")
        live = watch.changes(2, timeout=5)
    finally:
        watch.cancel()

    assert summary(replayed + live) == [
        ("CHANGE_KIND_CREATED", "N000002641"),
        ("CHANGE_KIND_CREATED", "N000002642"),
        ("CHANGE_KIND_UPDATED", "N000002641"),
    ]
    assert live[1].borrower.email == "annen@example.org"
    assert live[1] == read_feed(through_writer)[0][-1]


def test_a_stream_that_falls_behind_its_buffer_catches_up_from_the_database(
    servers: Servers, connect: Callable[[ServerThread], Registry]
) -> None:
    # Changes committed through another server arrive at the stream's server in one polled
    # batch, more than its buffer of 2 holds: the stream catches up from the database instead.
    writer = servers.start(feed_poll_seconds=0.05)
    follower = servers.start(feed_poll_seconds=0.5, feed_stream_buffer=2)
    through_writer, through_follower = connect(writer), connect(follower)
    create(through_writer, new_borrower("N000002651"))
    watch = Watch(through_follower)
    try:
        replayed = watch.changes(1)
        cards = [f"N00000266{n}" for n in range(10)]
        for card in cards:
            create(through_writer, new_borrower(card))
        live = watch.changes(10, timeout=10)
        extra = watch.quiet(1.0)
    finally:
        watch.cancel()

    assert summary(replayed + live) == [
        ("CHANGE_KIND_CREATED", card) for card in ["N000002651", *cards]
    ]
    assert extra == []
    assert [c.sequence for c in replayed + live] == [
        c.sequence for c in read_feed(through_writer)[0]
    ]


# --- Retention -------------------------------------------------------------------------------


def test_compacted_entries_need_a_resync_from_the_full_sync_cursor(
    registry: Registry, server: ServerThread, admin: Admin
) -> None:
    url = server.config.database_url
    for number in range(1, 5):
        create(registry, new_borrower(f"N00000270{number}"))
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    sql(url, update(FeedEntryRow).where(FeedEntryRow.sequence <= 3).values(occurred_at=long_ago))
    create(registry, new_borrower("N000002705"))

    report = admin.json("maintenance")

    assert report["feed_entries_compacted"] == 3
    assert feed_head(url) == (5, 3)
    assert [s for s, _ in stored_entries(url, OSLO)] == [4, 5]
    for after in (1, 2):
        with pytest.raises(grpc.RpcError) as listed:
            list_page(registry, after)
        with pytest.raises(grpc.RpcError) as watched:
            Watch(registry, after).next_event()
        for raised in (listed, watched):
            assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert error_details(raised.value)[0] == "RESYNC_REQUIRED"
    # From the compacted point on the feed is whole.
    assert [c.sequence for c in read_feed(registry, 3)[0]] == [4, 5]
    # A full sync, and the feed from its cursor.
    sync = registry.stub.ListAffiliatedBorrowers(
        pb.ListAffiliatedBorrowersRequest(), metadata=registry.metadata
    )
    assert [b.card_number for b in sync.borrowers] == [f"N00000270{n}" for n in range(1, 6)]
    assert sync.cursor == 5
    create(registry, new_borrower("N000002706"))
    assert summary(read_feed(registry, sync.cursor)[0]) == [("CHANGE_KIND_CREATED", "N000002706")]
    watch = Watch(registry, sync.cursor)
    try:
        assert summary(watch.changes(1)) == [("CHANGE_KIND_CREATED", "N000002706")]
    finally:
        watch.cancel()
    # Nothing newer than the retention goes: a second run compacts nothing.
    assert admin.json("maintenance")["feed_entries_compacted"] == 0


def test_a_tiny_retention_compacts_everything_older(
    registry: Registry, server: ServerThread, admin: Admin
) -> None:
    url = server.config.database_url
    create(registry, new_borrower("N000002711"))
    create(registry, new_borrower("N000002712"))
    time.sleep(0.2)

    # 0.000001 days is under a tenth of a second.
    report = admin.json("maintenance", "--feed-retention-days", "0.000001")

    assert report["feed_entries_compacted"] == 2
    assert feed_head(url) == (2, 2)
    with pytest.raises(grpc.RpcError) as raised:
        list_page(registry, 1)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(raised.value)[0] == "RESYNC_REQUIRED"
    assert list_page(registry, 2) == pb.ListChangesResponse(cursor=2, more=False)
