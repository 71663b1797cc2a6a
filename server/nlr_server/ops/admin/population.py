"""`nlr-admin population`: follow the population register (Folkeregisteret) by hand, and see
where the sync stands."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from nlr_server.ops.admin import (
    AdminError,
    Commands,
    NotFound,
    add_command,
    add_group,
    add_json_option,
    environment,
    now,
    operator,
    print_json,
    store,
    timestamp,
)
from nlr_server.ops.config import ConfigError, Environment
from nlr_server.population.folkeregisteret import FolkeregisteretError, RetryLater
from nlr_server.population.maskinporten import MaskinportenError
from nlr_server.population.source import (
    MASKINPORTEN_SETTINGS,
    FolkeregisteretSource,
    folkeregisteret_source,
    missing_settings,
)
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory
from nlr_server.usecases.population import (
    RECONCILE_BATCH,
    delete_deceased,
    reconcile_batch,
    sync_page,
)


def add_commands(commands: Commands) -> None:
    group = add_group(commands, "population", "follow the population register (Folkeregisteret)")
    sync = add_command(
        group,
        "sync",
        _sync,
        "read Folkeregisteret's feed from where the sync stands and apply what changed",
        "For the register's borrowers: name, sex and registered address (NLR_FREG_URL and "
        "NLR_MASKINPORTEN_*). Reads page after page until every event is read, then, unless "
        "--once, waits NLR_FREG_POLL_SECONDS and reads on. One sync reads at a time, on any "
        "server.",
    )
    sync.add_argument("--once", action="store_true", help="stop once every event is read")
    add_json_option(sync)
    status = add_command(
        group,
        "status",
        _status,
        "where the population register sync stands in the feed",
        "The next sequence number, what was read and applied, when it last ran, what stopped "
        "it, and who holds the lease.",
    )
    add_json_option(status)
    reconcile = add_command(
        group,
        "reconcile",
        _reconcile,
        "look every borrower up in the population register and apply what it holds",
        "In bulk, a thousand at a time, in id order; each one found is applied as an event "
        "would be (and is then the population register's to keep true). Those not found are "
        "listed, never deleted. An interrupted reconcile goes on where it stopped when run "
        "again.",
    )
    reconcile.add_argument(
        "--not-found",
        type=Path,
        metavar="PATH",
        help="write the card numbers not found there, one per line (default: print them)",
    )
    reconcile.add_argument(
        "--batch-size",
        type=int,
        default=RECONCILE_BATCH,
        metavar="N",
        help=f"borrowers per bulk lookup and transaction (1 to {RECONCILE_BATCH}, the default)",
    )
    reconcile.add_argument("--no-progress", action="store_true", help="no progress line")
    add_json_option(reconcile)
    review = add_command(
        group,
        "review",
        _review,
        "what the population register sync left to an operator",
        "Two borrowers the population register says are one person (never merged by the "
        "sync), and events it could not apply (by sequence number). --resolve ID marks one "
        "done, after the operator has acted (e.g. deleted the duplicate record).",
    )
    review.add_argument("--all", action="store_true", help="also those already resolved")
    review.add_argument("--resolve", type=int, metavar="ID", help="mark this review resolved")
    add_json_option(review)


_SETTINGS = ("NLR_FREG_URL", *MASKINPORTEN_SETTINGS, "NLR_MASKINPORTEN_SCOPE")


def population_source(env: Environment) -> FolkeregisteretSource:
    """Folkeregisteret as the settings name it; ConfigError naming what is missing."""
    settings = {name: env.raw(name) for name in _SETTINGS}
    if not settings["NLR_FREG_URL"]:
        raise ConfigError("NLR_FREG_URL is not set: the population register is not followed")
    missing = missing_settings(settings)
    if missing:
        raise ConfigError(f"{', '.join(missing)} not set: needed with NLR_FREG_URL")
    return folkeregisteret_source(settings)


def _sync(args: argparse.Namespace) -> None:
    env = environment()
    try:
        source = population_source(env)
        poll = env.number("NLR_FREG_POLL_SECONDS", minimum=0.1)
        grace = dt.timedelta(days=env.number("NLR_FREG_DEATH_GRACE_DAYS", minimum=0))
    except (ConfigError, MaskinportenError) as error:
        raise AdminError(str(error)) from None
    owner = f"nlr-admin@{socket.gethostname()}:{os.getpid()}"
    read = applied = 0
    with store() as unit_of_work:
        while True:
            try:
                result = sync_page(unit_of_work, source, owner, now(), grace)
            except RetryLater as wait:
                time.sleep(wait.seconds)
                continue
            except (FolkeregisteretError, MaskinportenError) as error:
                _record_error(unit_of_work, owner, str(error))
                raise AdminError(str(error)) from None
            except Exception as error:
                # The store refused the page: by class only (a message may quote a value).
                # After a few tries the page is applied one event at a time.
                _record_error(unit_of_work, owner, type(error).__name__)
                raise AdminError(
                    f"applying the page failed ({type(error).__name__}); run the sync again: "
                    "after a few tries it sets aside the events that fail"
                ) from None
            read += result.read
            applied += result.applied
            if not result.leased:
                raise AdminError("another sync holds the lease: try again when it has stopped")
            if result.caught_up:
                if args.once:
                    break
                time.sleep(poll)
        with unit_of_work() as uow:
            uow.population.release(owner)
            state = uow.population.state()
            uow.commit()
        deleted = delete_deceased(unit_of_work, now())
    if args.json:
        print_json(
            {
                "read": read,
                "applied": applied,
                "deleted_deceased": deleted,
                "next_sequence": state.next_sequence,
            }
        )
        return
    print(
        f"read {read:,} events, applied {applied:,}, deleted {deleted:,} deceased; "
        f"next sequence number {state.next_sequence:,}"
    )


def _record_error(unit_of_work: SqlUnitOfWorkFactory, owner: str, error: str) -> None:
    with unit_of_work() as uow:
        uow.population.record_error(owner, error, now())
        uow.commit()


def _status(args: argparse.Namespace) -> None:
    with store() as unit_of_work, unit_of_work(read_only=True) as uow:
        state = uow.population.state()
        pending = uow.borrowers.deceased_pending()
        reviews = len(uow.population.reviews(open_only=True))
    result: dict[str, Any] = {
        "next_sequence": state.next_sequence,
        "lag": _lag(state.next_sequence),
        "events_read": state.events_read,
        "events_applied": state.events_applied,
        "last_run_at": timestamp(state.last_run_at),
        "last_error": state.last_error,
        "lease_owner": state.lease_owner,
        "lease_until": timestamp(state.lease_until),
        "deaths_pending": pending,
        "reviews_open": reviews,
    }
    if args.json:
        print_json(result)
        return
    for name, value in result.items():
        print(f"{name}: {value if value is not None else '-'}")


def _lag(next_sequence: int) -> int | None:
    """Events in the feed not read yet, if Folkeregisteret is configured and answers."""
    env = environment()
    if not env.raw("NLR_FREG_URL"):
        return None
    try:
        latest = population_source(env).latest_sequence()
    except (ConfigError, FolkeregisteretError, MaskinportenError):
        return None
    return max(0, latest - next_sequence + 1)


def _review(args: argparse.Namespace) -> None:
    acting = operator("population review")
    with store() as unit_of_work:
        if args.resolve is not None:
            with unit_of_work() as uow:
                if not uow.population.resolve_review(args.resolve, acting.actor.id, now()):
                    raise NotFound(f"no open review {args.resolve}")
                uow.audit.append([acting.event(now())])
                uow.commit()
            print(f"review {args.resolve} resolved")
            return
        with unit_of_work(read_only=True) as uow:
            reviews = uow.population.reviews(open_only=not args.all)
    rows: list[dict[str, Any]] = [
        {
            "id": review.id,
            "kind": review.kind,
            "sequence": review.sequence,
            "card_numbers": list(review.card_numbers),
            "created_at": timestamp(review.created_at),
            "resolved_at": timestamp(review.resolved_at),
            "resolved_by": review.resolved_by,
        }
        for review in reviews
    ]
    if args.json:
        print_json(rows)
        return
    if not rows:
        print("nothing to review")
    for review in reviews:
        cards = ", ".join(review.card_numbers) or "-"
        print(
            f"{review.id}  {review.kind:9}  event {review.sequence}  cards {cards}  "
            f"{timestamp(review.created_at)}"
        )


def _reconcile(args: argparse.Namespace) -> None:
    if not 1 <= args.batch_size <= RECONCILE_BATCH:
        raise AdminError(f"--batch-size must be 1 to {RECONCILE_BATCH}")
    env = environment()
    try:
        source = population_source(env)
        grace = dt.timedelta(days=env.number("NLR_FREG_DEATH_GRACE_DAYS", minimum=0))
    except (ConfigError, MaskinportenError) as error:
        raise AdminError(str(error)) from None
    looked_up = found = 0
    not_found: list[str] = []
    started = time.monotonic()
    with store() as unit_of_work:
        with unit_of_work(read_only=True) as uow:
            highest = uow.borrowers.highest_id()
        while True:
            try:
                batch = reconcile_batch(unit_of_work, source, now(), grace, args.batch_size)
            except RetryLater as wait:
                time.sleep(wait.seconds)
                continue
            except (FolkeregisteretError, MaskinportenError) as error:
                if looked_up and not args.no_progress:
                    sys.stderr.write("\n")  # the message on a line of its own
                raise AdminError(f"{error}; run the command again to go on") from None
            if batch.done:
                break
            looked_up += batch.looked_up
            found += batch.found
            not_found += batch.not_found
            if not args.no_progress:
                rate = looked_up / max(time.monotonic() - started, 1e-9)
                share = 100 * batch.through_id / max(highest, 1)
                sys.stderr.write(
                    f"\r{share:5.1f} %  looked up {looked_up:,}  found {found:,}  "
                    f"not found {len(not_found):,}  {rate:,.0f}/s\x1b[K"
                )
                sys.stderr.flush()
    if not args.no_progress:
        sys.stderr.write("\n")
    elapsed = time.monotonic() - started
    if args.not_found is not None:
        args.not_found.write_text("".join(f"{card}\n" for card in not_found), encoding="utf-8")
    if args.json:
        print_json(
            {
                "looked_up": looked_up,
                "found": found,
                "not_found": len(not_found),
                "not_found_cards": not_found if args.not_found is None else None,
                "seconds": round(elapsed, 3),
            }
        )
        return
    print(f"looked up {looked_up:,}, found {found:,}, not found {len(not_found):,}")
    if args.not_found is None:
        for card in not_found:
            print(card)
