"""Seals a national id for storage: AES-256-GCM ciphertext plus a keyed blind index."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from nlr_server.crypto.blind_index import BlindIndex
from nlr_server.crypto.field_cipher import FieldCipher
from nlr_server.crypto.keyring import Keyring

# Binds each ciphertext to its column, so a ciphertext moved to another field will not decrypt.
_ASSOCIATED_DATA = b"nlr:borrowers.national_id"


@dataclass(frozen=True, slots=True)
class SealedNationalId:
    ciphertext: bytes
    index: bytes
    key_version: int


class NationalIdSealer:
    def __init__(self, keyring: Keyring) -> None:
        self._cipher = FieldCipher(keyring)
        self._index = BlindIndex(keyring)

    def seal(self, national_id: str) -> SealedNationalId:
        ciphertext = self._cipher.encrypt(national_id, _ASSOCIATED_DATA)
        return SealedNationalId(
            ciphertext=ciphertext,
            index=self._index.compute(national_id),
            key_version=FieldCipher.key_version(ciphertext),
        )

    def reseal(self, ciphertext: bytes) -> SealedNationalId:
        """The same national id under the active key (for key rotation)."""
        return self.seal(self.open(ciphertext))

    def index(self, national_id: str) -> bytes:
        return self._index.compute(national_id)

    def matches(self, national_id: str, stored_index: bytes) -> bool:
        return hmac.compare_digest(self._index.compute(national_id), stored_index)

    def open(self, ciphertext: bytes) -> str:
        return self._cipher.decrypt(ciphertext, _ASSOCIATED_DATA)
