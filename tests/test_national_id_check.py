"""The harness's check that no answer carries a national id: it finds one at any depth, in a
single message or a list, and names the field, never the value."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message

from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from register_harness import assert_no_national_id

NID = "01019012345"


def test_an_answer_without_a_national_id_passes() -> None:
    assert_no_national_id(
        pb.UpdateBorrowerResponse(borrower=borrower_pb2.Borrower(card_number="N1"))
    )
    assert_no_national_id(pb.ListCardNumberReservationsResponse())


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        (pb.UpdateBorrowerResponse(borrower=borrower_pb2.Borrower(national_id=NID)), "borrower"),
        (
            pb.ListChangesResponse(
                changes=[
                    pb.Change(borrower=borrower_pb2.Borrower(card_number="N1")),
                    pb.Change(borrower=borrower_pb2.Borrower(national_id=NID)),
                ]
            ),
            "changes[1].borrower",
        ),
        (
            pb.WatchChangesResponse(
                change=pb.Change(borrower=borrower_pb2.Borrower(national_id=NID))
            ),
            "change.borrower",
        ),
    ],
    ids=["one borrower", "in a list", "in a stream's message"],
)
def test_a_national_id_anywhere_in_an_answer_fails_naming_the_field(
    answer: Message, field: str
) -> None:
    with pytest.raises(AssertionError) as failed:
        assert_no_national_id(answer)

    assert f"{field}.national_id" in str(failed.value)
    assert NID not in str(failed.value)
