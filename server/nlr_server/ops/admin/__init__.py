"""`nlr-admin`: the operator's command; works on the database and keyring directly.

Each subcommand group lives in its own module (``vendors``, ``certs``, ``libraries``, ``audit``,
``keys``, ``schema``, ``maintenance``, ``dev_setup``, ``imports``); this module holds the parser,
``main`` and what they share.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from nlr_server.crypto.keyring import Keyring, KeyringError
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.domain.actor import Actor
from nlr_server.domain.audit import Acting
from nlr_server.domain.errors import AlreadyExists, InvalidValue
from nlr_server.domain.library import Library
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.vendor import Vendor
from nlr_server.ops.config import ConfigError, Environment
from nlr_server.ops.dev_pki import DevPkiError
from nlr_server.store import migrate
from nlr_server.store.database import create_store_engine
from nlr_server.store.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory

Handler = Callable[[argparse.Namespace], None]
# A string: argparse's class cannot be subscripted at run time, only by the type checker.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

EXIT_OPERATOR_ERROR = 2
EXIT_NOT_FOUND = 1
# What a shell reports for a command killed by SIGPIPE, as `nlr-admin ... | head` may leave it.
EXIT_OUTPUT_CLOSED = 128 + 13
DATABASE_VARIABLE = "NLR_DATABASE_URL"


class AdminError(Exception):
    """A command failed in a way the operator can fix; printed as one line, exit status 2."""

    exit_status = EXIT_OPERATOR_ERROR


class NotFound(AdminError):
    """The vendor, library or certificate named does not exist; exit status 1."""

    exit_status = EXIT_NOT_FOUND


def environment() -> Environment:
    return Environment(os.environ)


def load_keyring() -> Keyring:
    try:
        return Keyring.load(environment().path("NLR_KEYRING"))
    except KeyringError as error:
        raise AdminError(f"NLR_KEYRING: {error}") from error


def database_url() -> str:
    return environment().database_url(DATABASE_VARIABLE)


def database_name(url: str) -> str:
    """The database as the operator should recognise it: a SQLite file's absolute path, else
    the URL without its password; says so when NLR_DATABASE_URL is unset and this is the
    default."""
    path = sqlite_path(url)
    name = str(path.resolve()) if path is not None else _without_password(url)
    if not os.environ.get(DATABASE_VARIABLE, "").strip():
        name += f" ({DATABASE_VARIABLE} is not set; this is its default)"
    return name


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def _without_password(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def store() -> Iterator[SqlUnitOfWorkFactory]:
    """Units of work on NLR_DATABASE_URL, once its schema is current; closes the engine after.

    Never creates a database: only `migrate` and `dev-setup` do, so that a mistyped or unset
    NLR_DATABASE_URL cannot leave an empty SQLite file that looks like a register."""
    url = database_url()
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise AdminError(
            f"no database at {database_name(url)}: set {DATABASE_VARIABLE} to the register's "
            'database (for `make run`\'s: `make admin ARGS="..."`), or create a new one there '
            "with `nlr-admin migrate`"
        )
    engine = create_store_engine(url)
    try:
        revision = migrate.current_revision(engine)
        if revision != migrate.head_revision():
            schema = "no schema" if revision is None else f"schema {revision}"
            raise AdminError(
                f"the database {database_name(url)} has {schema}, nlr-admin needs "
                f"{migrate.head_revision()}: if this is the register's database, upgrade it with "
                f"`nlr-admin migrate`; if not, set {DATABASE_VARIABLE} to the register's"
            )
        yield SqlUnitOfWorkFactory(engine, NationalIdSealer(load_keyring()))
    finally:
        engine.dispose()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def operator(command: str) -> Acting:
    """The operator running ``command`` (e.g. "borrowers protect-address"), as the audit trail
    names them: NLR_OPERATOR, else the operating system's user."""
    name = os.environ.get("NLR_OPERATOR", "").strip() or getpass.getuser()
    return Acting(Actor.operator(name), f"nlr-admin {command}")


