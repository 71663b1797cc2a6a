"""The population register's rows (BENCH_ROWS=population): Folkeregisteret's events applied by
`nlr-admin population sync --once`, against the same events read by the same client with
nothing applied; and `nlr-admin population reconcile` over the register.

Folkeregisteret and Maskinporten are the tests' fake (tests/population_fake.py: a real local
HTTP server speaking Maskinporten's token endpoint and Folkeregisteret's feed and bulk lookup),
running in threads of the benchmark process, which otherwise only waits while a command runs:
so the benchmark process's CPU time in the window is the fake's, and a command's is its own
(from its rusage once it has been waited for). The commands run as processes of their own on
the benchmark's register (no register server runs), with the fake's URLs and a Maskinporten
client key the fake knows.

Sync: ``SYNC_EVENTS`` events (every borrower when the register has fewer) for borrowers spread
evenly over the whole register, in random order, each person changed (a new family name and
registered address, the given names and sex kept) so that every event really writes; after
every ``OUTSIDERS_EVERY``-th of them, one for a person who is no borrower (valid synthetic ids
no borrower has), which the blind-index filter skips. Pages of ``PAGE_SIZE`` (Folkeregisteret's
fixed page). Its ceiling, measured right before: the same events read and the same persons
looked up through the same fake by the same client in a process of its own
(bench/population_client.py), nothing applied.

Reconcile: the fake answers a bulk lookup of any national id with a person made from the id
(GeneratedPersons), whose name and address differ from the borrower's, so each borrower looked
up is changed: a first reconcile after the legacy import at its costliest. The command always
does the whole register; it is run whole when the register has at most
``RECONCILE_WHOLE_UP_TO`` borrowers or the sync's rate says the whole would take at most
``RECONCILE_BUDGET_SECONDS``, and otherwise for ``RECONCILE_PROBE_SECONDS`` and then
interrupted (SIGINT: the batch under way is rolled back, those before it stay), its rate read
from its own progress line: the first borrowers by id of the full-size register.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import re
import resource
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cpu import machine_busy_seconds
from bench.environment import Environment
from bench.legacy_export import BIRTH_DAYS, FIRST_BIRTH_DATE, Generator, national_id
from bench.population import admin_environment
from bench.processes import ChildFailed, Children, python_module, tail
from bench.report import Row
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from nlr_server.domain.national_id import make_synthetic_national_id
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import BorrowerRow
from population_fake import CLIENT_ID, KEY_ID, SCOPE, PopulationRegisterFake, write_client_key

# Folkeregisteret's fixed page of events.
PAGE_SIZE = 1000
# Events for borrowers (every borrower when the register has fewer).
SYNC_EVENTS = 20_000
# After every this many borrowers' events, one for a person who is no borrower (~10 %).
OUTSIDERS_EVERY = 10
# The target: events applied per second at 5 million borrowers.
SYNC_TARGET_PER_SECOND = 2000.0
NATIONAL_SCALE = 5_000_000
# Reconcile: whole up to this size, or when the sync's rate says it would fit in the budget;
# otherwise run for the probe's time and interrupted.
RECONCILE_WHOLE_UP_TO = 200_000
RECONCILE_BUDGET_SECONDS = 600.0
RECONCILE_PROBE_SECONDS = 300.0
# The reconcile ceiling's bulk lookups: this many borrowers spread evenly, a thousand a lookup.
RECONCILE_CEILING_PERSONS = 20_000
COMMAND_TIMEOUT_SECONDS = 4 * 3600.0
INTERRUPT_GRACE_SECONDS = 120.0
# The streets of the new addresses: none of the generated export's (bench/legacy_export.py), so
# every person looked up has an address the register does not hold yet, and the rows that took
# it can be counted afterwards.
SYNC_STREET = "Fjordgata"
RECONCILE_STREET = "Strandgata"
EVENT_KINDS = ("endringINavn", "endringIBostedsadresse")

_FAMILY_NAMES = (
    "Fjeldstad",
    "Holmvik",
    "Sæther",
    "Brekke",
    "Lunde",
    "Aasen",
    "Myhre",
    "Vik",
    "Strand",
    "Haugland",
    "Solheim",
    "Bakken",
)
_GIVEN_NAMES = ("Ingrid", "Ola", "Kari", "Per", "Sigrid", "Lars", "Astrid", "Nils", "Marte", "Jon")
# Real postal codes and places.
_POSTAL_PLACES = (
    ("0150", "OSLO"),
    ("5003", "BERGEN"),
    ("7010", "TRONDHEIM"),
    ("4006", "STAVANGER"),
    ("9008", "TROMSØ"),
    ("8006", "BODØ"),
    ("2317", "HAMAR"),
    ("3015", "DRAMMEN"),
)
# `population reconcile`'s progress line (on standard error, each one after "\r").
_PROGRESS = re.compile(r"looked up ([\d,]+)\s+found ([\d,]+)\s+not found ([\d,]+)\s+([\d,]+)/s")

Progress = Callable[[str], None]


def _entry(**fields: Any) -> dict[str, Any]:
    return {"erGjeldende": True, "kilde": "KILDE_DSF", **fields}


def person_document(
    number: str,
    given: str,
    family: str,
    sex: str | None,
    street: str,
    house: int,
    postal: tuple[str, str],
) -> dict[str, Any]:
    """A folkeregisterperson as a bulk lookup gives it: identity, name, sex (if given), a
    registered street address, status bosatt."""
    document: dict[str, Any] = {
        "identifikasjonsnummer": [_entry(foedselsEllerDNummer=number)],
        "navn": [_entry(fornavn=given, etternavn=family)],
        "bostedsadresse": [
            _entry(
                vegadresse={
                    "adressenavn": street,
                    "adressenummer": {"husnummer": str(house)},
                    "poststed": {"postnummer": postal[0], "poststedsnavn": postal[1]},
                }
            )
        ],
        "status": [_entry(status="bosatt")],
    }
    if sex is not None:
        document["kjoenn"] = [_entry(kjoenn=sex)]
    return document


def _bits(number: str) -> int:
    return int.from_bytes(hashlib.blake2b(number.encode(), digest_size=8).digest(), "big")


def generated_person(number: str) -> dict[str, Any]:
    """A person made from the national id alone (name and address; no sex, which the borrower
    keeps): what the fake answers for any id it holds no person of."""
    bits = _bits(number)
    return person_document(
        number,
        _GIVEN_NAMES[bits % len(_GIVEN_NAMES)],
        _FAMILY_NAMES[(bits >> 8) % len(_FAMILY_NAMES)],
        None,
        RECONCILE_STREET,
        1 + (bits >> 16) % 150,
        _POSTAL_PLACES[(bits >> 24) % len(_POSTAL_PLACES)],
    )


def changed_person(record: dict[str, Any]) -> dict[str, Any]:
    """The generated export's borrower (its legacy record) as the population register now has
    them: a new family name and registered address, the same given names and sex."""
    family, given = (part.strip() for part in str(record["navn"]).split(",", 1))
    number = str(record["fnr_hash"])
    bits = _bits(number)
    names = [name for name in _FAMILY_NAMES if name != family]
    return person_document(
        number,
        given,
        names[bits % len(names)],
        "kvinne" if record["kjonn"] == "F" else "mann",
        SYNC_STREET,
        1 + (bits >> 16) % 150,
        _POSTAL_PLACES[(bits >> 24) % len(_POSTAL_PLACES)],
    )


class GeneratedPersons(dict[str, dict[str, Any]]):
    """The fake's persons: those set explicitly, and for any other national id one made from
    it (generated_person), so a bulk lookup finds every borrower it is asked for. The fake's
    handler asks ``n in persons`` and then ``persons[n]``; nothing generated is kept."""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __missing__(self, key: str) -> dict[str, Any]:
        return generated_person(key)


def outsiders(count: int, how_many: int) -> list[str]:
    """Valid synthetic national ids no borrower of a ``count``-borrower export has: each on a
    different birth day, the first serial past the most any day's borrowers take."""
    serial = -(-count // BIRTH_DAYS)
    how_many = min(how_many, BIRTH_DAYS)
    return [
        make_synthetic_national_id(
            FIRST_BIRTH_DATE + dt.timedelta(days=j * BIRTH_DAYS // how_many), serial
        )
        for j in range(how_many)
    ]


@dataclass(frozen=True)
class SyncEvents:
    borrowers: list[str]  # the borrowers' national ids, in the feed's order
    outsiders: list[str]

    @property
    def total(self) -> int:
        return len(self.borrowers) + len(self.outsiders)


def add_sync_events(fake: PopulationRegisterFake, generator: Generator, seed: int) -> SyncEvents:
    """The sync's events in the fake's feed, and each borrower's changed person."""
    count = generator.count
    size = min(SYNC_EVENTS, count)
    indices = [i * count // size for i in range(size)]
    random.Random(seed).shuffle(indices)
    others = outsiders(count, size // OUTSIDERS_EVERY)
    state = fake.state
    borrowers: list[str] = []
    used = 0
    for position, index in enumerate(indices):
        record = generator.record(index)
        number = national_id(index, count)
        state.persons[number] = changed_person(record)
        state.add_event(number, EVENT_KINDS[position % len(EVENT_KINDS)])
        borrowers.append(number)
        if position % OUTSIDERS_EVERY == OUTSIDERS_EVERY - 1 and used < len(others):
            state.add_event(others[used], EVENT_KINDS[0])
            used += 1
    return SyncEvents(borrowers, others[:used])


@dataclass(frozen=True)
class Timed:
    """A command run to its end (or interrupted): wall time from start to exit, what it
    printed, and the cores it, the fake (the benchmark process) and everything else kept busy."""

    seconds: float
    returncode: int
    stdout: str
    stderr: str
    interrupted: bool
    command_cores: float | None
    fake_cores: float | None
    other_cores: float | None


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(
    children: Children,
    command: list[str],
    variables: dict[str, str],
    directory: Path,
    name: str,
    *,
    interrupt_after: float | None = None,
) -> Timed:
    """``command`` in a process of its own, timed from start to exit; with ``interrupt_after``,
    sent SIGINT (as Ctrl-C) if it is still running after that many seconds."""
    out_path, err_path = directory / f"{name}.out", directory / f"{name}.log"
    interrupted = False
    with out_path.open("wb") as out, err_path.open("wb") as err:
        busy_before, command_before = machine_busy_seconds(), _children_cpu()
        own_before = time.process_time()
        started = time.perf_counter()
        process = children.start(command, env=variables, stdout=out, stderr=err)
        try:
            if interrupt_after is not None:
                try:
                    process.wait(timeout=interrupt_after)
                except subprocess.TimeoutExpired:
                    process.send_signal(signal.SIGINT)
                    interrupted = True
            process.wait(
                timeout=INTERRUPT_GRACE_SECONDS if interrupted else COMMAND_TIMEOUT_SECONDS
            )
        except subprocess.TimeoutExpired:
            raise ChildFailed(f"{name}: still running, stopped\n{tail(err_path)}") from None
        finally:
            children.stop(process)
        seconds = time.perf_counter() - started
        command_cpu = _children_cpu() - command_before
        own_cpu = time.process_time() - own_before
        busy_after = machine_busy_seconds()
    other = None
    if busy_before is not None and busy_after is not None and seconds > 0:
        other = max(0.0, (busy_after - busy_before - command_cpu - own_cpu) / seconds)
    return Timed(
        seconds,
        process.returncode,
        out_path.read_text(encoding="utf-8", errors="replace"),
        err_path.read_text(encoding="utf-8", errors="replace"),
        interrupted,
        command_cpu / seconds if seconds > 0 else None,
        own_cpu / seconds if seconds > 0 else None,
        other,
    )


def _json_of(timed: Timed, what: str) -> dict[str, Any]:
    if timed.returncode != 0:
        raise ChildFailed(f"{what} exited with status {timed.returncode}:\n{timed.stderr[-2000:]}")
    try:
        result = json.loads(timed.stdout)
    except ValueError:
        raise ChildFailed(f"{what} printed no JSON:\n{timed.stdout[-500:]}") from None
    if not isinstance(result, dict):
        raise ChildFailed(f"{what} printed {type(result).__name__}, not a JSON object")
    return result


def _admin(*args: str) -> list[str]:
    return python_module("nlr_server.ops.admin", *args)


def _addresses_on(database_url: str, street: str) -> int:
    """Borrowers whose registered address is on ``street`` (one the export never uses)."""
    engine = create_store_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count())
                    .select_from(BorrowerRow)
                    .where(BorrowerRow.address_line1.like(f"{street} %"))
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _cores(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


def _busy(timed: Timed) -> str:
    return (
        f"the command {_cores(timed.command_cores)}, the fake (benchmark process) "
        f"{_cores(timed.fake_cores)}, other {_cores(timed.other_cores)}"
    )


def _disturbed(*others: float | None) -> str:
    busy = max((other for other in others if other is not None), default=0.0)
    return f"⚠ other processes used up to {busy:.2f} cores meanwhile; " if busy >= 0.15 else ""


@dataclass
class _Context:
    env: Environment
    children: Children
    generator: Generator
    progress: Progress
    fake: PopulationRegisterFake
    variables: dict[str, str]
    ids_directory: Path


def rows(
    env: Environment, children: Children, generator: Generator, progress: Progress
) -> list[Row]:
    """The sync's row and the reconcile's, against one fake started for them."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = write_client_key(env.directory / "maskinporten.pem", key)
    with PopulationRegisterFake({KEY_ID: key.public_key()}) as fake:
        persons = GeneratedPersons()
        fake.state.persons = persons
        fake.state.page_size = PAGE_SIZE
        variables = admin_environment(env) | {
            "NLR_FREG_URL": fake.url,
            "NLR_MASKINPORTEN_URL": fake.state.issuer,
            "NLR_MASKINPORTEN_CLIENT_ID": CLIENT_ID,
            "NLR_MASKINPORTEN_KEY": str(key_file),
            "NLR_MASKINPORTEN_KID": KEY_ID,
            "NLR_MASKINPORTEN_SCOPE": SCOPE,
        }
        context = _Context(env, children, generator, progress, fake, variables, env.directory)
        sync = _sync_row(context)
        # From here on every person is made from the id (the reconcile's): the sync's
        # borrowers are changed again too.
        persons.clear()
        reconcile = _reconcile_row(context, sync.value)
    return [sync, reconcile]


def _sync_row(context: _Context) -> Row:
    name = "Population register sync (events applied)"
    target = f"≥ {SYNC_TARGET_PER_SECOND:,.0f}/s"
    env, generator, progress = context.env, context.generator, context.progress
    count = generator.count
    progress(f"population sync: the fake's feed for {min(SYNC_EVENTS, count):,} borrowers")
    events = add_sync_events(context.fake, generator, seed=generator.seed)
    ids_file = context.ids_directory / "population-sync-ids.json"
    ids_file.write_text(json.dumps(events.borrowers))

    progress(
        f"measuring the sync's ceiling: {events.total:,} events read and {len(events.borrowers):,} "
        "persons looked up, nothing applied"
    )
    ceiling_run = run_timed(
        context.children,
        python_module("bench.population_client", "feed", str(ids_file)),
        context.variables,
        env.directory,
        "population-sync-ceiling",
    )
    ceiling = _json_of(ceiling_run, "the sync's ceiling (bench.population_client feed)")
    ceiling_rate = int(ceiling["looked_up"]) / ceiling_run.seconds
    progress(f"  {ceiling_run.seconds:.2f} s: {ceiling_rate:,.0f} borrowers' events/s")

    start_up = run_timed(
        context.children,
        _admin("population", "review", "--json"),
        context.variables,
        env.directory,
        "population-review",
    )
    if start_up.returncode != 0:
        raise ChildFailed(f"nlr-admin population review failed:\n{start_up.stderr[-2000:]}")

    progress(f"running nlr-admin population sync --once over {events.total:,} events")
    sync_run = run_timed(
        context.children,
        _admin("population", "sync", "--once", "--json"),
        context.variables,
        env.directory,
        "population-sync",
    )
    summary = _json_of(sync_run, "nlr-admin population sync --once")
    applied, read = int(summary["applied"]), int(summary["read"])
    rate = applied / sync_run.seconds
    progress(f"  read {read:,}, applied {applied:,} in {sync_run.seconds:.2f} s: {rate:,.0f}/s")
    moved = _addresses_on(env.database_url, SYNC_STREET)

    problems = []
    if read != events.total or int(summary["next_sequence"]) != events.total + 1:
        problems.append(f"⚠ read {read:,} of {events.total:,} events ({summary})")
    if applied != len(events.borrowers):
        problems.append(f"⚠ applied {applied:,} of the {len(events.borrowers):,} borrowers' events")
    if moved != len(events.borrowers):
        problems.append(f"⚠ {moved:,} of {len(events.borrowers):,} borrowers have the new address")
    if int(ceiling["read"]) != events.total or int(ceiling["found"]) != len(events.borrowers):
        problems.append(f"⚠ the ceiling read {ceiling}")
    at_scale = (
        f"at {count:,} borrowers"
        if count >= NATIONAL_SCALE
        else f"at {count:,} borrowers (the target is at 5 M: see that size's results file)"
    )
    pure = sync_run.seconds - start_up.seconds
    notes = (
        f"{_disturbed(sync_run.other_cores, ceiling_run.other_cores)}"
        f"{'; '.join(problems) + '; ' if problems else ''}"
        f"{at_scale}; `nlr-admin population sync --once --json` against the fake "
        f"(tests/population_fake.py, in the benchmark process), pages of {PAGE_SIZE:,}: "
        f"{read:,} events, {len(events.borrowers):,} for borrowers spread evenly over the whole "
        f"register in random order, each person changed (a new family name and registered "
        f"address), {len(events.outsiders):,} for persons who are not borrowers (skipped by the "
        f"blind index); {applied:,} applied in {sync_run.seconds:.2f} s, process start to exit "
        f"({read / sync_run.seconds:,.0f} events read/s), after which {moved:,} of the "
        f"{len(events.borrowers):,} borrowers have the new address; start-up: "
        f"`population review --json` (the same process start, imports "
        f"and store, no request) takes {start_up.seconds:.2f} s, so "
        f"{applied / pure if pure > 0 else 0:,.0f}/s without it; ceiling: the same {read:,} "
        f"events read page by page and the same {int(ceiling['looked_up']):,} persons looked up "
        f"in bulk through the same fake by the same client (FolkeregisteretSource, "
        f"bench/population_client.py, a process of its own), nothing applied, "
        f"{ceiling_run.seconds:.2f} s process start to exit; CPU cores during the sync: "
        f"{_busy(sync_run)}; during the ceiling: {_busy(ceiling_run)}"
    )
    return Row(
        name,
        rate,
        "events/s",
        ceiling_rate,
        rate / ceiling_rate if ceiling_rate > 0 else 0.0,
        target,
        rate >= SYNC_TARGET_PER_SECOND and not problems,
        notes,
    )


def _reconcile_row(context: _Context, sync_rate: float | None) -> Row:
    name = "Population register reconcile"
    env, generator, progress = context.env, context.generator, context.progress
    count = generator.count
    estimate = count / sync_rate if sync_rate else None
    whole = count <= RECONCILE_WHOLE_UP_TO or (
        estimate is not None and estimate <= RECONCILE_BUDGET_SECONDS
    )

    size = min(RECONCILE_CEILING_PERSONS, count)
    ceiling_ids = sorted(national_id(i * count // size, count) for i in range(size))
    ids_file = context.ids_directory / "population-reconcile-ids.json"
    ids_file.write_text(json.dumps(ceiling_ids))
    progress(f"measuring the reconcile's ceiling: {size:,} persons looked up in bulk")
    ceiling_run = run_timed(
        context.children,
        python_module("bench.population_client", "lookups", str(ids_file)),
        context.variables,
        env.directory,
        "population-reconcile-ceiling",
    )
    ceiling = _json_of(ceiling_run, "the reconcile's ceiling (bench.population_client lookups)")
    ceiling_rate = size / ceiling_run.seconds
    progress(f"  {ceiling_run.seconds:.2f} s: {ceiling_rate:,.0f} persons/s")

    problems: list[str] = []
    if int(ceiling["found"]) != size:
        problems.append(f"⚠ the ceiling found {ceiling['found']} of {size:,}")
    if whole:
        progress(f"running nlr-admin population reconcile over all {count:,} borrowers")
        run = run_timed(
            context.children,
            _admin("population", "reconcile", "--json", "--no-progress"),
            context.variables,
            env.directory,
            "population-reconcile",
        )
        summary = _json_of(run, "nlr-admin population reconcile")
        looked_up, found = int(summary["looked_up"]), int(summary["found"])
        rate = looked_up / run.seconds
        if looked_up != count or found != count or int(summary["not_found"]):
            problems.append(f"⚠ looked up {looked_up:,}, found {found:,} of {count:,}")
        what = (
            f"the whole register: {looked_up:,} borrowers looked up, {found:,} found and applied "
            f"in {run.seconds:.1f} s, process start to exit (the command's own "
            f"{float(summary['seconds']):.1f} s)"
        )
    else:
        progress(
            f"running nlr-admin population reconcile for {RECONCILE_PROBE_SECONDS:.0f} s of "
            f"the {count:,} borrowers (the whole would take about "
            f"{(estimate or 0) / 60:,.0f} min at the sync's rate), then interrupting it"
        )
        run = run_timed(
            context.children,
            _admin("population", "reconcile", "--json"),
            context.variables,
            env.directory,
            "population-reconcile",
            interrupt_after=RECONCILE_PROBE_SECONDS,
        )
        lines = _PROGRESS.findall(run.stderr)
        if not lines:
            raise ChildFailed(f"nlr-admin population reconcile showed no progress:\n{run.stderr}")
        looked_up, found, not_found, shown = (int(value.replace(",", "")) for value in lines[-1])
        rate = float(shown)
        if not run.interrupted:
            problems.append("⚠ finished before it was interrupted")
        if found != looked_up or not_found:
            problems.append(f"⚠ found {found:,} of {looked_up:,}")
        what = (
            f"not the whole register: the first {looked_up:,} borrowers by id of the {count:,} "
            f"(the command always does all; the sync's rate put the whole at "
            f"{(estimate or 0) / 60:,.0f} min, past the {RECONCILE_BUDGET_SECONDS / 60:.0f} min "
            f"budget), found and applied, then interrupted after "
            f"{RECONCILE_PROBE_SECONDS:.0f} s (SIGINT: the batch under way rolled back); the "
            f"rate is the command's own progress line (looked up / seconds since it began, "
            f"after start-up)"
        )
    changed = _addresses_on(env.database_url, RECONCILE_STREET)
    if changed < looked_up:
        problems.append(f"⚠ only {changed:,} of {looked_up:,} have the new address")
    progress(f"  looked up {looked_up:,}: {rate:,.0f}/s")
    whole_minutes = count / rate / 60 if rate > 0 else 0.0
    national = (
        f"; 5 M at this rate: {NATIONAL_SCALE / rate / 60:,.0f} min (estimate)"
        if count < NATIONAL_SCALE and rate > 0
        else ""
    )
    notes = (
        f"{_disturbed(run.other_cores, ceiling_run.other_cores)}"
        f"{'; '.join(problems) + '; ' if problems else ''}"
        f"`nlr-admin population reconcile` at {count:,} borrowers, {what}; the fake answers "
        f"every id with a person made from it, whose name and address differ from the "
        f"borrower's, so every borrower looked up is changed (the first reconcile after the "
        f"import at its costliest; {changed:,} have the new address afterwards); the whole "
        f"register at this rate: {whole_minutes:,.1f} min{national}; ceiling: {size:,} "
        f"borrowers spread over the register looked up in bulk, a thousand at a time, through "
        f"the same fake by the same client (bench/population_client.py lookups), "
        f"{ceiling_run.seconds:.2f} s process start to exit; CPU cores during the reconcile: "
        f"{_busy(run)}"
    )
    return Row(
        name,
        rate,
        "borrowers/s",
        ceiling_rate,
        rate / ceiling_rate if ceiling_rate > 0 else 0.0,
        "— (none in §9)",
        False if problems else None,
        notes,
    )
