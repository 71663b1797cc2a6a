"""AES-256-GCM field encryption: versioned, authenticated, randomized."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlr_server.crypto.field_cipher import DecryptionError, FieldCipher
from nlr_server.crypto.keyring import KeyPurpose, Keyring

# A synthetic national id (valid check digits, not a real person).
NATIONAL_ID = "01010012356"


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring.create(tmp_path / "keyring.json")


def test_encrypted_field_decrypts_to_the_plaintext(keyring: Keyring) -> None:
    cipher = FieldCipher(keyring)

    blob = cipher.encrypt(NATIONAL_ID, associated_data=b"borrower:42")

    assert NATIONAL_ID.encode() not in blob
    assert cipher.decrypt(blob, associated_data=b"borrower:42") == NATIONAL_ID


def test_ciphertext_names_its_key_version(keyring: Keyring) -> None:
    keyring.rotate(KeyPurpose.NATIONAL_ID_ENCRYPTION)
    keyring.rotate(KeyPurpose.NATIONAL_ID_ENCRYPTION)

    blob = FieldCipher(keyring).encrypt(NATIONAL_ID)

    assert blob[0] == 0x01
    assert blob[1:5] == (3).to_bytes(4, "big")
    assert FieldCipher.key_version(blob) == 3
    # Format byte, version, nonce, then ciphertext and the 16-byte tag.
    assert len(blob) == 1 + 4 + 12 + len(NATIONAL_ID) + 16


def test_decrypt_after_rotation_uses_the_old_version(keyring: Keyring) -> None:
    cipher = FieldCipher(keyring)
    old_blob = cipher.encrypt(NATIONAL_ID)

    keyring.rotate(KeyPurpose.NATIONAL_ID_ENCRYPTION)
    new_blob = cipher.encrypt(NATIONAL_ID)

    assert FieldCipher.key_version(old_blob) == 1
    assert FieldCipher.key_version(new_blob) == 2
    assert cipher.decrypt(old_blob) == NATIONAL_ID
    assert cipher.decrypt(new_blob) == NATIONAL_ID


def test_decrypt_after_reload_from_file(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    blob = FieldCipher(Keyring.create(path)).encrypt(NATIONAL_ID)

    assert FieldCipher(Keyring.load(path)).decrypt(blob) == NATIONAL_ID


@pytest.mark.parametrize("position", [0, 1, 4, 5, 16, 17, -1])
def test_tampered_ciphertext_is_refused(keyring: Keyring, position: int) -> None:
    cipher = FieldCipher(keyring)
    blob = bytearray(cipher.encrypt(NATIONAL_ID))

    blob[position] ^= 0x01

    with pytest.raises(DecryptionError) as raised:
        cipher.decrypt(bytes(blob))
    assert NATIONAL_ID not in str(raised.value)


def test_ciphertext_moved_to_another_record_is_refused(keyring: Keyring) -> None:
    cipher = FieldCipher(keyring)
    blob = cipher.encrypt(NATIONAL_ID, associated_data=b"borrower:42")

    with pytest.raises(DecryptionError, match="associated data"):
        cipher.decrypt(blob, associated_data=b"borrower:43")


def test_truncated_ciphertext_is_refused(keyring: Keyring) -> None:
    blob = FieldCipher(keyring).encrypt(NATIONAL_ID)

    with pytest.raises(DecryptionError, match="too short"):
        FieldCipher(keyring).decrypt(blob[:20])


def test_ciphertext_under_a_retired_version_is_refused(keyring: Keyring) -> None:
    cipher = FieldCipher(keyring)
    old_blob = cipher.encrypt(NATIONAL_ID)
    keyring.rotate(KeyPurpose.NATIONAL_ID_ENCRYPTION)

    keyring.retire(KeyPurpose.NATIONAL_ID_ENCRYPTION, 1)

    with pytest.raises(DecryptionError, match="version 1"):
        cipher.decrypt(old_blob)


def test_ciphertext_from_another_keyring_is_refused(keyring: Keyring, tmp_path: Path) -> None:
    other = Keyring.create(tmp_path / "other.json")
    blob = FieldCipher(other).encrypt(NATIONAL_ID)

    with pytest.raises(DecryptionError):
        FieldCipher(keyring).decrypt(blob)


def test_same_plaintext_encrypts_differently_each_time(keyring: Keyring) -> None:
    cipher = FieldCipher(keyring)

    blobs = {cipher.encrypt(NATIONAL_ID) for _ in range(20)}

    assert len(blobs) == 20
    assert {cipher.decrypt(blob) for blob in blobs} == {NATIONAL_ID}
