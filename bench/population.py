"""The benchmark register's borrowers: a synthetic legacy export, imported or loaded, and sized.

The borrowers are the generator's (bench/legacy_export.py), spread over its few hundred
libraries, which are registered first with ``nlr-admin libraries import``. They get into the
database with ``nlr-admin import`` when that command exists (timed: the import rate), else
through the store's unit of work. Either way the benchmark then picks a sample of them, makes
sure the acting library (Oslo) is affiliated with each, and gives each a Feide identity, in
bulk, so every lookup below has a borrower to find in the full view.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.environment import LIBRARY, Environment
from bench.legacy_export import Generator, write_export, write_libraries_csv
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from nlr_server.store import migrate
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import (
    AffiliationRow,
    Base,
    BorrowerRow,
    CardNumberRow,
    IdentityRow,
    LibraryRow,
    table_of,
)
from register_harness import TEST_VENDOR

_BORROWERS = table_of(BorrowerRow)
_CARDS = table_of(CardNumberRow)
_AFFILIATIONS = table_of(AffiliationRow)
_IDENTITIES = table_of(IdentityRow)
_LIBRARIES = table_of(LibraryRow)

_INSERT_BATCH = 10_000
IMPORT_TIMEOUT_SECONDS = 6 * 3600

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SampleBorrower:
    """A borrower the loads ask for: affiliated with the acting library, with a Feide id."""

    card_number: str
    national_id: str
    feide: str


@dataclass(frozen=True)
class ImportResult:
    seconds: float
    # Borrowers in the database afterwards (the export had ``Generator.count``).
    borrowers: int
    log: Path
    exit_status: int


def admin_environment(environment: Environment) -> dict[str, str]:
    """What ``nlr-admin`` needs to work on the benchmark's register, and nothing from the shell."""
    variables = {name: value for name, value in os.environ.items() if not name.startswith("NLR_")}
    return variables | {
        "NLR_DATABASE_URL": environment.database_url,
        "NLR_KEYRING": str(environment.keyring_path),
        "NLR_ALLOW_SYNTHETIC_IDS": "true",
    }


def _admin(*args: str) -> list[str]:
    return [sys.executable, "-m", "nlr_server.ops.admin", *args]


def register_libraries(environment: Environment, generator: Generator) -> None:
    """The export's libraries, with the test vendor, through ``nlr-admin libraries import``."""
    path = environment.directory / "libraries.csv"
    with path.open("w", encoding="utf-8", newline="") as stream:
        write_libraries_csv(stream, TEST_VENDOR)
    done = subprocess.run(
        _admin("libraries", "import", str(path)),
        env=admin_environment(environment),
        cwd=environment.directory,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"nlr-admin libraries import failed:\n{done.stdout}{done.stderr}")


def export_file(environment: Environment, generator: Generator) -> Path:
    path = environment.directory / "legacy-export.jsonl"
    with path.open("w", encoding="utf-8", buffering=1 << 20) as stream:
        write_export(generator, stream)
    return path


def run_import(environment: Environment, export: Path) -> ImportResult:
    """``nlr-admin import EXPORT`` on the (otherwise empty) register, timed from start to exit."""
    log = environment.directory / "import.log"
    with log.open("wb") as log_file:
        started = time.perf_counter()
        done = subprocess.run(
            _admin("import", str(export)),
            env=admin_environment(environment),
            cwd=environment.directory,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            timeout=IMPORT_TIMEOUT_SECONDS,
            check=False,
        )
        seconds = time.perf_counter() - started
    return ImportResult(seconds, count_borrowers(environment.database_url), log, done.returncode)


def count_borrowers(database_url: str) -> int:
    engine = create_store_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(_BORROWERS)).scalar_one()
            )
    finally:
        engine.dispose()


def raw_insert_seconds(database_url: str, generator: Generator, progress: Progress) -> float:
    """The import's ceiling: plain executemany of minimal rows for the same number of
    borrowers (borrower, card number, home affiliation; constant names, no validation, no
    encryption) into ``database_url``, a fresh database with the same schema and libraries."""
    engine = create_store_engine(database_url)
    try:
        migrate.upgrade(engine)
        now = dt.datetime.now(dt.UTC)
        with engine.begin() as connection:
            connection.execute(
                _LIBRARIES.insert(),
                [{"library_number": lib.number, "name": lib.name} for lib in generator.libraries],
            )
        home = generator.libraries[0].number
        started = time.perf_counter()
        for start in range(0, generator.count, _INSERT_BATCH * 10):
            stop = min(generator.count, start + _INSERT_BATCH * 10)
            with engine.begin() as connection:
                for batch in range(start, stop, _INSERT_BATCH):
                    indices = range(batch, min(stop, batch + _INSERT_BATCH))
                    connection.execute(
                        _BORROWERS.insert(), [_raw_row(i, home, now) for i in indices]
                    )
                    connection.execute(
                        _CARDS.insert().from_select(
                            ["card_number", "borrower_id"],
                            select(_BORROWERS.c.card_number, _BORROWERS.c.id).where(
                                _BORROWERS.c.id > batch, _BORROWERS.c.id <= batch + len(indices)
                            ),
                        )
                    )
                    connection.execute(
                        _AFFILIATIONS.insert(),
                        [
                            {"borrower_id": i + 1, "library_number": home, "affiliated_at": now}
                            for i in indices
                        ],
                    )
        seconds = time.perf_counter() - started
        progress(f"  raw insert of {generator.count:,} minimal borrowers: {seconds:.1f} s")
        return seconds
    finally:
        engine.dispose()


