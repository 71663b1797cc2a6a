"""Rotating the national-id key end to end: rotate, re-encrypt while reads go on, retire."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import create_engine, func, select

from nlr.registry.v1 import borrower_pb2, registry_service_pb2_grpc
from nlr_server.crypto.keyring import KeyPurpose, Keyring
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.models import BorrowerRow
from register_harness import (
    LIBRARY_CODES,
    OSLO,
    ClientCertificates,
    Registry,
    ServerThread,
    client_channel,
    create,
    get,
    make_config,
    national_id,
    new_borrower,
    prepare_database,
)
from selfservice_harness import Portal, borrower_with_password, code_now, portal_client

RELOAD_SECONDS = 0.2


@pytest.fixture
def own_keyring(tmp_path: Path, keyring_path: Path) -> Path:
    """A copy of the session's keyring that this test may rotate."""
    path = tmp_path / "keyring.json"
    shutil.copy2(keyring_path, path)
    path.chmod(0o600)
    return path


@pytest.fixture
def rotating_server(
    database_url: str, own_keyring: Path, pki: DevPkiPaths, certificates: ClientCertificates
) -> Iterator[tuple[ServerThread, Registry]]:
    prepare_database(database_url, Keyring.load(own_keyring), pki, certificates)
    config = make_config(pki, own_keyring, database_url, keyring_reload_seconds=RELOAD_SECONDS)
    server = ServerThread(config).start()
    channel = client_channel(server.target, pki)
    stub = registry_service_pb2_grpc.BorrowerRegistryStub(channel)
    yield server, Registry(stub, OSLO, LIBRARY_CODES[OSLO])
    channel.close()
    server.stop()


def admin(server: ServerThread, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "NLR_DATABASE_URL": server.config.database_url,
        "NLR_KEYRING": str(server.config.keyring),
        "NLR_KEYRING_RELOAD_SECONDS": str(RELOAD_SECONDS),
    }
    return subprocess.run(
        [sys.executable, "-m", "nlr_server.ops.admin", "keys", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def versions_in_use(url: str) -> dict[int, int]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(BorrowerRow.national_id_key_version, func.count()).group_by(
                BorrowerRow.national_id_key_version
            )
        ).all()
    engine.dispose()
    return {version: count for version, count in rows}


def test_rotate_reencrypt_retire_while_lookups_keep_working(
    rotating_server: tuple[ServerThread, Registry],
) -> None:
    server, registry = rotating_server
    ids = {f"N00000070{i:01d}": national_id() for i in range(10)}
    ids |= {f"N0000007{i:02d}": national_id() for i in range(10, 40)}
    for card, nid in ids.items():
        create(registry, new_borrower(card, national_id=nid))
    assert versions_in_use(server.config.database_url) == {1: 40}

    rotated = admin(server, "rotate")
    assert rotated.returncode == 0, rotated.stderr
    time.sleep(RELOAD_SECONDS * 3)  # the server re-reads the changed keyring
    create(registry, new_borrower("N000000799", national_id=(late := national_id())))
    ids["N000000799"] = late
    assert versions_in_use(server.config.database_url) == {1: 40, 2: 1}

    refused = admin(server, "retire", "1")
    assert refused.returncode == 2
    assert "40 records still use version 1" in refused.stderr

    failures: list[str] = []
    stop = threading.Event()

    def keep_reading() -> None:
        while not stop.is_set():
            for card, nid in ids.items():
                try:
                    if get(registry, national_id=nid).card_number != card:
                        failures.append(card)
                except grpc.RpcError as error:
                    failures.append(f"{card}: {error.code()}")

    reader = threading.Thread(target=keep_reading)
    reader.start()
    try:
        reencrypted = admin(server, "reencrypt", "--batch-size", "7")
    finally:
        stop.set()
        reader.join(timeout=30)
    assert reencrypted.returncode == 0, reencrypted.stderr
    assert "40 national ids re-encrypted under version 2" in reencrypted.stdout
    assert failures == []
    assert versions_in_use(server.config.database_url) == {2: 41}

    retired = admin(server, "retire", "1")
    assert retired.returncode == 0, retired.stderr
    assert Keyring.load(server.config.keyring).versions(KeyPurpose.NATIONAL_ID_ENCRYPTION) == [2]
    for card, nid in ids.items():
        assert get(registry, national_id=nid).card_number == card
    active = admin(server, "retire", "2")
    assert active.returncode == 2
    assert "active" in active.stderr


def test_totp_secrets_are_resealed_before_their_key_may_be_retired(
    rotating_server: tuple[ServerThread, Registry],
    pki: DevPkiPaths,
    certificates: ClientCertificates,
) -> None:
    server, registry = rotating_server
    with portal_client(server.target, pki, certificates) as stub:
        portal = Portal(stub)
        borrower_with_password(registry, "N000000790")
        portal.log_in("N000000790")
        secret = portal.enroll()

        assert admin(server, "rotate").returncode == 0
        time.sleep(RELOAD_SECONDS * 3)
        refused = admin(server, "retire", "1")
        # The borrower's national id and their TOTP secret.
        assert "2 records still use version 1" in refused.stderr

        reencrypted = admin(server, "reencrypt")
        assert reencrypted.returncode == 0, reencrypted.stderr
        assert "1 TOTP secrets re-sealed under version 2" in reencrypted.stdout
        retired = admin(server, "retire", "1")
        assert retired.returncode == 0, retired.stderr
        time.sleep(RELOAD_SECONDS * 3)

        # The secret opens under the new key: a code of the app still raises a login.
        portal.log_in("N000000790")
        assert portal.confirm(code_now(secret, steps_ahead=1)).strength == (
            borrower_pb2.SECURITY_LEVEL_TWO_FACTOR
        )
