"""`nlr-admin libraries`: libraries, their system vendor and their authorization code."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import getpass
import re
import sys
import unicodedata
from pathlib import Path

from nlr_server.crypto.library_code import make_code_verifier
from nlr_server.domain.errors import InvalidValue
from nlr_server.domain.library import Library
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.vendor import Vendor
from nlr_server.ops.admin import (
    AdminError,
    Commands,
    add_command,
    add_group,
    add_json_option,
    library_numbered,
    parse_library_number,
    print_json,
    print_table,
    store,
    vendor_named,
)

CSV_HEADER = ("library_number", "name", "municipality_number", "vendor")
MAX_NAME_LENGTH = 200
MIN_CODE_LENGTH = 4
MAX_CODE_LENGTH = 64
_MUNICIPALITY_NUMBER = re.compile(r"[0-9]{4}")
# Enough for one code and its newline; more than this on stdin is not a code.
_MAX_CODE_INPUT = 1024


def add_commands(commands: Commands) -> None:
    libraries = add_group(commands, "libraries", "libraries, their vendor and authorization code")

    add = add_command(libraries, "add", _add, "register a library")
    add.add_argument("number", metavar="NUMBER", help="7-digit library number (or NO-1234567)")
    add.add_argument("name", metavar="NAME", help="the library's name")
    add.add_argument("--municipality", metavar="NNNN", help="4-digit municipality number")
    add.add_argument("--vendor", metavar="NAME", help="the library's registered system vendor")

    imports = add_command(
        libraries,
        "import",
        _import,
        "add or update libraries from a CSV file",
        f"The file is UTF-8 with the header {','.join(CSV_HEADER)}; every field is required "
        "and the vendor must exist. Every row is checked first: if any is bad, each bad row is "
        "reported with its line number and nothing is imported. Existing libraries get the "
        "file's name, municipality and vendor; their code and state are kept.",
    )
    imports.add_argument("csv_file", type=Path, metavar="CSV_FILE", help="the CSV file")

    listing = add_command(
        libraries,
        "list",
        _list,
        "list libraries with their vendor and whether a code is set",
    )
    add_json_option(listing)

    set_vendor = add_command(
        libraries,
        "set-vendor",
        _set_vendor,
        "make a vendor the library's registered system vendor",
        "Only that vendor's certificates may then act for the library.",
    )
    set_vendor.add_argument("number", metavar="NUMBER", help="7-digit library number")
    set_vendor.add_argument("vendor", metavar="VENDOR", help="the vendor's name")

    set_code = add_command(
        libraries,
        "set-code",
        _set_code,
        "set the library's authorization code",
        f"The code is read from standard input (one line, {MIN_CODE_LENGTH} to "
        f"{MAX_CODE_LENGTH} printable ASCII characters), or asked for twice at a terminal; "
        "never give it as an argument. Only a salted, slow verifier is stored.",
    )
    set_code.add_argument("number", metavar="NUMBER", help="7-digit library number")

    disable = add_command(
        libraries, "disable", _disable, "refuse calls made for the library from now on"
    )
    disable.add_argument("number", metavar="NUMBER", help="7-digit library number")
    enable = add_command(libraries, "enable", _enable, "accept calls for a disabled library again")
    enable.add_argument("number", metavar="NUMBER", help="7-digit library number")


def _check_code(code: str) -> str:
    """An authorization code travels in gRPC metadata, so it must be printable ASCII."""
    if not MIN_CODE_LENGTH <= len(code) <= MAX_CODE_LENGTH:
        raise AdminError(f"the code must be {MIN_CODE_LENGTH} to {MAX_CODE_LENGTH} characters long")
    if not all(" " <= c <= "~" for c in code):
        raise AdminError("the code must be printable ASCII (it is sent as gRPC metadata)")
    return code


def _add(args: argparse.Namespace) -> None:
    number = parse_library_number(args.number)
    name = _check_name(args.name)
    municipality = None if args.municipality is None else _check_municipality(args.municipality)
    with store() as unit_of_work, unit_of_work() as uow:
        if uow.libraries.get(number) is not None:
            raise AdminError(f"library {number} already exists")
        vendor = None if args.vendor is None else vendor_named(uow, args.vendor)
        uow.libraries.add(
            Library(
                number,
                name,
                vendor_id=None if vendor is None else vendor.id,
                municipality_number=municipality,
            )
        )
        uow.commit()
    print(f"added library {number} {name!r}" + (f" (vendor {vendor.name!r})" if vendor else ""))


@dataclasses.dataclass(frozen=True)
class _ImportRow:
    line: int
    number: LibraryNumber
    name: str
    municipality_number: str
    vendor: Vendor


def _import(args: argparse.Namespace) -> None:
    path: Path = args.csv_file
    records = _read_import_file(path)
    with store() as unit_of_work, unit_of_work() as uow:
        vendors = {v.name: v for v in uow.vendors.all()}
        rows: list[_ImportRow] = []
        problems: list[str] = []
        first_line: dict[LibraryNumber, int] = {}
        for line, cells in records:
            row, row_problems = _parse_import_row(line, cells, vendors)
            if row is not None and row.number in first_line:
                row_problems.append(
                    f"library {row.number} is also on line {first_line[row.number]}"
                )
            if row is not None:
                first_line.setdefault(row.number, line)
            if row_problems:
                problems.append(f"{path} line {line}: {'; '.join(row_problems)}")
            elif row is not None:
                rows.append(row)
        if problems:
            for problem in problems:
                print(f"nlr-admin: {problem}", file=sys.stderr)
            count = f"{len(problems)} bad row{'s' if len(problems) != 1 else ''}"
            raise AdminError(f"{count} in {path}; nothing imported")
        added = updated = unchanged = 0
        for row in rows:
            existing = uow.libraries.get(row.number)
            if existing is None:
                uow.libraries.add(
                    Library(
                        row.number,
                        row.name,
                        vendor_id=row.vendor.id,
                        municipality_number=row.municipality_number,
                    )
                )
                added += 1
                continue
            changed = dataclasses.replace(
                existing,
                name=row.name,
                vendor_id=row.vendor.id,
                municipality_number=row.municipality_number,
            )
            if changed == existing:
                unchanged += 1
            else:
                uow.libraries.save(changed)
                updated += 1
        uow.commit()
    print(f"imported {path}: {added} added, {updated} updated, {unchanged} unchanged")


def _read_import_file(path: Path) -> list[tuple[int, list[str]]]:
    """The file's non-blank records after the header, each with the line it ends on."""
    records: list[tuple[int, list[str]]] = []
    try:
        # utf-8-sig: a spreadsheet's byte order mark is not part of the first column's name.
        with path.open(encoding="utf-8-sig", newline="") as stream:
            reader = csv.reader(stream, strict=True)
            header = next(reader, None)
            if header is None or tuple(cell.strip() for cell in header) != CSV_HEADER:
                raise AdminError(f"{path} line 1: the header must be {','.join(CSV_HEADER)}")
            for cells in reader:
                if any(cell.strip() for cell in cells):
                    records.append((reader.line_num, cells))
    except OSError as error:
        raise AdminError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise AdminError(f"{path} is not UTF-8 text; nothing imported") from None
    except csv.Error as error:
        raise AdminError(f"{path} is not valid CSV: {error}; nothing imported") from None
    return records


