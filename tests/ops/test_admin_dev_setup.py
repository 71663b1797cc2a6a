"""`nlr-admin dev-setup` and the command as a whole: help everywhere, the README walkthrough."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from admin_runner import Admin, admin_environment
from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.library_code import verify_code
from nlr_server.crypto.pin_verifier import PinVerifier
from nlr_server.domain.vendor import Role
from nlr_server.ops import demo_data, walkthrough
from nlr_server.ops.admin import build_parser
from nlr_server.ops.dev_pki import certificate_fingerprint
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import (
    Base,
    BorrowerRow,
    LibraryRow,
    VendorCertificateRow,
    VendorRow,
)

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path, expect: int = 0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NLR_")}
    result = subprocess.run(
        [sys.executable, "-m", "nlr_server.ops.admin", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == expect, (result.stdout, result.stderr)
    return result


def _snapshot(directory: Path) -> dict[str, object]:
    """Every file's bytes except the database's, and every row of every table."""
    files = {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not path.name.startswith("nlr.db")
    }
    engine = create_store_engine(f"sqlite:///{directory / 'nlr.db'}")
    try:
        with engine.connect() as connection:
            tables = {
                table.name: [tuple(row) for row in connection.execute(select(table))]
                for table in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()
    return {"files": files, "tables": tables}


def test_dev_setup_registers_the_demo_vendors_and_library_codes(tmp_path: Path) -> None:
    directory = tmp_path / "dev"

    printed = _run("dev-setup", "--directory", str(directory), cwd=tmp_path).stdout

    engine = create_store_engine(f"sqlite:///{directory / 'nlr.db'}")
    try:
        with engine.connect() as connection:
            vendors = {row.name: row.id for row in connection.execute(select(VendorRow))}
            certificates = {
                row.fingerprint: (row.vendor_id, row.role)
                for row in connection.execute(select(VendorCertificateRow))
            }
            libraries = {row.library_number: row for row in connection.execute(select(LibraryRow))}
    finally:
        engine.dispose()
    pki = directory / "pki"
    assert vendors.keys() == {
        demo_data.ILS_VENDOR,
        demo_data.AUTH_VENDOR,
        demo_data.PORTAL_VENDOR,
    }
    assert certificates == {
        certificate_fingerprint((pki / "ils.pem").read_bytes()): (
            vendors[demo_data.ILS_VENDOR],
            Role.ILS.value,
        ),
        certificate_fingerprint((pki / "auth.pem").read_bytes()): (
            vendors[demo_data.AUTH_VENDOR],
            Role.AUTH.value,
        ),
        certificate_fingerprint((pki / "portal.pem").read_bytes()): (
            vendors[demo_data.PORTAL_VENDOR],
            Role.PORTAL.value,
        ),
    }
    for number, code in demo_data.LIBRARY_CODES.items():
        library = libraries[number.value]
        assert library.vendor_id == vendors[demo_data.ILS_VENDOR]
        assert library.code_verifier is not None and verify_code(code, library.code_verifier)
    assert f"nlr-library-code: {demo_data.OSLO_CODE}" in printed


def test_every_demo_borrower_gets_the_demo_pin(tmp_path: Path) -> None:
    directory = tmp_path / "dev"

    _run("dev-setup", "--directory", str(directory), cwd=tmp_path)

    pins = PinVerifier(Keyring.load(directory / "keyring.json"))
    engine = create_store_engine(f"sqlite:///{directory / 'nlr.db'}")
    try:
        with engine.connect() as connection:
            verifiers = {
                row.card_number: row.pin_verifier for row in connection.execute(select(BorrowerRow))
            }
    finally:
        engine.dispose()
    assert sorted(verifiers) == [demo.card_number for demo in demo_data.DEMO_BORROWERS]
    for verifier in verifiers.values():
        assert verifier is not None
        assert pins.verify(demo_data.DEMO_PIN, verifier)
        assert not pins.verify("9999", verifier)  # a control


def test_dev_setup_a_second_time_changes_nothing_and_says_so(tmp_path: Path) -> None:
    directory = tmp_path / "dev"
    _run("dev-setup", "--directory", str(directory), cwd=tmp_path)
    before = _snapshot(directory)

    printed = _run("dev-setup", "--directory", str(directory), cwd=tmp_path).stdout

    assert "nothing changed" in printed.splitlines()[0]
    assert _snapshot(directory) == before


def test_readme_walkthrough_is_what_dev_setup_prints() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- walkthrough:start -->\n(.*?)<!-- walkthrough:end -->", readme, re.S)
    assert block is not None

    commands = [line for line in block.group(1).splitlines() if line.startswith(".venv")]

    assert commands == walkthrough.grpcurl_commands()
    # Oslo gets the borrower and reads its feed; Bergen gets the borrower.
    for library, uses in ((demo_data.OSLO, 2), (demo_data.BERGEN, 1)):
        code = demo_data.LIBRARY_CODES[library.number]
        acting = f"-H 'nlr-library-number: {library.number}' -H 'nlr-library-code: {code}'"
        assert sum(acting in command for command in commands) == uses


def _command_paths(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[str]:
    yield " ".join(path)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _command_paths(sub, (*path, name))


COMMAND_PATHS = list(_command_paths(build_parser()))


def test_every_command_the_brief_names_is_there() -> None:
    assert set(COMMAND_PATHS) >= {
        "migrate",
        "keys init",
        "vendors add",
        "vendors list",
        "vendors disable",
        "vendors enable",
        "certs issue",
        "certs register",
        "certs list",
        "certs revoke",
        "libraries add",
        "libraries import",
        "libraries list",
        "libraries set-vendor",
        "libraries set-code",
        "libraries disable",
        "libraries enable",
        "audit",
        "audit affected",
        "dev-setup",
    }


@pytest.mark.parametrize("command", COMMAND_PATHS, ids=lambda path: path or "nlr-admin")
def test_every_command_has_help(command: str) -> None:
    printed = Admin(admin_environment())(*command.split(), "--help").stdout

    assert printed.startswith("usage: nlr-admin")
    assert len(printed.splitlines()) > 3


def test_the_installed_console_script_runs_the_package() -> None:
    script = Path(sys.executable).parent / "nlr-admin"
    if not script.exists():
        pytest.skip("nlr-admin is not installed in this environment")

    result = subprocess.run(
        [str(script), "libraries", "--help"], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0 and "set-code" in result.stdout
