"""`nlr-admin import`: bulk import of borrowers from the legacy register's JSON Lines export.

The line format is in ``nlr_server.ops.legacy_export``. Lines are validated in worker processes
and written in batches, one transaction each, together with the import's progress (the
``imports`` table, keyed by the file's SHA-256): run the same command again after an
interruption and it continues after the last committed batch, deciding every line as an
uninterrupted run would (the import time is fixed at the first start). Each valid line is then
held to CreateBorrower's rules in its batch's transaction: its card number neither in use, nor
retired, nor inside another library's reservation (usecases/reservations.py; the home library
may use its own), and its national id not registered. Rejected lines go to the reject file with
their line number and reason and never stop the import. No change-feed entries
are written: the import is the initial load, and library systems do a full sync
(ListAffiliatedBorrowers) after it.
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
from nlr_server.crypto.national_id_sealer import NationalIdSealer
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
from nlr_server.ops.legacy_export import ImportContext, RejectedLine, parse_line
from nlr_server.store import borrower_import
from nlr_server.store.audit_repository import append_events
from nlr_server.store.borrower_import import ImportProgress
from nlr_server.usecases.reservations import ReservedRanges

DEFAULT_BATCH_SIZE = 5000
# Lines per task handed to a worker process: big enough that pickling is a small part of it.
_CHUNK_LINES = 500
_PROGRESS_INTERVAL = 0.5


class _Valid(NamedTuple):
    """A valid line, as the rows the store will insert for it."""

    line: int
    rows: borrower_import.NewBorrower


# A chunk as a worker process sends it back: its valid lines as (line, the fields of their
# NewBorrower), and its rejected lines. Plain tuples: every line passes through this process,
# and they unpickle here several times faster than named tuples would.
_ChunkResult = tuple[list[tuple[int, tuple[Any, ...]]], list[RejectedLine]]


@dataclass
class _Validated:
    """A batch's lines validated: the valid ones in line order, and the rejected ones."""

    valid: list[_Valid]
    rejected: list[RejectedLine]
    lines_done: int
    offset: int


