"""`nlr-admin dev-setup`: everything `make run` needs under one directory, made once and reused."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
from pathlib import Path

from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.library_code import make_code_verifier, verify_code
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.crypto.pin_verifier import PinVerifier
from nlr_server.domain.vendor import Role
from nlr_server.ops import demo_data, walkthrough
from nlr_server.ops.admin import AdminError, Commands, add_command, environment, now
from nlr_server.ops.admin.certs import certificate_record
from nlr_server.ops.dev_idporten import DEV_NONCE, ensure_dev_idporten, mint
from nlr_server.ops.dev_pki import DevPkiPaths, certificate_fingerprint, ensure_dev_pki
from nlr_server.store import migrate
from nlr_server.store.database import create_store_engine
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory

# The demo passwords' PBKDF2 iterations: the least any server accepts (NLR_PASSWORD_ITERATIONS),
# so every server verifies them (one set to more re-hashes at the first login).
DEMO_PASSWORD_ITERATIONS = 210_000

_DIRECTORY_MODE = 0o700


def add_commands(commands: Commands) -> None:
    dev = add_command(
        commands,
        "dev-setup",
        _dev_setup,
        "create the dev PKI, keyring, SQLite database and demo data (used by make run)",
        "Registers the demo vendors with the dev PKI's ils.pem, auth.pem and portal.pem and "
        "gives the demo "
        "libraries their vendor and demo codes. Reuses whatever exists; a second run changes "
        "nothing.",
    )
    dev.add_argument(
        "--directory",
        type=Path,
        default=Path(".nlr-dev"),
        help="where to keep it all (default .nlr-dev)",
    )
    token = add_command(
        commands,
        "dev-idporten-token",
        _idporten_token,
        "print an ID token of the dev ID-porten for a demo borrower (make idporten-token)",
        "Signed with the dev setup's key, for SelfService's LogInWithIdPorten on `make run`; "
        "refused unless NLR_ALLOW_SYNTHETIC_IDS is on. Valid for 10 minutes.",
    )
    token.add_argument("--card", default="N000000001", help="the demo borrower (default Kari)")
    token.add_argument("--nonce", default=DEV_NONCE, help=f"the nonce (default {DEV_NONCE})")
    token.add_argument(
        "--directory", type=Path, default=Path(".nlr-dev"), help="the dev setup's directory"
    )


def seed_demo_access(
    unit_of_work: SqlUnitOfWorkFactory, pki: DevPkiPaths, moment: dt.datetime
) -> list[str]:
    """Demo vendors with the dev PKI's client certificates, and the demo libraries' vendor and
    codes; adds only what is missing and returns what it changed."""
    changes: list[str] = []
    with unit_of_work() as uow:
        for name, certificate_path, role in (
            (demo_data.ILS_VENDOR, pki.ils_cert, Role.ILS),
            (demo_data.AUTH_VENDOR, pki.auth_cert, Role.AUTH),
            (demo_data.PORTAL_VENDOR, pki.portal_cert, Role.PORTAL),
        ):
            vendor = uow.vendors.get_by_name(name)
            if vendor is None:
                vendor = uow.vendors.add(name, moment)
                changes.append(f"added vendor {name!r}")
            certificate_pem = certificate_path.read_bytes()
            registered = uow.vendors.certificate(certificate_fingerprint(certificate_pem))
            if registered is None:
                uow.vendors.add_certificate(
                    certificate_record(certificate_pem, vendor, role, moment)
                )
                changes.append(f"registered {certificate_path.name} for {name!r}")
            elif registered.vendor_id != vendor.id:
                raise AdminError(
                    f"{certificate_path} is registered to another vendor than {name!r}"
                )
        ils_vendor = uow.vendors.get_by_name(demo_data.ILS_VENDOR)
        assert ils_vendor is not None
        for number, code in demo_data.LIBRARY_CODES.items():
            library = uow.libraries.get(number)
            if library is None:
                raise AdminError(f"demo library {number} is missing")
            wanted = library
            if library.vendor_id != ils_vendor.id:
                wanted = dataclasses.replace(wanted, vendor_id=ils_vendor.id)
                changes.append(f"library {number}: vendor {ils_vendor.name!r}")
            # A verifier is salted, so an unchanged code is recognised by checking, not comparing.
            if library.code_verifier is None or not verify_code(code, library.code_verifier):
                wanted = dataclasses.replace(wanted, code_verifier=make_code_verifier(code))
                changes.append(f"library {number}: demo authorization code")
            if wanted != library:
                uow.libraries.save(wanted)
        uow.commit()
    return changes


def _idporten_token(args: argparse.Namespace) -> None:
    if not environment().flag("NLR_ALLOW_SYNTHETIC_IDS"):
        raise AdminError(
            "dev ID-porten tokens are minted only where NLR_ALLOW_SYNTHETIC_IDS is on (the dev "
            "setup): never for a register that holds real people"
        )
    demos = {b.card_number: b for b in demo_data.DEMO_BORROWERS}
    demo = demos.get(args.card)
    if demo is None:
        raise AdminError(f"{args.card} is not a demo borrower ({', '.join(sorted(demos))})")
    paths, _ = ensure_dev_idporten(args.directory)
    print(mint(paths, demo_data.demo_national_id(demo), args.nonce))


def _dev_setup(args: argparse.Namespace) -> None:
    directory: Path = args.directory
    changes: list[str] = []
    directory.mkdir(mode=_DIRECTORY_MODE, parents=True, exist_ok=True)
    pki_files_before = _files(directory / "pki")
    pki = ensure_dev_pki(directory / "pki")
    if _files(directory / "pki") != pki_files_before:
        changes.append(f"dev PKI in {pki.ca_cert.parent}")
    idporten, made = ensure_dev_idporten(directory)
    if made:
        changes.append(f"dev ID-porten key and JWKS {idporten.jwks}")
    keyring_path = directory / "keyring.json"
    if keyring_path.exists():
        keyring = Keyring.load(keyring_path)
    else:
        keyring = Keyring.create(keyring_path)
        changes.append(f"keyring {keyring_path}")
    engine = create_store_engine(f"sqlite:///{directory / 'nlr.db'}")
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
        after = migrate.current_revision(engine)
        if before != after:
            changes.append(
                f"database {directory / 'nlr.db'}: schema {before or 'empty'} -> {after}"
            )
        unit_of_work = SqlUnitOfWorkFactory(engine, NationalIdSealer(keyring))
        moment = now()
        added = demo_data.seed(unit_of_work, moment, PinVerifier(keyring), DEMO_PASSWORD_ITERATIONS)
        if added:
            changes.append(f"{added} demo libraries and borrowers")
        changes.extend(seed_demo_access(unit_of_work, pki, moment))
    finally:
        engine.dispose()
    if changes:
        print(f"dev setup in {directory}:")
        for change in changes:
            print(f"  + {change}")
    else:
        print(f"dev setup in {directory}: already complete, nothing changed")
    print("\nOnce the server is up, try (from the repository root):\n")
    for command in walkthrough.grpcurl_commands(str(pki.ca_cert.parent)):
        print(f"  {command}\n")


def _files(directory: Path) -> set[str]:
    return {path.name for path in directory.iterdir()} if directory.is_dir() else set()
