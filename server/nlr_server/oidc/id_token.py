"""Validating OpenID Connect ID tokens from ID-porten and Feide (OIDC Core 1.0, 3.1.3.7).

A portal passes the ID token it got from the provider and the nonce it put in its authorization
request; the register checks the token itself: the signature by the provider's key named by
``kid`` (RS256, PS256 or ES256, from its JWKS), ``iss``, ``aud`` and ``azp``, ``exp``, ``iat``,
``nbf``, the nonce, ``acr`` and ``sub``. Every refusal is ``Unauthenticated`` with reason
``ID_TOKEN_INVALID`` and a message naming the check that failed, never a claim's value (``pid``
is a national id). Keys that cannot be read are ``JwksUnavailable``: the token was not judged.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.types import Options

from nlr_server.domain.errors import Unauthenticated, Unavailable

log = logging.getLogger(__name__)

REASON = "ID_TOKEN_INVALID"
# ID-porten's levels of assurance that a borrower's login may rest on ("low" is not enough).
IDPORTEN_ACR = frozenset({"idporten-loa-substantial", "idporten-loa-high"})

# Asymmetric algorithms only: "none" and HMAC (whose secret would be the public key) never pass.
_KEY_TYPE_ALGORITHMS = {"RSA": frozenset({"RS256", "PS256"}), "EC": frozenset({"ES256"})}
ALGORITHMS = _KEY_TYPE_ALGORITHMS["RSA"] | _KEY_TYPE_ALGORITHMS["EC"]
_MIN_RSA_BITS = 2048
# ID-porten's ID tokens are about 2 kB; anything this long is not worth parsing.
_MAX_TOKEN_CHARS = 16_384
# A time claim past year 9999 cannot be a real one (and datetime cannot hold it).
_MAX_TIMESTAMP = 253_402_300_799
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_TIMEOUT = httpx.Timeout(5.0)
# Only the signature is checked by PyJWT; the claims are checked below against our own clock.
_SIGNATURE_ONLY: Options = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
}


class JwksUnavailable(Unavailable):
    """A provider's keys cannot be read just now: the token was not judged; try again later."""

    reason = "JWKS_UNAVAILABLE"


@dataclass(frozen=True)
class OidcProviderSettings:
    """One identity provider whose ID tokens the register accepts, as configured."""

    name: str  # "idporten" or "feide": names the provider in the claims and in logs
    issuer: str  # compared exactly with ``iss``, e.g. https://idporten.no
    audience: str  # the register's client id at the provider
    jwks: str  # the provider's keys: a JWKS file's path, or its https URL (http: loopback only)
    accepted_acr: frozenset[str] | None = None  # None: acr is not checked
    leeway_seconds: float = 30.0  # clock skew allowed on exp, iat and nbf
    jwks_refetch_seconds: float = 60.0  # the JWKS URL is fetched at most once per this
    jwks_max_age_seconds: float = 3600.0  # cached keys are fetched again when this old

    def __post_init__(self) -> None:
        if not 0 <= self.leeway_seconds <= 300:
            raise ValueError("the ID token leeway must be between 0 and 300 seconds")
        if not (self.name and self.issuer and self.audience and self.jwks):
            raise ValueError("an OIDC provider needs a name, issuer, audience and JWKS")


@dataclass(frozen=True)
class IdTokenClaims:
    """What a valid ID token says about the borrower who logged in."""

    provider: str
    subject: str
    pid: str | None = field(repr=False)  # ID-porten's national identity number: personal data
    acr: str | None
    auth_time: datetime | None
    expires_at: datetime


@dataclass(frozen=True)
class SigningKey:
    """One public key of a provider's JWKS and the algorithms it may verify."""

    kid: str
    algorithms: frozenset[str]
    key: Any = field(repr=False)


class JwksSource(Protocol):
    def key(self, kid: str) -> SigningKey:
        """The key named ``kid``; ``Unauthenticated`` if the provider has none by that name,
        ``JwksUnavailable`` if its keys cannot be read."""
        ...


