"""A stand-in for ID-porten in the dev setup (`make run`), never for production: a signing key
in the dev directory, its JWKS beside it for the server (NLR_IDPORTEN_JWKS), and ID tokens minted
with it for the demo borrowers (`make idporten-token`). Tokens are minted only where synthetic
national ids are allowed, and a server that is not so refuses the dev issuer."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from nlr_server.crypto.private_file import read_private_file, write_private_file

# Names nothing real: .invalid is reserved (RFC 6761).
DEV_ISSUER = "https://idporten.dev.nlr.invalid"
DEV_AUDIENCE = "nlr-dev-portal"
DEV_KID = "nlr-dev-idporten-1"
DEV_NONCE = "dev-nonce"
TOKEN_SECONDS = 600


@dataclass(frozen=True, slots=True)
class DevIdPorten:
    key: Path
    jwks: Path


def ensure_dev_idporten(directory: Path) -> tuple[DevIdPorten, bool]:
    """The dev key (owner-only) and its JWKS in ``directory``, made if missing; whether made."""
    paths = DevIdPorten(directory / "idporten-dev.key", directory / "idporten-dev-jwks.json")
    if paths.key.exists() and paths.jwks.exists():
        return paths, False
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_private_file(
        paths.key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    public |= {"kid": DEV_KID, "use": "sig", "alg": "RS256"}
    paths.jwks.write_text(json.dumps({"keys": [public]}, indent=2) + "\n", encoding="utf-8")
    return paths, True


def mint(paths: DevIdPorten, pid: str, nonce: str = DEV_NONCE, now: float | None = None) -> str:
    """An ID token as ID-porten gives one after a login at `substantial`, for ``pid``."""
    issued = int(time.time() if now is None else now)
    key = serialization.load_pem_private_key(
        read_private_file(paths.key, "dev ID-porten key"), None
    )
    claims = {
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"nlr-dev-idporten:{pid}")),
        "pid": pid,
        "acr": "idporten-loa-substantial",
        "amr": ["TestID"],
        "nonce": nonce,
        "iat": issued,
        "auth_time": issued,
        "exp": issued + TOKEN_SECONDS,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": DEV_KID})  # type: ignore[arg-type]
