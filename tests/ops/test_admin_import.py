"""`nlr-admin import`: bulk import from the legacy register's export, with rejects and resume."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import insert, select, text

from admin_runner import Admin, admin_environment
from legacy_export_fixture import (
    card_number,
    legacy_lines,
    legacy_record,
    national_id,
    write_export,
)
from legacy_soap_fixture import envelope, item_xml, laaner, write_soap
from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.ops.legacy_export import LEGACY_FIELDS
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import AuditEventRow, Base, CardNumberRow, LibraryRow
from register_harness import (
    BERGEN,
    OSLO,
    POSTGRES_URL_VARIABLE,
    TROMSO,
    Registry,
    audit_rows,
    count_rows,
    create,
    error_details,
    get,
    new_borrower,
    postgres_database,
)

LIBRARIES = (OSLO, BERGEN)
UNKNOWN_LIBRARY = "2999900"


def _admin(url: str, keyring_path: Path) -> Admin:
    return Admin(
        admin_environment(
            NLR_DATABASE_URL=url, NLR_KEYRING=str(keyring_path), NLR_OPERATOR="kari.drift"
        )
    )


@pytest.fixture
def admin(database_url: str, keyring_path: Path) -> Admin:
    """A migrated database with the Oslo and Bergen libraries."""
    runner = _admin(database_url, keyring_path)
    runner("migrate")
    _add_libraries(database_url)
    return runner


def _add_libraries(url: str) -> None:
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(LibraryRow),
                [{"library_number": n, "name": f"Test {n}", "active": True} for n in LIBRARIES],
            )
    finally:
        engine.dispose()


def _record(serial: int, **changes: Any) -> str:
    record = legacy_record(serial, LIBRARIES)
    record.update(changes)
    return json.dumps({k: v for k, v in record.items() if v is not ...}, ensure_ascii=False)


def _entries(path: Path, imported: bool) -> dict[int, str]:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["line"] for line in lines] == sorted(line["line"] for line in lines)
    return {
        line["line"]: line["reason"] for line in lines if line.get("imported", False) is imported
    }


def _rejects(path: Path) -> dict[int, str]:
    """The reject file's rejected lines: line number -> reason."""
    return _entries(path, imported=False)


def _notices(path: Path) -> dict[int, str]:
    """The reject file's notices of values imported lines were imported without."""
    return _entries(path, imported=True)


def _card_numbers(url: str) -> set[str]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            return set(connection.execute(text("SELECT card_number FROM borrowers")).scalars())
    finally:
        engine.dispose()