def parse_jwks(document: object) -> dict[str, SigningKey]:
    """The usable signing keys of a JWKS document by ``kid``; encryption keys, symmetric keys,
    other curves, short RSA keys and keys without a ``kid`` are left out."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("it is not a JWKS (no keys list)")
    keys: dict[str, SigningKey] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        kid, kty, alg = entry.get("kid"), entry.get("kty"), entry.get("alg")
        allowed = _KEY_TYPE_ALGORITHMS.get(kty) if isinstance(kty, str) else None
        if (
            allowed is None
            or not isinstance(kid, str)
            or not kid
            or kid in keys
            or entry.get("use", "sig") != "sig"
            or (kty == "EC" and entry.get("crv") != "P-256")
        ):
            continue
        if alg is not None:
            if not isinstance(alg, str) or alg not in allowed:
                continue
            allowed = frozenset({alg})
        try:
            public_key = jwt.PyJWK(entry, algorithm=min(allowed)).key
        except jwt.PyJWTError:
            continue
        if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < _MIN_RSA_BITS:
            continue
        keys[kid] = SigningKey(kid, allowed, public_key)
    if not keys:
        raise ValueError("it has no usable signing keys")
    return keys


class JwksFile:
    """A provider's JWKS kept in a file: read at start, and again when the file changes or a
    token names a key the file did not hold."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp, self._keys = self._read()

    def key(self, kid: str) -> SigningKey:
        with self._lock:
            if kid not in self._keys or self._stamp != self._file_stamp():
                self._stamp, self._keys = self._read()
            found = self._keys.get(kid)
        if found is None:
            raise _unknown_key()
        return found

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            status = self._path.stat()
        except OSError:
            return None
        return status.st_ino, status.st_mtime_ns, status.st_size

    def _read(self) -> tuple[tuple[int, int, int] | None, dict[str, SigningKey]]:
        # Stamped before reading, so that a change during the read is seen on the next call.
        stamp = self._file_stamp()
        try:
            document = json.loads(self._path.read_bytes())
            return stamp, parse_jwks(document)
        except OSError as error:
            why = error.strerror or type(error).__name__
        except ValueError as error:
            why = "it is not JSON" if isinstance(error, json.JSONDecodeError) else str(error)
        raise JwksUnavailable(f"the JWKS file {self._path} cannot be used: {why}", retry_after=5)


