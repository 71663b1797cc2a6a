"""Fixtures of the use-case tests: a migrated SQLite store per test, copied from the session's
template (tests/conftest.py), so that a test costs a file copy, not a migration."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.crypto.pin_verifier import PinVerifier
from nlr_server.store.database import create_store_engine
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory
from usecases.usecase_harness import Store


@pytest.fixture(scope="session")
def pins(keyring: Keyring) -> PinVerifier:
    return PinVerifier(keyring)


@pytest.fixture
def store(
    sqlite_template: Path, tmp_path: Path, keyring: Keyring, pins: PinVerifier
) -> Iterator[Store]:
    path = tmp_path / "nlr.db"
    shutil.copyfile(sqlite_template, path)
    engine = create_store_engine(f"sqlite:///{path}")
    try:
        yield Store(SqlUnitOfWorkFactory(engine, NationalIdSealer(keyring)), pins)
    finally:
        engine.dispose()
