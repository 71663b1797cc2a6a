"""The results: one row per figure, a header describing the machine, a Markdown file."""

from __future__ import annotations

import datetime as dt
import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Row:
    """One figure: its value, the ceiling it is measured against, and the target it must meet."""

    name: str
    value: float | None
    unit: str
    ceiling: float | None
    ratio: float | None
    target: str
    # None: the figure could not be measured (see notes).
    passed: bool | None
    notes: str = ""
    # Of a load of calls: the server process's CPU time per call answered, in µs, for the
    # figure and for its ceiling (None: not a load of calls, or not measured).
    cpu_per_call_us: float | None = None
    ceiling_cpu_per_call_us: float | None = None


def ratio_row(
    name: str,
    value: float,
    ceiling: float,
    unit: str,
    minimum: float,
    *,
    failures: int,
    notes: str,
    cpu_per_call_us: float | None = None,
    ceiling_cpu_per_call_us: float | None = None,
) -> Row:
    """A throughput that must reach ``minimum`` of its ceiling, with every call succeeding."""
    ratio = value / ceiling if ceiling > 0 else 0.0
    if failures:
        notes = f"{failures} calls failed; {notes}"
    return Row(
        name,
        value,
        unit,
        ceiling,
        ratio,
        f"≥ {minimum:.2f}",
        ratio >= minimum and not failures,
        notes,
        cpu_per_call_us,
        ceiling_cpu_per_call_us,
    )


def limit_row(
    name: str, value: float | None, unit: str, maximum: float, *, failures: int, notes: str
) -> Row:
    """A figure (such as a latency) that must stay under ``maximum``."""
    if failures:
        notes = f"{failures} calls failed; {notes}"
    passed = value is not None and value < maximum and not failures
    return Row(name, value, unit, None, None, f"< {maximum:g} {unit}", passed, notes)


def unavailable_row(name: str, unit: str, target: str, why: str) -> Row:
    return Row(name, None, unit, None, None, target, None, f"not available: {why}")


@dataclass(frozen=True)
class RunDescription:
    started: dt.datetime
    store: str
    borrowers: int
    seconds: float
    warmup_seconds: float
    concurrency: str
    # Cores busy with other processes just before the run (None: unknown).
    background_cpu: float | None
    # What the change feed's figures were measured with.
    feed: str = ""
    # Why a store was left out of this run (e.g. PostgreSQL not reachable).
    stores_note: str = ""


def machine() -> list[tuple[str, str]]:
    return [
        ("machine", platform.platform()),
        ("CPU", _cpu_model()),
        ("cores", str(os.cpu_count())),
        ("Python", platform.python_version()),
        ("grpcio", metadata.version("grpcio")),
    ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def markdown(run: RunDescription, rows: list[Row], elapsed_seconds: float) -> str:
    header = [
        *machine(),
        ("date", run.started.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("store", run.store),
        ("borrowers", str(run.borrowers)),
        ("duration", f"{run.seconds:g} s per measurement, after {run.warmup_seconds:g} s warm-up"),
        ("concurrency", run.concurrency),
        ("change feed", run.feed),
        ("busy before the run", _background(run.background_cpu)),
        ("suite took", f"{elapsed_seconds:.0f} s"),
    ]
    if run.stores_note:
        header.append(("stores", run.stores_note))
    lines = [
        f"# NLR benchmarks, {run.started:%Y-%m-%d}, {run.store}, {run.borrowers:,} borrowers",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in header]
    lines += [
        "",
        "Each ratio is the figure divided by its ceiling, both measured in this run on this "
        "machine with the same load generator (see bench/README.md).",
        "",
        "| benchmark | value | unit | ceiling | ratio | target | result "
        "| server CPU per call (ceiling's) | notes |",
        "|---|---:|---|---:|---:|---|---|---:|---|",
    ]
    for row in rows:
        result = {True: "pass", False: "FAIL", None: "n/a"}[row.passed]
        if row.passed is None and row.value is not None:
            result = "—"  # measured, with no target to meet
        cells = [
            row.name,
            _number(row.value),
            row.unit,
            _number(row.ceiling),
            "—" if row.ratio is None else f"{row.ratio:.2f}",
            row.target,
            result,
            _cpu_per_call(row),
            row.notes,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cpu_per_call(row: Row) -> str:
    if row.cpu_per_call_us is None:
        return "—"
    text = f"{row.cpu_per_call_us:,.0f} µs"
    if row.ceiling_cpu_per_call_us is not None:
        text += f" ({row.ceiling_cpu_per_call_us:,.0f} µs)"
    return text


def _background(cores: float | None) -> str:
    if cores is None:
        return "unknown"
    quiet = "quiet" if cores < 0.15 else "⚠ other processes were running"
    return f"{cores:.2f} cores ({quiet})"


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def write(run: RunDescription, text: str, rows: tuple[str, ...] = ()) -> Path:
    """Writes bench/results/<UTC date>-<store>-<borrowers>.md (replacing that day's run); a run
    of only some rows (BENCH_ROWS) goes to ...-<borrowers>-<rows>.md, beside the whole run's."""
    RESULTS.mkdir(exist_ok=True)
    chosen = f"-{'+'.join(rows)}" if rows else ""
    path = RESULTS / f"{run.started:%Y-%m-%d}-{run.store}-{run.borrowers}{chosen}.md"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
    return path
