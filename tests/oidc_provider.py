"""A local OpenID Connect provider standing in for ID-porten or Feide: a real HTTP server, for
the ID token validator's tests and the portal's.

It serves discovery (``/.well-known/openid-configuration``) and its public keys (``/jwks``),
mints ID tokens on demand, right or wrong in exactly one way (issuer, audience, key, nonce,
times, acr), rotates its key, and runs the authorization-code flow with PKCE (S256) as
ID-porten does: ``GET /authorize`` logs in the identity the test chose with ``next_login`` and
redirects back with a code; ``POST /token`` (client_secret_basic or client_secret_post) takes the
code once, with the PKCE verifier, and answers with an ID token and an access token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

CLIENT_ID = "nlr-register"
CLIENT_SECRET = "nlr-register-test-secret"
IDPORTEN_SUBSTANTIAL = "idporten-loa-substantial"
# A code not redeemed within this many seconds is refused, as ID-porten does.
CODE_SECONDS = 60
# A PKCE verifier's characters and length (RFC 7636 4.1); an S256 challenge is 43 of them.
_PKCE = re.compile(r"[A-Za-z0-9._~-]{43,128}")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Login:
    """The person the next ``/authorize`` logs in, as the test chose them."""

    sub: str
    pid: str | None = None
    acr: str | None = IDPORTEN_SUBSTANTIAL
    extra_claims: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Grant:
    """An authorization code and what it was issued for."""

    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str
    login: Login
    issued_at: float


@dataclass
class ProviderState:
    """What the provider serves and what it saw; tests change it between requests."""

    client_id: str
    client_secret: str
    redirect_uris: set[str]
    jwks_status: int = 200  # what /jwks answers, e.g. 500 for an outage
    jwks_requests: int = 0
    next_login: Login | None = None
    codes: dict[str, _Grant] = field(default_factory=dict)
    access_tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        provider = self.server.provider
        if url.path == "/.well-known/openid-configuration":
            self._answer(200, provider.discovery())
        elif url.path == "/jwks":
            state = provider.state
            with state.lock:
                state.jwks_requests += 1
            if state.jwks_status != 200:
                self._answer(state.jwks_status, {"error": "server_error"})
            else:
                self._answer(200, provider.jwks())
        elif url.path == "/authorize":
            self._authorize({k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()})
        else:
            self._answer(404, {"error": "no such path"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if urllib.parse.urlsplit(self.path).path != "/token":
            self._answer(404, {"error": "no such path"})
            return
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        self._token(form)

    def _authorize(self, query: dict[str, str]) -> None:
        provider = self.server.provider
        state = provider.state
        redirect_uri = query.get("redirect_uri", "")
        # Never redirect to a URI the client did not register (RFC 6749 4.1.2.1).
        if query.get("client_id") != state.client_id or redirect_uri not in state.redirect_uris:
            self._answer(400, {"error": "invalid_request"})
            return
        back = {"state": query["state"]} if "state" in query else {}
        challenge = query.get("code_challenge", "")
        if query.get("response_type") != "code":
            back["error"] = "unsupported_response_type"
        elif "openid" not in query.get("scope", "").split():
            back["error"] = "invalid_scope"
        elif query.get("code_challenge_method") != "S256" or not _PKCE.fullmatch(challenge):
            back["error"] = "invalid_request"
        elif (login := provider.take_login()) is None:
            back["error"] = "login_required"
        else:
            code = secrets.token_urlsafe(32)
            grant = _Grant(
                state.client_id, redirect_uri, query.get("nonce"), challenge, login, provider.now()
            )
            with state.lock:
                state.codes[code] = grant
            back["code"] = code
        separator = "&" if "?" in redirect_uri else "?"
        location = redirect_uri + separator + urllib.parse.urlencode(back)
        self._answer(302, None, {"Location": location})

    def _token(self, form: dict[str, str]) -> None:
        provider = self.server.provider
        state = provider.state
        client_id, secret = self._client_credentials(form)
        if client_id != state.client_id or not hmac.compare_digest(
            secret.encode(), state.client_secret.encode()
        ):
            self._answer(401, {"error": "invalid_client"}, {"WWW-Authenticate": "Basic"})
            return
        if form.get("grant_type") != "authorization_code":
            self._answer(400, {"error": "unsupported_grant_type"})
            return
        with state.lock:
            grant = state.codes.pop(form.get("code", ""), None)  # a code is used once
        verifier = form.get("code_verifier", "")
        if (
            grant is None
            or provider.now() > grant.issued_at + CODE_SECONDS
            or grant.client_id != client_id
            or grant.redirect_uri != form.get("redirect_uri")
            or not _PKCE.fullmatch(verifier)
            or not hmac.compare_digest(pkce_challenge(verifier), grant.code_challenge)
        ):
            self._answer(400, {"error": "invalid_grant"})
            return
        login = grant.login
        id_token = provider.mint(
            sub=login.sub,
            nonce=grant.nonce,
            pid=login.pid,
            acr=login.acr,
            extra_claims=login.extra_claims,
        )
        access_token = secrets.token_urlsafe(32)
        with state.lock:
            state.access_tokens.add(access_token)
        self._answer(
            200,
            {
                "id_token": id_token,
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 120,
            },
            {"Cache-Control": "no-store"},
        )

    def _client_credentials(self, form: dict[str, str]) -> tuple[str, str]:
        """client_secret_basic (URL-encoded id and secret, RFC 6749 2.3.1) or _post."""
        authorization = self.headers.get("Authorization", "")
        if not authorization.startswith("Basic "):
            return form.get("client_id", ""), form.get("client_secret", "")
        try:
            decoded = base64.b64decode(authorization.removeprefix("Basic "), validate=True)
            client_id, _, secret = decoded.decode().partition(":")
        except ValueError:
            return "", ""
        return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)

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

    def __init__(self, provider: OidcProvider) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.provider = provider


class OidcProvider:
    """The provider on an ephemeral port; its issuer is its URL, e.g. http://127.0.0.1:5123."""

    def __init__(
        self,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        redirect_uris: Iterable[str] = (),
        algorithm: str = "RS256",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.algorithm = algorithm
        self.now = clock
        self.state = ProviderState(client_id, client_secret, set(redirect_uris))
        self._server = _Server(self)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.issuer = self.url
        self.jwks_uri = self.url + "/jwks"
        # A short poll makes ``__exit__`` quick (serve_forever checks for shutdown this often).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._key_serial = 0
        self.kid, self._key = self._new_key()
        self._other_key: PrivateKey | None = None

    def __enter__(self) -> OidcProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/token",
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": [self.algorithm],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "profile"],
        }

    def jwks(self) -> dict[str, Any]:
        """The published public key, as ID-porten publishes its own."""
        public = self._key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)
        return {"keys": [jwk | {"kid": self.kid, "use": "sig", "alg": self.algorithm}]}

    def write_jwks(self, path: Path) -> Path:
        """The JWKS written to ``path`` as an operator would: a new file renamed into place."""
        partial = path.with_name(path.name + ".new")
        partial.write_text(json.dumps(self.jwks()))
        os.replace(partial, path)
        return path

    def rotate_key(self) -> str:
        """A new signing key under a new kid; the old one is no longer published."""
        self.kid, self._key = self._new_key()
        return self.kid

    def next_login(
        self,
        *,
        sub: str,
        pid: str | None = None,
        acr: str | None = IDPORTEN_SUBSTANTIAL,
        extra_claims: dict[str, Any] | None = None,
    ) -> None:
        """The person the next ``/authorize`` logs in (once); without one it answers
        ``login_required``."""
        with self.state.lock:
            self.state.next_login = Login(sub, pid, acr, dict(extra_claims or {}))

    def take_login(self) -> Login | None:
        """The login chosen by ``next_login``, now used up."""
        with self.state.lock:
            login, self.state.next_login = self.state.next_login, None
        return login

    def claims(
        self,
        *,
        sub: str,
        nonce: str | None,
        pid: str | None = None,
        acr: str | None = IDPORTEN_SUBSTANTIAL,
        audience: str | list[str] | None = None,
        issuer: str | None = None,
        expires_in: int = 120,
        issued_at: float | None = None,
        extra_claims: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An ID token's claims as ID-porten sends them; ``pid``, ``acr`` or ``nonce`` None
        leaves the claim out."""
        issued = int(self.now() if issued_at is None else issued_at)
        claims: dict[str, Any] = {
            "iss": self.issuer if issuer is None else issuer,
            "aud": self.state.client_id if audience is None else audience,
            "sub": sub,
            "iat": issued,
            "exp": issued + expires_in,
            "auth_time": issued,
            "amr": ["TestID"],
        }
        optional = {"nonce": nonce, "pid": pid, "acr": acr}
        claims |= {name: value for name, value in optional.items() if value is not None}
        return claims | (extra_claims or {})

    def sign(
        self,
        claims: dict[str, Any],
        *,
        kid: str | None = None,
        sign_with_other_key: bool = False,
        algorithm: str | None = None,
    ) -> str:
        """``claims`` signed by the published key, or by a key never published (a forgery);
        ``kid=""`` leaves the header out; ``algorithm`` other than the published one makes a
        token its key does not allow."""
        key = self._key
        if sign_with_other_key:
            if self._other_key is None:
                self._other_key = self._generate()
            key = self._other_key
        headers = {"kid": self.kid if kid is None else kid, "typ": "JWT"}
        if not headers["kid"]:
            del headers["kid"]
        return jwt.encode(claims, key, algorithm=algorithm or self.algorithm, headers=headers)

    def mint(
        self,
        *,
        sub: str,
        nonce: str | None,
        pid: str | None = None,
        acr: str | None = IDPORTEN_SUBSTANTIAL,
        audience: str | list[str] | None = None,
        issuer: str | None = None,
        expires_in: int = 120,
        issued_at: float | None = None,
        kid: str | None = None,
        sign_with_other_key: bool = False,
        extra_claims: dict[str, Any] | None = None,
    ) -> str:
        """A signed ID token; every argument left alone makes it valid for the client."""
        claims = self.claims(
            sub=sub,
            nonce=nonce,
            pid=pid,
            acr=acr,
            audience=audience,
            issuer=issuer,
            expires_in=expires_in,
            issued_at=issued_at,
            extra_claims=extra_claims,
        )
        return self.sign(claims, kid=kid, sign_with_other_key=sign_with_other_key)

    def _new_key(self) -> tuple[str, PrivateKey]:
        self._key_serial += 1
        return f"test-key-{self._key_serial}", self._generate()

    def _generate(self) -> PrivateKey:
        if self.algorithm == "ES256":
            return ec.generate_private_key(ec.SECP256R1())
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