def _parse_import_row(
    line: int, cells: list[str], vendors: dict[str, Vendor]
) -> tuple[_ImportRow | None, list[str]]:
    if len(cells) != len(CSV_HEADER):
        return None, [f"{len(cells)} fields, expected {len(CSV_HEADER)}"]
    raw_number, raw_name, raw_municipality, raw_vendor = (cell.strip() for cell in cells)
    problems: list[str] = []
    number: LibraryNumber | None = None
    try:
        number = LibraryNumber.parse(raw_number)
    except InvalidValue as error:
        problems.append(f"library number {raw_number!r}: {error}")
    for check, value in ((_check_name, raw_name), (_check_municipality, raw_municipality)):
        try:
            check(value)
        except AdminError as error:
            problems.append(str(error))
    vendor = vendors.get(raw_vendor)
    if vendor is None:
        problems.append(f"no vendor named {raw_vendor!r}" if raw_vendor else "vendor: missing")
    if problems or number is None or vendor is None:
        return None, problems
    return _ImportRow(line, number, raw_name, raw_municipality, vendor), []


def _list(args: argparse.Namespace) -> None:
    with store() as unit_of_work, unit_of_work(read_only=True) as uow:
        names = {v.id: v.name for v in uow.vendors.all()}
        libraries = uow.libraries.all()
    listing = [
        {
            "number": library.number.value,
            "name": library.name,
            "municipality": library.municipality_number,
            "vendor": None if library.vendor_id is None else names.get(library.vendor_id),
            "active": library.active,
            "code_set": library.code_verifier is not None,
        }
        for library in libraries
    ]
    if args.json:
        print_json(listing)
        return
    if not listing:
        print("no libraries (add one with `nlr-admin libraries add NUMBER NAME`)")
        return
    print_table(
        ("number", "state", "code", "municipality", "vendor", "name"),
        [
            (
                entry["number"],
                "active" if entry["active"] else "disabled",
                "set" if entry["code_set"] else None,
                entry["municipality"],
                entry["vendor"],
                entry["name"],
            )
            for entry in listing
        ],
    )


