"""Deletion deletes: a borrower who has used every feature of the register is deleted at their
own request, gets the notice by email, and then none of their personal data is left: not in
any table (both stores), not in the SQLite file or its write-ahead log, and, once the deletion's
VACUUM has run, not in any tuple, live or dead, of any PostgreSQL table or index."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc
import psycopg
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import text
from sqlalchemy.engine import make_url

from mail_harness import MailServer
from nlr.auth.v1 import authenticate_pb2 as auth_pb
from nlr.auth.v1 import authenticate_pb2_grpc
from nlr.registry.v1 import borrower_pb2, registry_service_pb2_grpc
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.database import create_store_engine
from nlr_server.store.erasure import LAST_RETRY_SECONDS, TRUNCATION_WAIT_SECONDS
from register_harness import (
    BERGEN,
    OSLO,
    Registry,
    Servers,
    client_channel,
    create,
    get,
    national_id,
    new_borrower,
    postgres_page_bytes,
    sqlite_bytes,
    table_text,
    wait_until,
)

CARD = "N000007101"
NEW_CARD = "N000007102"
CHILD = "N000007103"
NATIONAL_ID = national_id(dt.date(1984, 2, 29))
FEIDE_ID = "qxzyfeide@uio.no"
POCKET_ID = "QXZY-POCKET-77"
# Every value below is the borrower's and none may survive the deletion, in any form the
# register stores it: as given, or normalised.
PERSONAL = {
    "given name": "Qxzyvandrea",
    "family name": "Wxqjorstad",
    "first email": "qxzy.first@example.org",
    "second email": "qxzy.second@example.org",
    "mobile phone": "+4798765431",
    "home phone": "+4722987654",
    "address line": "Qxzyveien 77",
    "temporary address line": "Qxzyhybel 5",
    "Feide id": FEIDE_ID,
    "Pocket id": POCKET_ID,
    "national id": NATIONAL_ID,
}
# The bound the server is given for its VACUUM after a deletion (NLR_DELETION_VACUUM_SECONDS).
DELETION_VACUUM_SECONDS = 2.0
# On SQLite the write-ahead log is truncated as soon as a deletion commits: the test allows the
# time between the commit it can see and the truncation that follows it on the same thread.
WAL_TRUNCATION_SECONDS = 1.0


def found(text: str) -> list[str]:
    return [name for name, value in PERSONAL.items() if value in text]


def found_in_file(raw: bytes) -> list[str]:
    return [name for name, value in PERSONAL.items() if value.encode() in raw]


def on_disk_bytes(url: str) -> bytes:
    """What the store's files hold: on SQLite the database file and its write-ahead log as they
    are, on PostgreSQL every heap tuple, live or dead, and every b-tree entry (pageinspect)."""
    return sqlite_bytes(url) if url.startswith("sqlite") else postgres_page_bytes(url)


def found_on_disk(url: str) -> list[str]:
    return found_in_file(on_disk_bytes(url))


def test_a_borrower_who_used_everything_leaves_nothing_after_deletion(
    servers: Servers,
    mail_servers: Callable[..., MailServer],
    pki: DevPkiPaths,
) -> None:
    mail = mail_servers()
    server = servers.start(
        smtp_host="127.0.0.1",
        smtp_port=mail.port,
        smtp_sender="ikke-svar@nlr.example",
        notice_poll_seconds=0.05,
        deletion_vacuum_seconds=DELETION_VACUUM_SECONDS,
    )
    url = server.config.database_url
    with (
        client_channel(server.target, pki) as channel,
        client_channel(server.target, pki, cert=pki.auth_cert, key=pki.auth_key) as auth_channel,
    ):
        oslo = Registry(registry_service_pb2_grpc.BorrowerRegistryStub(channel), OSLO)
        oslo = oslo.as_library(OSLO)
        bergen = oslo.as_library(BERGEN)
        authenticate = authenticate_pb2_grpc.AuthenticateStub(auth_channel)

        def call(registry: Registry, method: str, request: object) -> object:
            return getattr(registry.stub, method)(request, metadata=registry.metadata)

        # The record with every detail, and credentials.
        create(
            oslo,
            new_borrower(
                CARD,
                given_name=PERSONAL["given name"],
                family_name=PERSONAL["family name"],
                national_id=NATIONAL_ID,
                email=PERSONAL["first email"],
                mobile_phone=PERSONAL["mobile phone"],
                home_phone=PERSONAL["home phone"],
                registered_address=borrower_pb2.Address(
                    lines=[PERSONAL["address line"]], postal_code="0155", city="Oslo"
                ),
                temporary_address=borrower_pb2.TemporaryAddress(
                    address=borrower_pb2.Address(
                        lines=[PERSONAL["temporary address line"]],
                        postal_code="7030",
                        city="Trondheim",
                    ),
                    valid_until=(dt.date.today() + dt.timedelta(days=90)).isoformat(),
                ),
                primary_phone=borrower_pb2.PHONE_KIND_HOME,
                preferred_contact_method=borrower_pb2.CONTACT_METHOD_EMAIL,
                preferred_language="nn",
                consent_time=Timestamp(seconds=int(time.time()) - 3600),
            ),
        )
        call(oslo, "SetPin", pb.SetPinRequest(card_number=CARD, pin="4711"))
        call(oslo, "SetPassword", pb.SetPasswordRequest(card_number=CARD, password="lang passord"))
        # A wrong PIN leaves lockout state; a right one marks the borrower active.
        with pytest.raises(grpc.RpcError):
            authenticate.VerifyPin(auth_pb.VerifyPinRequest(card_number=CARD, pin="0000"))
        authenticate.VerifyPin(auth_pb.VerifyPinRequest(card_number=CARD, pin="4711"))
        # A second library, which becomes home; a new card; identities; a ward.
        call(
            bergen,
            "AffiliateBorrower",
            pb.AffiliateBorrowerRequest(card_number=CARD, national_id=NATIONAL_ID),
        )
        call(
            bergen,
            "SetHomeLibrary",
            pb.SetHomeLibraryRequest(card_number=CARD, library_number=BERGEN),
        )
        call(
            bergen, "ReplaceCard", pb.ReplaceCardRequest(card_number=CARD, new_card_number=NEW_CARD)
        )
        for kind, value in (
            (borrower_pb2.IDENTITY_KIND_FEIDE, FEIDE_ID),
            (borrower_pb2.IDENTITY_KIND_POCKET, POCKET_ID),
        ):
            call(
                oslo,
                "AddIdentity",
                pb.AddIdentityRequest(
                    card_number=NEW_CARD, identity=borrower_pb2.Identity(kind=kind, value=value)
                ),
            )
        authenticate.VerifyPassword(
            auth_pb.VerifyPasswordRequest(
                identity=auth_pb.Identity(kind=auth_pb.IDENTITY_KIND_FEIDE, value=FEIDE_ID),
                password="lang passord",
            )
        )
        oslo.stub.CreateBorrower(
            pb.CreateBorrowerRequest(
                borrower=new_borrower(
                    CHILD,
                    national_id=national_id(
                        dt.date.today().replace(year=dt.date.today().year - 8, day=1)
                    ),
                ),
                guardian_card_number=NEW_CARD,
            ),
            metadata=oslo.metadata,
        )
        current = get(oslo, card_number=NEW_CARD)
        call(
            oslo,
            "UpdateBorrower",
            pb.UpdateBorrowerRequest(
                borrower=borrower_pb2.Borrower(
                    card_number=NEW_CARD, etag=current.etag, email=PERSONAL["second email"]
                ),
                update_mask=FieldMask(paths=["email"]),
            ),
        )
        # A control: each value is in the database before the deletion (the national id only
        # sealed, so it is never found, before or after).
        assert found(table_text(url)) == [
            name for name in PERSONAL if name not in ("first email", "national id")
        ]
        # The same on disk: the scans find what is there.
        assert "second email" in found_on_disk(url)

        deleted = call(
            bergen,
            "DeleteBorrower",
            pb.DeleteBorrowerRequest(
                card_number=NEW_CARD, reason=borrower_pb2.DELETION_REASON_BORROWER_REQUEST
            ),
        )
        assert isinstance(deleted, pb.DeleteBorrowerResponse)
        assert deleted.notification_queued

        wait_until(lambda: bool(mail.mailbox.messages))
        assert len(mail.mailbox.messages) == 1
        _, recipients, message = mail.mailbox.messages[0]
        assert recipients == [PERSONAL["second email"]]
        body = message.get_content()
        assert f"biblioteknummer {OSLO}" in body
        assert f"biblioteknummer {BERGEN}" in body
        # The child stays, without its guardian link; the old and new card numbers stay retired.
        child = get(oslo, card_number=CHILD)
        assert list(child.guardians) == []
        for card in (CARD, NEW_CARD):
            with pytest.raises(grpc.RpcError) as gone:
                get(oslo, card_number=card)
            assert gone.value.code() == grpc.StatusCode.NOT_FOUND

    # The feed keeps only tombstones of the deleted borrower: no entry points at them any more.
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            dangling = connection.execute(
                text(
                    "SELECT count(*) FROM feed_entries WHERE borrower_id IS NOT NULL"
                    " AND borrower_id NOT IN (SELECT id FROM borrowers)"
                )
            ).scalar_one()
            tombstones = connection.execute(
                text(
                    "SELECT library_number, kind FROM feed_entries WHERE card_number = :card"
                    " ORDER BY library_number"
                ),
                {"card": NEW_CARD},
            ).all()
    finally:
        engine.dispose()
    assert dangling == 0
    assert [tuple(t) for t in tombstones] == [(OSLO, "deleted"), (BERGEN, "deleted")]
    # The delivered notice is purged just after the mail server accepted it.
    wait_until(lambda: not found(table_text(url)))
    assert found(table_text(url)) == []
    # And the bytes go too, within the bound the README states, while the server still runs
    # (stopping it would checkpoint SQLite's write-ahead log and hide what it kept).
    if url.startswith("sqlite"):
        wait_until(lambda: not found_on_disk(url), seconds=WAL_TRUNCATION_SECONDS)
    else:
        time.sleep(DELETION_VACUUM_SECONDS)
    assert found_on_disk(url) == []
    servers.stop(server)
    if url.startswith("sqlite"):
        assert found_in_file(sqlite_bytes(url)) == []


@contextmanager
def snapshot_from_now(url: str) -> Iterator[None]:
    """Another client's transaction that has read, and so holds a snapshot, from now until the
    block ends: a reader on SQLite, a REPEATABLE READ transaction on PostgreSQL."""
    if url.startswith("sqlite"):
        reader = sqlite3.connect(str(make_url(url).database), isolation_level=None)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM borrowers").fetchone()
            yield
            reader.execute("COMMIT")
        finally:
            reader.close()
        return
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as connection:
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        connection.execute("SELECT count(*) FROM borrowers").fetchone()
        yield
        connection.rollback()


def test_a_snapshot_older_than_the_deletion_keeps_the_bytes_until_it_ends_and_no_longer(
    servers: Servers, pki: DevPkiPaths
) -> None:
    server = servers.start(deletion_vacuum_seconds=DELETION_VACUUM_SECONDS)
    url = server.config.database_url
    held = {"given name": "Qxzyhelga", "email": "qxzy.helga@example.org"}
    with client_channel(server.target, pki) as channel:
        oslo = Registry(registry_service_pb2_grpc.BorrowerRegistryStub(channel), OSLO)
        oslo = oslo.as_library(OSLO)
        create(oslo, new_borrower("N000007111", given_name=held["given name"], email=held["email"]))
        create(oslo, new_borrower("N000007112"))

        def on_disk() -> list[str]:
            raw = on_disk_bytes(url)
            return [name for name, value in held.items() if value.encode() in raw]

        with snapshot_from_now(url):
            started = time.monotonic()
            deleting = oslo.stub.DeleteBorrower.future(
                pb.DeleteBorrowerRequest(
                    card_number="N000007111", reason=borrower_pb2.DELETION_REASON_DECEASED
                ),
                metadata=oslo.metadata,
            )
            # The server keeps answering while its erasure waits (SQLite: the deleting call).
            read_started = time.monotonic()
            assert get(oslo, card_number="N000007112").card_number == "N000007112"
            assert time.monotonic() - read_started < 0.5
            deleting.result(timeout=10)
            # The deletion answers, after waiting at most its while for the truncation.
            assert time.monotonic() - started < TRUNCATION_WAIT_SECONDS + 1.0
            with pytest.raises(grpc.RpcError) as gone:
                get(oslo, card_number="N000007111")
            assert gone.value.code() == grpc.StatusCode.NOT_FOUND
            if not url.startswith("sqlite"):
                time.sleep(DELETION_VACUUM_SECONDS)
            # The older snapshot may still read the deleted row: nothing can erase it yet.
            assert on_disk() == ["given name", "email"]

        # Once it has ended, the next attempt erases them: within a retry pause on SQLite, and
        # within the bound on PostgreSQL.
        if url.startswith("sqlite"):
            wait_until(lambda: not on_disk(), seconds=LAST_RETRY_SECONDS + 0.5)
        else:
            time.sleep(DELETION_VACUUM_SECONDS)
        assert on_disk() == []


def test_a_removed_identity_leaves_no_bytes_on_disk(servers: Servers, pki: DevPkiPaths) -> None:
    server = servers.start(deletion_vacuum_seconds=DELETION_VACUUM_SECONDS)
    url = server.config.database_url
    value = "qxzy.removed@uio.no"
    with client_channel(server.target, pki) as channel:
        oslo = Registry(registry_service_pb2_grpc.BorrowerRegistryStub(channel), OSLO)
        oslo = oslo.as_library(OSLO)
        create(oslo, new_borrower("N000007121"))
        oslo.stub.AddIdentity(
            pb.AddIdentityRequest(
                card_number="N000007121",
                identity=borrower_pb2.Identity(kind=borrower_pb2.IDENTITY_KIND_FEIDE, value=value),
            ),
            metadata=oslo.metadata,
        )
        assert value.encode() in on_disk_bytes(url)
        if not url.startswith("sqlite"):
            # Past the vacuum a server runs after it starts: only the removal's may erase it.
            time.sleep(DELETION_VACUUM_SECONDS)

        removed = oslo.stub.RemoveIdentity(
            pb.RemoveIdentityRequest(
                card_number="N000007121", kind=borrower_pb2.IDENTITY_KIND_FEIDE
            ),
            metadata=oslo.metadata,
        )

        assert list(removed.borrower.identities) == []
        # SQLite: gone when the call answers; PostgreSQL: within the bound.
        if not url.startswith("sqlite"):
            time.sleep(DELETION_VACUUM_SECONDS)
        left = value.encode() in on_disk_bytes(url)
        assert not left
