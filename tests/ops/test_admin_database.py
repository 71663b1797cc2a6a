"""Which database `nlr-admin` works on: named in every message, created only by `migrate` and
`dev-setup`, reachable after `make run` with `make admin`; and output into a closed pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from admin_runner import Admin, admin_environment
from nlr_server.ops import demo_data
from nlr_server.store import migrate

ROOT = Path(__file__).resolve().parents[2]
NLR_ADMIN = Path(sys.executable).parent / "nlr-admin"
UNSET = "(NLR_DATABASE_URL is not set; this is its default)"
VENDOR = "Bibliotekdata AS"

# Every command that works on the database, with arguments that would otherwise get it going.
DATABASE_COMMANDS = [
    ("libraries", "list"),
    ("vendors", "list", "--json"),
    ("vendors", "add", VENDOR),
    ("certs", "list"),
    ("borrowers", "protect-address", "N000000001"),
    ("audit", "--card", "N000000001"),
    ("maintenance",),
    ("keys", "list"),
    ("import", "legacy.jsonl"),
]


def _database_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.name.startswith("nlr.db"))


def _shown(url: str) -> str:
    """How the database is named in messages: the file's absolute path, or the URL without its
    password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None
        return str(Path(parsed.database).resolve())
    return parsed.render_as_string(hide_password=True)


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=" ".join)
def test_without_nlr_database_url_a_command_names_the_missing_file_and_creates_none(
    command: tuple[str, ...],
    keyring_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "legacy.jsonl").write_text("")
    admin = Admin(admin_environment(NLR_KEYRING=str(keyring_path)))

    message = admin.error(*command, expect=2)

    assert message.startswith(f"nlr-admin: no database at {tmp_path / 'nlr.db'} {UNSET}:")
    assert "nlr-admin migrate" in message
    assert 'make admin ARGS="..."' in message
    assert _database_files(tmp_path) == []


