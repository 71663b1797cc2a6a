"""`nlr-admin`: the operator's command; works on the database and keyring directly."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import select

from nlr_server.crypto.keyring import Keyring, KeyringError
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.domain.errors import InvalidValue
from nlr_server.domain.library import Library
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.ops import demo_data, walkthrough
from nlr_server.ops.config import ConfigError, Environment
from nlr_server.ops.dev_pki import ensure_dev_pki
from nlr_server.store import migrate
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import LibraryRow
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory


class AdminError(Exception):
    """A command failed in a way the operator can fix; printed without a traceback."""


def _env() -> Environment:
    return Environment(os.environ)


def _unit_of_work() -> SqlUnitOfWorkFactory:
    engine = create_store_engine(_env().database_url("NLR_DATABASE_URL"))
    if not migrate.is_at_head(engine):
        raise AdminError("the database schema is not current: run `nlr-admin migrate` first")
    return SqlUnitOfWorkFactory(engine, NationalIdSealer(_load_keyring()))


def _load_keyring() -> Keyring:
    try:
        return Keyring.load(_env().path("NLR_KEYRING"))
    except KeyringError as error:
        raise AdminError(f"NLR_KEYRING: {error}") from error


def cmd_migrate(args: argparse.Namespace) -> None:
    engine = create_store_engine(_env().database_url("NLR_DATABASE_URL"))
    before = migrate.current_revision(engine)
    migrate.upgrade(engine)
    after = migrate.current_revision(engine)
    print(f"schema {before or 'empty'} -> {after}" if before != after else f"schema at {after}")


def cmd_keys_init(args: argparse.Namespace) -> None:
    path = _env().path("NLR_KEYRING")
    try:
        Keyring.create(path)
    except KeyringError as error:
        raise AdminError(str(error)) from error
    print(f"created keyring {path} (owner-only); keep a backup apart from the database")


def cmd_dev_setup(args: argparse.Namespace) -> None:
    """Everything `make run` needs under one directory; reuses whatever already exists."""
    directory: Path = args.directory
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    pki = ensure_dev_pki(directory / "pki")
    keyring_path = directory / "keyring.json"
    keyring = Keyring.load(keyring_path) if keyring_path.exists() else Keyring.create(keyring_path)
    engine = create_store_engine(f"sqlite:///{directory / 'nlr.db'}")
    migrate.upgrade(engine)
    added = demo_data.seed(
        SqlUnitOfWorkFactory(engine, NationalIdSealer(keyring)), dt.datetime.now(dt.UTC)
    )
    engine.dispose()
    print(f"dev setup in {directory}: PKI in {pki.ca_cert.parent}, {added} demo records added")
    print("\nOnce the server is up, try (from the repository root):\n")
    for command in walkthrough.grpcurl_commands(str(pki.ca_cert.parent)):
        print(f"  {command}\n")


def cmd_libraries_add(args: argparse.Namespace) -> None:
    number = _library_number(args.number)
    with _unit_of_work()() as uow:
        if uow.libraries.get(number) is not None:
            raise AdminError(f"library {number} already exists")
        uow.libraries.add(Library(number, args.name))
        uow.commit()
    print(f"added library {number}")


def cmd_libraries_list(args: argparse.Namespace) -> None:
    factory = _unit_of_work()
    with factory.engine.connect() as connection:
        rows = connection.execute(select(LibraryRow).order_by(LibraryRow.library_number)).all()
    libraries = [{"number": r.library_number, "name": r.name, "active": r.active} for r in rows]
    if args.json:
        print(json.dumps(libraries, ensure_ascii=False, indent=2))
        return
    for library in libraries:
        state = "active" if library["active"] else "disabled"
        print(f"{library['number']}  {state:8}  {library['name']}")


def _library_number(raw: str) -> LibraryNumber:
    try:
        return LibraryNumber.parse(raw)
    except InvalidValue as error:
        raise AdminError(f"library number: {error}") from error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nlr-admin",
        description="Operate the national borrower register. Reads NLR_DATABASE_URL and "
        "NLR_KEYRING like the server does.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        group: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        handler: Callable[[argparse.Namespace], None],
        help_text: str,
    ) -> argparse.ArgumentParser:
        sub = group.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    add(commands, "migrate", cmd_migrate, "create or upgrade the database schema")

    keys = commands.add_parser("keys", help="the keyring").add_subparsers(
        dest="keys_command", required=True, metavar="COMMAND"
    )
    add(keys, "init", cmd_keys_init, "create a new keyring at NLR_KEYRING")

    dev = add(
        commands,
        "dev-setup",
        cmd_dev_setup,
        "create the dev PKI, keyring, SQLite database and demo data (used by make run)",
    )
    dev.add_argument("--directory", type=Path, default=Path(".nlr-dev"))

    libraries = commands.add_parser("libraries", help="libraries").add_subparsers(
        dest="libraries_command", required=True, metavar="COMMAND"
    )
    lib_add = add(libraries, "add", cmd_libraries_add, "register a library")
    lib_add.add_argument("number", help="7-digit library number")
    lib_add.add_argument("name", help="the library's name")
    lib_list = add(libraries, "list", cmd_libraries_list, "list libraries")
    lib_list.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (AdminError, ConfigError, KeyringError) as error:
        print(f"nlr-admin: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
