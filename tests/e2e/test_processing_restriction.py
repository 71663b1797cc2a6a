"""A borrower's restriction of processing (GDPR art. 18) end to end: set in SelfService, it
leaves only the home library the full view (in answers, lists and the change feed) and the
right to change the record, and lets no library newly affiliate the borrower; lifting it (with
two factors) gives everything back."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from feed_harness import Watch, read_feed
from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr.selfservice.v1 import selfservice_pb2 as ss_pb
from register_harness import (
    BERGEN,
    TROMSO,
    Registry,
    error_details,
    get,
    national_id,
)
from selfservice_harness import Portal, borrower_with_password

FULL, BASIC = borrower_pb2.BORROWER_VIEW_FULL, borrower_pb2.BORROWER_VIEW_BASIC
CARD = "N000185001"


def affiliate(registry: Registry, number: str) -> borrower_pb2.Borrower:
    answer: pb.AffiliateBorrowerResponse = registry.stub.AffiliateBorrower(
        pb.AffiliateBorrowerRequest(card_number=CARD, national_id=number),
        metadata=registry.metadata,
    )
    return answer.borrower


def restrict(portal: Portal) -> None:
    portal.stub.RestrictProcessing(ss_pb.RestrictProcessingRequest(), metadata=portal.metadata)


@pytest.fixture
def restricted(registry: Registry, portal: Portal) -> str:
    """A borrower of Oslo, affiliated with Bergen, who has restricted processing; the national
    id."""
    number = national_id()
    borrower_with_password(registry, CARD, national_id=number, email="kari@example.org")
    affiliate(registry.as_library(BERGEN), number)
    portal.log_in(CARD)
    restrict(portal)
    return number


def test_only_the_home_library_sees_the_full_view(registry: Registry, restricted: str) -> None:
    home = get(registry, card_number=CARD)
    other = get(registry.as_library(BERGEN), card_number=CARD)

    assert (home.view, home.processing_restricted, home.email) == (FULL, True, "kari@example.org")
    assert (other.view, other.email) == (BASIC, "")
    listed = registry.as_library(BERGEN).stub.ListAffiliatedBorrowers(
        pb.ListAffiliatedBorrowersRequest(page_size=100),
        metadata=registry.as_library(BERGEN).metadata,
    )
    assert [(b.card_number, b.view) for b in listed.borrowers] == [(CARD, BASIC)]


def test_the_feed_gives_the_other_libraries_the_basic_view(
    registry: Registry, restricted: str
) -> None:
    home_changes, _ = read_feed(registry)
    other_changes, _ = read_feed(registry.as_library(BERGEN))

    assert [c.borrower.view for c in home_changes if c.borrower.card_number == CARD][-1] == FULL
    last = [c for c in other_changes if c.borrower.card_number == CARD][-1]
    assert (last.kind, last.borrower.view, last.borrower.email) == (
        pb.CHANGE_KIND_UPDATED,
        BASIC,
        "",
    )


def test_only_the_home_library_changes_the_record(registry: Registry, restricted: str) -> None:
    bergen = registry.as_library(BERGEN)
    before = get(registry, card_number=CARD)

    with pytest.raises(grpc.RpcError) as refused:
        bergen.stub.UpdateBorrower(
            pb.UpdateBorrowerRequest(
                borrower=borrower_pb2.Borrower(
                    card_number=CARD, etag=before.etag, email="ny@example.org"
                ),
                update_mask=FieldMask(paths=["email"]),
            ),
            metadata=bergen.metadata,
        )

    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert error_details(refused.value)[0] == "PROCESSING_RESTRICTED"
    assert get(registry, card_number=CARD) == before


def test_no_library_is_newly_affiliated(registry: Registry, restricted: str) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        affiliate(registry.as_library(TROMSO), restricted)

    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(refused.value)[0] == "PROCESSING_RESTRICTED"
    assert [a.library_number for a in get(registry, card_number=CARD).affiliations] == [
        registry.library,
        BERGEN,
    ]
    # A library affiliated before still proves the person at its desk: the basic view.
    assert affiliate(registry.as_library(BERGEN), restricted).view == BASIC


def test_restricting_again_changes_nothing(
    registry: Registry, portal: Portal, restricted: str
) -> None:
    before = get(registry, card_number=CARD)

    restrict(portal)

    assert get(registry, card_number=CARD).etag == before.etag


def test_lifting_needs_two_factors_and_gives_everything_back(
    registry: Registry, portal: Portal, restricted: str
) -> None:
    with pytest.raises(grpc.RpcError) as one_factor:
        portal.stub.LiftRestriction(ss_pb.LiftRestrictionRequest(), metadata=portal.metadata)
    assert one_factor.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert error_details(one_factor.value)[0] == "TWO_FACTORS_REQUIRED"
    portal.enroll()

    portal.stub.LiftRestriction(ss_pb.LiftRestrictionRequest(), metadata=portal.metadata)

    other = get(registry.as_library(BERGEN), card_number=CARD)
    assert (other.view, other.processing_restricted, other.email) == (
        FULL,
        False,
        "kari@example.org",
    )
    assert affiliate(registry.as_library(TROMSO), restricted).view == FULL


def test_watching_libraries_get_the_restriction_live_in_their_own_view(
    registry: Registry, portal: Portal
) -> None:
    number = national_id()
    borrower_with_password(registry, CARD, national_id=number, email="kari@example.org")
    affiliate(registry.as_library(BERGEN), number)
    _, home_cursor = read_feed(registry)
    _, other_cursor = read_feed(registry.as_library(BERGEN))
    home = Watch(registry, home_cursor)
    other = Watch(registry.as_library(BERGEN), other_cursor)
    try:
        portal.log_in(CARD)
        restrict(portal)

        (to_home,) = home.changes(1)
        (to_other,) = other.changes(1)
    finally:
        home.call.cancel()
        other.call.cancel()

    assert (to_home.kind, to_home.borrower.view, to_home.borrower.processing_restricted) == (
        pb.CHANGE_KIND_UPDATED,
        FULL,
        True,
    )
    assert (to_other.kind, to_other.borrower.view, to_other.borrower.email) == (
        pb.CHANGE_KIND_UPDATED,
        BASIC,
        "",
    )