def _set_vendor(args: argparse.Namespace) -> None:
    number = parse_library_number(args.number)
    with store() as unit_of_work, unit_of_work() as uow:
        library = library_numbered(uow, number)
        vendor = vendor_named(uow, args.vendor)
        if library.vendor_id == vendor.id:
            print(f"library {number} already has vendor {vendor.name!r}")
            return
        uow.libraries.save(dataclasses.replace(library, vendor_id=vendor.id))
        uow.commit()
    print(f"library {number} now has vendor {vendor.name!r}")


def _set_code(args: argparse.Namespace) -> None:
    number = parse_library_number(args.number)
    # Checked before asking, so nobody types a code for a library that does not exist.
    with store() as unit_of_work:
        with unit_of_work(read_only=True) as uow:
            library_numbered(uow, number)
        code = _read_code(f"authorization code for library {number}: ")
        verifier = make_code_verifier(code)
        with unit_of_work() as uow:
            library = library_numbered(uow, number)
            uow.libraries.save(dataclasses.replace(library, code_verifier=verifier))
            uow.commit()
    print(f"library {number}: authorization code set")


def _read_code(prompt: str) -> str:
    if sys.stdin.isatty():
        code = _check_code(getpass.getpass(prompt).strip())
        if getpass.getpass("again: ").strip() != code:
            raise AdminError("the two codes differ; nothing was changed")
        return code
    text = sys.stdin.read(_MAX_CODE_INPUT + 1)
    if len(text) > _MAX_CODE_INPUT or "\n" in text.strip():
        raise AdminError("give the code as one line on standard input")
    return _check_code(text.strip())


def _disable(args: argparse.Namespace) -> None:
    _set_active(args.number, active=False)


def _enable(args: argparse.Namespace) -> None:
    _set_active(args.number, active=True)


def _set_active(raw_number: str, *, active: bool) -> None:
    number = parse_library_number(raw_number)
    state = "enabled" if active else "disabled"
    with store() as unit_of_work, unit_of_work() as uow:
        library = library_numbered(uow, number)
        if library.active == active:
            print(f"library {number} is already {state}")
            return
        uow.libraries.save(dataclasses.replace(library, active=active))
        uow.commit()
    print(f"library {number} {state}")


def _check_name(raw: str) -> str:
    name = raw.strip()
    if not name:
        raise AdminError("name: must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise AdminError(f"name: at most {MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise AdminError("name: no control characters")
    return name


def _check_municipality(raw: str) -> str:
    if not _MUNICIPALITY_NUMBER.fullmatch(raw.strip()):
        raise AdminError(f"municipality number {raw!r}: must be 4 digits")
    return raw.strip()
