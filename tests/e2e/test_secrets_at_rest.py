"""No national id, PIN or password is ever stored in a form a copy of the database reveals."""

from __future__ import annotations

import base64
import datetime as dt
import re
import sqlite3
from pathlib import Path

import grpc
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.pin_verifier import PinVerifier
from nlr_server.domain.credentials import Pin
from nlr_server.store.models import BorrowerRow
from register_harness import Registry, ServerThread, create, get, national_id, new_borrower

PINS = ["73915824", "5081", "264319"]
PASSWORDS = ["Blåbærsyltetøy-1987", "correct horse battery staple"]


def _encodings(secret: str) -> set[bytes]:
    """Every way the test can think of that a secret might be written to disk."""
    forms = {
        secret.encode("utf-16-le"),
        secret.encode("utf-16-be"),
        secret.encode("utf-32-le"),
        base64.b64encode(secret.encode()),
        secret.encode().hex().encode(),
    }
    # Binary forms only for long numbers: a 4-digit PIN packed into two bytes would turn up in
    # any file by chance.
    if secret.isdigit() and len(secret) >= 8:
        number = int(secret)
        forms |= {
            number.to_bytes(8, "big"),
            number.to_bytes(8, "little"),
            bytes.fromhex(secret if len(secret) % 2 == 0 else "0" + secret),  # packed BCD
        }
    return forms


def _stands_alone(secret: str, raw: bytes) -> bool:
    """Whether the secret is in ``raw`` as text. A number is looked for only where no digit is
    next to it: a 4-digit PIN turns up by chance inside the digits of stored timestamps
    ("…:12.508134" holds 5081)."""
    text = re.escape(secret.encode("utf-8"))
    if secret.isdigit():
        return re.search(rb"(?<![0-9])" + text + rb"(?![0-9])", raw) is not None
    return re.search(text, raw) is not None


def _sqlite_files(server: ServerThread) -> list[Path]:
    database = Path(str(make_url(server.config.database_url).database))
    return [p for p in (database, Path(f"{database}-wal")) if p.exists()]


def test_no_secret_appears_in_the_sqlite_file_or_its_wal(
    sqlite_registry: Registry, sqlite_server: ServerThread
) -> None:
    ids = [national_id(dt.date(1970 + i, 3, 9)) for i in range(3)]
    for i, (nid, pin) in enumerate(zip(ids, PINS, strict=True)):
        card = f"N00000060{i}"
        create(sqlite_registry, new_borrower(card, national_id=nid))
        sqlite_registry.stub.SetPin(
            pb.SetPinRequest(card_number=card, pin=pin), metadata=sqlite_registry.metadata
        )
    for card, password in zip(("N000000600", "N000000601"), PASSWORDS, strict=True):
        sqlite_registry.stub.SetPassword(
            pb.SetPasswordRequest(card_number=card, password=password),
            metadata=sqlite_registry.metadata,
        )
    # Lookups by national id go through the blind index and still work.
    assert get(sqlite_registry, national_id=ids[0]).card_number == "N000000600"

    def leaks() -> list[str]:
        raw = b"".join(path.read_bytes() for path in _sqlite_files(sqlite_server))
        return [
            secret
            for secret in [*ids, *PINS, *PASSWORDS]
            if any(form in raw for form in _encodings(secret)) or _stands_alone(secret, raw)
        ]

    assert leaks() == []  # as written: file and write-ahead log
    with sqlite3.connect(_sqlite_files(sqlite_server)[0]) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert leaks() == []  # after the log is folded into the file
    # A control: the test would see a value that is stored in the clear.
    assert _stands_alone("Nordmann", _sqlite_files(sqlite_server)[0].read_bytes())


def test_a_pin_in_the_clear_would_be_found_but_not_one_inside_a_timestamp() -> None:
    # How SQLite stores a 4-character text value: its type byte, then the characters.
    assert _stands_alone("5081", b"\x00\x15" + b"5081" + b"\x00")
    assert not _stands_alone("5081", b"2026-11-24 19:01:12.508134")


def test_a_pin_verifier_copied_out_of_the_database_is_useless_without_the_pin_key(
    registry: Registry, server: ServerThread, keyring: Keyring, tmp_path: Path
) -> None:
    create(registry, new_borrower("N000000610"))
    registry.stub.SetPin(
        pb.SetPinRequest(card_number="N000000610", pin="4711"), metadata=registry.metadata
    )
    engine = create_engine(server.config.database_url)
    with engine.connect() as connection:
        verifier = connection.execute(
            select(BorrowerRow.pin_verifier).where(BorrowerRow.card_number == "N000000610")
        ).scalar_one()
    engine.dispose()
    assert verifier is not None and "4711" not in verifier

    stranger = PinVerifier(Keyring.create(tmp_path / "another-keyring.json"))

    assert PinVerifier(keyring).matches(Pin("4711"), verifier)
    assert not stranger.matches(Pin("4711"), verifier)
    # With every PIN tried, the wrong key matches none of them (so none can be learned).
    assert not any(stranger.matches(Pin(f"{n:04d}"), verifier) for n in range(10_000))


def test_errors_never_echo_a_pin_or_password(registry: Registry) -> None:
    create(registry, new_borrower("N000000611"))

    with pytest.raises(grpc.RpcError) as bad_pin:
        registry.stub.SetPin(
            pb.SetPinRequest(card_number="N000000611", pin="12a45"), metadata=registry.metadata
        )
    with pytest.raises(grpc.RpcError) as bad_password:
        registry.stub.SetPassword(
            pb.SetPasswordRequest(card_number="N000000611", password="short7!"),
            metadata=registry.metadata,
        )

    for raised, secret in ((bad_pin, "12a45"), (bad_password, "short7!")):
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert secret not in (raised.value.details() or "")
        trailers = [m.value for m in raised.value.trailing_metadata() or ()]
        assert all(
            secret.encode() not in (v if isinstance(v, bytes) else v.encode()) for v in trailers
        )
