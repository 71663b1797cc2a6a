"""A local stand-in for Maskinporten and Folkeregisteret: a real HTTP server speaking their
documented protocols, for the population register's tests.

Maskinporten (``POST /token``) checks the JWT bearer grant as Digdir documents it: form-encoded
``grant_type`` and ``assertion``; RS256 signed by the client's key named by ``kid``; ``aud`` the
issuer, ``iss`` the client id, the scope, ``iat``, ``exp`` at most 120 s after it and not past, a
``jti`` never seen before, no ``resource``. Folkeregisteret's consumer API
(``/folkeregisteret/offentlig-med-hjemmel/api/v1/``) wants a token it issued and serves the
feed in fixed pages with ETag / 304, 429 with Retry-After in milliseconds and 406 for sequence
numbers older than it keeps, the latest sequence number, persons and bulk lookups.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

API = "/folkeregisteret/offentlig-med-hjemmel/api/v1/"
SCOPE = "folkeregister:deling/offentligmedhjemmel"
CLIENT_ID = "nlr-test-client"
KEY_ID = "nlr-test-key"


@dataclass
class FakeState:
    """What the fake serves and what it saw; tests change it between requests."""

    public_keys: dict[str, rsa.RSAPublicKey]
    issuer: str = ""
    client_id: str = CLIENT_ID
    scope: str = SCOPE
    expires_in: int = 120
    page_size: int = 1000
    oldest_sequence: int = 1
    events: list[dict[str, Any]] = field(default_factory=list)
    persons: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The next this many API requests are answered 429 with this Retry-After (milliseconds).
    throttle: int = 0
    retry_after_ms: int = 250
    # Bulk lookups answered before the fake starts failing them (HTTP 500); None: never.
    bulk_lookups_before_failing: int | None = None
    tokens: set[str] = field(default_factory=set)
    seen_jti: set[str] = field(default_factory=set)
    grants: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_event(self, national_id: str, kind: str, **more: Any) -> int:
        sequence = len(self.events) + self.oldest_sequence
        self.events.append(
            {
                "sekvensnummer": sequence,
                "hendelse": {
                    "folkeregisteridentifikator": national_id,
                    "hendelsetype": kind,
                    "ajourholdstidspunkt": "2026-12-01T10:00:00.000+01:00",
                    **more,
                },
            }
        )
        return sequence


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if url.path == "/token":
            self._token(body)
        elif url.path == API + "personer/bulkoppslag" and self._authorized(url):
            ids = json.loads(body).get("foedselsEllerDNummer", [])
            state = self.server.state
            if state.bulk_lookups_before_failing is not None:
                if state.bulk_lookups_before_failing <= 0:
                    self._answer(500, {"melding": "intern feil"})
                    return
                state.bulk_lookups_before_failing -= 1
            lookups = [
                {"foedselsEllerDNummer": n, "folkeregisterperson": state.persons[n]}
                if n in state.persons
                else {"foedselsEllerDNummer": n, "feilmelding": "Fant ikke person"}
                for n in ids
            ]
            self._answer(200, {"oppslag": lookups})
        elif not url.path.startswith(API):
            self._answer(404, {"error": "no such path"})

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if not url.path.startswith(API) or not self._authorized(url):
            return
        state = self.server.state
        path = url.path.removeprefix(API)
        query = urllib.parse.parse_qs(url.query)
        if path == "hendelser/feed":
            sequence = int(query["seq"][0])
            if sequence < state.oldest_sequence:
                self._answer(406, {"melding": "for gammelt sekvensnummer"})
                return
            first = sequence - state.oldest_sequence
            page = state.events[first : first + state.page_size]
            etag = '"' + hashlib.sha256(json.dumps([sequence, page]).encode()).hexdigest() + '"'
            if self.headers.get("If-None-Match") == etag:
                self._answer(304, None, {"ETag": etag})
                return
            self._answer(200, page, {"ETag": etag})
        elif path == "hendelser/siste/sekvensnummer":
            self._answer(200, state.oldest_sequence + len(state.events) - 1)
        elif path.startswith("personer/"):
            person = state.persons.get(path.removeprefix("personer/"))
            self._answer(200, person) if person else self._answer(404, {"melding": "ukjent"})
        else:
            self._answer(404, {"error": "no such path"})

    def _authorized(self, url: urllib.parse.SplitResult) -> bool:
        state = self.server.state
        with state.lock:
            state.requests.append((self.command, self.path, dict(self.headers)))
            if state.throttle > 0:
                state.throttle -= 1
                self._answer(
                    429, {"melding": "for mange"}, {"Retry-After": str(state.retry_after_ms)}
                )
                return False
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in state.tokens:
            self._answer(401, {"error": "invalid_token"})
            return False
        if self.headers.get("Accept") != "application/json":
            self._answer(406, {"melding": "Accept: application/json"})
            return False
        return True

    def _token(self, body: bytes) -> None:
        state = self.server.state
        form = urllib.parse.parse_qs(body.decode())
        if self.headers.get("Content-Type", "").split(";")[0] != (
            "application/x-www-form-urlencoded"
        ) or form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            self._answer(400, {"error": "unsupported_grant_type"})
            return
        try:
            assertion = form["assertion"][0]
            header = jwt.get_unverified_header(assertion)
            key = state.public_keys[header["kid"]]
            claims = jwt.decode(
                assertion,
                key,
                algorithms=["RS256"],
                audience=state.issuer,
                issuer=state.client_id,
                options={"require": ["aud", "iss", "iat", "exp", "jti", "scope"]},
            )
        except (KeyError, jwt.PyJWTError):
            self._answer(400, {"error": "invalid_grant"})
            return
        with state.lock:
            state.grants.append((header, claims))
            fresh = claims["jti"] not in state.seen_jti
            state.seen_jti.add(claims["jti"])
        if (
            not fresh
            or claims["exp"] - claims["iat"] > 120
            or claims["iat"] > time.time() + 10
            or claims["scope"] != state.scope
            or "resource" in claims
        ):
            self._answer(400, {"error": "invalid_grant"})
            return
        token = secrets.token_urlsafe(24)
        state.tokens.add(token)
        self._answer(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": state.expires_in,
                "scope": state.scope,
            },
        )

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: FakeState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class PopulationRegisterFake:
    """Both services on one ephemeral port: Maskinporten's issuer is ``url + "/"``."""

    def __init__(self, public_keys: dict[str, rsa.RSAPublicKey]) -> None:
        self.state = FakeState(public_keys)
        self._server = _Server(self.state)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.state.issuer = self.url + "/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> PopulationRegisterFake:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def write_client_key(path: Path, key: rsa.RSAPrivateKey) -> Path:
    """The client's key as Maskinporten's clients keep it: a PEM file only its owner reads."""
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path
