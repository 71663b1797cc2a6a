"""A borrower's own data end to end: who has seen them (the access log from the audit trail,
paged) and the export of everything held, each with two factors."""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf import json_format

from nlr.registry.v1 import borrower_pb2
from nlr.selfservice.v1 import selfservice_pb2 as pb
from nlr_server.store.models import AuditEventRow, table_of
from register_harness import (
    BERGEN,
    OSLO,
    TEST_VENDOR,
    Registry,
    error_details,
    get,
    national_id,
    wait_for_audit_rows,
)
from selfservice_harness import Portal, borrower_with_password

AUDIT = table_of(AuditEventRow)


def access_log(portal: Portal, page_size: int = 0, token: str = "") -> pb.ListMyAccessLogResponse:
    answer: pb.ListMyAccessLogResponse = portal.stub.ListMyAccessLog(
        pb.ListMyAccessLogRequest(page_size=page_size, page_token=token), metadata=portal.metadata
    )
    return answer


def seen_by_bergen(registry: Registry, prepared_database: str, card_number: str) -> None:
    """Bergen's library system reads the borrower (the basic view), and the trail has it."""
    get(registry.as_library(BERGEN), card_number=card_number)
    wait_for_audit_rows(
        prepared_database,
        1,
        AUDIT.c.id,
        where=(AUDIT.c.card_number == card_number) & (AUDIT.c.library_number == BERGEN),
    )


def test_the_access_log_shows_a_librarys_earlier_read_with_its_name_and_vendor(
    registry: Registry, portal: Portal, prepared_database: str
) -> None:
    borrower_with_password(registry, "N000183001")
    seen_by_bergen(registry, prepared_database, "N000183001")
    portal.log_in("N000183001")
    portal.enroll()

    entries = access_log(portal).entries

    bergen = [e for e in entries if e.library.library_number == BERGEN]
    assert [(e.action, e.outcome, e.actor_kind, e.library.name, e.vendor) for e in bergen] == [
        (
            "GetBorrower",
            "OK",
            borrower_pb2.ACTOR_KIND_LIBRARY,
            "Test Bergen bibliotek",
            TEST_VENDOR,
        )
    ]
    # Newest first: the borrower's own enrolment, through the portal, before Bergen's read.
    actions = [e.action for e in entries]
    assert actions.index("ConfirmTotp") < actions.index("GetBorrower")
    own = entries[actions.index("ConfirmTotp")]
    assert own.actor_kind == borrower_pb2.ACTOR_KIND_BORROWER and own.vendor == TEST_VENDOR
    times = [e.time.ToDatetime() for e in entries]
    assert times == sorted(times, reverse=True)


def test_the_access_log_is_paged_without_gaps_or_repeats(
    registry: Registry, portal: Portal, prepared_database: str
) -> None:
    borrower_with_password(registry, "N000183002")
    for _ in range(3):
        seen_by_bergen(registry, prepared_database, "N000183002")
    portal.log_in("N000183002")
    portal.enroll()

    # The listings are audited too: each one's own entry shows in the listings after it.
    def earlier(entries: list[pb.AccessLogEntry]) -> list[str]:
        return [json_format.MessageToJson(e) for e in entries if e.action != "ListMyAccessLog"]

    whole = earlier(list(access_log(portal, page_size=200).entries))
    pages: list[pb.AccessLogEntry] = []
    token = ""
    while True:
        page = access_log(portal, page_size=2, token=token)
        assert len(page.entries) <= 2
        pages.extend(page.entries)
        token = page.next_page_token
        if not token:
            break

    assert len(whole) >= 6
    assert earlier(pages) == whole


@pytest.mark.parametrize(
    ("page_size", "token", "field"),
    [(201, "", "page_size"), (-1, "", "page_size"), (0, "abc", "page_token")],
)
def test_a_bad_page_request_names_its_field(
    registry: Registry, portal: Portal, page_size: int, token: str, field: str
) -> None:
    borrower_with_password(registry, "N000183003")
    portal.log_in("N000183003")
    portal.enroll()

    with pytest.raises(grpc.RpcError) as refused:
        access_log(portal, page_size, token)

    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(refused.value)[1]) == [field]


def test_the_access_log_and_the_export_need_two_factors(registry: Registry, portal: Portal) -> None:
    borrower_with_password(registry, "N000183004")
    portal.log_in("N000183004")

    with pytest.raises(grpc.RpcError) as log:
        portal.stub.ListMyAccessLog(pb.ListMyAccessLogRequest(), metadata=portal.metadata)
    with pytest.raises(grpc.RpcError) as export:
        portal.stub.ExportMyData(pb.ExportMyDataRequest(), metadata=portal.metadata)

    for refused in (log.value, export.value):
        assert refused.code() is grpc.StatusCode.PERMISSION_DENIED
        assert error_details(refused)[0] == "TWO_FACTORS_REQUIRED"


def test_the_export_holds_every_field_and_the_access_log_but_never_the_national_id(
    registry: Registry, portal: Portal, prepared_database: str
) -> None:
    number = national_id()
    borrower_with_password(
        registry,
        "N000183005",
        national_id=number,
        email="kari@example.org",
        mobile_phone="+4791234567",
    )
    seen_by_bergen(registry, prepared_database, "N000183005")
    portal.log_in("N000183005")
    portal.enroll()

    answer = portal.stub.ExportMyData(pb.ExportMyDataRequest(), metadata=portal.metadata)

    assert answer.media_type == "application/json"
    assert answer.file_name == "bibliotekkortet-N000183005.json"
    document = json.loads(answer.document.decode("utf-8"))
    assert document["format"] == "nlr-export/1"
    held = document["borrower"]
    # Every field of the full view a library gets, and the national id besides.
    full = json_format.MessageToDict(
        get(registry, card_number="N000183005"), preserving_proto_field_name=True
    )
    assert set(held) == set(full)
    assert number not in answer.document.decode("utf-8")
    assert (held["email"], held["mobile_phone"]) == ("kari@example.org", "+4791234567")
    assert document["libraries"] == [{"library_number": OSLO, "name": "Test Oslo bibliotek"}]
    assert document["two_factor"] == {"totp_enabled": True, "recovery_codes_left": 10}
    bergen = [
        e for e in document["access_log"] if e.get("library", {}).get("library_number") == BERGEN
    ]
    assert [e["action"] for e in bergen] == ["GetBorrower"]
