"""`nlr-admin audit`: one card's trail, and the borrowers a vendor touched in a window."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from admin_runner import Admin
from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.domain.actor import ActorKind
from nlr_server.domain.audit import AuditEvent
from nlr_server.domain.library import Library
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.store.database import create_store_engine
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory

ILS_VENDOR = "Bibliotekdata AS"
OTHER_VENDOR = "Bibliofil Drift AS"
OSLO = "2030100"
BERGEN = "2460100"
START = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
END = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)
STRANGER = "ab" * 32


@pytest.fixture
def admin(database_url: str, keyring_path: Path, keyring: Keyring) -> Admin:
    """Two vendors, two libraries and an audit trail around the window [START, END)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NLR_")}
    env.update(NLR_DATABASE_URL=database_url, NLR_KEYRING=str(keyring_path))
    runner = Admin(env)
    runner("migrate")
    engine = create_store_engine(database_url)
    try:
        with SqlUnitOfWorkFactory(engine, NationalIdSealer(keyring))() as uow:
            ils = uow.vendors.add(ILS_VENDOR, START).id
            other = uow.vendors.add(OTHER_VENDOR, START).id
            for number in (OSLO, BERGEN):
                uow.libraries.add(Library(LibraryNumber(number), f"Library {number}"))

            def event(
                at: dt.datetime,
                vendor: int,
                library: str,
                card: str | None,
                rpc: str = "GetBorrower",
                outcome: str = "OK",
                reason: str | None = None,
            ) -> AuditEvent:
                return AuditEvent(
                    at,
                    rpc,
                    outcome,
                    vendor,
                    library,
                    card,
                    None,
                    reason,
                    actor_kind=ActorKind.LIBRARY,
                    actor_id=library,
                )

            uow.audit.append(
                [
                    # Just outside the window on either side: not counted.
                    event(START - SECOND, ils, OSLO, "N000000009"),
                    event(END, ils, OSLO, "N000000009"),
                    # Inside, from its first to its last second.
                    event(START, ils, OSLO, "N000000001"),
                    event(START + 5 * SECOND, ils, OSLO, "N000000001", "UpdateBorrower"),
                    event(START + 60 * SECOND, ils, BERGEN, "N000000002"),
                    event(
                        START + 90 * SECOND,
                        ils,
                        BERGEN,
                        "N000000003",
                        outcome="PERMISSION_DENIED",
                        reason="NOT_AFFILIATED",
                    ),
                    event(START + 120 * SECOND, ils, OSLO, None, "CreateBorrower", "INVALID"),
                    event(END - SECOND, ils, OSLO, "N000000004"),
                    # The other vendor, in the same window and for the same cards.
                    event(START + 30 * SECOND, other, OSLO, "N000000001"),
                    event(START + 40 * SECOND, other, BERGEN, "N000000005"),
                    # A stranger's certificate, refused before any vendor or library is known.
                    AuditEvent(
                        START + 50 * SECOND,
                        "GetBorrower",
                        "UNAUTHENTICATED",
                        reason="CERTIFICATE_UNKNOWN",
                        certificate_fingerprint=STRANGER,
                    ),
                ]
            )
            uow.commit()
    finally:
        engine.dispose()
    return runner


def _window(*extra: str) -> list[str]:
    return ["--from", "2026-11-24T10:00:00Z", "--to", "2026-11-24T12:00:00Z", *extra]


def test_a_cards_events_are_listed_oldest_first_with_vendor_names(admin: Admin) -> None:
    events = admin.json("audit", "--card", "N000000001")

    assert events == [
        {
            "time": "2026-11-24T10:00:00Z",
            "actor": f"library:{OSLO}",
            "vendor": ILS_VENDOR,
            "library": OSLO,
            "rpc": "GetBorrower",
            "outcome": "OK",
            "reason": None,
            "card": "N000000001",
            "certificate": None,
        },
        {
            "time": "2026-11-24T10:00:05Z",
            "actor": f"library:{OSLO}",
            "vendor": ILS_VENDOR,
            "library": OSLO,
            "rpc": "UpdateBorrower",
            "outcome": "OK",
            "reason": None,
            "card": "N000000001",
            "certificate": None,
        },
        {
            "time": "2026-11-24T10:00:30Z",
            "actor": f"library:{OSLO}",
            "vendor": OTHER_VENDOR,
            "library": OSLO,
            "rpc": "GetBorrower",
            "outcome": "OK",
            "reason": None,
            "card": "N000000001",
            "certificate": None,
        },
    ]
    table = admin("audit", "--card", "n000000001").stdout.splitlines()
    assert len(table) == 4 and "UpdateBorrower" in table[2] and OTHER_VENDOR in table[3]
    assert admin.json("audit", "--card", "N000000077") == []