def timestamp(moment: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, as every listing prints times."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def print_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Left-aligned columns as wide as their widest cell; a missing value shows as ``-``."""
    cells = [list(columns)] + [["-" if v is None or v == "" else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def parse_library_number(raw: str) -> LibraryNumber:
    try:
        return LibraryNumber.parse(raw)
    except InvalidValue as error:
        raise AdminError(f"library number {raw!r}: {error}") from error


def vendor_named(uow: SqlUnitOfWork, name: str) -> Vendor:
    vendor = uow.vendors.get_by_name(name.strip())
    if vendor is None:
        raise NotFound(f"no vendor named {name!r} (see `nlr-admin vendors list`)")
    return vendor


def library_numbered(uow: SqlUnitOfWork, number: LibraryNumber) -> Library:
    library = uow.libraries.get(number)
    if library is None:
        raise NotFound(f"no library {number} (see `nlr-admin libraries list`)")
    return library


def add_command(
    group: Commands, name: str, handler: Handler | None, help_text: str, description: str = ""
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` shows ``help_text`` and, below it, ``description``."""
    summary = f"{help_text[:1].upper()}{help_text[1:]}."
    parser: argparse.ArgumentParser = group.add_parser(
        name, help=help_text, description=f"{summary} {description}".strip()
    )
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser


def add_group(commands: Commands, name: str, help_text: str) -> Commands:
    """A command with subcommands of its own, such as ``vendors add``."""
    parser = add_command(commands, name, None, help_text)
    group: Commands = parser.add_subparsers(
        dest=f"{name}_command", required=True, metavar="COMMAND"
    )
    return group


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def build_parser() -> argparse.ArgumentParser:
    # Imported here: each command module imports the helpers above from this package.
    from nlr_server.ops.admin import (
        audit,
        borrowers,
        certs,
        dev_setup,
        imports,
        keys,
        libraries,
        maintenance,
        population,
        schema,
        vendors,
    )

    parser = argparse.ArgumentParser(
        prog="nlr-admin",
        description="Operate the national borrower register. Reads NLR_DATABASE_URL and "
        "NLR_KEYRING like the server does. Exit status: 0 done, 1 not found, 2 operator error.",
    )
    commands: Commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (
        schema,
        keys,
        vendors,
        certs,
        libraries,
        borrowers,
        imports,
        audit,
        maintenance,
        population,
        dev_setup,
    ):
        module.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
        # Output buffered for a pipe is written here, so a closed pipe is caught below and not
        # at exit, where Python can only print a traceback.
        sys.stdout.flush()
    except BrokenPipeError:
        _output_closed()
    except AdminError as error:
        _fail(str(error), error.exit_status)
    except (ConfigError, KeyringError, DevPkiError) as error:
        _fail(str(error), EXIT_OPERATOR_ERROR)
    except AlreadyExists:
        # Only a concurrent change can get past the checks each command makes first.
        _fail("another change got there first; run the command again", EXIT_OPERATOR_ERROR)
    except OperationalError as error:
        first_line = (str(error.orig or error).strip().splitlines() or ["unreachable"])[0]
        _fail(f"database {_database_named()}: {first_line}", EXIT_OPERATOR_ERROR)
    except KeyboardInterrupt:
        _fail("interrupted", 130)


def _database_named() -> str:
    try:
        return database_name(database_url())
    except ConfigError:
        return DATABASE_VARIABLE


def _output_closed() -> None:
    """The reader of our output has gone (`nlr-admin ... | head`): stop quietly, as other
    commands do."""
    # Python flushes stdout once more at exit; into a closed pipe that would fail again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is no file (the tests' in-process runner): nothing flushes it at exit
    sys.exit(EXIT_OUTPUT_CLOSED)


def _fail(message: str, status: int) -> None:
    print(f"nlr-admin: {message}", file=sys.stderr)
    sys.exit(status)
