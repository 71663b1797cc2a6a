"""Deletion notices end to end: DeleteBorrower queues one, the server mails it to a real SMTP
server on loopback, retries after refusals, gives up in time, and keeps no personal data."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from mail_harness import MailServer
from nlr.registry.v1 import borrower_pb2, registry_service_pb2_grpc
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr.selfservice.v1 import selfservice_pb2 as ss_pb
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import DeletionNoticeRow
from register_harness import (
    BERGEN,
    OSLO,
    ClientCertificates,
    Registry,
    Servers,
    ServerThread,
    client_channel,
    create,
    error_details,
    get,
    national_id,
    new_borrower,
    sqlite_bytes,
    wait_until,
)
from selfservice_harness import PASSWORD, Portal, portal_client

SENDER = "ikke-svar@nlr.example"
BORROWER_REQUEST = borrower_pb2.DELETION_REASON_BORROWER_REQUEST
DECEASED = borrower_pb2.DELETION_REASON_DECEASED


def start_register(servers: Servers, mail: MailServer, **settings: object) -> ServerThread:
    values: dict[str, object] = dict(
        smtp_host="127.0.0.1",
        smtp_port=mail.port,
        smtp_sender=SENDER,
        notice_poll_seconds=0.05,
        notice_retry_seconds=0.5,
    )
    values.update(settings)
    return servers.start(**values)


@pytest.fixture
def connect(pki: DevPkiPaths) -> Iterator[Callable[[ServerThread], Registry]]:
    channels: list[grpc.Channel] = []

    def registry_of(server: ServerThread) -> Registry:
        channel = client_channel(server.target, pki)
        channels.append(channel)
        stub = registry_service_pb2_grpc.BorrowerRegistryStub(channel)
        return Registry(stub, OSLO).as_library(OSLO)

    yield registry_of
    for channel in channels:
        channel.close()


def delete(registry: Registry, card_number: str, reason: int) -> pb.DeleteBorrowerResponse:
    return registry.stub.DeleteBorrower(
        pb.DeleteBorrowerRequest(card_number=card_number, reason=reason),  # type: ignore[arg-type]
        metadata=registry.metadata,
    )


def create_at_oslo_and_bergen(registry: Registry, card_number: str, **fields: object) -> None:
    """A borrower created at Oslo, then affiliated with Bergen by the national id."""
    nid = national_id()
    create(registry, new_borrower(card_number, national_id=nid, **fields))
    bergen = registry.as_library(BERGEN)
    bergen.stub.AffiliateBorrower(
        pb.AffiliateBorrowerRequest(card_number=card_number, national_id=nid),
        metadata=bergen.metadata,
    )


def outbox(url: str) -> list[dict[str, Any]]:
    """Every row of the outbox, straight from the database."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            table = DeletionNoticeRow.__table__
            rows = connection.execute(select(table).order_by(table.c.id)).mappings().all()
            return [dict(row) for row in rows]
    finally:
        engine.dispose()


def ended(url: str, count: int = 1) -> list[dict[str, Any]]:
    """The outbox once ``count`` notices have been delivered or given up."""
    wait_until(lambda: sum(row["status"] != "pending" for row in outbox(url)) >= count)
    return outbox(url)


PURGED = {"recipient": None, "given_name": None, "family_name": None, "libraries": None}


def bare(row: dict[str, Any]) -> dict[str, Any]:
    """What a row still says about whom it was for: nothing, once it has ended."""
    return {name: row[name] for name in PURGED}


def listed_libraries(message: EmailMessage) -> list[str]:
    body = message.get_content()
    return [line for line in body.splitlines() if line.startswith("  - ")]


