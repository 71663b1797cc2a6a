"""A borrower changes their email or mobile phone in SelfService end to end: a one-time code
goes to the new one (a real SMTP server, a real local SMS gateway), and only that code makes
it the record's; wrong codes, too many codes and a channel the register lacks are refused."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from mail_harness import MailServer
from nlr.selfservice.v1 import selfservice_pb2 as pb
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import (
    ClientCertificates,
    Registry,
    Servers,
    ServerThread,
    error_details,
    get,
)
from selfservice_harness import Portal, borrower_with_password, portal_client
from sms_fake import SmsGatewayFake

SENDER = "ikke-svar@nlr.example"
TOKEN = "sms-gateway-test-token"
EMAIL, MOBILE = pb.CONTACT_KIND_EMAIL, pb.CONTACT_KIND_MOBILE_PHONE


@pytest.fixture
def sms() -> Iterator[SmsGatewayFake]:
    with SmsGatewayFake(token=TOKEN) as gateway:
        yield gateway


@pytest.fixture
def sending_server(
    servers: Servers,
    mail_servers: Callable[..., MailServer],
    sms: SmsGatewayFake,
    tmp_path: Path,
) -> tuple[ServerThread, MailServer]:
    token_file = tmp_path / "sms-token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    mail = mail_servers()
    server = servers.start(
        smtp_host="127.0.0.1",
        smtp_port=mail.port,
        smtp_sender=SENDER,
        sms_url=sms.url,
        sms_token_file=str(token_file),
    )
    return server, mail


@pytest.fixture
def sender_portal(
    sending_server: tuple[ServerThread, MailServer],
    pki: DevPkiPaths,
    certificates: ClientCertificates,
) -> Iterator[Portal]:
    with portal_client(sending_server[0].target, pki, certificates) as stub:
        yield Portal(stub)


@pytest.fixture
def sender_registry(
    sending_server: tuple[ServerThread, MailServer], pki: DevPkiPaths
) -> Iterator[Registry]:
    from nlr.registry.v1 import registry_service_pb2_grpc
    from register_harness import OSLO, client_channel

    with client_channel(sending_server[0].target, pki) as channel:
        yield Registry(registry_service_pb2_grpc.BorrowerRegistryStub(channel), OSLO).as_library(
            OSLO
        )


def code_in(text: str) -> str:
    found = re.search(r"\b(\d{6})\b", text)
    assert found, text
    return found.group(1)


def ask(portal: Portal, **contact: str) -> pb.UpdateMyContactResponse:
    answer: pb.UpdateMyContactResponse = portal.stub.UpdateMyContact(
        pb.UpdateMyContactRequest(**contact), metadata=portal.metadata
    )
    return answer


def confirm(portal: Portal, kind: int, code: str) -> pb.ConfirmMyContactResponse:
    answer: pb.ConfirmMyContactResponse = portal.stub.ConfirmMyContact(
        pb.ConfirmMyContactRequest(kind=kind, code=code),  # type: ignore[arg-type]
        metadata=portal.metadata,
    )
    return answer


def refused(error: object) -> tuple[grpc.StatusCode, str]:
    assert isinstance(error, grpc.RpcError)
    return error.code(), error_details(error)[0]


def test_a_new_email_becomes_the_records_with_the_code_mailed_to_it(
    sender_registry: Registry,
    sender_portal: Portal,
    sending_server: tuple[ServerThread, MailServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    borrower_with_password(sender_registry, "N000186001", email="gammel@example.org")
    sender_portal.log_in("N000186001")
    sender_portal.enroll()

    ask(sender_portal, email="ny.adresse@example.org")

    mail = sending_server[1]
    (_, recipients, message) = mail.mailbox.messages[-1]
    assert recipients == ["ny.adresse@example.org"]
    code = code_in(message.get_content())
    assert get(sender_registry, card_number="N000186001").email == "gammel@example.org"
    answer = confirm(sender_portal, EMAIL, code)
    assert answer.email == "ny.adresse@example.org"
    assert get(sender_registry, card_number="N000186001").email == "ny.adresse@example.org"
    with pytest.raises(grpc.RpcError) as spent:
        confirm(sender_portal, EMAIL, code)
    assert refused(spent.value) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_CHANGE_WAITING")
    # The register's own log lines (the test's SMTP server logs what it receives).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("nlr_server"))
    assert "ny.adresse@example.org" not in logged and code not in logged


def test_a_new_mobile_gets_its_code_by_sms(
    sender_registry: Registry, sender_portal: Portal, sms: SmsGatewayFake
) -> None:
    borrower_with_password(sender_registry, "N000186002")
    sender_portal.log_in("N000186002")
    sender_portal.enroll()

    ask(sender_portal, mobile_phone="912 34 567")

    (sent,) = sms.state.messages
    assert sent["to"] == "+4791234567"
    answer = confirm(sender_portal, MOBILE, code_in(sent["message"]))
    assert answer.mobile_phone == "+4791234567"
    assert get(sender_registry, card_number="N000186002").mobile_phone == "+4791234567"


def test_five_wrong_codes_drop_the_change(
    sender_registry: Registry, sender_portal: Portal, sms: SmsGatewayFake
) -> None:
    before = borrower_with_password(sender_registry, "N000186003").mobile_phone
    sender_portal.log_in("N000186003")
    sender_portal.enroll()
    ask(sender_portal, mobile_phone="+4791234568")
    right = code_in(sms.state.messages[-1]["message"])
    wrong = f"{(int(right) + 1) % 10**6:06d}"

    for _ in range(5):
        with pytest.raises(grpc.RpcError) as bad:
            confirm(sender_portal, MOBILE, wrong)
        assert refused(bad.value) == (grpc.StatusCode.UNAUTHENTICATED, "CODE_INVALID")
    with pytest.raises(grpc.RpcError) as dropped:
        confirm(sender_portal, MOBILE, right)

    assert refused(dropped.value) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_CHANGE_WAITING")
    assert get(sender_registry, card_number="N000186003").mobile_phone == before


def test_at_most_five_codes_an_hour(
    sender_registry: Registry, sender_portal: Portal, sms: SmsGatewayFake
) -> None:
    borrower_with_password(sender_registry, "N000186004")
    sender_portal.log_in("N000186004")
    sender_portal.enroll()
    for _ in range(5):
        ask(sender_portal, mobile_phone="+4791234569")

    with pytest.raises(grpc.RpcError) as flood:
        ask(sender_portal, mobile_phone="+4791234569")

    assert refused(flood.value) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_CODES")
    assert len(sms.state.messages) == 5


def test_a_gateway_that_fails_is_unavailable(
    sender_registry: Registry, sender_portal: Portal, sms: SmsGatewayFake
) -> None:
    borrower_with_password(sender_registry, "N000186005")
    sender_portal.log_in("N000186005")
    sender_portal.enroll()
    sms.state.status = 503

    with pytest.raises(grpc.RpcError) as failed:
        ask(sender_portal, mobile_phone="+4791234560")

    assert refused(failed.value) == (grpc.StatusCode.UNAVAILABLE, "CODE_NOT_SENT")
    assert "+4791234560" not in (failed.value.details() or "")


@pytest.mark.parametrize(
    ("contact", "field"),
    [
        ({"email": "not an address"}, "email"),
        ({"mobile_phone": "12"}, "mobile_phone"),
        ({}, "contact"),
    ],
)
def test_a_malformed_contact_names_its_field(
    sender_registry: Registry, sender_portal: Portal, contact: dict[str, str], field: str
) -> None:
    borrower_with_password(sender_registry, "N000186006")
    sender_portal.log_in("N000186006")
    sender_portal.enroll()

    with pytest.raises(grpc.RpcError) as bad:
        ask(sender_portal, **contact)

    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(bad.value)[1]) == [field]


@pytest.mark.parametrize(
    ("kind", "code", "field"),
    [(0, "123456", "kind"), (EMAIL, "12345", "code"), (EMAIL, "", "code")],
)
def test_a_malformed_confirmation_names_its_field(
    sender_registry: Registry, sender_portal: Portal, kind: int, code: str, field: str
) -> None:
    borrower_with_password(sender_registry, "N000186007")
    sender_portal.log_in("N000186007")
    sender_portal.enroll()

    with pytest.raises(grpc.RpcError) as bad:
        confirm(sender_portal, kind, code)

    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(bad.value)[1]) == [field]


def test_contact_changes_need_two_factors(sender_registry: Registry, sender_portal: Portal) -> None:
    borrower_with_password(sender_registry, "N000186008")
    sender_portal.log_in("N000186008")

    with pytest.raises(grpc.RpcError) as one_factor:
        ask(sender_portal, email="ny@example.org")

    assert refused(one_factor.value) == (grpc.StatusCode.PERMISSION_DENIED, "TWO_FACTORS_REQUIRED")


def test_a_register_without_a_channel_says_so(registry: Registry, portal: Portal) -> None:
    borrower_with_password(registry, "N000186009")
    portal.log_in("N000186009")
    portal.enroll()

    for contact in ({"email": "ny@example.org"}, {"mobile_phone": "+4791234561"}):
        with pytest.raises(grpc.RpcError) as missing:
            ask(portal, **contact)
        assert refused(missing.value) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "CHANNEL_NOT_CONFIGURED",
        )
