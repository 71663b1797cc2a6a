"""`nlr-admin import`: bulk import of borrowers from the legacy register's records.

A file is JSON Lines (one record per line) or the legacy register's SOAP XML (one or more
envelopes; every ``Laaner`` item is a record, ops/legacy_soap.py), told apart by its first
character. The record's fields are in ``nlr_server.ops.legacy_export``. Records are validated
in worker processes (with ``--legacy-pin-key-file``, each ``pin`` decrypted there and kept only
as a PIN verifier) and written in batches, one transaction each, together with the import's
progress (the ``imports`` table, keyed by the file's SHA-256): run the same command again after
an interruption and it continues after the last committed batch, deciding every record as an
uninterrupted run would (the import time is fixed at the first start). Each valid record is then
held to CreateBorrower's rules in its batch's transaction: its card number neither in use, nor
retired, nor inside another library's reservation (usecases/reservations.py; the home library
may use its own), and its national id not registered. Rejected records go to the reject file with
their line or item number and reason, as do notices of values an imported record was imported
without; neither stops the import. No change-feed entries are written: the import is the
initial load, and library systems do a full sync (ListAffiliatedBorrowers) after it.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path
from typing import IO, Any, NamedTuple

from sqlalchemy import Engine

from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.legacy_pin import LegacyKeyError, LegacyPins
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.crypto.pin_verifier import PinVerifier
from nlr_server.domain.audit import Acting
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.ops.admin import (
    AdminError,
    Commands,
    add_command,
    add_json_option,
    environment,
    now,
    operator,
    print_json,
    store,
    timestamp,
)
from nlr_server.ops.legacy_export import (
    ImportContext,
    ImportedBorrower,
    PinOutcome,
    RejectedRecord,
    json_fields,
    parse_record,
)
from nlr_server.ops.legacy_soap import ItemError, declared_encoding, item_fields, soap_items
from nlr_server.store import borrower_import
from nlr_server.store.audit_repository import append_events
from nlr_server.store.borrower_import import ImportProgress
from nlr_server.usecases.reservations import ReservedRanges

DEFAULT_BATCH_SIZE = 5000
# Lines per task handed to a worker process: big enough that pickling is a small part of it.
_CHUNK_LINES = 500
_PROGRESS_INTERVAL = 0.5


_JSON_LINES = "jsonl"
_SOAP = "soap"


class _Valid(NamedTuple):
    """A valid record, as the rows the store will insert for it, with what it was imported
    without (notices) and what the summary counts of it."""

    line: int
    rows: borrower_import.NewBorrower
    notices: tuple[str, ...]
    facts: tuple[str, bool, bool]  # (PinOutcome value, has_feide, has_password)


# A chunk as a worker process sends it back: its valid records as (number, the fields of their
# NewBorrower, notices, facts), and its rejected ones. Plain tuples: every record passes
# through this process, and they unpickle here several times faster than named tuples would.
_ChunkResult = tuple[
    list[tuple[int, tuple[Any, ...], tuple[str, ...], tuple[str, bool, bool]]],
    list[RejectedRecord],
]


@dataclass
class _Validated:
    """A batch's records validated: the valid ones in order, and the rejected ones."""

    valid: list[_Valid]
    rejected: list[RejectedRecord]
    lines_done: int
    offset: int


def add_commands(commands: Commands) -> None:
    command = add_command(
        commands,
        "import",
        _import,
        "import borrowers from the legacy register's records (JSON Lines or its SOAP XML)",
        "One borrower per JSON line or per SOAP Laaner item, with the legacy field names (see "
        "the README). Valid records are imported with the same validation, encryption and "
        "conflict rules as CreateBorrower (a card number in use, retired or reserved by another "
        "library than the home library, or a registered national id, is refused); the others "
        "go to the reject file with their line or item number and reason, as do notices of "
        "values a record was imported without. Run the same command again after an "
        "interruption: it resumes after the last committed batch.",
    )
    command.add_argument(
        "file", type=Path, metavar="FILE", help="the JSON Lines export or the SOAP XML answers"
    )
    command.add_argument(
        "--rejects",
        type=Path,
        metavar="PATH",
        help="where rejected records and notices go (default: FILE.rejects.jsonl next to FILE)",
    )
    command.add_argument(
        "--legacy-pin-key-file",
        type=Path,
        metavar="PATH",
        help="the legacy register's shared PIN key (16 bytes, raw or as 32 hex digits; "
        "owner-only file): every pin is decrypted and kept as the register's own PIN verifier. "
        "Without it PINs are skipped",
    )
    command.add_argument(
        "--allow-synthetic-ids",
        action="store_true",
        help="accept synthetic test national ids (or set NLR_ALLOW_SYNTHETIC_IDS)",
    )
    command.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"lines per transaction (default {DEFAULT_BATCH_SIZE}); a resumed import keeps "
        "the batch size it started with",
    )
    command.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="processes that validate lines (default: one per CPU; 1 validates in this one)",
    )
    command.add_argument(
        "--no-progress", action="store_true", help="no progress line on standard error"
    )
    add_json_option(command)


