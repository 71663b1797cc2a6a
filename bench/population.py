"""The benchmark register's borrowers: a synthetic legacy export, imported or loaded, and sized.

The borrowers are the generator's (bench/legacy_export.py), spread over its few hundred
libraries, which are registered first with ``nlr-admin libraries import``. They get into the
database with ``nlr-admin import`` of the generated export (the legacy server's SOAP answers
by default, or JSON Lines), with its legacy PIN key: timed, the import rate. The benchmark then
picks a sample of them, makes sure the acting library (Oslo) is affiliated with each, and gives
each a Feide identity, in bulk, so every lookup below has a borrower to find in the full view.
The cost of the PIN decryption is measured in this process, on records of the same export
(pin_cost), as a share of the validation the import's workers do per record.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cpu import machine_busy_seconds
from bench.environment import LIBRARY, Environment
from bench.legacy_export import (
    Generator,
    soap_item,
    write,
    write_libraries_csv,
    write_pin_key,
)
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from nlr_server.crypto.legacy_pin import LegacyPins
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.crypto.pin_verifier import PinVerifier
from nlr_server.ops.legacy_export import (
    ImportContext,
    ImportedBorrower,
    RejectedRecord,
    json_fields,
    parse_record,
)
from nlr_server.ops.legacy_soap import item_fields
from nlr_server.store import migrate
from nlr_server.store.borrower_import import ImportRows
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
# The export's formats: the legacy server's SOAP answers, or JSON Lines.
IMPORT_FORMATS = ("soap", "jsonl")
# Records of the export the PIN decryption's cost is measured on, and times it is measured.
PIN_COST_RECORDS = 20_000
PIN_COST_REPEATS = 3

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SampleBorrower:
    """A borrower the loads ask for: affiliated with the acting library, with a Feide id."""

    card_number: str
    national_id: str
    feide: str


@dataclass(frozen=True)
class Export:
    """The generated export: its file, format, legacy PIN key file and records with a PIN."""

    path: Path
    file_format: str
    pin_key_file: Path
    pins: int


@dataclass(frozen=True)
class ImportResult:
    seconds: float
    # Borrowers in the database afterwards (the export had ``Generator.count``).
    borrowers: int
    log: Path
    exit_status: int
    # The command's summary (``nlr-admin import --json``); None if it printed none.
    summary: dict[str, Any] | None = None
    # Cores busy during the import: the command with its worker processes, and everything
    # else on the machine (None: unknown).
    import_cores: float | None = None
    other_cores: float | None = None


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


def export_file(environment: Environment, generator: Generator, file_format: str) -> Export:
    """The generator's export in ``file_format`` (soap or jsonl), and its legacy PIN key in an
    owner-only file beside it."""
    suffix = "xml" if file_format == "soap" else "jsonl"
    path = environment.directory / f"legacy-export.{suffix}"
    key_file = environment.directory / "legacy-pin.key"
    write_pin_key(key_file, generator.pin_key)
    with path.open("w", encoding="utf-8", buffering=1 << 20) as stream:
        pins = write(generator, stream, file_format)
    return Export(path, file_format, key_file, pins)


def run_import(environment: Environment, export: Export) -> ImportResult:
    """``nlr-admin import EXPORT --legacy-pin-key-file KEY --json`` on the (otherwise empty)
    register, timed from start to exit; its summary is read from its standard output."""
    log = environment.directory / "import.log"
    summary_file = environment.directory / "import-summary.json"
    command = _admin(
        "import",
        str(export.path),
        "--legacy-pin-key-file",
        str(export.pin_key_file),
        "--json",
        "--no-progress",
    )
    with log.open("wb") as log_file, summary_file.open("wb") as summary_out:
        busy_before, children_before = machine_busy_seconds(), _children_cpu()
        own_before = time.process_time()
        started = time.perf_counter()
        done = subprocess.run(
            command,
            env=admin_environment(environment),
            cwd=environment.directory,
            stdin=subprocess.DEVNULL,
            stdout=summary_out,
            stderr=log_file,
            timeout=IMPORT_TIMEOUT_SECONDS,
            check=False,
        )
        seconds = time.perf_counter() - started
        # The command's CPU with its workers' (each waited for by the one that started it).
        import_cpu = _children_cpu() - children_before
        own_cpu = time.process_time() - own_before
        busy_after = machine_busy_seconds()
    other_cores = None
    if busy_before is not None and busy_after is not None and seconds > 0:
        other_cores = max(0.0, (busy_after - busy_before - import_cpu - own_cpu) / seconds)
    summary: dict[str, Any] | None
    try:
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
    except ValueError:
        summary = None
    if not isinstance(summary, dict):
        summary = None
    return ImportResult(
        seconds,
        count_borrowers(environment.database_url),
        log,
        done.returncode,
        summary,
        import_cpu / seconds if seconds > 0 else None,
        other_cores,
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class PinCost:
    """The PIN decryption's cost per record, beside the validation's, in this process."""

    records: int
    with_pin: int
    # µs per record of the sample (those without a PIN cost nothing): LegacyPins.decrypt and
    # PinVerifier.make of each record's pin.
    pin_us: float
    # µs per record of what the import's workers do with each (imports.py _validate_chunk):
    # parse the record (its SOAP item or JSON line), parse_record (with the PIN's decryption
    # and the national id's sealing), the PIN verifier, the rows.
    validation_us: float

    @property
    def share(self) -> float:
        return self.pin_us / self.validation_us if self.validation_us > 0 else 0.0


def pin_cost(
    environment: Environment,
    generator: Generator,
    file_format: str,
    records: int = PIN_COST_RECORDS,
    repeats: int = PIN_COST_REPEATS,
) -> PinCost:
    """The PIN decryption's cost on ``records`` of the export spread evenly over it, in this
    process, against the whole validation of the same records; each the fastest of
    ``repeats`` rounds, taken in turn, so both see the same machine."""
    size = min(records, generator.count)
    indices = [i * generator.count // size for i in range(size)]
    made = [generator.record(i) for i in indices]
    raws = [
        soap_item(record).encode()
        if file_format == "soap"
        else json.dumps(record, ensure_ascii=False).encode()
        for record in made
    ]
    ciphertexts = [record["pin"] for record in made if record["pin"]]
    keyring = environment.keyring
    sealer = NationalIdSealer(keyring)
    verifier = PinVerifier(keyring)
    pins = LegacyPins(generator.pin_key)
    rows = ImportRows(make_url(environment.database_url).drivername)
    context = ImportContext(
        frozenset(library.number for library in generator.libraries),
        True,
        dt.datetime.now(dt.UTC).replace(microsecond=0),
    )

    def validate() -> None:
        for number, raw in enumerate(raws, 1):
            fields: Any
            if file_format == "soap":
                fields, affiliated = item_fields(raw, None), None
            else:
                parsed = json_fields(raw)
                assert not isinstance(parsed, str), parsed
                fields, affiliated = parsed
            result = parse_record(number, fields, affiliated, context, sealer, pins)
            if not isinstance(result, ImportedBorrower) or result.notices:
                # Reasons and notices never quote a value.
                why = result.reason if isinstance(result, RejectedRecord) else result.notices
                raise RuntimeError(f"record {indices[number - 1]} does not import cleanly: {why}")
            kept = verifier.make(result.pin.value) if result.pin is not None else None
            rows.new_borrower(result.borrower, result.national_id, kept)

    def decrypt() -> None:
        for ciphertext in ciphertexts:
            verifier.make(pins.decrypt(ciphertext).value)

    best = {"validate": float("inf"), "decrypt": float("inf")}
    for _ in range(repeats):
        for name, work in (("validate", validate), ("decrypt", decrypt)):
            started = time.perf_counter()
            work()
            best[name] = min(best[name], time.perf_counter() - started)
    return PinCost(
        size,
        len(ciphertexts),
        best["decrypt"] / size * 1e6,
        best["validate"] / size * 1e6,
    )


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
    records = [(i, generator.record(i)) for i in indices]
    sample = [
        SampleBorrower(
            card_number=record["lnr"],
            national_id=record["fnr_hash"],
            feide=f"bench{i}@bench.example.no",
        )
        for i, record in records
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
