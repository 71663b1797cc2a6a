"""`nlr-admin maintenance`: removes what has reached its deletion time, as the server does
every NLR_MAINTENANCE_INTERVAL_SECONDS."""

from __future__ import annotations

import argparse
import datetime as dt
import os

from nlr_server.ops.admin import (
    Commands,
    add_command,
    add_json_option,
    now,
    operator,
    print_json,
    store,
)
from nlr_server.usecases.maintenance import run_maintenance


def add_commands(commands: Commands) -> None:
    command = add_command(
        commands,
        "maintenance",
        _maintenance,
        "remove what has reached its deletion time (expired identities, temporary addresses, "
        "old change-feed entries, forgotten failed logins)",
        "Runs the jobs the server runs every NLR_MAINTENANCE_INTERVAL_SECONDS and prints how "
        "many records each removed; safe to run while the server runs.",
    )
    command.add_argument(
        "--feed-retention-days",
        type=float,
        default=float(os.environ.get("NLR_FEED_RETENTION_DAYS") or 30),
        help="keep change-feed entries this long (default: NLR_FEED_RETENTION_DAYS, else 30)",
    )
    command.add_argument(
        "--lockout-forget-days",
        type=float,
        default=float(os.environ.get("NLR_LOCKOUT_FORGET_DAYS") or 7),
        help="forget failed logins this long after the last (default: NLR_LOCKOUT_FORGET_DAYS, "
        "else 7)",
    )
    add_json_option(command)


def _maintenance(args: argparse.Namespace) -> None:
    with store() as unit_of_work:
        report = run_maintenance(
            unit_of_work,
            operator("maintenance"),
            now(),
            dt.timedelta(days=args.feed_retention_days),
            dt.timedelta(days=args.lockout_forget_days),
        )
    if args.json:
        print_json(report.counts())
        return
    for job, count in report.counts().items():
        print(f"{job.replace('_', ' ')}: {count}")