def test_every_valid_line_is_imported_and_every_invalid_one_rejected_with_its_line_and_reason(
    admin: Admin, database_url: str, keyring_path: Path, tmp_path: Path
) -> None:
    # A borrower already in the register (from an earlier import) and a retired card number.
    write_export(tmp_path / "earlier.jsonl", [_record(50)])
    admin("import", str(tmp_path / "earlier.jsonl"), "--allow-synthetic-ids", "--workers", "1")
    engine = create_store_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            insert(CardNumberRow),
            [{"card_number": card_number(60), "retired_at": dt.datetime.now(dt.UTC)}],
        )
    engine.dispose()
    past = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    bad_check_digit = national_id(3)[:-1] + str((int(national_id(3)[-1]) + 1) % 10)
    lines = [
        _record(0),  # 1
        '{"lnr": "N1',  # 2: bad JSON
        _record(2, lnr=...),  # 3: missing lnr
        _record(3, fnr=bad_check_digit),  # 4
        _record(4, navn="Kari Nordmann"),  # 5: no comma
        _record(5, tlf_mobil="12"),  # 6: bad phone
        _record(6, hjemmebibliotek=UNKNOWN_LIBRARY, tilknyttede=[]),  # 7: unknown library
        _record(7),  # 8
        _record(100, lnr=card_number(0)),  # 9: card number of line 1 (an earlier batch)
        _record(101, fnr=national_id(7), fdato=...),  # 10: national id of line 8 (an earlier batch)
        _record(102, lnr=card_number(50)),  # 11: card number already in the register
        _record(103, lnr=card_number(60)),  # 12: retired card number
        "",  # 13: blank, ignored
        _record(104, tilknyttede=[OSLO, UNKNOWN_LIBRARY]),  # 14: unknown affiliated library
        _record(105, fdato="01.01.1901"),  # 15: birth date does not match the national id
        _record(106, kjonn="X"),  # 16: bad sex
        _record(107, epost="not an address"),  # 17: bad email
        _record(108),  # 18
        _record(109, lnr=card_number(108)),  # 19: card number of line 18, same batch
        _record(110, fnr=national_id(108), fdato=...),  # 20: national id of line 18, same batch
        _record(111, p_postnr="12345"),  # 21: bad Norwegian postal code
        _record(112, m_adresse1="Hytta", m_postnr="3580", m_sted="Geilo", m_gyldig_til=past),
        _record(113, fnr=national_id(50), fdato=...),  # 23: national id already in the register
        _record(114, opprettet="yesterday-ish", opprettet_av=UNKNOWN_LIBRARY),  # 24
        _record(115, tilknyttede=f" {BERGEN} , NO-{OSLO}"),  # 25
    ]
    export = write_export(tmp_path / "export.jsonl", lines)

    result = admin(
        "import", str(export), "--allow-synthetic-ids", "--batch-size", "8", "--workers", "1"
    )

    rejects_path = tmp_path / "export.jsonl.rejects.jsonl"
    assert _rejects(rejects_path) == {
        2: "not valid JSON",
        3: "lnr: is required",
        4: "fnr: must be 11 digits with valid check digits",
        5: 'navn: must be "Surname, Given names" with a comma',
        7: "hjemmebibliotek: no such library in the register",
        9: "lnr: card number duplicates an earlier line of the file",
        10: "fnr: national id duplicates an earlier line of the file",
        11: "lnr: card number is already registered",
        12: "lnr: card number is retired and can never be used again",
        14: "tilknyttede[1]: no such library in the register",
        19: "lnr: card number duplicates line 18",
        20: "fnr: national id duplicates line 18",
        23: "fnr: national id is already registered",
    }
    # What is not about who the borrower is does not cost them their card: the line is
    # imported without the bad value, and the reject file says what was left out.
    assert _notices(rejects_path) == {
        6: "tlf_mobil: must be a valid phone number for its country (left out)",
        15: "fdato: does not match the national id (the national id's date is kept)",
        16: 'kjonn: must be "M", "F", "K" or empty (left out)',
        17: "epost: must be a valid email address such as name@example.no (left out)",
        21: "p_postnr: must be 4 digits for a Norwegian address (the registered address is "
        "left out)",
    }
    imported = {card_number(s) for s in (0, 5, 7, 105, 106, 107, 108, 111, 112, 114, 115, 50)}
    assert _card_numbers(database_url) == imported
    assert "imported 11, rejected 13" in result.stdout
    assert "imported with notices: 5" in result.stdout
    summary = admin.json(
        "import", str(export), "--allow-synthetic-ids", "--workers", "1", "--no-progress"
    )
    assert (summary["imported"], summary["skipped"], summary["total_rejected"]) == (0, 25, 13)
    # Nothing personal in the reasons or in what the command printed.
    printed = result.stdout + result.stderr + (tmp_path / "export.jsonl.rejects.jsonl").read_text()
    for line in lines[2:]:
        if line.startswith("{") and line.endswith("}"):
            record = json.loads(line)
            for field in ("fnr", "navn", "tlf_mobil", "epost", "p_adresse1"):
                if len(str(record.get(field) or "")) >= 5:
                    assert str(record[field]) not in printed, field


