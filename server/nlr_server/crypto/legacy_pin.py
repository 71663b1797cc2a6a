"""The legacy register's PINs: decrypted once, at import, so each borrower keeps their PIN.

The legacy register stored a PIN as the hex of AES-128 in ECB mode with PKCS#5 padding under one
key every vendor shared (16 bytes; a 4-digit PIN gives 32 hex digits). An import given that key
turns each ``pin`` back into digits, which are then only ever kept as the register's own keyed
verifier (crypto/pin_verifier.py). The key is read from an owner-only file, held in memory for
the import and never written, logged or passed on; an error never quotes a PIN, its ciphertext
or the key.
"""

from __future__ import annotations

import binascii
from pathlib import Path

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from nlr_server.crypto.private_file import PrivateFileError, read_private_file
from nlr_server.domain.credentials import Pin
from nlr_server.domain.errors import InvalidValue

LEGACY_KEY_BYTES = 16
_BLOCK_BITS = 128
# The longest PIN (8 digits) still fits in one block: no valid ciphertext is longer.
_LONGEST_CIPHERTEXT_HEX = 2 * _BLOCK_BITS // 8


class LegacyKeyError(Exception):
    """The legacy key file cannot be used; the message says why, never what it holds."""


class LegacyPins:
    """Decrypts legacy ``pin`` values under the shared key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != LEGACY_KEY_BYTES:
            raise LegacyKeyError(f"the legacy key must be {LEGACY_KEY_BYTES} bytes")
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())
        # ECB keeps no state between blocks: one decryptor serves every PIN of an import.
        self._decryptor = self._cipher.decryptor()

    @classmethod
    def load(cls, path: Path) -> LegacyPins:
        """The key in ``path``: 16 raw bytes, or 32 hex digits as text (a newline after them, or
        after 16 raw bytes of text, is allowed). A file others can read is refused."""
        try:
            content = read_private_file(path, "legacy key")
        except PrivateFileError as error:
            raise LegacyKeyError(str(error)) from None
        return cls(_key_bytes(content))

    def decrypt(self, hex_text: str) -> Pin:
        """The PIN ``hex_text`` encrypts; InvalidValue (quoting nothing) if it holds none."""
        if len(hex_text) > _LONGEST_CIPHERTEXT_HEX or len(hex_text) % 32:
            raise InvalidValue("is not a legacy encrypted PIN (32 hex digits)")
        try:
            ciphertext = binascii.unhexlify(hex_text)
        except (binascii.Error, ValueError):
            raise InvalidValue("is not a legacy encrypted PIN (32 hex digits)") from None
        padded = self._decryptor.update(ciphertext)
        pad = padded[-1] if padded else 0
        # PKCS#5 (PKCS#7 for AES's 16-byte block): n bytes of value n, 1 <= n <= 16.
        if not 1 <= pad <= _BLOCK_BITS // 8 or padded[-pad:] != bytes([pad]) * pad:
            raise InvalidValue("does not decrypt under the legacy key (bad padding)")
        plain = padded[:-pad]
        try:
            text = plain.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidValue("does not decrypt to digits under the legacy key") from None
        try:
            return Pin.parse(text)
        except InvalidValue:
            raise InvalidValue("does not decrypt to a PIN of 4 to 8 digits") from None

    def encrypt(self, pin: str) -> str:
        """The legacy register's ``pin`` value of ``pin`` (tests and benchmarks make exports)."""
        padder = padding.PKCS7(_BLOCK_BITS).padder()
        encryptor = self._cipher.encryptor()
        padded = padder.update(pin.encode("ascii")) + padder.finalize()
        return (encryptor.update(padded) + encryptor.finalize()).hex()


def _key_bytes(content: bytes) -> bytes:
    if len(content) == LEGACY_KEY_BYTES:
        return content
    text = content.rstrip(b"\r\n")
    if len(text) == LEGACY_KEY_BYTES:
        return text
    stripped = text.strip()
    if len(stripped) == 2 * LEGACY_KEY_BYTES:
        try:
            return binascii.unhexlify(stripped)
        except (binascii.Error, ValueError):
            pass
    raise LegacyKeyError(
        f"the legacy key file must hold {LEGACY_KEY_BYTES} bytes, or "
        f"{2 * LEGACY_KEY_BYTES} hex digits as text"
    )
