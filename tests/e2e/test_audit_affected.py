"""What a breach report needs: after real reads by two vendors through the server, the
operator's `nlr-admin audit affected` names exactly the borrowers each vendor reached."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import grpc
import pytest

from admin_runner import Admin, admin_environment
from nlr.registry.v1 import registry_service_pb2_grpc
from nlr_server.crypto.keyring import Keyring
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import (
    LIBRARY_CODES,
    OTHER_VENDOR,
    OTHER_VENDORS_LIBRARY,
    TEST_VENDOR,
    ClientCertificates,
    Registry,
    ServerThread,
    client_channel,
    create,
    get,
    new_borrower,
    wait_for_audit,
)

CARDS = [f"N00000095{i}" for i in range(6)]


def test_affected_counts_what_each_vendor_read(
    registry: Registry,
    server: ServerThread,
    pki: DevPkiPaths,
    certificates: ClientCertificates,
    keyring: Keyring,
    keyring_path: Path,
) -> None:
    for card in CARDS:
        create(registry, new_borrower(card))
    time.sleep(1.1)  # the creations fall before the window
    start = dt.datetime.now(dt.UTC)

    for card in CARDS[:3]:
        get(registry, card_number=card)
    get(registry, card_number=CARDS[0])  # twice: still one borrower
    cert, key = certificates.path("other_ils")
    with client_channel(server.target, pki, cert=cert, key=key) as channel:
        other = Registry(
            registry_service_pb2_grpc.BorrowerRegistryStub(channel),
            OTHER_VENDORS_LIBRARY,
            LIBRARY_CODES[OTHER_VENDORS_LIBRARY],
        )
        for card in CARDS[2:5]:
            get(other, card_number=card)
        with pytest.raises(grpc.RpcError):
            get(other.as_library(OTHER_VENDORS_LIBRARY, code="wrong"), card_number=CARDS[5])
    wait_for_audit(server.config.database_url, keyring, CARDS[5], 2)
    end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)

    admin = Admin(
        admin_environment(
            NLR_DATABASE_URL=server.config.database_url, NLR_KEYRING=str(keyring_path)
        )
    )
    window = ["--from", start.isoformat(), "--to", end.isoformat()]
    ours = admin.json("audit", "affected", "--vendor", TEST_VENDOR, *window)
    theirs = admin.json("audit", "affected", "--vendor", OTHER_VENDOR, *window)

    assert (ours["borrowers"], ours["card_numbers"], ours["events"]) == (3, CARDS[:3], 4)
    assert (theirs["borrowers"], theirs["card_numbers"], theirs["refused_card_numbers"]) == (
        3,
        CARDS[2:5],
        [CARDS[5]],
    )