def test_the_home_library_is_affiliated_and_legacy_times_are_kept_or_replaced(
    admin: Admin, database_url: str, tmp_path: Path
) -> None:
    lines = [
        _record(0, tilknyttede=f" {BERGEN} , NO-{BERGEN}", hjemmebibliotek=OSLO),
        _record(
            1,
            opprettet="garbage",
            opprettet_av=UNKNOWN_LIBRARY,
            sist_endret=...,
            sist_endret_av=...,
        ),
        _record(2, opprettet="2003-04-05", sist_endret="2001-01-01T00:00:00Z"),
    ]
    export = write_export(tmp_path / "export.jsonl", lines)
    admin("import", str(export), "--allow-synthetic-ids", "--workers", "1", "--no-progress")

    engine = create_store_engine(database_url)
    with engine.connect() as connection:
        rows = {
            r.card_number: r
            for r in connection.execute(
                text(
                    "SELECT card_number, created_at, created_by, last_changed_at, last_changed_by,"
                    " home_library FROM borrowers"
                )
            )
        }
        affiliations = list(
            connection.execute(
                text(
                    "SELECT library_number FROM affiliations JOIN borrowers ON borrowers.id ="
                    " borrower_id WHERE card_number = :c ORDER BY library_number"
                ),
                {"c": card_number(0)},
            ).scalars()
        )
        started_at = connection.execute(text("SELECT started_at FROM imports")).scalar_one()
    engine.dispose()
    assert affiliations == [OSLO, BERGEN]
    second = rows[card_number(1)]
    assert second.created_by == second.last_changed_by == second.home_library
    assert str(second.created_at)[:19] == str(started_at)[:19]
    third = rows[card_number(2)]
    # Norwegian local midnight (summer time), and a "last changed" before creation is ignored.
    assert str(third.created_at).startswith("2003-04-04 22:00:00")
    assert str(third.last_changed_at).startswith("2003-04-04 22:00:00")


def test_synthetic_national_ids_are_rejected_unless_allowed(admin: Admin, tmp_path: Path) -> None:
    export = write_export(tmp_path / "export.jsonl", list(legacy_lines(3, LIBRARIES)))

    admin("import", str(export), "--workers", "1", "--rejects", str(tmp_path / "r.jsonl"))

    assert _rejects(tmp_path / "r.jsonl") == {
        n: "fnr: synthetic test numbers are not accepted here" for n in (1, 2, 3)
    }


def test_imported_borrowers_are_served_by_get_borrower(
    registry: Registry, prepared_database: str, keyring_path: Path, tmp_path: Path
) -> None:
    record = legacy_record(7, (OSLO, BERGEN))
    record.update(
        tilknyttede=[OSLO, TROMSO],
        hjemmebibliotek=OSLO,
        opprettet_av=OSLO,
        sist_endret_av=BERGEN,
        tlf_hjemme="22 33 44 55",
    )
    family_name, given_name = record["navn"].split(", ")
    export = write_export(tmp_path / "export.jsonl", [json.dumps(record, ensure_ascii=False)])
    admin = _admin(prepared_database, keyring_path)
    admin("import", str(export), "--allow-synthetic-ids", "--workers", "2", "--no-progress")

    borrower = get(registry, national_id=record["fnr"])

    assert borrower.view == borrower_pb2.BORROWER_VIEW_FULL
    assert (borrower.card_number, borrower.given_name, borrower.family_name) == (
        card_number(7),
        given_name,
        family_name,
    )
    assert borrower.sex == borrower_pb2.SEX_FEMALE
    assert borrower.birth_date == "1940-01-08"
    assert list(borrower.registered_address.lines) == ["Storgata 8"]
    assert borrower.registered_address.postal_code == "1007"
    assert borrower.email == "laaner7@example.no"
    assert (borrower.mobile_phone, borrower.home_phone) == ("+4790000007", "+4722334455")
    assert borrower.home_library == OSLO
    assert sorted(a.library_number for a in borrower.affiliations) == [OSLO, TROMSO]
    assert borrower.created_by == OSLO
    assert borrower.create_time.ToDatetime() == dt.datetime(2005, 3, 8, 9, 15)
    assert borrower.last_changed_by == BERGEN
    assert not borrower.has_pin
    # And changed as a created one is: the etag of its first version, the changer recorded.
    updated = registry.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(
                card_number=borrower.card_number, etag=borrower.etag, email="ny@example.org"
            ),
            update_mask=FieldMask(paths=["email"]),
        ),
        metadata=registry.metadata,
    ).borrower
    assert (updated.email, updated.last_changed_by) == ("ny@example.org", OSLO)
    assert updated.etag != borrower.etag
    assert get(registry, card_number=card_number(7)).email == "ny@example.org"


