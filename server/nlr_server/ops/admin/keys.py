"""`nlr-admin keys`: the keyring with the field encryption keys, and moving data between them."""

from __future__ import annotations

import argparse
import time

from nlr_server.crypto.keyring import KeyPurpose, Keyring, KeyringError
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.crypto.totp import TotpSecretSealer
from nlr_server.ops.admin import (
    AdminError,
    Commands,
    add_command,
    add_group,
    add_json_option,
    environment,
    load_keyring,
    print_json,
    print_table,
    store,
)
from nlr_server.store.key_rotation import (
    records_using,
    reencrypt_national_ids,
    reencrypt_totp_secrets,
)


def _settle_seconds() -> float:
    """Servers re-read a changed keyring within NLR_KEYRING_RELOAD_SECONDS; until they have,
    one may still write under the version just rotated out, so retiring it waits twice that."""
    return 2 * environment().number("NLR_KEYRING_RELOAD_SECONDS", minimum=0.1)


# Rotating the blind-index key would need every index recomputed while lookups use both
# versions; that is not supported, so only these purposes rotate.
ROTATABLE = (KeyPurpose.NATIONAL_ID_ENCRYPTION, KeyPurpose.PIN_VERIFIER)


def add_commands(commands: Commands) -> None:
    keys = add_group(commands, "keys", "the keyring with the field encryption keys")
    add_command(
        keys,
        "init",
        _init,
        "create a new keyring at NLR_KEYRING",
        "The file is owner-only (0600) and never overwritten; keep it apart from the database.",
    )
    listing = add_command(keys, "list", _list, "list key versions and how many records use each")
    add_json_option(listing)
    rotate = add_command(
        keys,
        "rotate",
        _rotate,
        "make a new key version the active one",
        "New data is protected with it at once (servers re-read the keyring within "
        "NLR_KEYRING_RELOAD_SECONDS); existing data keeps its version until `keys reencrypt`.",
    )
    _purpose_option(rotate)
    reencrypt = add_command(
        keys,
        "reencrypt",
        _reencrypt,
        "re-encrypt every national id under the active key version",
        "Works in short batches, so servers keep serving meanwhile. PINs cannot be "
        "re-encrypted (only their verifier is stored): old PIN key versions stay until each "
        "borrower's PIN is set again.",
    )
    reencrypt.add_argument("--batch-size", type=int, default=500, help="records per transaction")
    retire = add_command(
        keys,
        "retire",
        _retire,
        "remove a key version that no record uses any more",
        "Refused for the active version, while any record still uses it, and until twice "
        "NLR_KEYRING_RELOAD_SECONDS have passed since the keyring changed (so every server "
        "has reloaded it).",
    )
    retire.add_argument("version", type=int, help="the version to remove")
    _purpose_option(retire)


def _purpose_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--purpose",
        choices=[p.value for p in ROTATABLE],
        default=KeyPurpose.NATIONAL_ID_ENCRYPTION.value,
        help="which key (default: %(default)s)",
    )


def _init(args: argparse.Namespace) -> None:
    path = environment().path("NLR_KEYRING")
    try:
        Keyring.create(path)
    except KeyringError as error:
        raise AdminError(str(error)) from error
    print(f"created keyring {path} (owner-only); keep a backup apart from the database")


def _list(args: argparse.Namespace) -> None:
    keyring = load_keyring()
    with store() as unit_of_work:
        rows = [
            {
                "purpose": purpose.value,
                "version": version,
                "active": version == keyring.active_version(purpose),
                "records": records_using(unit_of_work.engine, purpose, version),
            }
            for purpose in KeyPurpose
            for version in keyring.versions(purpose)
        ]
    if args.json:
        print_json(rows)
        return
    print_table(
        ["purpose", "version", "active", "records"],
        [[r["purpose"], r["version"], "yes" if r["active"] else "", r["records"]] for r in rows],
    )


def _rotate(args: argparse.Namespace) -> None:
    keyring = load_keyring()
    purpose = KeyPurpose(args.purpose)
    version = keyring.rotate(purpose)
    keyring.save()
    print(f"{purpose.value}: version {version} is now active")


def _reencrypt(args: argparse.Namespace) -> None:
    if args.batch_size < 1:
        raise AdminError("--batch-size must be at least 1")
    keyring = load_keyring()
    active = keyring.active_version(KeyPurpose.NATIONAL_ID_ENCRYPTION)
    with store() as unit_of_work:
        done = reencrypt_national_ids(
            unit_of_work.engine,
            NationalIdSealer(keyring),
            active,
            batch_size=args.batch_size,
            on_batch=lambda count: print(f"  {count} re-encrypted", flush=True),
        )
        secrets = reencrypt_totp_secrets(
            unit_of_work.engine, TotpSecretSealer(keyring), active, batch_size=args.batch_size
        )
    print(f"{done} national ids re-encrypted under version {active}")
    if secrets:
        print(f"{secrets} TOTP secrets re-sealed under version {active}")


def _retire(args: argparse.Namespace) -> None:
    keyring = load_keyring()
    purpose = KeyPurpose(args.purpose)
    if args.version not in keyring.versions(purpose):
        raise AdminError(f"{purpose.value} has no version {args.version}")
    if args.version == keyring.active_version(purpose):
        raise AdminError(f"version {args.version} of {purpose.value} is active: rotate first")
    changed = time.time() - keyring.path.stat().st_mtime
    settle = _settle_seconds()
    if changed < settle:
        raise AdminError(
            f"the keyring changed {changed:.0f} s ago: wait {settle - changed:.0f} s so that "
            "every server has reloaded it, then run `keys reencrypt` and retry"
        )
    with store() as unit_of_work:
        using = records_using(unit_of_work.engine, purpose, args.version)
    if using:
        raise AdminError(
            f"{using} records still use version {args.version} of {purpose.value}: "
            "run `nlr-admin keys reencrypt` first"
        )
    keyring.retire(purpose, args.version)
    keyring.save()
    print(f"{purpose.value}: version {args.version} retired")