@dataclass
class _Summary:
    imported: int = 0
    rejected: int = 0
    skipped: int = 0
    lines: int = 0
    file_format: str = _JSON_LINES
    # Of this run's imported records:
    with_notices: int = 0
    pins: collections.Counter[str] = field(default_factory=collections.Counter)
    feide: int = 0
    passwords: int = 0

    def count(self, valid: _Valid) -> None:
        pin, feide, password = valid.facts
        self.pins[pin] += 1
        self.feide += feide
        self.passwords += password
        self.with_notices += bool(valid.notices)

    def as_json(self, progress: ImportProgress, rejects: Path, elapsed: float) -> dict[str, Any]:
        return {
            "file_sha256": progress.file_sha256,
            "format": self.file_format,
            "imported": self.imported,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "imported_with_notices": self.with_notices,
            "pins_carried_over": self.pins[PinOutcome.CARRIED.value],
            "pins_skipped_without_key": self.pins[PinOutcome.SKIPPED.value],
            "pins_not_decrypted": self.pins[PinOutcome.LEFT_OUT.value],
            "feide_flagged": self.feide,
            "passwords_not_carried_over": self.passwords,
            "total_imported": progress.imported,
            "total_rejected": progress.rejected,
            "rejects_file": str(rejects),
            "elapsed_seconds": round(elapsed, 3),
            "lines_per_second": round(self.lines / elapsed) if elapsed > 0 else 0,
            "started_at": timestamp(progress.started_at),
            "finished_at": timestamp(progress.finished_at),
        }


def _import(args: argparse.Namespace) -> None:
    path: Path = args.file
    if not path.is_file():
        raise AdminError(f"no such file {str(path)!r}")
    if args.batch_size < 1 or args.workers < 1:
        raise AdminError("--batch-size and --workers must be at least 1")
    key_path: Path | None = args.legacy_pin_key_file
    if key_path is not None:
        try:
            # Checked here, so a bad key stops the import before it starts; each worker reads
            # the file itself, and the key never leaves the process that decrypts with it.
            LegacyPins.load(key_path)
        except LegacyKeyError as error:
            raise AdminError(str(error)) from None
    env = environment()
    allow_synthetic = args.allow_synthetic_ids or env.flag("NLR_ALLOW_SYNTHETIC_IDS")
    rejects_path: Path = args.rejects or path.with_name(path.name + ".rejects.jsonl")
    started = time.monotonic()
    file_format, encoding = _file_format(path)
    digest = _sha256(path)
    with store() as unit_of_work:
        engine = unit_of_work.engine
        with engine.begin() as connection:
            progress = borrower_import.load_progress(connection, digest)
            if progress is None:
                progress = ImportProgress(
                    file_sha256=digest,
                    file_name=path.name[:1000],
                    file_size=path.stat().st_size,
                    batch_size=args.batch_size,
                    started_at=now().replace(microsecond=0),
                    first_borrower_id=borrower_import.next_borrower_id(connection),
                )
                borrower_import.start_progress(connection, progress)
            libraries = borrower_import.library_numbers(connection)
        summary = _Summary(skipped=progress.lines_done, file_format=file_format)
        if progress.finished_at is None:
            setup = _WorkerSetup(
                ImportContext(libraries, allow_synthetic, progress.started_at),
                env.path("NLR_KEYRING"),
                engine.url.drivername,
                key_path,
                path,
                file_format,
                encoding,
            )
            with _rejects_file(rejects_path, progress.rejects_offset) as rejects:
                _run(engine, path, rejects, progress, setup, summary, args)
    elapsed = time.monotonic() - started
    _report(args, summary, progress, rejects_path, elapsed)


