"""The national id blind index: deterministic under one key, unrelated across keys."""

from __future__ import annotations

import hashlib
from pathlib import Path

from nlr_server.crypto.blind_index import BlindIndex
from nlr_server.crypto.keyring import Keyring

# Synthetic national ids (valid check digits, not real people).
NATIONAL_ID = "01010012356"
OTHER_NATIONAL_ID = "01010012437"


def test_blind_index_is_deterministic_and_keyed(tmp_path: Path) -> None:
    index = BlindIndex(Keyring.create(tmp_path / "first.json"))
    other_index = BlindIndex(Keyring.create(tmp_path / "second.json"))

    tag = index.compute(NATIONAL_ID)

    assert len(tag) == 32
    assert index.compute(NATIONAL_ID) == tag
    assert index.compute(OTHER_NATIONAL_ID) != tag
    assert other_index.compute(NATIONAL_ID) != tag


def test_blind_index_is_not_a_plain_hash(tmp_path: Path) -> None:
    index = BlindIndex(Keyring.create(tmp_path / "keyring.json"))

    tag = index.compute(NATIONAL_ID)

    assert tag != hashlib.sha256(NATIONAL_ID.encode()).digest()
    assert NATIONAL_ID.encode() not in tag


def test_blind_index_survives_keyring_reload(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    tag = BlindIndex(Keyring.create(path)).compute(NATIONAL_ID)

    assert BlindIndex(Keyring.load(path)).compute(NATIONAL_ID) == tag
