"""`nlr-admin libraries`, run as the operator runs it, on both stores."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from admin_runner import Admin
from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.library_code import verify_code
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import LibraryRow
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory

VENDOR = "Bibliotekdata AS"
OTHER_VENDOR = "Bibliofil Drift AS"
CODE = "tolv-kodeord-2030100"
HEADER = "library_number,name,municipality_number,vendor\n"


@pytest.fixture
def admin(database_url: str, keyring_path: Path, keyring: Keyring) -> Admin:
    """A migrated database with two vendors (added directly: each command costs a process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NLR_")}
    env.update(NLR_DATABASE_URL=database_url, NLR_KEYRING=str(keyring_path))
    runner = Admin(env)
    runner("migrate")
    engine = create_store_engine(database_url)
    try:
        with SqlUnitOfWorkFactory(engine, NationalIdSealer(keyring))() as uow:
            for name in (VENDOR, OTHER_VENDOR):
                uow.vendors.add(name, dt.datetime.now(dt.UTC))
            uow.commit()
    finally:
        engine.dispose()
    return runner


def _libraries(admin: Admin) -> dict[str, dict[str, Any]]:
    return {library["number"]: library for library in admin.json("libraries", "list")}


def _verifier(database_url: str, number: str) -> str | None:
    engine = create_store_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                select(LibraryRow.code_verifier).where(LibraryRow.library_number == number)
            ).scalar_one()
    finally:
        engine.dispose()


def test_a_library_is_added_with_its_municipality_and_vendor(admin: Admin) -> None:
    admin(
        "libraries",
        "add",
        "2030100",
        "Oslo bibliotek",
        "--municipality",
        "0301",
        "--vendor",
        VENDOR,
    )
    admin("libraries", "add", "NO-2460100", "Bergen bibliotek")

    assert admin.json("libraries", "list") == [
        {
            "number": "2030100",
            "name": "Oslo bibliotek",
            "municipality": "0301",
            "vendor": VENDOR,
            "active": True,
            "code_set": False,
        },
        {
            "number": "2460100",
            "name": "Bergen bibliotek",
            "municipality": None,
            "vendor": None,
            "active": True,
            "code_set": False,
        },
    ]
    assert "Oslo bibliotek" in admin("libraries", "list").stdout


def test_a_library_number_is_registered_only_once(admin: Admin) -> None:
    admin("libraries", "add", "2030100", "Oslo bibliotek")

    assert "already exists" in admin.error("libraries", "add", "2030100", "Again", expect=2)

    assert _libraries(admin)["2030100"]["name"] == "Oslo bibliotek"


def test_bad_library_values_are_refused(admin: Admin) -> None:
    # One test for the three: every command run costs a process start.
    for arguments in (
        ["203010", "Too short"],
        ["2030100", "Oslo", "--municipality", "301"],
        ["2030100", " "],
    ):
        admin.error("libraries", "add", *arguments, expect=2)

    assert admin.json("libraries", "list") == []


def test_adding_a_library_with_an_unknown_vendor_is_not_found(admin: Admin) -> None:
    admin.error("libraries", "add", "2030100", "Oslo", "--vendor", "Nobody AS", expect=1)

    assert admin.json("libraries", "list") == []


def test_import_adds_new_libraries_and_updates_existing_ones(
    admin: Admin, tmp_path: Path, database_url: str
) -> None:
    admin("libraries", "add", "2030100", "Old name", "--vendor", OTHER_VENDOR)
    admin("libraries", "set-code", "2030100", stdin=CODE + "\n")
    admin("libraries", "disable", "2030100")
    csv_file = tmp_path / "libraries.csv"
    csv_file.write_text(
        HEADER
        + f"2030100,Deichman Bjørvika,0301,{VENDOR}\n"
        + f'NO-2460100,"Bergen offentlige bibliotek, Bergen",4601,{VENDOR}\n'
        + f"2540200,Tromsø bibliotek,5501,{OTHER_VENDOR}\n",
        encoding="utf-8",
    )

    printed = admin("libraries", "import", str(csv_file)).stdout

    assert "2 added, 1 updated" in printed
    libraries = _libraries(admin)
    assert {
        n: (lib["name"], lib["municipality"], lib["vendor"]) for n, lib in libraries.items()
    } == {
        "2030100": ("Deichman Bjørvika", "0301", VENDOR),
        "2460100": ("Bergen offentlige bibliotek, Bergen", "4601", VENDOR),
        "2540200": ("Tromsø bibliotek", "5501", OTHER_VENDOR),
    }
    # What the file does not speak of stays: the code and the state.
    assert (libraries["2030100"]["code_set"], libraries["2030100"]["active"]) == (True, False)
    verifier = _verifier(database_url, "2030100")
    assert verifier is not None and verify_code(CODE, verifier)
    assert "0 added, 0 updated, 3 unchanged" in admin("libraries", "import", str(csv_file)).stdout


