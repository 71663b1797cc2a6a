"""TOTP second factors (RFC 6238, by pyotp) and recovery codes.

A TOTP secret is shown to the borrower once, as an ``otpauth://`` URI for their authenticator
app, and kept only sealed under the keyring (as the national id is). A code is accepted once:
the time step it matched is kept, and a code of that step or an earlier one is refused.

Recovery codes are long random strings (80 bits), so a salted SHA-256 is enough of a verifier:
no copy of the database lets anyone find one by guessing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

import pyotp

from nlr_server.crypto.field_cipher import FieldCipher
from nlr_server.crypto.keyring import Keyring

ISSUER = "bibliotekkortet"
DIGITS = 6
STEP_SECONDS = 30
# Codes of the step before and after now are accepted too: clocks of phones drift.
WINDOW = 1
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
_RECOVERY_GROUPS, _RECOVERY_GROUP_LENGTH = 4, 4
_SALT_LENGTH = 16


def new_secret() -> str:
    """A fresh 160-bit secret, base32 as authenticator apps read it."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, card_number: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app enrols from (a QR code of it)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=card_number, issuer_name=ISSUER
    )


def code_at(secret: str, at: dt.datetime) -> str:
    """The code an authenticator app shows at ``at`` (for tests and the dev setup)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).at(at)


def is_code_shaped(code: str) -> bool:
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def matching_step(secret: str, code: str, at: dt.datetime, after_step: int | None) -> int | None:
    """The time step whose code ``code`` is, within the window around ``at``, if that step is
    later than ``after_step`` (the last one accepted); else None."""
    if not is_code_shaped(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    now_step = int(at.timestamp()) // STEP_SECONDS
    found = None
    for step in range(now_step - WINDOW, now_step + WINDOW + 1):
        # Every step is compared, so the time taken does not tell which one matched.
        if hmac.compare_digest(totp.generate_otp(step), code) and found is None:
            found = step
    if found is None or (after_step is not None and found <= after_step):
        return None
    return found


@dataclass(frozen=True, slots=True)
class SealedSecret:
    ciphertext: bytes
    key_version: int


class TotpSecretSealer:
    """Seals a borrower's TOTP secret under the keyring's field key, tied to the borrower."""

    def __init__(self, keyring: Keyring) -> None:
        self._cipher = FieldCipher(keyring)

    def seal(self, secret: str, borrower_id: int) -> SealedSecret:
        ciphertext = self._cipher.encrypt(secret, _associated(borrower_id))
        return SealedSecret(ciphertext, FieldCipher.key_version(ciphertext))

    def open(self, ciphertext: bytes, borrower_id: int) -> str:
        return self._cipher.decrypt(ciphertext, _associated(borrower_id))

    def reseal(self, ciphertext: bytes, borrower_id: int) -> SealedSecret:
        """The same secret under the active key (key rotation)."""
        return self.seal(self.open(ciphertext, borrower_id), borrower_id)


def _associated(borrower_id: int) -> bytes:
    return b"nlr/totp-secret/v1\x00" + str(borrower_id).encode()


def new_recovery_codes() -> list[str]:
    """Ten codes, each four groups of four letters and digits, e.g. ``k7mq-2xwd-p9rt-vh3n``."""
    return [_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]


def _recovery_code() -> str:
    groups = (
        "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_GROUP_LENGTH))
        for _ in range(_RECOVERY_GROUPS)
    )
    return "-".join(groups)


def normalized_recovery_code(raw: str) -> str:
    """As typed: case, spaces and dashes do not matter."""
    return "".join(c for c in raw.lower() if c not in " -")


def is_recovery_code_shaped(raw: str) -> bool:
    text = normalized_recovery_code(raw)
    return len(text) == _RECOVERY_GROUPS * _RECOVERY_GROUP_LENGTH and all(
        c in _RECOVERY_ALPHABET for c in text
    )


def recovery_verifier(code: str) -> bytes:
    """Salt and SHA-256 of the normalized code, as stored."""
    salt = os.urandom(_SALT_LENGTH)
    return salt + _digest(salt, code)


def recovery_matches(code: str, verifier: bytes) -> bool:
    salt, digest = verifier[:_SALT_LENGTH], verifier[_SALT_LENGTH:]
    return hmac.compare_digest(_digest(salt, code), digest)


def _digest(salt: bytes, code: str) -> bytes:
    return hashlib.sha256(
        b"nlr/recovery-code/v1\x00" + salt + normalized_recovery_code(code).encode()
    ).digest()
