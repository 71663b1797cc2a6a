"""`nlr-admin borrowers`: what only the operator may change on a borrower's record."""

from __future__ import annotations

import argparse

from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.errors import InvalidValue
from nlr_server.domain.errors import NotFound as RegisterNotFound
from nlr_server.ops.admin import (
    AdminError,
    Commands,
    NotFound,
    add_command,
    add_group,
    now,
    operator,
    store,
)
from nlr_server.usecases import address_protection


def add_commands(commands: Commands) -> None:
    borrowers = add_group(commands, "borrowers", "what only the operator changes on a borrower")
    for name, protected, help_text in (
        ("protect-address", True, "protect a borrower's address: no library receives it"),
        ("unprotect-address", False, "end a borrower's address protection"),
    ):
        command = add_command(borrowers, name, _protect, help_text)
        command.add_argument("card_number", help="the borrower's card number, e.g. N000000001")
        command.set_defaults(protected=protected)


def _protect(args: argparse.Namespace) -> None:
    try:
        card_number = CardNumber.parse(args.card_number)
    except InvalidValue as error:
        raise AdminError(f"card number: {error}") from error
    command = "protect-address" if args.protected else "unprotect-address"
    with store() as unit_of_work:
        try:
            address_protection.protect_address(
                unit_of_work, operator(f"borrowers {command}"), card_number, args.protected, now()
            )
        except RegisterNotFound as error:
            raise NotFound(f"no borrower with card number {card_number}") from error
    state = "protected" if args.protected else "no longer protected"
    print(f"{card_number}: address {state}")