def _raw_row(index: int, home: str, now: dt.datetime) -> dict[str, object]:
    return {
        "id": index + 1,
        "card_number": f"N{index:09d}",
        "given_name": "Kari",
        "family_name": "Nordmann",
        "national_id_ciphertext": index.to_bytes(8, "big") * 6,
        "national_id_index": index.to_bytes(8, "big") * 4,
        "national_id_key_version": 1,
        "security_level": "pin",
        "birth_date": dt.date(1980, 1, 1),
        "sex": "female",
        "address_protected": False,
        "email_should_be_checked": False,
        "registered_address_should_be_checked": False,
        "temporary_address_should_be_checked": False,
        "home_library": home,
        "created_by_kind": "library",
        "created_by": home,
        "created_at": now,
        "last_changed_by_kind": "library",
        "last_changed_by": home,
        "last_changed_at": now,
        "version": 1,
    }


def database_bytes(database_url: str) -> int:
    """The register's size on disk: the SQLite file with its WAL after a checkpoint, or the sum
    of pg_total_relation_size over the register's tables on PostgreSQL."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        # Outside SQLAlchemy: the store's engine opens a transaction, which a checkpoint refuses.
        raw = sqlite3.connect(path, isolation_level=None)
        try:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
        return sum(
            candidate.stat().st_size
            for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
            if candidate.exists()
        )
    engine = create_store_engine(database_url)
    try:
        with engine.connect() as connection:
            total = 0
            for table in Base.metadata.sorted_tables:
                total += int(
                    connection.execute(
                        text("SELECT pg_total_relation_size(CAST(:name AS regclass))"),
                        {"name": table.name},
                    ).scalar_one()
                )
            return total
    finally:
        engine.dispose()


def prepare_sample(
    environment: Environment, generator: Generator, size: int
) -> list[SampleBorrower]:
    """``size`` borrowers spread evenly over the export, each affiliated with the acting
    library and given a Feide identity, written in bulk (as AffiliateBorrower and AddIdentity
    would leave them, without their feed entries)."""
    size = min(size, generator.count)
    indices = [i * generator.count // size for i in range(size)]
    sample = [
        SampleBorrower(
            card_number=generator.record(i)["lnr"],
            national_id=generator.record(i)["fnr"],
            feide=f"bench{i}@bench.example.no",
        )
        for i in indices
    ]
    now = dt.datetime.now(dt.UTC)
    engine = create_store_engine(environment.database_url)
    try:
        with engine.begin() as connection:
            ids: dict[str, int] = {}
            cards = [borrower.card_number for borrower in sample]
            for start in range(0, len(cards), 1000):
                ids |= {
                    card: borrower_id
                    for card, borrower_id in connection.execute(
                        select(_BORROWERS.c.card_number, _BORROWERS.c.id).where(
                            _BORROWERS.c.card_number.in_(cards[start : start + 1000])
                        )
                    )
                }
            missing = [card for card in cards if card not in ids]
            if missing:
                raise RuntimeError(f"{len(missing)} sample borrowers are not in the register")
            affiliated = set(
                connection.execute(
                    select(_AFFILIATIONS.c.borrower_id).where(
                        _AFFILIATIONS.c.library_number == LIBRARY
                    )
                ).scalars()
            )
            rows = [
                {"borrower_id": ids[card], "library_number": LIBRARY, "affiliated_at": now}
                for card in cards
                if ids[card] not in affiliated
            ]
            for start in range(0, len(rows), _INSERT_BATCH):
                connection.execute(_AFFILIATIONS.insert(), rows[start : start + _INSERT_BATCH])
            identities = [
                {
                    "borrower_id": ids[borrower.card_number],
                    "kind": "feide",
                    "value": borrower.feide,
                    "created_at": now,
                    "delete_after": now + dt.timedelta(days=1095),
                }
                for borrower in sample
            ]
            for start in range(0, len(identities), _INSERT_BATCH):
                connection.execute(_IDENTITIES.insert(), identities[start : start + _INSERT_BATCH])
    finally:
        engine.dispose()
    return sample


def versions(database_url: str, cards: list[str]) -> dict[str, int]:
    """Each borrower's current version (the etag is ``"<version>"``)."""
    engine = create_store_engine(database_url)
    found: dict[str, int] = {}
    try:
        with engine.connect() as connection:
            for start in range(0, len(cards), 1000):
                found |= {
                    card: int(version)
                    for card, version in connection.execute(
                        select(_BORROWERS.c.card_number, _BORROWERS.c.version).where(
                            _BORROWERS.c.card_number.in_(cards[start : start + 1000])
                        )
                    )
                }
    finally:
        engine.dispose()
    return found