def _reserved_card_numbers(registry: Registry, count: int) -> list[str]:
    reservation = registry.stub.ReserveCardNumbers(
        pb.ReserveCardNumbersRequest(count=count), metadata=registry.metadata
    ).reservation
    first, last = (
        int(n[1:]) for n in (reservation.first_card_number, reservation.last_card_number)
    )
    return [f"N{number:09d}" for number in range(first, last + 1)]


def test_a_card_number_reserved_by_another_library_is_rejected_and_the_home_librarys_own_imported(
    registry: Registry, prepared_database: str, keyring_path: Path, tmp_path: Path
) -> None:
    oslos = _reserved_card_numbers(registry, 5)
    bergens = _reserved_card_numbers(registry.as_library(BERGEN), 5)

    def line(serial: int, card: str, home: str, *affiliated: str) -> str:
        return _record(
            serial,
            lnr=card,
            hjemmebibliotek=home,
            tilknyttede=[home, *affiliated],
            opprettet_av=home,
            sist_endret_av=home,
        )

    lines = [
        line(0, oslos[0], OSLO),  # 1: in its home library's own range
        line(1, oslos[1], BERGEN),  # 2: in Oslo's range, home Bergen
        line(2, bergens[0], OSLO, BERGEN),  # 3: in Bergen's range; affiliated, but home Oslo
        line(3, bergens[1], BERGEN),  # 4: in its home library's own range
        line(4, card_number(4), OSLO),  # 5: in nobody's range
        line(5, oslos[4], TROMSO),  # 6: in Oslo's range, home Tromsø
    ]
    export = write_export(tmp_path / "export.jsonl", lines)
    before = count_rows(prepared_database)
    admin = _admin(prepared_database, keyring_path)

    # Two lines a batch: each batch reads the reservations in its own transaction.
    result = admin(
        "import", str(export), "--allow-synthetic-ids", "--batch-size", "2", "--workers", "1"
    )

    reserved = "lnr: card number is reserved by another library"
    assert _rejects(tmp_path / "export.jsonl.rejects.jsonl") == {
        2: reserved,
        3: reserved,
        6: reserved,
    }
    assert "imported 3, rejected 3" in result.stdout
    assert _card_numbers(prepared_database) == {oslos[0], bergens[1], card_number(4)}
    after = count_rows(prepared_database)
    # Nothing of the rejected lines: no card number, no affiliation, no national id.
    assert after["card_numbers"] - before["card_numbers"] == 3
    assert after["affiliations"] - before["affiliations"] == 3
    for serial in (1, 2, 5):
        with pytest.raises(grpc.RpcError) as raised:
            get(registry, national_id=national_id(serial))
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    imported = get(registry, card_number=oslos[0])
    assert (imported.home_library, imported.created_by) == (OSLO, OSLO)
    # CreateBorrower holds the reserved numbers to the same rule.
    created = create(registry, new_borrower(oslos[2]))
    assert get(registry, card_number=oslos[2]).given_name == created.given_name == "Kari"
    with pytest.raises(grpc.RpcError) as refused:
        create(registry.as_library(BERGEN), new_borrower(oslos[3]))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(refused.value)[0] == "CARD_NUMBER_RESERVED"


def _audited_batches(url: str) -> list[tuple[Any, ...]]:
    return audit_rows(
        url,
        AuditEventRow.rpc,
        AuditEventRow.actor_kind,
        AuditEventRow.actor_id,
        where=AuditEventRow.rpc == "nlr-admin import",
    )


