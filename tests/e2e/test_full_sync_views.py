"""The full sync and the feed load many borrowers at once: each must still come with its own
guardian links, identities and affiliations, exactly as GetBorrower shows it."""

from __future__ import annotations

import datetime as dt

from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from register_harness import Registry, create, get, national_id, new_borrower

GUARDIAN, OTHER_ADULT, FIRST_CHILD, SECOND_CHILD = (
    "N000009001",
    "N000009002",
    "N000009003",
    "N000009004",
)


def child_born(years_ago: int) -> str:
    today = dt.date.today()
    return national_id(today.replace(year=today.year - years_ago, day=1))


def test_each_borrower_in_a_page_has_its_own_links_and_identities(registry: Registry) -> None:
    create(registry, new_borrower(GUARDIAN))
    create(registry, new_borrower(OTHER_ADULT))
    for card in (FIRST_CHILD, SECOND_CHILD):
        registry.stub.CreateBorrower(
            pb.CreateBorrowerRequest(
                borrower=new_borrower(card, national_id=child_born(9)),
                guardian_card_number=GUARDIAN,
            ),
            metadata=registry.metadata,
        )
    registry.stub.LinkGuardian(
        pb.LinkGuardianRequest(card_number=SECOND_CHILD, guardian_card_number=OTHER_ADULT),
        metadata=registry.metadata,
    )
    registry.stub.AddIdentity(
        pb.AddIdentityRequest(
            card_number=FIRST_CHILD,
            identity=borrower_pb2.Identity(
                kind=borrower_pb2.IDENTITY_KIND_SCHOOL_CARD, value="SK-9003"
            ),
        ),
        metadata=registry.metadata,
    )

    synced = registry.stub.ListAffiliatedBorrowers(
        pb.ListAffiliatedBorrowersRequest(page_size=10), metadata=registry.metadata
    ).borrowers
    changes = registry.stub.ListChanges(
        pb.ListChangesRequest(after=0, page_size=100), metadata=registry.metadata
    ).changes

    by_card = {b.card_number: b for b in synced}
    assert sorted(by_card) == [GUARDIAN, OTHER_ADULT, FIRST_CHILD, SECOND_CHILD]
    for card, borrower in by_card.items():
        assert borrower == get(registry, card_number=card)
    assert [w.card_number for w in by_card[GUARDIAN].wards] == [FIRST_CHILD, SECOND_CHILD]
    assert [g.card_number for g in by_card[SECOND_CHILD].guardians] == [GUARDIAN, OTHER_ADULT]
    assert [i.value for i in by_card[FIRST_CHILD].identities] == ["SK-9003"]
    assert list(by_card[SECOND_CHILD].identities) == []
    # The feed renders the same current views.
    assert {c.borrower.card_number: c.borrower for c in changes} == by_card
