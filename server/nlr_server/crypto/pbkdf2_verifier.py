"""Self-describing PBKDF2 verifiers: ``pbkdf2-<hash>$<iterations>$<salt>$<digest>`` (base64).

The format names its own cost, so the cost can be raised later and a stored verifier re-made
on the next successful check (``needs_rehash``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

_HASHES = ("sha256", "sha512")


class VerifierFormatError(ValueError):
    """A stored verifier is not in the expected format."""


def make_verifier(secret: str, *, iterations: int, hash_name: str = "sha512") -> str:
    if hash_name not in _HASHES:
        raise ValueError(f"unsupported hash {hash_name!r}")
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac(hash_name, secret.encode(), salt, iterations)
    return f"pbkdf2-{hash_name}${iterations}${_b64(salt)}${_b64(digest)}"


def verify(secret: str, verifier: str) -> bool:
    hash_name, iterations, salt, expected = _parse(verifier)
    digest = hashlib.pbkdf2_hmac(hash_name, secret.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)


def needs_rehash(verifier: str, *, iterations: int, hash_name: str = "sha512") -> bool:
    stored_hash, stored_iterations, _, _ = _parse(verifier)
    return stored_hash != hash_name or stored_iterations < iterations


def _parse(verifier: str) -> tuple[str, int, bytes, bytes]:
    try:
        scheme, iterations, salt, digest = verifier.split("$")
        hash_name = scheme.removeprefix("pbkdf2-")
        if not scheme.startswith("pbkdf2-") or hash_name not in _HASHES:
            raise ValueError(scheme)
        return hash_name, int(iterations), _unb64(salt), _unb64(digest)
    except ValueError as error:
        raise VerifierFormatError("not a pbkdf2 verifier") from error


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