class JwksUrl:
    """A provider's JWKS fetched from its URL and cached; fetched again when the cache is old or
    a token names an unknown key, but at most once per ``refetch_seconds``, so that a flood of
    forged tokens cannot make the register hammer the provider."""

    def __init__(
        self,
        url: str,
        *,
        provider: str,
        refetch_seconds: float,
        max_age_seconds: float,
        clock: Callable[[], float] = time.time,
        http: httpx.Client | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" and not (
            parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
        ):
            raise ValueError(f"the JWKS URL of {provider} must be https (http only on loopback)")
        self._url = url
        self._provider = provider
        self._refetch_seconds = refetch_seconds
        self._max_age_seconds = max_age_seconds
        self._clock = clock
        self._http = http or httpx.Client(timeout=_TIMEOUT)
        # One fetch at a time; validations wait for it (at most the timeout) rather than race.
        self._lock = threading.Lock()
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None
        self._tried_at: float | None = None
        self._failed = False

    def key(self, kid: str) -> SigningKey:
        with self._lock:
            now = self._clock()
            found = self._keys.get(kid)
            fresh = self._fetched_at is not None and now - self._fetched_at < self._max_age_seconds
            if found is not None and fresh:
                return found
            next_try = (self._tried_at or -math.inf) + self._refetch_seconds
            if now >= next_try:
                self._tried_at = now
                try:
                    self._keys = self._fetch()
                except JwksUnavailable:
                    self._failed = True
                    if found is None:
                        raise
                    log.warning("using the cached keys of %s until it answers", self._provider)
                    return found
                self._fetched_at, self._failed = now, False
                found = self._keys.get(kid)
            elif found is None and self._failed:
                raise JwksUnavailable(
                    f"the JWKS of {self._provider} could not be fetched; not tried again yet",
                    retry_after=max(1.0, next_try - now),
                )
        if found is None:
            raise _unknown_key()
        return found

    def _fetch(self) -> dict[str, SigningKey]:
        try:
            answer = self._http.get(self._url, headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            raise self._unavailable(f"no answer ({type(error).__name__})") from None
        if answer.status_code != httpx.codes.OK:
            raise self._unavailable(f"HTTP {answer.status_code}")
        try:
            keys = parse_jwks(answer.json())
        except ValueError as error:
            why = "it is not JSON" if isinstance(error, json.JSONDecodeError) else str(error)
            raise self._unavailable(why) from None
        log.info("fetched the JWKS of %s: %d signing keys", self._provider, len(keys))
        return keys

    def _unavailable(self, why: str) -> JwksUnavailable:
        log.warning("the JWKS of %s cannot be fetched: %s", self._provider, why)
        return JwksUnavailable(
            f"the JWKS of {self._provider} cannot be fetched from {self._url}: {why}",
            retry_after=self._refetch_seconds,
        )


def jwks_source(
    settings: OidcProviderSettings,
    *,
    clock: Callable[[], float] = time.time,
    http: httpx.Client | None = None,
) -> JwksSource:
    """The settings' JWKS: a URL if it starts with http(s)://, otherwise a file's path."""
    if settings.jwks.startswith(("https://", "http://")):
        return JwksUrl(
            settings.jwks,
            provider=settings.name,
            refetch_seconds=settings.jwks_refetch_seconds,
            max_age_seconds=settings.jwks_max_age_seconds,
            clock=clock,
            http=http,
        )
    return JwksFile(Path(settings.jwks))


class IdTokenValidator:
    """Checks one provider's ID tokens; safe to share between threads."""

    def __init__(
        self,
        settings: OidcProviderSettings,
        *,
        clock: Callable[[], float] = time.time,
        jwks: JwksSource | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._jwks = jwks or jwks_source(settings, clock=clock, http=http)

    def validate(self, token: str, *, nonce: str) -> IdTokenClaims:
        """The claims of ``token`` if it passes every check; ``Unauthenticated``
        (ID_TOKEN_INVALID) if not, ``JwksUnavailable`` if the provider's keys cannot be read."""
        key, algorithm = self._signing_key(token)
        try:
            claims = jwt.decode(token, key.key, algorithms=[algorithm], options=_SIGNATURE_ONLY)
        except jwt.InvalidSignatureError:
            raise _refused("the ID token's signature does not verify") from None
        except jwt.PyJWTError:
            raise _refused("the ID token is not a well-formed JWT") from None
        return self._checked(claims, nonce)

    def _signing_key(self, token: str) -> tuple[SigningKey, str]:
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_CHARS:
            raise _refused("the ID token is empty or too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _refused("the ID token is not a well-formed JWT") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
            raise _refused("the ID token's signature algorithm is not accepted")
        if not isinstance(kid, str) or not kid:
            raise _refused("the ID token names no signing key (kid)")
        key = self._jwks.key(kid)
        if algorithm not in key.algorithms:
            raise _refused("the ID token's signature algorithm does not fit its key")
        return key, algorithm

    def _checked(self, claims: dict[str, Any], nonce: str) -> IdTokenClaims:
        settings = self.settings
        now, leeway = self._clock(), settings.leeway_seconds
        if claims.get("iss") != settings.issuer:
            raise _refused("the ID token's issuer is not the configured one")
        audiences = _audiences(claims.get("aud"))
        if settings.audience not in audiences:
            raise _refused("the ID token's audience is not this register")
        azp = claims.get("azp")
        # OIDC Core 3.1.3.7: with several audiences azp must be present, and if present, be us.
        if (len(audiences) > 1 or azp is not None) and azp != settings.audience:
            raise _refused("the ID token's authorized party (azp) is not this register")
        expires = _timestamp(claims.get("exp"))
        if expires is None:
            raise _refused("the ID token has no valid expiry time (exp)")
        if now > expires + leeway:
            raise _refused("the ID token has expired")
        issued = _timestamp(claims.get("iat"))
        if issued is None:
            raise _refused("the ID token has no valid issue time (iat)")
        if issued > now + leeway:
            raise _refused("the ID token's issue time (iat) is in the future")
        if "nbf" in claims:
            not_before = _timestamp(claims["nbf"])
            if not_before is None or not_before > now + leeway:
                raise _refused("the ID token is not valid yet (nbf)")
        if not nonce:
            raise _refused("no nonce was given to check the ID token's nonce against")
        token_nonce = claims.get("nonce")
        if not isinstance(token_nonce, str) or not hmac.compare_digest(
            token_nonce.encode(), nonce.encode()
        ):
            raise _refused("the ID token's nonce does not match")
        acr = claims.get("acr")
        if acr is not None and not isinstance(acr, str):
            raise _refused("the ID token's acr is not a string")
        if settings.accepted_acr is not None:
            if acr is None:
                raise _refused("the ID token has no acr")
            if acr not in settings.accepted_acr:
                raise _refused("the ID token's acr is too low")
        subject, pid = claims.get("sub"), claims.get("pid")
        if not isinstance(subject, str) or not subject:
            raise _refused("the ID token has no subject (sub)")
        if pid is not None and (not isinstance(pid, str) or not pid):
            raise _refused("the ID token's pid is not a string")
        auth_time = None
        if claims.get("auth_time") is not None:
            auth_time = _timestamp(claims["auth_time"])
            if auth_time is None:
                raise _refused("the ID token's auth_time is not a time")
        return IdTokenClaims(
            provider=settings.name,
            subject=subject,
            pid=pid,
            acr=acr,
            auth_time=None if auth_time is None else datetime.fromtimestamp(auth_time, UTC),
            expires_at=datetime.fromtimestamp(expires, UTC),
        )


def _audiences(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return []


def _timestamp(value: object) -> float | None:
    """A NumericDate claim as seconds, or None if it is not one (bools, NaN, Infinity...)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 <= value <= _MAX_TIMESTAMP:  # also False for NaN
        return None
    return float(value)


def _unknown_key() -> Unauthenticated:
    return _refused("the ID token's signing key is not among the provider's keys")


def _refused(message: str) -> Unauthenticated:
    return Unauthenticated(message, reason=REASON)
