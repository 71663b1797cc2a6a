"""`nlr-admin maintenance`: removes what has reached its deletion time, as the server does
every NLR_MAINTENANCE_INTERVAL_SECONDS."""

from __future__ import annotations

import argparse

from nlr_server.ops.admin import Commands, add_command, add_json_option, now, print_json, store
from nlr_server.usecases.maintenance import run_maintenance


def add_commands(commands: Commands) -> None:
    command = add_command(
        commands,
        "maintenance",
        _maintenance,
        "remove what has reached its deletion time (expired identities)",
        "Runs the jobs the server runs every NLR_MAINTENANCE_INTERVAL_SECONDS and prints how "
        "many records each removed; safe to run while the server runs.",
    )
    add_json_option(command)


def _maintenance(args: argparse.Namespace) -> None:
    with store() as unit_of_work:
        report = run_maintenance(unit_of_work, now())
    if args.json:
        print_json(report.counts())
        return
    for job, count in report.counts().items():
        print(f"{job.replace('_', ' ')}: {count}")