def test_borrower_deleted_at_own_request_is_mailed_the_libraries_to_ask_and_nothing_stays(
    servers: Servers,
    mail_servers: Callable[..., MailServer],
    connect: Callable[[ServerThread], Registry],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    mail = mail_servers()
    server = start_register(servers, mail)
    registry = connect(server)
    address = "zyxwq.notice@example.org"
    create_at_oslo_and_bergen(registry, "N000000701", given_name="Zyxwqkari", email=address)

    deleted = delete(registry, "N000000701", BORROWER_REQUEST)

    assert deleted.notification_queued is True
    rows = ended(server.config.database_url)
    assert len(mail.mailbox.messages) == 1
    mail_from, recipients, message = mail.mailbox.messages[0]
    assert (mail_from, recipients) == (SENDER, [address])
    assert message["From"] == SENDER
    assert message["To"].addresses[0].addr_spec == address
    assert message["To"].addresses[0].display_name == "Zyxwqkari Nordmann"
    assert message["Subject"] == (
        "Du er slettet fra Nasjonalt lånerregister / "
        "You have been deleted from the national borrower register"
    )
    assert listed_libraries(message) == [
        "  - Test Oslo bibliotek (biblioteknummer 2030100)",
        "  - Test Bergen bibliotek (biblioteknummer 2460100)",
        "  - Test Oslo bibliotek (library number 2030100)",
        "  - Test Bergen bibliotek (library number 2460100)",
    ]
    assert "N000000701" not in message.get_content()
    assert len(rows) == 1
    assert (rows[0]["status"], rows[0]["attempts"], bare(rows[0])) == ("delivered", 0, PURGED)
    assert rows[0]["ended_at"] is not None
    assert rows[0]["next_attempt_at"] is None
    assert_logs_name_nobody(caplog, address, "Zyxwqkari")
    url = server.config.database_url
    if url.startswith("sqlite"):
        servers.stop(server)
        raw = sqlite_bytes(url)
        assert [v for v in (b"Zyxwqkari", address.encode()) if v in raw] == []


@pytest.mark.parametrize(
    ("reason", "email_address"),
    [(DECEASED, "zyxwq.deceased@example.org"), (BORROWER_REQUEST, "")],
    ids=["deceased", "no-email"],
)
def test_deceased_borrower_or_one_without_email_gets_no_notice(
    servers: Servers,
    mail_servers: Callable[..., MailServer],
    connect: Callable[[ServerThread], Registry],
    reason: int,
    email_address: str,
) -> None:
    mail = mail_servers()
    server = start_register(servers, mail)
    registry = connect(server)
    create_at_oslo_and_bergen(registry, "N000000711", email=email_address)
    create(registry, new_borrower("N000000712", email="control@example.org"))

    deleted = delete(registry, "N000000711", reason)
    assert deleted.notification_queued is False
    assert outbox(server.config.database_url) == []
    # A positive control, queued later: once it has arrived, one for the first would have too.
    assert delete(registry, "N000000712", BORROWER_REQUEST).notification_queued is True
    rows = ended(server.config.database_url)

    assert [recipients for _, recipients, _ in mail.mailbox.messages] == [["control@example.org"]]
    assert [(row["status"], bare(row)) for row in rows] == [("delivered", PURGED)]


def test_refused_notice_is_retried_with_growing_waits_and_then_delivered(
    servers: Servers,
    mail_servers: Callable[..., MailServer],
    connect: Callable[[ServerThread], Registry],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    mail = mail_servers(refusals=2)
    server = start_register(servers, mail, notice_retry_seconds=0.5)
    registry = connect(server)
    create_at_oslo_and_bergen(registry, "N000000721", email="zyxwq.retry@example.org")

    assert delete(registry, "N000000721", BORROWER_REQUEST).notification_queued is True
    rows = ended(server.config.database_url)

    attempts = mail.mailbox.attempts
    assert len(attempts) == 3
    first_wait, second_wait = attempts[1] - attempts[0], attempts[2] - attempts[1]
    # 0.5 s after the first refusal, then twice that, each counted from the refusal (a slow
    # connection cannot shorten a wait); the upper bounds leave room for a busy machine.
    assert 0.49 <= first_wait < 0.99
    assert 0.99 <= second_wait < 2.5
    assert [recipients for _, recipients, _ in mail.mailbox.messages] == [
        ["zyxwq.retry@example.org"]
    ]
    assert [(row["status"], row["attempts"], bare(row)) for row in rows] == [
        ("delivered", 2, PURGED)
    ]
    notice_id = rows[0]["id"]
    warnings = [r.getMessage() for r in caplog.records if r.name.endswith("deletion_notices")]
    assert warnings[:2] == [
        f"deletion notice {notice_id} not delivered (attempt 1), will retry: "
        "SMTPDataError with SMTP 451",
        f"deletion notice {notice_id} not delivered (attempt 2), will retry: "
        "SMTPDataError with SMTP 451",
    ]
    assert_logs_name_nobody(caplog, "zyxwq.retry@example.org", "Kari")


def test_notice_waits_for_a_mail_server_that_is_down_at_first(
    servers: Servers,
    mail_servers: Callable[..., MailServer],
    connect: Callable[[ServerThread], Registry],
) -> None:
    mail = mail_servers(started=False)
    server = start_register(servers, mail, notice_retry_seconds=0.2)
    registry = connect(server)
    create_at_oslo_and_bergen(registry, "N000000731", email="zyxwq.later@example.org")

    assert delete(registry, "N000000731", BORROWER_REQUEST).notification_queued is True
    wait_until(lambda: outbox(server.config.database_url)[0]["attempts"] >= 2)
    assert mail.mailbox.messages == []
    mail.start()
    rows = ended(server.config.database_url)

    assert [recipients for _, recipients, _ in mail.mailbox.messages] == [
        ["zyxwq.later@example.org"]
    ]
    assert [(row["status"], bare(row)) for row in rows] == [("delivered", PURGED)]
    assert rows[0]["attempts"] >= 2


def test_notice_refused_until_the_give_up_time_is_purged_and_only_its_id_logged(
    servers: Servers,
    mail_servers: Callable[..., MailServer],
    connect: Callable[[ServerThread], Registry],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    mail = mail_servers(refusals=1_000_000)
    server = start_register(
        servers, mail, notice_retry_seconds=0.1, notice_give_up_hours=1.0 / 3600
    )
    registry = connect(server)
    create_at_oslo_and_bergen(registry, "N000000741", email="zyxwq.never@example.org")

    assert delete(registry, "N000000741", BORROWER_REQUEST).notification_queued is True
    rows = ended(server.config.database_url)

    assert [(row["status"], bare(row)) for row in rows] == [("given_up", PURGED)]
    assert rows[0]["next_attempt_at"] is None
    assert rows[0]["ended_at"] - rows[0]["created_at"] >= dt.timedelta(seconds=1)
    assert rows[0]["attempts"] >= 2
    assert mail.mailbox.messages == []
    tried = len(mail.mailbox.attempts)
    time.sleep(0.5)
    assert len(mail.mailbox.attempts) == tried, "a given-up notice is not tried again"
    assert f"deletion notice {rows[0]['id']} given up undelivered, its personal data purged" in [
        r.getMessage() for r in caplog.records
    ]
    assert_logs_name_nobody(caplog, "zyxwq.never@example.org", "Kari")


def test_without_a_mail_server_notices_are_queued_then_given_up_unsent(
    servers: Servers, connect: Callable[[ServerThread], Registry], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = servers.start(notice_poll_seconds=0.05, notice_give_up_hours=1.0 / 3600)
    registry = connect(server)
    create_at_oslo_and_bergen(registry, "N000000751", email="zyxwq.nomail@example.org")

    assert delete(registry, "N000000751", BORROWER_REQUEST).notification_queued is True
    time.sleep(0.3)
    pending = outbox(server.config.database_url)
    assert [(row["status"], row["attempts"], row["recipient"]) for row in pending] == [
        ("pending", 0, "zyxwq.nomail@example.org")
    ]
    rows = ended(server.config.database_url)

    assert [(row["status"], row["attempts"], bare(row)) for row in rows] == [
        ("given_up", 0, PURGED)
    ]
    warnings = [r.getMessage() for r in caplog.records if "NLR_SMTP_HOST" in r.getMessage()]
    assert warnings == [
        "NLR_SMTP_HOST is not set: deletion notices are queued but not sent, and given up "
        "after NLR_NOTICE_GIVE_UP_HOURS"
    ]


def test_two_servers_deliver_each_notice_once(
    servers: Servers,
    mail_servers: Callable[..., MailServer],
    connect: Callable[[ServerThread], Registry],
) -> None:
    mail = mail_servers()
    first = start_register(servers, mail, notice_poll_seconds=0.01)
    second = start_register(servers, mail, notice_poll_seconds=0.01)
    registries = [connect(first), connect(second)]
    cards = [f"N0000007{n:02d}" for n in range(60, 80)]
    for index, card in enumerate(cards):
        registry = registries[index % 2]
        create(registry, new_borrower(card, email=f"zyxwq.{card}@example.org"))
        assert delete(registry, card, BORROWER_REQUEST).notification_queued is True

    rows = ended(first.config.database_url, len(cards))

    delivered = sorted(recipients[0] for _, recipients, _ in mail.mailbox.messages)
    assert delivered == sorted(f"zyxwq.{card}@example.org" for card in cards)
    assert [(row["status"], row["attempts"], bare(row)) for row in rows] == [
        ("delivered", 0, PURGED)
    ] * len(cards)


def assert_logs_name_nobody(caplog: pytest.LogCaptureFixture, *personal: str) -> None:
    # Everything but the test's own mail server ("mail.log"), which logs what it receives.
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "mail.log")
    assert [value for value in personal if value in logged] == []


def test_a_borrower_deleting_themself_in_selfservice_gets_the_notice_and_is_gone(
    servers: Servers,
    mail_servers: Callable[..., MailServer],
    connect: Callable[[ServerThread], Registry],
    pki: DevPkiPaths,
    certificates: ClientCertificates,
) -> None:
    mail = mail_servers()
    server = start_register(servers, mail)
    registry = connect(server)
    address = "zyxwq.self@example.org"
    create_at_oslo_and_bergen(registry, "N000000709", given_name="Zyxwqself", email=address)
    registry.stub.SetPassword(
        pb.SetPasswordRequest(card_number="N000000709", password=PASSWORD),
        metadata=registry.metadata,
    )
    with portal_client(server.target, pki, certificates) as stub:
        portal = Portal(stub)
        portal.log_in("N000000709")
        portal.enroll()
        with pytest.raises(grpc.RpcError) as unconfirmed:
            stub.DeleteMe(ss_pb.DeleteMeRequest(card_number="N000000001"), metadata=portal.metadata)
        assert unconfirmed.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert list(error_details(unconfirmed.value)[1]) == ["card_number"]

        deleted = stub.DeleteMe(
            ss_pb.DeleteMeRequest(card_number="n000000709"), metadata=portal.metadata
        )

        assert deleted.notification_queued is True
        assert [(lib.library_number, lib.name) for lib in deleted.libraries] == [
            (OSLO, "Test Oslo bibliotek"),
            (BERGEN, "Test Bergen bibliotek"),
        ]
        with pytest.raises(grpc.RpcError) as gone:
            stub.LogOut(ss_pb.LogOutRequest(), metadata=portal.metadata)
        assert error_details(gone.value)[0] == "SESSION_INVALID"
    ended(server.config.database_url)
    (_, recipients, message) = mail.mailbox.messages[0]
    assert recipients == [address]
    assert listed_libraries(message)[:2] == [
        "  - Test Oslo bibliotek (biblioteknummer 2030100)",
        "  - Test Bergen bibliotek (biblioteknummer 2460100)",
    ]
    with pytest.raises(grpc.RpcError) as not_found:
        registry.stub.GetBorrower(
            pb.GetBorrowerRequest(card_number="N000000709"), metadata=registry.metadata
        )
    assert not_found.value.code() is grpc.StatusCode.NOT_FOUND


def test_deleting_oneself_needs_two_factors_and_deletes_nothing_without(
    registry: Registry, portal: Portal
) -> None:
    borrower = create(registry, new_borrower("N000000710"))
    registry.stub.SetPassword(
        pb.SetPasswordRequest(card_number="N000000710", password=PASSWORD),
        metadata=registry.metadata,
    )
    portal.log_in("N000000710")

    with pytest.raises(grpc.RpcError) as one_factor:
        portal.stub.DeleteMe(
            ss_pb.DeleteMeRequest(card_number="N000000710"), metadata=portal.metadata
        )

    assert one_factor.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert error_details(one_factor.value)[0] == "TWO_FACTORS_REQUIRED"
    assert get(registry, card_number="N000000710").card_number == borrower.card_number