def test_import_reports_every_bad_row_and_imports_nothing(admin: Admin, tmp_path: Path) -> None:
    csv_file = tmp_path / "libraries.csv"
    csv_file.write_text(
        HEADER
        + f"2030100,Oslo,0301,{VENDOR}\n"  # line 2: good
        + f"203010,Short number,0301,{VENDOR}\n"  # line 3
        + f"2460100,Bergen,46O1,{VENDOR}\n"  # line 4: letter O in the municipality
        + "2540200,Tromsø,5501,Nobody AS\n"  # line 5
        + f"2110300,Too few fields,{VENDOR}\n"  # line 6
        + "\n"  # line 7: blank, skipped
        + f"2030100,Oslo again,0301,{VENDOR}\n"  # line 8: number already on line 2
        + f"2120400,,0301,{VENDOR}\n",  # line 9: no name
        encoding="utf-8",
    )

    result = admin("libraries", "import", str(csv_file), expect=2)

    lines = result.stderr.splitlines()
    assert [line.split(": ", 2)[1] for line in lines[:-1]] == [
        f"{csv_file} line {n}" for n in (3, 4, 5, 6, 8, 9)
    ]
    assert "203010" in lines[0] and "46O1" in lines[1] and "Nobody AS" in lines[2]
    assert "line 2" in lines[4]
    assert lines[-1] == f"nlr-admin: 6 bad rows in {csv_file}; nothing imported"
    assert admin.json("libraries", "list") == []


def test_import_refuses_a_file_of_the_wrong_shape(admin: Admin, tmp_path: Path) -> None:
    wrong_header = b"number,name,municipality,vendor\n2030100,Oslo,0301,Bibliotekdata AS\n"
    latin_1 = HEADER.encode() + "2030100,Troms\u00f8,0301,Bibliotekdata AS\n".encode("latin-1")
    for name, content in (("header", wrong_header), ("empty", b""), ("latin-1", latin_1)):
        csv_file = tmp_path / f"{name}.csv"
        csv_file.write_bytes(content)

        admin.error("libraries", "import", str(csv_file), expect=2)

    assert admin.json("libraries", "list") == []


def test_import_accepts_a_spreadsheets_byte_order_mark(admin: Admin, tmp_path: Path) -> None:
    csv_file = tmp_path / "libraries.csv"
    csv_file.write_bytes(b"\xef\xbb\xbf" + (HEADER + f"2030100,Oslo,0301,{VENDOR}\n").encode())

    admin("libraries", "import", str(csv_file))

    assert list(_libraries(admin)) == ["2030100"]


def test_a_library_gets_another_vendor(admin: Admin) -> None:
    admin("libraries", "add", "2030100", "Oslo", "--vendor", VENDOR)

    admin("libraries", "set-vendor", "2030100", OTHER_VENDOR)

    assert _libraries(admin)["2030100"]["vendor"] == OTHER_VENDOR
    admin.error("libraries", "set-vendor", "2030100", "Nobody AS", expect=1)
    admin.error("libraries", "set-vendor", "2999900", VENDOR, expect=1)
    admin.error("libraries", "set-vendor", "29999", VENDOR, expect=2)


def test_set_code_stores_only_a_verifier_of_the_code_from_stdin(
    admin: Admin, database_url: str
) -> None:
    admin("libraries", "add", "2030100", "Oslo", "--vendor", VENDOR)

    printed = admin("libraries", "set-code", "2030100", stdin=f"  {CODE}  \n")

    assert CODE not in printed.stdout + printed.stderr
    verifier = _verifier(database_url, "2030100")
    assert verifier is not None and verify_code(CODE, verifier)
    assert not verify_code(CODE + "x", verifier)
    listed = admin("libraries", "list", "--json").stdout
    assert json.loads(listed)[0]["code_set"] is True
    assert verifier not in listed and "pbkdf2" not in listed
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database_file = Path(url.database or "")
        files = [database_file, database_file.with_name(database_file.name + "-wal")]
        stored = b"".join(f.read_bytes() for f in files if f.exists())
        assert CODE.encode() not in stored
        assert verifier.encode() in stored  # the check above did look at the right bytes


def test_set_code_refuses_a_code_that_cannot_be_used(admin: Admin, database_url: str) -> None:
    admin("libraries", "add", "2030100", "Oslo")

    for stdin in ("", "abc\n", "x" * 65 + "\n", "first-line\nsecond-line\n", "kodeord-æøå\n"):
        message = admin.error("libraries", "set-code", "2030100", stdin=stdin, expect=2)

        assert stdin.strip() == "" or stdin.strip() not in message
    assert _verifier(database_url, "2030100") is None


def test_set_code_for_an_unknown_library_is_not_found(admin: Admin) -> None:
    admin.error("libraries", "set-code", "2999900", stdin=CODE, expect=1)


def test_a_library_is_disabled_and_enabled(admin: Admin) -> None:
    admin("libraries", "add", "2030100", "Oslo")

    admin("libraries", "disable", "2030100")
    assert _libraries(admin)["2030100"]["active"] is False
    admin("libraries", "enable", "2030100")
    assert _libraries(admin)["2030100"]["active"] is True
    admin.error("libraries", "disable", "2999900", expect=1)
