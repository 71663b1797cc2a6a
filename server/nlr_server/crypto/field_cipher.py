"""Authenticated encryption (AES-256-GCM) of a single field, such as the national id, at rest."""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from nlr_server.crypto.keyring import KeyPurpose, Keyring, KeyringError

FORMAT_V1 = 0x01
_HEADER = struct.Struct(">BI")
_NONCE_LENGTH = 12
_TAG_LENGTH = 16


class DecryptionError(Exception):
    """A ciphertext cannot be opened: wrong format, unknown key version, or it was altered."""


class FieldCipher:
    """Encrypts a field under the active key of ``purpose`` and decrypts under any held version.

    A ciphertext is ``format byte (0x01) | key version (4 bytes, big-endian) | 12-byte nonce |
    ciphertext and 16-byte tag``. The format byte and key version are authenticated together
    with the caller's associated data, so they cannot be altered without detection. Pass the
    same ``associated_data`` (for example the record's id) to ``decrypt`` as to ``encrypt``; it
    ties a ciphertext to its place so it cannot be copied onto another record.
    """

    def __init__(
        self, keyring: Keyring, purpose: KeyPurpose = KeyPurpose.NATIONAL_ID_ENCRYPTION
    ) -> None:
        self._keyring = keyring
        self._purpose = purpose
        # The cipher of the last key used to encrypt: its key schedule costs more than sealing
        # a short field (a bulk import seals millions).
        self._sealing: tuple[bytes, AESGCM] | None = None

    def encrypt(self, plaintext: str, associated_data: bytes = b"") -> bytes:
        version, key = self._keyring.active_key(self._purpose)
        header = _HEADER.pack(FORMAT_V1, version)
        # Random 96-bit nonces are safe far beyond the number of records one key will protect.
        nonce = os.urandom(_NONCE_LENGTH)
        sealing = self._sealing  # read once: another thread may replace it
        if sealing is None or sealing[0] != key:
            sealing = self._sealing = (key, AESGCM(key))
        sealed = sealing[1].encrypt(nonce, plaintext.encode("utf-8"), header + associated_data)
        return header + nonce + sealed

    def decrypt(self, blob: bytes, associated_data: bytes = b"") -> str:
        version = self.key_version(blob)
        try:
            key = self._keyring.key(self._purpose, version)
        except KeyringError:
            raise DecryptionError(
                f"ciphertext was made with version {version} of the {self._purpose} key, "
                "which the keyring no longer holds"
            ) from None
        header = blob[: _HEADER.size]
        nonce = blob[_HEADER.size : _HEADER.size + _NONCE_LENGTH]
        sealed = blob[_HEADER.size + _NONCE_LENGTH :]
        try:
            plaintext = AESGCM(key).decrypt(nonce, sealed, header + associated_data)
        except InvalidTag:
            raise DecryptionError(
                "ciphertext failed authentication: it was altered, or the associated data differs"
            ) from None
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionError("decrypted field is not UTF-8 text") from None

    @staticmethod
    def key_version(blob: bytes) -> int:
        """The key version a ciphertext names, read without decrypting it."""
        if len(blob) < _HEADER.size + _NONCE_LENGTH + _TAG_LENGTH:
            raise DecryptionError("ciphertext is too short to be a field ciphertext")
        format_byte, version = _HEADER.unpack_from(blob)
        if format_byte != FORMAT_V1:
            raise DecryptionError(f"ciphertext has unknown format byte 0x{format_byte:02x}")
        return int(version)
