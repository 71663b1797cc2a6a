"""Keyed PIN verifiers: HMAC-SHA256 under the keyring's PIN key, with a per-record salt.

A PIN has at most 10^8 values, so no salted hash alone would survive a copied database; the
key, kept outside the database, is what makes a stolen verifier useless. Online guessing is
stopped by lockout. Format: ``hmac-sha256$<key version>$<salt>$<digest>`` (base64).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from nlr_server.crypto.keyring import KeyPurpose, Keyring, KeyringError
from nlr_server.domain.credentials import Pin

_SCHEME = "hmac-sha256"
_DOMAIN = b"nlr/pin/v1\x00"


class PinVerifier:
    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._dummy = self.make("00000000")

    def make(self, pin: str) -> str:
        version, key = self._keyring.active_key(KeyPurpose.PIN_VERIFIER)
        salt = os.urandom(16)
        return f"{_SCHEME}${version}${_b64(salt)}${_b64(_digest(key, salt, pin))}"

    def verify(self, pin: str, verifier: str) -> bool:
        try:
            scheme, version, salt, digest = verifier.split("$")
            if scheme != _SCHEME:
                return False
            key = self._keyring.key(KeyPurpose.PIN_VERIFIER, int(version))
            return hmac.compare_digest(_digest(key, _unb64(salt), pin), _unb64(digest))
        except (ValueError, KeyringError):
            return False

    def matches(self, pin: Pin, verifier: str | None) -> bool:
        """Whether ``pin`` matches; a missing verifier costs the same and never matches."""
        if verifier is None:
            self.verify(pin.value, self._dummy)
            return False
        return self.verify(pin.value, verifier)

    @staticmethod
    def key_version(verifier: str) -> int:
        return int(verifier.split("$")[1])


def _digest(key: bytes, salt: bytes, pin: str) -> bytes:
    return hmac.digest(key, _DOMAIN + salt + pin.encode(), hashlib.sha256)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
