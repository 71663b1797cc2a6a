"""The keyring file: owner-only, versioned keys per purpose, rotation and retirement."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from nlr_server.crypto.keyring import KEY_LENGTH, KeyPurpose, Keyring, KeyringError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _write_document(path: Path, document: object) -> None:
    path.write_text(json.dumps(document), encoding="utf-8")
    os.chmod(path, 0o600)


def test_keyring_file_is_created_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    old_umask = os.umask(0)
    try:
        # With no umask to narrow it, only the mode passed at creation protects the file.
        Keyring.create(path)
    finally:
        os.umask(old_umask)

    assert _mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["keyring.json"]


def test_created_keyring_has_version_one_of_every_purpose(tmp_path: Path) -> None:
    keyring = Keyring.create(tmp_path / "keyring.json")

    for purpose in KeyPurpose:
        version, key = keyring.active_key(purpose)
        assert version == 1
        assert len(key) == KEY_LENGTH
        assert keyring.versions(purpose) == [1]
    keys = {keyring.key(purpose, 1) for purpose in KeyPurpose}
    assert len(keys) == len(KeyPurpose)


def test_keyring_round_trips_through_its_file(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    created = Keyring.create(path)

    loaded = Keyring.load(path)

    for purpose in KeyPurpose:
        assert loaded.active_key(purpose) == created.active_key(purpose)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["format"] == "nlr-keyring/1"
    assert set(document["keys"]) == {str(purpose) for purpose in KeyPurpose}


def test_create_refuses_to_overwrite_an_existing_keyring(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    Keyring.create(path)
    before = path.read_bytes()

    with pytest.raises(KeyringError, match="already exists"):
        Keyring.create(path)

    assert path.read_bytes() == before


def test_load_of_missing_keyring_says_how_to_create_one(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"

    with pytest.raises(KeyringError) as raised:
        Keyring.load(path)

    assert str(path) in str(raised.value)
    assert "nlr-admin keys init" in str(raised.value)
    assert "NLR_KEYRING" in str(raised.value)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o644])
def test_load_refuses_group_readable_keyring(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "keyring.json"
    Keyring.create(path)
    os.chmod(path, mode)

    with pytest.raises(KeyringError, match="chmod 600"):
        Keyring.load(path)


def test_load_refuses_wrong_format_tag(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    Keyring.create(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["format"] = "nlr-keyring/0"
    _write_document(path, document)

    with pytest.raises(KeyringError, match="format"):
        Keyring.load(path)


def test_load_refuses_a_missing_purpose(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    Keyring.create(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    del document["keys"]["pin_verifier"]
    _write_document(path, document)

    with pytest.raises(KeyringError, match="pin_verifier"):
        Keyring.load(path)


def test_load_refuses_a_key_of_the_wrong_length(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    Keyring.create(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    short_key = base64.b64encode(b"\x07" * 16).decode("ascii")
    document["keys"]["national_id_index"]["versions"]["1"] = short_key
    _write_document(path, document)

    with pytest.raises(KeyringError, match="16 bytes") as raised:
        Keyring.load(path)

    assert short_key not in str(raised.value)


def test_load_refuses_malformed_json_without_quoting_it(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    secret_looking = "c2VjcmV0LWtleS1tYXRlcmlhbA=="
    path.write_text('{"format": "nlr-keyring/1", "keys": {"x": "' + secret_looking + '"', "utf-8")
    os.chmod(path, 0o600)

    with pytest.raises(KeyringError, match="not valid JSON") as raised:
        Keyring.load(path)

    assert secret_looking not in str(raised.value)


def test_load_refuses_an_active_version_it_does_not_hold(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    Keyring.create(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["keys"]["national_id_encryption"]["active"] = 2
    _write_document(path, document)

    with pytest.raises(KeyringError, match="active"):
        Keyring.load(path)


def test_rotation_adds_an_active_version_and_keeps_the_old_one(tmp_path: Path) -> None:
    keyring = Keyring.create(tmp_path / "keyring.json")
    old_key = keyring.key(KeyPurpose.NATIONAL_ID_ENCRYPTION, 1)

    new_version = keyring.rotate(KeyPurpose.NATIONAL_ID_ENCRYPTION)

    assert new_version == 2
    assert keyring.active_version(KeyPurpose.NATIONAL_ID_ENCRYPTION) == 2
    assert keyring.versions(KeyPurpose.NATIONAL_ID_ENCRYPTION) == [1, 2]
    assert keyring.key(KeyPurpose.NATIONAL_ID_ENCRYPTION, 1) == old_key
    assert keyring.key(KeyPurpose.NATIONAL_ID_ENCRYPTION, 2) != old_key
    assert keyring.active_version(KeyPurpose.PIN_VERIFIER) == 1


def test_saved_rotation_survives_reload_and_stays_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    keyring = Keyring.create(path)
    keyring.rotate(KeyPurpose.PIN_VERIFIER)

    keyring.save()
    loaded = Keyring.load(path)

    assert loaded.versions(KeyPurpose.PIN_VERIFIER) == [1, 2]
    assert loaded.active_key(KeyPurpose.PIN_VERIFIER) == keyring.active_key(KeyPurpose.PIN_VERIFIER)
    assert _mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["keyring.json"]


def test_retiring_active_version_is_refused(tmp_path: Path) -> None:
    keyring = Keyring.create(tmp_path / "keyring.json")

    with pytest.raises(KeyringError, match="active"):
        keyring.retire(KeyPurpose.NATIONAL_ID_ENCRYPTION, 1)

    assert keyring.versions(KeyPurpose.NATIONAL_ID_ENCRYPTION) == [1]


def test_retired_version_is_gone(tmp_path: Path) -> None:
    keyring = Keyring.create(tmp_path / "keyring.json")
    keyring.rotate(KeyPurpose.NATIONAL_ID_ENCRYPTION)

    keyring.retire(KeyPurpose.NATIONAL_ID_ENCRYPTION, 1)

    assert keyring.versions(KeyPurpose.NATIONAL_ID_ENCRYPTION) == [2]
    with pytest.raises(KeyringError, match="no version 1"):
        keyring.key(KeyPurpose.NATIONAL_ID_ENCRYPTION, 1)


def test_repr_shows_no_key_bytes(tmp_path: Path) -> None:
    keyring = Keyring.create(tmp_path / "keyring.json")

    text = repr(keyring)

    for purpose in KeyPurpose:
        key = keyring.key(purpose, 1)
        assert base64.b64encode(key).decode("ascii") not in text
        assert key.hex() not in text
        assert repr(key) not in text
