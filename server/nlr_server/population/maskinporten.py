"""Access tokens from Maskinporten by the JWT bearer grant (RFC 7523), as Digdir documents it.

The client proves itself with a JWT it signs with its own RSA key (RS256, ``kid`` header):
``aud`` Maskinporten's issuer, ``iss`` the client id, ``scope``, ``iat``, ``exp`` at most 120 s
after it, and a fresh ``jti``; no ``resource``. The answer's ``access_token`` is kept until
shortly before its ``expires_in`` runs out. The key is read from an owner-only PEM file; neither
it nor a token is ever logged.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from nlr_server.crypto.private_file import PrivateFileError, read_private_file

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_SECONDS = 120
# A token is renewed this long before Maskinporten says it expires.
_RENEW_BEFORE_SECONDS = 30
_TIMEOUT = httpx.Timeout(10.0)


class MaskinportenError(Exception):
    """No token: Maskinporten refused the grant, or did not answer; the message quotes no
    secret."""


@dataclass(frozen=True)
class MaskinportenSettings:
    issuer: str  # e.g. https://maskinporten.no/ (the token endpoint is {issuer}token)
    client_id: str
    key_file: Path
    key_id: str
    scope: str


class MaskinportenTokens:
    """Access tokens for one client and scope, fetched when needed and reused until near
    their expiry; safe to share between threads."""

    def __init__(
        self,
        settings: MaskinportenSettings,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._key = _private_key(settings.key_file)
        self._http = http or httpx.Client(timeout=_TIMEOUT)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    @property
    def token_url(self) -> str:
        return self._settings.issuer.rstrip("/") + "/token"

    def token(self) -> str:
        """A valid access token, from the cache or fetched now."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token, expires_in = self._fetch()
                self._renew_at = self._clock() + max(0, expires_in - _RENEW_BEFORE_SECONDS)
            return self._token

    def forget(self) -> None:
        """Drop the cached token (the API answered 401 to it)."""
        with self._lock:
            self._token = None

    def assertion(self) -> str:
        """The signed JWT grant for one token request."""
        settings = self._settings
        issued = int(self._clock())
        claims = {
            "aud": settings.issuer,
            "iss": settings.client_id,
            "scope": settings.scope,
            "iat": issued,
            "exp": issued + ASSERTION_SECONDS,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": settings.key_id})

    def _fetch(self) -> tuple[str, int]:
        try:
            answer = self._http.post(
                self.token_url, data={"grant_type": GRANT_TYPE, "assertion": self.assertion()}
            )
        except httpx.HTTPError as error:
            raise MaskinportenError(
                f"no answer from Maskinporten ({type(error).__name__})"
            ) from None
        if answer.status_code != httpx.codes.OK:
            raise MaskinportenError(
                f"Maskinporten refused the token request: HTTP {answer.status_code} "
                f"{_error_code(answer)}"
            )
        try:
            body = answer.json()
            return str(body["access_token"]), int(body["expires_in"])
        except (ValueError, KeyError, TypeError):
            raise MaskinportenError(
                "Maskinporten's answer has no access_token and expires_in"
            ) from None


def _error_code(answer: httpx.Response) -> str:
    """The OAuth ``error`` code of a refusal (a fixed word, never a secret), if any."""
    try:
        code = answer.json().get("error", "")
    except (ValueError, AttributeError):
        return ""
    return str(code)[:64] if isinstance(code, str) and code.replace("_", "").isalnum() else ""


def _private_key(path: Path) -> rsa.RSAPrivateKey:
    try:
        pem = read_private_file(path, "Maskinporten key")
    except PrivateFileError as error:
        raise MaskinportenError(str(error)) from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise MaskinportenError(
            f"Maskinporten key file {path} is not an unencrypted PEM key"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise MaskinportenError(f"Maskinporten key file {path} is not an RSA key (RS256)")
    return key