def test_a_mistyped_sqlite_path_is_named_and_not_created(
    keyring_path: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "elsewhere" / "nlr.db"
    admin = Admin(
        admin_environment(NLR_DATABASE_URL=f"sqlite:///{missing}", NLR_KEYRING=str(keyring_path))
    )

    message = admin.error("libraries", "list", expect=2)

    assert message.startswith(f"nlr-admin: no database at {missing}: set NLR_DATABASE_URL")
    assert "not set" not in message
    assert not missing.parent.exists()


def test_on_a_database_without_schema_the_advice_to_migrate_names_it(
    database_url: str, keyring_path: Path
) -> None:
    sqlite_file = make_url(database_url).database if database_url.startswith("sqlite") else None
    if sqlite_file is not None:
        Path(sqlite_file).touch()  # an empty file, as earlier versions of nlr-admin left one
        url = database_url
    else:
        # trust authentication ignores the password; it must not be printed either way
        url = make_url(database_url).set(password="never-printed").render_as_string(False)
    admin = Admin(admin_environment(NLR_DATABASE_URL=url, NLR_KEYRING=str(keyring_path)))

    message = admin.error("vendors", "list", expect=2)

    assert message == (
        f"nlr-admin: the database {_shown(url)} has no schema, nlr-admin needs "
        f"{migrate.head_revision()}: if this is the register's database, upgrade it with "
        "`nlr-admin migrate`; if not, set NLR_DATABASE_URL to the register's\n"
    )
    assert "never-printed" not in message


def test_an_unreachable_database_is_named_without_its_password(keyring_path: Path) -> None:
    url = "postgresql+psycopg://nlr:never-printed@127.0.0.1:1/nlr"
    admin = Admin(admin_environment(NLR_DATABASE_URL=url, NLR_KEYRING=str(keyring_path)))

    message = admin.error("vendors", "list", expect=2)

    assert message.startswith("nlr-admin: database postgresql+psycopg://nlr:***@127.0.0.1:1/nlr: ")
    assert "never-printed" not in message


def test_migrate_names_the_database_it_migrated(database_url: str, keyring_path: Path) -> None:
    admin = Admin(admin_environment(NLR_DATABASE_URL=database_url, NLR_KEYRING=str(keyring_path)))
    head = migrate.head_revision()

    first = admin("migrate").stdout
    again = admin("migrate").stdout

    assert first == f"database {_shown(database_url)}: schema empty -> {head}\n"
    assert again == f"database {_shown(database_url)}: schema at {head}\n"


def test_migrate_without_nlr_database_url_says_it_used_the_default(
    keyring_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    admin = Admin(admin_environment(NLR_KEYRING=str(keyring_path)))

    printed = admin("migrate").stdout

    assert printed.startswith(f"database {tmp_path / 'nlr.db'} {UNSET}: schema empty -> ")
    assert _database_files(tmp_path)[0] == "nlr.db"
    assert admin.json("vendors", "list") == []


# --- output into a closed pipe ---


@pytest.fixture
def many_libraries(database_url: str, keyring_path: Path, tmp_path: Path) -> dict[str, str]:
    """A migrated database with 2,000 libraries: a listing far larger than a pipe's buffer."""
    env = admin_environment(NLR_DATABASE_URL=database_url, NLR_KEYRING=str(keyring_path))
    admin = Admin(env)
    admin("migrate")
    admin("vendors", "add", VENDOR)
    rows = [
        f"2{municipality:04d}{number:02d},Bibliotek {municipality}-{number},{municipality:04d},"
        f"{VENDOR}"
        for municipality in range(301, 341)
        for number in range(10, 60)
    ]
    csv = tmp_path / "libraries.csv"
    csv.write_text("library_number,name,municipality_number,vendor\n" + "\n".join(rows) + "\n")
    admin("libraries", "import", str(csv))
    return env


@pytest.mark.parametrize("listing", [("--json",), ()], ids=["json", "table"])
def test_a_listing_piped_into_head_stops_quietly(
    many_libraries: dict[str, str], listing: tuple[str, ...]
) -> None:
    producer = subprocess.Popen(
        [str(NLR_ADMIN), "libraries", "list", *listing],
        env=many_libraries,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert producer.stdout is not None and producer.stderr is not None
    head = subprocess.run(
        ["head", "-n", "3"], stdin=producer.stdout, capture_output=True, timeout=60, check=True
    )
    producer.stdout.close()  # head's end only: nlr-admin writes into a pipe nobody reads
    status = producer.wait(timeout=60)
    errors = producer.stderr.read().decode()
    producer.stderr.close()

    assert len(head.stdout.decode().splitlines()) == 3
    assert errors == ""
    assert status == 141


def test_output_into_an_already_closed_pipe_is_no_traceback(
    many_libraries: dict[str, str],
) -> None:
    reader, writer = os.pipe()
    os.close(reader)
    try:
        result = subprocess.run(
            [str(NLR_ADMIN), "vendors", "list", "--json"],
            env=many_libraries,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(writer)

    assert (result.returncode, result.stderr) == (141, "")


# --- make admin ---


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NLR_", "MAKE"))}
    return subprocess.run(
        ["make", "-s", "-C", str(ROOT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def installed() -> None:
    # `make admin` depends on the venv's stamp; a stale one would reinstall the venv mid-test.
    if _make("-q", ".venv/.installed-stamp").returncode != 0:
        pytest.skip("the .venv is not installed or not current: make admin would install it")


@pytest.mark.usefixtures("installed")
def test_make_admin_runs_nlr_admin_on_the_dev_database(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    Admin(admin_environment())("dev-setup", "--directory", str(dev))

    listed = _make("admin", f"DEV={dev}", "ARGS=libraries list --json")

    assert listed.returncode == 0, listed.stderr
    numbers = {library["number"] for library in json.loads(listed.stdout)}
    assert numbers == {demo_data.OSLO.number.value, demo_data.BERGEN.number.value}


@pytest.mark.usefixtures("installed")
def test_make_admin_before_make_run_says_so_and_creates_nothing(tmp_path: Path) -> None:
    dev = tmp_path / "dev"

    refused = _make("admin", f"DEV={dev}", "ARGS=libraries list")

    assert refused.returncode == 2
    assert f"no dev database at {dev}/nlr.db: run make run first" in refused.stderr
    assert not dev.exists()
