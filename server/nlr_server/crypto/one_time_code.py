"""One-time codes sent to a new email or mobile phone: six random digits, kept only as a
salted SHA-256 for the quarter of an hour they live."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from nlr_server.domain.contact_change import CODE_DIGITS

_SALT_LENGTH = 16


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def is_code_shaped(code: str) -> bool:
    return len(code) == CODE_DIGITS and code.isascii() and code.isdigit()


def verifier(code: str) -> bytes:
    salt = os.urandom(_SALT_LENGTH)
    return salt + _digest(salt, code)


def matches(code: str, stored: bytes) -> bool:
    salt, digest = stored[:_SALT_LENGTH], stored[_SALT_LENGTH:]
    return hmac.compare_digest(_digest(salt, code), digest)


def _digest(salt: bytes, code: str) -> bytes:
    return hashlib.sha256(b"nlr/contact-code/v1\x00" + salt + code.encode()).digest()