def add_commands(commands: Commands) -> None:
    command = add_command(
        commands,
        "import",
        _import,
        "import borrowers from a JSON Lines export of the legacy register",
        "One borrower per line with the legacy field names (see the README). Valid lines are "
        "imported with the same validation, encryption and conflict rules as CreateBorrower "
        "(a card number in use, retired or reserved by another library than the home library, "
        "or a registered national id, is refused); the others go to the reject file with "
        "their line number and reason. Run the same command again "
        "after an interruption: it resumes after the last committed batch.",
    )
    command.add_argument("file", type=Path, metavar="FILE", help="the JSON Lines export")
    command.add_argument(
        "--rejects",
        type=Path,
        metavar="PATH",
        help="where rejected lines go (default: FILE.rejects.jsonl next to FILE)",
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

    def as_json(self, progress: ImportProgress, rejects: Path, elapsed: float) -> dict[str, Any]:
        return {
            "file_sha256": progress.file_sha256,
            "imported": self.imported,
            "rejected": self.rejected,
            "skipped": self.skipped,
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
    env = environment()
    allow_synthetic = args.allow_synthetic_ids or env.flag("NLR_ALLOW_SYNTHETIC_IDS")
    rejects_path: Path = args.rejects or path.with_name(path.name + ".rejects.jsonl")
    started = time.monotonic()
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
        summary = _Summary(skipped=progress.lines_done)
        if progress.finished_at is None:
            context = ImportContext(libraries, allow_synthetic, progress.started_at)
            keyring_path = env.path("NLR_KEYRING")
            with _rejects_file(rejects_path, progress.rejects_offset) as rejects:
                _run(engine, path, rejects, progress, context, keyring_path, summary, args)
    elapsed = time.monotonic() - started
    _report(args, summary, progress, rejects_path, elapsed)


def _run(
    engine: Engine,
    path: Path,
    rejects: IO[bytes],
    progress: ImportProgress,
    context: ImportContext,
    keyring_path: Path,
    summary: _Summary,
    args: argparse.Namespace,
) -> None:
    bar = _ProgressBar(
        progress.file_size,
        progress.input_offset,
        progress.lines_done,
        enabled=not args.no_progress,
    )
    batches = _batches(path, progress.input_offset, progress.lines_done, progress.batch_size)
    analyzed_at = 0
    acting = operator("import")
    setup = _WorkerSetup(context, keyring_path, engine.url.drivername)
    for validated in _validated(batches, setup, args.workers):
        imported, rejected = _commit_batch(engine, rejects, progress, validated, acting)
        summary.imported += imported
        summary.rejected += rejected
        summary.lines += imported + rejected
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


@dataclass(frozen=True)
class _Batch:
    chunks: list[list[tuple[int, bytes]]]
    lines_done: int
    offset: int


def _batches(path: Path, offset: int, lines_done: int, batch_size: int) -> Iterator[_Batch]:
    """The file's lines after ``offset`` in batches of ``batch_size`` (blank lines count as
    lines but carry nothing), each in chunks for the workers."""
    with path.open("rb") as source:
        source.seek(offset)
        chunks: list[list[tuple[int, bytes]]] = []
        chunk: list[tuple[int, bytes]] = []
        in_batch = 0
        for raw in source:
            lines_done += 1
            offset += len(raw)
            in_batch += 1
            if raw.strip():
                chunk.append((lines_done, raw))
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
    """What a process that validates lines needs: picklable, for the worker processes."""

    context: ImportContext
    keyring_path: Path
    # The database's (its URL's driver name): the rows are made for it.
    drivername: str


# Set in each worker process by _start_worker.
_worker_context: ImportContext | None = None
_worker_sealer: NationalIdSealer | None = None
_worker_rows: borrower_import.ImportRows | None = None


def _start_worker(setup: _WorkerSetup) -> None:
    global _worker_context, _worker_sealer, _worker_rows
    _worker_context = setup.context
    _worker_sealer = NationalIdSealer(Keyring.load(setup.keyring_path))
    _worker_rows = borrower_import.ImportRows(setup.drivername)


def _validate_chunk(chunk: list[tuple[int, bytes]]) -> _ChunkResult:
    context, sealer, rows = _worker_context, _worker_sealer, _worker_rows
    assert context is not None and sealer is not None and rows is not None
    valid: list[tuple[int, tuple[Any, ...]]] = []
    rejected: list[RejectedLine] = []
    for line, raw in chunk:
        result = parse_line(line, raw, context, sealer)
        if isinstance(result, RejectedLine):
            rejected.append(result)
        else:
            valid.append((line, tuple(rows.new_borrower(result.borrower, result.national_id))))
    return valid, rejected


def _validated(
    batches: Iterator[_Batch], setup: _WorkerSetup, workers: int
) -> Iterator[_Validated]:
    """Each batch's lines validated, in order; with workers, the next batches are validated
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
        [_Valid(line, make(fields)) for valid, _ in chunks for line, fields in valid],
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
) -> tuple[int, int]:
    """Writes one batch and its progress in one transaction, with an audit event naming the
    operator; returns (imported, rejected)."""
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
        )
        accepted: list[borrower_import.NewBorrower] = []
        for candidate in valid:
            reason = taken.conflict(candidate)
            if reason is not None:
                refused.append(RejectedLine(candidate.line, reason))
                continue
            taken.add(candidate)
            accepted.append(candidate.rows)
        refused.sort(key=lambda r: r.line)
        for rejected in refused:
            line = {"line": rejected.line, "reason": rejected.reason}
            rejects.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
        # On disk before the batch commits: a resumed import cuts the file back to the
        # length its last commit recorded, so no reject is ever lost or written twice.
        rejects.flush()
        os.fsync(rejects.fileno())
        borrower_import.insert_borrowers(connection, first_id, accepted)
        progress.lines_done = validated.lines_done
        progress.input_offset = validated.offset
        progress.rejects_offset = rejects.tell()
        progress.imported += len(accepted)
        progress.rejected += len(refused)
        borrower_import.save_progress(connection, progress)
        append_events(connection, [acting.event(now())])
    return len(accepted), len(refused)


@dataclass
class _Taken:
    """What a batch's valid lines are checked against: the register as the batch's transaction
    sees it, and the lines of the batch accepted so far."""

    cards: dict[str, borrower_import.ExistingCard]
    holders: dict[bytes, int]
    reserved: ReservedRanges
    # The import's own borrowers have ids from here on.
    first_borrower_id: int
    batch_cards: dict[str, int] = field(default_factory=dict)
    batch_ids: dict[bytes, int] = field(default_factory=dict)

    def conflict(self, valid: _Valid) -> str | None:
        """Why a valid line cannot be imported, by CreateBorrower's rules and in its order: its
        card number is taken, retired or another library's reservation, or its national id is
        registered (a duplicate of an earlier line of the file says so)."""
        rows = valid.rows
        card_number = rows.card_number
        card = self.cards.get(card_number)
        if card is not None:
            if card.retired:
                return "lnr: card number is retired and can never be used again"
            if card.borrower_id is not None and card.borrower_id >= self.first_borrower_id:
                return "lnr: card number duplicates an earlier line of the file"
            return "lnr: card number is already registered"
        if card_number in self.batch_cards:
            return f"lnr: card number duplicates line {self.batch_cards[card_number]}"
        if self.reserved.reserved_for_another(
            CardNumber(card_number), LibraryNumber(rows.home_library)
        ):
            return "lnr: card number is reserved by another library"
        index = rows.national_id_index
        holder = self.holders.get(index)
        if holder is not None:
            if holder >= self.first_borrower_id:
                return "fnr: national id duplicates an earlier line of the file"
            return "fnr: national id is already registered"
        if index in self.batch_ids:
            return f"fnr: national id duplicates line {self.batch_ids[index]}"
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
    if summary.skipped and summary.lines:
        print(
            f"in all: imported {progress.imported:,}, rejected {progress.rejected:,}"
            " (this run resumed an interrupted import)"
        )
