"""SelfService session tokens: 256 random bits, kept by the register only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "nlrs_"


def new_token() -> tuple[str, bytes]:
    """A new token and the digest it is stored under."""
    token = PREFIX + secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def looks_like_token(token: str) -> bool:
    return token.startswith(PREFIX) and 40 <= len(token) <= 80 and token.isascii()