def _file_format(path: Path) -> tuple[str, str | None]:
    """JSON Lines or SOAP XML, by the file's first character other than white space (and the
    XML's declared encoding)."""
    with path.open("rb") as source:
        head = source.read(4096)
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if first == b"<":
        return _SOAP, declared_encoding(head)
    if first in (b"{", b""):
        return _JSON_LINES, None
    raise AdminError(
        f"{str(path)!r} is neither JSON Lines (a record per line, starting with {{) nor the "
        "legacy register's SOAP XML (starting with <)"
    )


def _run(
    engine: Engine,
    path: Path,
    rejects: IO[bytes],
    progress: ImportProgress,
    setup: _WorkerSetup,
    summary: _Summary,
    args: argparse.Namespace,
) -> None:
    bar = _ProgressBar(
        progress.file_size,
        progress.input_offset,
        progress.lines_done,
        enabled=not args.no_progress,
    )
    analyzed_at = 0
    acting = operator("import")
    with path.open("rb") as source:
        records: Iterator[tuple[int, _Payload, int]]
        if setup.file_format == _SOAP:
            spans = soap_items(source, progress.input_offset, progress.lines_done)
            records = ((number, (start, end - start), end) for number, start, end in spans)
        else:
            records = _json_lines(source, progress.input_offset, progress.lines_done)
        batches = _batches(records, progress.lines_done, progress.input_offset, progress.batch_size)
        for validated in _validated(batches, setup, args.workers):
            accepted, rejected = _commit_batch(
                engine, rejects, progress, validated, acting, _number_key(setup.file_format)
            )
            summary.imported += len(accepted)
            summary.rejected += rejected
            summary.lines += len(accepted) + rejected
            for valid in accepted:
                summary.count(valid)
            # Each time the register has doubled (from one batch on): a handful of times in all.
            if summary.imported >= 2 * max(analyzed_at, progress.batch_size // 2):
                with engine.begin() as connection:
                    borrower_import.update_statistics(connection)
                analyzed_at = summary.imported
            bar.show(validated.offset, progress)
    with engine.begin() as connection:
        progress.finished_at = now()
        borrower_import.save_progress(connection, progress)
        borrower_import.update_statistics(connection)
    bar.done(progress)


def _number_key(file_format: str) -> str:
    """What the reject file calls a record's number: its line, or its SOAP item."""
    return "item" if file_format == _SOAP else "line"


# What a worker is given of a record: a JSON line's bytes, or where a SOAP item is in the file
# (offset, length), which the worker reads itself.
_Payload = bytes | tuple[int, int]


@dataclass(frozen=True)
class _Batch:
    chunks: list[list[tuple[int, _Payload]]]
    lines_done: int
    offset: int


def _json_lines(source: IO[bytes], offset: int, number: int) -> Iterator[tuple[int, bytes, int]]:
    """Each line after byte ``offset``: (its number, counting on from ``number``, its bytes,
    the offset after it)."""
    source.seek(offset)
    for raw in source:
        number += 1
        offset += len(raw)
        yield number, raw, offset


def _batches(
    records: Iterator[tuple[int, _Payload, int]], lines_done: int, offset: int, batch_size: int
) -> Iterator[_Batch]:
    """The records in batches of ``batch_size`` (blank lines count as lines but carry
    nothing), each in chunks for the workers."""
    chunks: list[list[tuple[int, _Payload]]] = []
    chunk: list[tuple[int, _Payload]] = []
    in_batch = 0
    for lines_done, payload, offset in records:
        in_batch += 1
        if not isinstance(payload, bytes) or payload.strip():
            chunk.append((lines_done, payload))
            if len(chunk) >= _CHUNK_LINES:
                chunks.append(chunk)
                chunk = []
        if in_batch == batch_size:
            yield _Batch([*chunks, chunk] if chunk else chunks, lines_done, offset)
            chunks, chunk, in_batch = [], [], 0
    if in_batch:
        yield _Batch([*chunks, chunk] if chunk else chunks, lines_done, offset)


@dataclass(frozen=True)
class _WorkerSetup:
    """What a process that validates records needs: picklable, for the worker processes."""

    context: ImportContext
    keyring_path: Path
    # The database's (its URL's driver name): the rows are made for it.
    drivername: str
    # The legacy PIN key's file (never the key: each worker reads it), or None.
    legacy_pin_key_file: Path | None
    # The file imported (a worker reads each SOAP item from it), and its format.
    path: Path
    file_format: str
    # The SOAP XML's declared encoding (None: UTF-8).
    encoding: str | None


@dataclass(frozen=True)
class _Worker:
    """Set in each worker process by _start_worker."""

    setup: _WorkerSetup
    sealer: NationalIdSealer
    pin_verifier: PinVerifier
    pins: LegacyPins | None
    rows: borrower_import.ImportRows
    # The imported file, open for reading SOAP items at their offsets.
    source: int


_worker: _Worker | None = None


def _start_worker(setup: _WorkerSetup) -> None:
    global _worker
    keyring = Keyring.load(setup.keyring_path)
    key_file = setup.legacy_pin_key_file
    _worker = _Worker(
        setup,
        NationalIdSealer(keyring),
        PinVerifier(keyring),
        LegacyPins.load(key_file) if key_file is not None else None,
        borrower_import.ImportRows(setup.drivername),
        os.open(setup.path, os.O_RDONLY),
    )


def _validate_chunk(chunk: list[tuple[int, _Payload]]) -> _ChunkResult:
    worker = _worker
    assert worker is not None
    valid: list[tuple[int, tuple[Any, ...], tuple[str, ...], tuple[str, bool, bool]]] = []
    rejected: list[RejectedRecord] = []
    for number, payload in chunk:
        result = _parse(number, payload, worker)
        if isinstance(result, RejectedRecord):
            rejected.append(result)
            continue
        verifier = worker.pin_verifier.make(result.pin.value) if result.pin is not None else None
        rows = worker.rows.new_borrower(result.borrower, result.national_id, verifier)
        facts = (result.pin_outcome.value, result.has_feide, result.has_password)
        valid.append((number, tuple(rows), result.notices, facts))
    return valid, rejected


def _parse(number: int, payload: _Payload, worker: _Worker) -> ImportedBorrower | RejectedRecord:
    setup = worker.setup
    if not isinstance(payload, bytes):
        start, length = payload
        try:
            fields: Any = item_fields(os.pread(worker.source, length, start), setup.encoding)
        except ItemError as error:
            return RejectedRecord(number, str(error))
        affiliated = None
    else:
        parsed = json_fields(payload)
        if isinstance(parsed, str):
            return RejectedRecord(number, parsed)
        fields, affiliated = parsed
    return parse_record(number, fields, affiliated, setup.context, worker.sealer, worker.pins)


def _validated(
    batches: Iterator[_Batch], setup: _WorkerSetup, workers: int
) -> Iterator[_Validated]:
    """Each batch's records validated, in order; with workers, the next batches are validated
    while one is written."""
    if workers == 1:
        _start_worker(setup)
        for batch in batches:
            yield _gather(batch, [_validate_chunk(chunk) for chunk in batch.chunks])
        return
    # spawn, not fork: the parent may hold threads and open database connections.
    with get_context("spawn").Pool(workers, _start_worker, (setup,)) as pool:
        pending: collections.deque[tuple[_Batch, list[AsyncResult[_ChunkResult]]]]
        pending = collections.deque()
        for batch in batches:
            pending.append((batch, _submit(pool, batch)))
            # Two batches in flight keep the workers busy while this process writes one.
            if len(pending) > 2:
                yield _collect(*pending.popleft())
        while pending:
            yield _collect(*pending.popleft())


def _submit(pool: Pool, batch: _Batch) -> list[AsyncResult[_ChunkResult]]:
    return [pool.apply_async(_validate_chunk, (chunk,)) for chunk in batch.chunks]


def _collect(batch: _Batch, results: list[AsyncResult[_ChunkResult]]) -> _Validated:
    return _gather(batch, [result.get() for result in results])


def _gather(batch: _Batch, chunks: list[_ChunkResult]) -> _Validated:
    make = borrower_import.NewBorrower._make
    return _Validated(
        [
            _Valid(number, make(fields), notices, facts)
            for valid, _ in chunks
            for number, fields, notices, facts in valid
        ],
        [rejected for _, refused in chunks for rejected in refused],
        batch.lines_done,
        batch.offset,
    )


def _commit_batch(
    engine: Engine,
    rejects: IO[bytes],
    progress: ImportProgress,
    validated: _Validated,
    acting: Acting,
    number_key: str,
) -> tuple[list[_Valid], int]:
    """Writes one batch and its progress in one transaction, with an audit event naming the
    operator; returns the records imported and how many were rejected."""
    with engine.begin() as connection:
        borrower_import.prepare_bulk_writes(connection)
        first_id = borrower_import.next_borrower_id(connection)
        valid = validated.valid
        refused = list(validated.rejected)
        taken = _Taken(
            cards=borrower_import.existing_cards(connection, {v.rows.card_number for v in valid}),
            holders=borrower_import.existing_national_ids(
                connection, {v.rows.national_id_index for v in valid}
            ),
            reserved=ReservedRanges(borrower_import.reservations(connection)),
            first_borrower_id=progress.first_borrower_id,
            soap=number_key == "item",
        )
        accepted: list[_Valid] = []
        entries = []
        for candidate in valid:
            reason = taken.conflict(candidate)
            if reason is not None:
                refused.append(RejectedRecord(candidate.line, reason))
                continue
            taken.add(candidate)
            accepted.append(candidate)
            entries += [
                RejectedRecord(candidate.line, notice, True) for notice in candidate.notices
            ]
        entries += refused
        entries.sort(key=lambda r: r.number)
        for entry in entries:
            line: dict[str, Any] = {number_key: entry.number, "reason": entry.reason}
            if entry.imported:
                line["imported"] = True
            rejects.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
        # On disk before the batch commits: a resumed import cuts the file back to the
        # length its last commit recorded, so no reject is ever lost or written twice.
        rejects.flush()
        os.fsync(rejects.fileno())
        borrower_import.insert_borrowers(connection, first_id, [a.rows for a in accepted])
        progress.lines_done = validated.lines_done
        progress.input_offset = validated.offset
        progress.rejects_offset = rejects.tell()
        progress.imported += len(accepted)
        progress.rejected += len(refused)
        borrower_import.save_progress(connection, progress)
        append_events(connection, [acting.event(now())])
    return accepted, len(refused)


@dataclass
class _Taken:
    """What a batch's valid records are checked against: the register as the batch's
    transaction sees it, and the records of the batch accepted so far."""

    cards: dict[str, borrower_import.ExistingCard]
    holders: dict[bytes, int]
    reserved: ReservedRanges
    # The import's own borrowers have ids from here on.
    first_borrower_id: int
    # The legacy SOAP XML: its records are items, its national id is fnr_hash.
    soap: bool = False
    batch_cards: dict[str, int] = field(default_factory=dict)
    batch_ids: dict[bytes, int] = field(default_factory=dict)

    def conflict(self, valid: _Valid) -> str | None:
        """Why a valid record cannot be imported, by CreateBorrower's rules and in its order: its
        card number is taken, retired or another library's reservation, or its national id is
        registered (a duplicate of an earlier record of the file says so)."""
        record, fnr = ("item", "fnr_hash") if self.soap else ("line", "fnr")
        rows = valid.rows
        card_number = rows.card_number
        card = self.cards.get(card_number)
        if card is not None:
            if card.retired:
                return "lnr: card number is retired and can never be used again"
            if card.borrower_id is not None and card.borrower_id >= self.first_borrower_id:
                return f"lnr: card number duplicates an earlier {record} of the file"
            return "lnr: card number is already registered"
        if card_number in self.batch_cards:
            return f"lnr: card number duplicates {record} {self.batch_cards[card_number]}"
        if self.reserved.reserved_for_another(
            CardNumber(card_number), LibraryNumber(rows.home_library)
        ):
            return "lnr: card number is reserved by another library"
        index = rows.national_id_index
        holder = self.holders.get(index)
        if holder is not None:
            if holder >= self.first_borrower_id:
                return f"{fnr}: national id duplicates an earlier {record} of the file"
            return f"{fnr}: national id is already registered"
        if index in self.batch_ids:
            return f"{fnr}: national id duplicates {record} {self.batch_ids[index]}"
        return None

    def add(self, valid: _Valid) -> None:
        self.batch_cards[valid.rows.card_number] = valid.line
        self.batch_ids[valid.rows.national_id_index] = valid.line


@contextmanager
def _rejects_file(path: Path, committed: int) -> Iterator[IO[bytes]]:
    """The reject file, cut back to the length the last committed batch recorded."""
    if committed == 0:
        with path.open("wb") as fresh:
            yield fresh
        return
    if not path.is_file() or path.stat().st_size < committed:
        raise AdminError(
            f"the reject file {str(path)!r} of the interrupted import is missing or shorter "
            "than recorded: give the same --rejects path as before"
        )
    with path.open("r+b") as resumed:
        resumed.truncate(committed)
        resumed.seek(committed)
        yield resumed


class _ProgressBar:
    """One line on standard error, rewritten in place: counts, share done, rate and ETA."""

    def __init__(self, size: int, offset: int, lines_done: int, *, enabled: bool) -> None:
        self._size = max(size, 1)
        self._first_offset = offset
        self._first_line = lines_done
        self._enabled = enabled
        self._started = time.monotonic()
        self._shown = 0.0

    def show(self, offset: int, progress: ImportProgress, *, force: bool = False) -> None:
        if not self._enabled:
            return
        moment = time.monotonic()
        if not force and moment - self._shown < _PROGRESS_INTERVAL:
            return
        self._shown = moment
        elapsed = max(moment - self._started, 1e-9)
        byte_rate = (offset - self._first_offset) / elapsed
        eta = (self._size - offset) / byte_rate if byte_rate > 0 else 0.0
        line_rate = (progress.lines_done - self._first_line) / elapsed
        text = (
            f"{100 * offset / self._size:5.1f} %  line {progress.lines_done:,}  "
            f"imported {progress.imported:,}  rejected {progress.rejected:,}  "
            f"{line_rate:,.0f} lines/s  ETA {_duration(eta)}"
        )
        sys.stderr.write(f"\r{text}\x1b[K")
        sys.stderr.flush()

    def done(self, progress: ImportProgress) -> None:
        if self._enabled:
            self.show(self._size, progress, force=True)
            sys.stderr.write("\n")
            sys.stderr.flush()


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _sha256(path: Path) -> str:
    with path.open("rb") as source:
        return hashlib.file_digest(source, "sha256").hexdigest()


def _report(
    args: argparse.Namespace,
    summary: _Summary,
    progress: ImportProgress,
    rejects: Path,
    elapsed: float,
) -> None:
    result = summary.as_json(progress, rejects, elapsed)
    if args.json:
        print_json(result)
        return
    if summary.skipped and not summary.lines:
        print(f"{args.file}: already imported (finished {result['finished_at']})")
    print(
        f"imported {summary.imported:,}, rejected {summary.rejected:,}"
        f" (see {rejects}), skipped {summary.skipped:,} already imported;"
        f" {_duration(elapsed)} elapsed, {result['lines_per_second']:,} lines/s"
    )
    if summary.lines:
        _report_carried_over(summary, result)
    if summary.skipped and summary.lines:
        print(
            f"in all: imported {progress.imported:,}, rejected {progress.rejected:,}"
            " (this run resumed an interrupted import)"
        )


def _report_carried_over(summary: _Summary, result: dict[str, Any]) -> None:
    """What of this run's imported records did not come over whole."""
    if summary.with_notices:
        print(
            f"imported with notices: {summary.with_notices:,} (each value left out is in the "
            "reject file, marked imported)"
        )
    pins = (
        f"PINs: {result['pins_carried_over']:,} carried over, "
        f"{result['pins_not_decrypted']:,} not decrypted (in the reject file)"
    )
    if result["pins_skipped_without_key"]:
        pins += (
            f", {result['pins_skipped_without_key']:,} skipped: no --legacy-pin-key-file"
            " (those borrowers must set a new PIN)"
        )
    print(pins)
    if summary.feide or summary.passwords:
        print(
            f"not carried over: {summary.feide:,} Feide flags (feide 1; the Feide id is not in "
            f"the record: add it with AddIdentity), {summary.passwords:,} legacy passwords "
            "(passord; its format is not public: those borrowers set a new one)"
        )