def _snapshot(url: str, keyring: Keyring) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows in key order; national ids decrypted (the nonces differ by design)
    and the import's own start and finish times left out, and the audit trail, which tells
    how each import went (see _audited_batches)."""
    sealer = NationalIdSealer(keyring)
    engine = create_store_engine(url)
    tables: dict[str, list[tuple[Any, ...]]] = {}
    try:
        with engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                if table.name == "audit_events":
                    continue
                columns = [
                    c for c in table.c if c.name not in ("started_at", "finished_at", "file_name")
                ]
                query = select(*columns).order_by(*table.primary_key.columns)
                rows = []
                for row in connection.execute(query).mappings():
                    values = dict(row)
                    if "national_id_ciphertext" in values:
                        values["national_id_ciphertext"] = sealer.open(
                            values["national_id_ciphertext"]
                        )
                    rows.append(tuple(values.items()))
                tables[table.name] = rows
    finally:
        engine.dispose()
    return tables


def _lines_done(url: str) -> int:
    """How far the import has committed (on SQLite read without taking the write lock)."""
    if url.startswith("sqlite:///"):
        try:
            with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=5) as connection:
                row = connection.execute("SELECT lines_done FROM imports").fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0]) if row else 0
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            done = connection.execute(text("SELECT max(lines_done) FROM imports")).scalar()
    finally:
        engine.dispose()
    return int(done or 0)


def _export_with_rejects(path: Path, count: int, file_format: str) -> Path:
    """Lines (or SOAP items) with a notice in every 97th and a rejected one in every 101st."""
    lines = []
    for serial in range(count):
        if serial % 97 == 5:
            lines.append(_record(serial, tlf_mobil="12"))
        elif serial % 101 == 7:
            lines.append(_record(serial, lnr=card_number(serial - 3)))
        else:
            lines.append(_record(serial))
    if file_format == "jsonl":
        return write_export(path, lines)
    items = []
    for line in lines:
        record = json.loads(line)
        fields = {k: v for k, v in record.items() if k in LEGACY_FIELDS}
        items.append(item_xml(laaner(**fields, fnr_hash=record["fnr"])))
    # In envelopes of 1,000 items, as the legacy register's pages came.
    return write_soap(path, [envelope(items[i : i + 1000]) for i in range(0, len(items), 1000)])


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def two_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two empty databases on one store."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'whole.db'}", f"sqlite:///{tmp_path / 'killed.db'}"
        return
    if not os.environ.get(POSTGRES_URL_VARIABLE):
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_VARIABLE}")
    with ExitStack() as stack:
        yield stack.enter_context(postgres_database()), stack.enter_context(postgres_database())


@pytest.mark.parametrize("file_format", ["jsonl", "soap"])
def test_an_import_killed_and_run_again_ends_with_exactly_the_uninterrupted_database(
    file_format: str,
    tmp_path: Path,
    keyring_path: Path,
    keyring: Keyring,
    two_databases: tuple[str, str],
) -> None:
    count = 8_000
    export = _export_with_rejects(tmp_path / f"export.{file_format}", count, file_format)
    whole_url, killed_url = two_databases
    whole = _admin(whole_url, keyring_path)
    whole("migrate")
    _add_libraries(whole_url)
    options = ["--allow-synthetic-ids", "--batch-size", "500", "--no-progress"]
    whole("import", str(export), *options, "--workers", "1", "--rejects", str(tmp_path / "w.jsonl"))

    killed = _admin(killed_url, keyring_path)
    killed("migrate")
    _add_libraries(killed_url)
    rejects = tmp_path / "k.jsonl"
    more = ["--workers", "2", "--rejects", str(rejects)]
    process = subprocess.Popen(
        [sys.executable, "-m", "nlr_server.ops.admin", "import", str(export), *options, *more],
        env=killed.env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while _lines_done(killed_url) < 2000 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done = _lines_done(killed_url)
    assert 2000 <= done < count, "the import was not killed half-way"

    summary = json.loads(
        killed("import", str(export), *options, "--rejects", str(rejects), "--json").stdout
    )

    assert summary["skipped"] == done
    assert summary["total_imported"] + summary["total_rejected"] == count
    assert _snapshot(killed_url, keyring) == _snapshot(whole_url, keyring)
    # Each committed batch is audited with it, naming the operator: 16 batches of 500 lines
    # uninterrupted; the killed run's too, each batch once, whichever run committed it.
    assert _audited_batches(whole_url) == [("nlr-admin import", "operator", "kari.drift")] * 16
    assert _audited_batches(killed_url) == _audited_batches(whole_url)
    assert rejects.read_bytes() == (tmp_path / "w.jsonl").read_bytes()
    number = "item" if file_format == "soap" else "line"
    entries = [json.loads(line) for line in rejects.read_text().splitlines()]
    rejected = [entry[number] for entry in entries if not entry.get("imported")]
    noticed = range(5, count, 97)
    assert len(rejected) == summary["total_rejected"] == len(set(range(7, count, 101)) - {*noticed})
    assert len(entries) - len(rejected) == len(noticed)