def test_the_calls_of_a_refused_unknown_certificate_are_found_by_its_fingerprint(
    admin: Admin,
) -> None:
    refused = {
        "time": "2026-11-24T10:00:50Z",
        "actor": None,
        "vendor": None,
        "library": None,
        "card": None,
        "rpc": "GetBorrower",
        "outcome": "UNAUTHENTICATED",
        "reason": "CERTIFICATE_UNKNOWN",
        "certificate": STRANGER,
    }
    assert admin.json("audit", "--certificate", STRANGER) == [refused]
    colons = ":".join(STRANGER[i : i + 2] for i in range(0, 64, 2)).upper()
    assert admin.json("audit", "--certificate", colons) == [refused]
    assert admin.json("audit", "--certificate", "cd" * 32) == []
    assert "CERTIFICATE_UNKNOWN" in admin("audit", "--certificate", STRANGER).stdout
    assert "64 hexadecimal digits" in admin.error("audit", "--certificate", "abc", expect=2)
    both = admin.error("audit", "--certificate", STRANGER, "--card", "N000000001", expect=2)
    assert "--card CARD_NUMBER or --certificate FINGERPRINT" in both


def test_affected_counts_distinct_borrowers_of_one_vendor_inside_the_window(
    admin: Admin,
) -> None:
    report = admin.json("audit", "affected", "--vendor", ILS_VENDOR, *_window())

    # A refused call reached no data: its borrower is listed apart, not counted as affected.
    assert report == {
        "vendor": ILS_VENDOR,
        "library": None,
        "from": "2026-11-24T10:00:00Z",
        "to": "2026-11-24T12:00:00Z",
        "borrowers": 3,
        "card_numbers": ["N000000001", "N000000002", "N000000004"],
        "refused_card_numbers": ["N000000003"],
        "events": 6,
    }


def test_affected_narrows_to_one_library(admin: Admin) -> None:
    report = admin.json(
        "audit", "affected", "--vendor", ILS_VENDOR, "--library", BERGEN, *_window()
    )

    assert (
        report["library"],
        report["card_numbers"],
        report["refused_card_numbers"],
        report["events"],
    ) == (BERGEN, ["N000000002"], ["N000000003"], 2)
    other = admin.json("audit", "affected", "--vendor", OTHER_VENDOR, "--library", OSLO, *_window())
    assert (other["borrowers"], other["events"]) == (1, 1)


def test_affected_window_includes_its_start_and_excludes_its_end(admin: Admin) -> None:
    def count(start: str, end: str) -> tuple[int, int]:
        report = admin.json(
            "audit", "affected", "--vendor", ILS_VENDOR, "--from", start, "--to", end
        )
        return report["borrowers"], report["events"]

    # [09:59:59, 10:00:00) holds only the event a second before the window.
    assert count("2026-11-24T09:59:59Z", "2026-11-24T10:00:00Z") == (1, 1)
    # [11:59:59, 12:00:00) holds the last second's event, not the one at 12:00:00.
    assert count("2026-11-24T11:59:59Z", "2026-11-24T12:00:00Z") == (1, 1)
    # An offset is honoured: 11:00+01:00 is 10:00Z.
    assert count("2026-11-24T11:00:00+01:00", "2026-11-24T10:00:01Z") == (1, 1)
    # Dates are whole UTC days: every event of the day.
    assert count("2026-11-24", "2026-11-25") == (4, 8)


def test_affected_prints_the_card_numbers(admin: Admin) -> None:
    printed = admin("audit", "affected", "--vendor", ILS_VENDOR, *_window()).stdout

    assert "3 borrowers in 6 events" in printed
    assert [line.strip() for line in printed.splitlines()[1:]] == [
        "N000000001",
        "N000000002",
        "N000000004",
        "and 1 more it tried to reach but was refused:",
        "N000000003",
    ]


def test_audit_refuses_unknown_names_and_bad_values(admin: Admin) -> None:
    admin.error("audit", "affected", "--vendor", "Nobody AS", *_window(), expect=1)
    admin.error(
        "audit", "affected", "--vendor", ILS_VENDOR, "--library", "2999900", *_window(), expect=1
    )
    admin.error(
        "audit", "affected", "--vendor", ILS_VENDOR, "--library", "29", *_window(), expect=2
    )
    backwards = ["--from", "2026-11-24T12:00:00Z", "--to", "2026-11-24T10:00:00Z"]
    admin.error("audit", "affected", "--vendor", ILS_VENDOR, *backwards, expect=2)
    admin(
        "audit", "affected", "--vendor", ILS_VENDOR, "--from", "yesterday", "--to", "now", expect=2
    )
    admin.error("audit", "--card", "12345", expect=2)
    admin.error("audit", expect=2)
