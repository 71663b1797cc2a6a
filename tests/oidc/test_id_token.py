"""The ID token validator against a real local OpenID Connect provider, on a controlled clock."""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from nlr_server.domain.errors import Unauthenticated
from nlr_server.oidc.id_token import (
    IDPORTEN_ACR,
    IdTokenClaims,
    IdTokenValidator,
    JwksUnavailable,
    JwksUrl,
    OidcProviderSettings,
)
from oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider, pkce_challenge

SUB = "pairwise-subject-4711"
PID = "01017012345"
NONCE = "nonce-from-the-portals-session"
REDIRECT_URI = "http://127.0.0.1:9/callback"


class _Clock:
    """The validator's and the provider's clock, in whole seconds as tokens carry them."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


@pytest.fixture
def idporten(clock: _Clock) -> Iterator[OidcProvider]:
    with OidcProvider(clock=clock, redirect_uris=[REDIRECT_URI]) as provider:
        yield provider


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


def _settings(provider: OidcProvider, **changes: Any) -> OidcProviderSettings:
    settings = OidcProviderSettings(
        name="idporten",
        issuer=provider.issuer,
        audience=CLIENT_ID,
        jwks=provider.jwks_uri,
        accepted_acr=IDPORTEN_ACR,
        leeway_seconds=30,
        jwks_refetch_seconds=60,
        jwks_max_age_seconds=3600,
    )
    return replace(settings, **changes)


@pytest.fixture
def validator(idporten: OidcProvider, clock: _Clock, http: httpx.Client) -> IdTokenValidator:
    return IdTokenValidator(_settings(idporten), clock=clock, http=http)


def _refusal(validator: IdTokenValidator, token: str, nonce: str = NONCE) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as raised:
        validator.validate(token, nonce=nonce)
    assert type(raised.value) is Unauthenticated
    assert raised.value.reason == "ID_TOKEN_INVALID"
    return raised.value


def _claims(provider: OidcProvider, **claims: Any) -> dict[str, Any]:
    return provider.claims(sub=SUB, nonce=NONCE, pid=PID) | claims


def test_a_valid_idporten_token_gives_the_borrowers_claims(
    idporten: OidcProvider, validator: IdTokenValidator, clock: _Clock
) -> None:
    token = idporten.mint(sub=SUB, nonce=NONCE, pid=PID)

    claims = validator.validate(token, nonce=NONCE)

    assert claims == IdTokenClaims(
        provider="idporten",
        subject=SUB,
        pid=PID,
        acr="idporten-loa-substantial",
        auth_time=datetime.fromtimestamp(clock.now, UTC),
        expires_at=datetime.fromtimestamp(clock.now + 120, UTC),
    )


def test_the_high_level_of_assurance_is_accepted_too(
    idporten: OidcProvider, validator: IdTokenValidator
) -> None:
    token = idporten.mint(sub=SUB, nonce=NONCE, pid=PID, acr="idporten-loa-high")

    assert validator.validate(token, nonce=NONCE).acr == "idporten-loa-high"


@pytest.mark.parametrize("algorithm", ["RS256", "PS256", "ES256"])
def test_tokens_signed_with_each_accepted_algorithm_validate(
    algorithm: str, clock: _Clock, http: httpx.Client
) -> None:
    with OidcProvider(algorithm=algorithm, clock=clock) as provider:
        validator = IdTokenValidator(_settings(provider), clock=clock, http=http)

        claims = validator.validate(provider.mint(sub=SUB, nonce=NONCE, pid=PID), nonce=NONCE)

    assert (claims.subject, claims.pid) == (SUB, PID)


def test_several_audiences_are_accepted_when_the_authorized_party_is_the_register(
    idporten: OidcProvider, validator: IdTokenValidator
) -> None:
    token = idporten.mint(
        sub=SUB, nonce=NONCE, audience=["an-api", CLIENT_ID], extra_claims={"azp": CLIENT_ID}
    )

    assert validator.validate(token, nonce=NONCE).subject == SUB


_Forge = Callable[[OidcProvider], str]
REFUSALS: list[tuple[str, _Forge, str]] = [
    (
        "wrong issuer",
        lambda p: p.mint(sub=SUB, nonce=NONCE, pid=PID, issuer="https://idporten.example"),
        "the ID token's issuer is not the configured one",
    ),
    (
        "issuer with a trailing slash",
        lambda p: p.mint(sub=SUB, nonce=NONCE, pid=PID, issuer=p.issuer + "/"),
        "the ID token's issuer is not the configured one",
    ),
    (
        "wrong audience",
        lambda p: p.mint(sub=SUB, nonce=NONCE, pid=PID, audience="another-client"),
        "the ID token's audience is not this register",
    ),
    (
        "several audiences without azp",
        lambda p: p.mint(sub=SUB, nonce=NONCE, pid=PID, audience=[CLIENT_ID, "an-api"]),
        "the ID token's authorized party (azp) is not this register",
    ),
    (
        "azp of another client",
        lambda p: p.mint(sub=SUB, nonce=NONCE, pid=PID, extra_claims={"azp": "another-client"}),
        "the ID token's authorized party (azp) is not this register",
    ),
    (
        "signed by a key not in the JWKS",
        lambda p: p.mint(sub=SUB, nonce=NONCE, pid=PID, sign_with_other_key=True),
        "the ID token's signature does not verify",
    ),
    (
        "a kid the provider does not have",
        lambda p: p.mint(sub=SUB, nonce=NONCE, pid=PID, kid="elsewhere", sign_with_other_key=True),
        "the ID token's signing key is not among the provider's keys",
    ),
    (
        "no kid",
        lambda p: p.sign(_claims(p), kid=""),
        "the ID token names no signing key (kid)",
    ),
    (
        "PS256 under a key published for RS256",
        lambda p: p.sign(_claims(p), algorithm="PS256"),
        "the ID token's signature algorithm does not fit its key",
    ),
    (
        "wrong nonce",
        lambda p: p.mint(sub=SUB, nonce="another-session", pid=PID),
        "the ID token's nonce does not match",
    ),
    (
        "no nonce",
        lambda p: p.mint(sub=SUB, nonce=None, pid=PID),
        "the ID token's nonce does not match",
    ),
    (
        "acr low",
        lambda p: p.mint(sub=SUB, nonce=NONCE, pid=PID, acr="idporten-loa-low"),
        "the ID token's acr is too low",
    ),
    (
        "no acr",
        lambda p: p.mint(sub=SUB, nonce=NONCE, pid=PID, acr=None),
        "the ID token has no acr",
    ),
    (
        "no sub",
        lambda p: p.sign({k: v for k, v in _claims(p).items() if k != "sub"}),
        "the ID token has no subject (sub)",
    ),
    (
        "empty sub",
        lambda p: p.mint(sub="", nonce=NONCE, pid=PID),
        "the ID token has no subject (sub)",
    ),
    (
        "no exp",
        lambda p: p.sign({k: v for k, v in _claims(p).items() if k != "exp"}),
        "the ID token has no valid expiry time (exp)",
    ),
    (
        "exp as a string",
        lambda p: p.sign(_claims(p, exp="99999999999")),
        "the ID token has no valid expiry time (exp)",
    ),
    (
        "no iat",
        lambda p: p.sign({k: v for k, v in _claims(p).items() if k != "iat"}),
        "the ID token has no valid issue time (iat)",
    ),
    (
        "nbf in the future",
        lambda p: p.sign(_claims(p, nbf=p.now() + 31)),
        "the ID token is not valid yet (nbf)",
    ),
    (
        "pid not a string",
        lambda p: p.sign(_claims(p, pid=int(PID))),
        "the ID token's pid is not a string",
    ),
    (
        "alg none",
        lambda p: jwt.encode(_claims(p), "", algorithm="none", headers={"kid": p.kid}),
        "the ID token's signature algorithm is not accepted",
    ),
    (
        "HS256",
        lambda p: jwt.encode(
            _claims(p), "a-shared-secret-of-at-least-32-bytes", "HS256", headers={"kid": p.kid}
        ),
        "the ID token's signature algorithm is not accepted",
    ),
    (
        "not a JWT",
        lambda p: "not-a-jwt",
        "the ID token is not a well-formed JWT",
    ),
    (
        "bad base64",
        lambda p: "eyJ!!!.e30.c2ln",
        "the ID token is not a well-formed JWT",
    ),
    (
        "empty",
        lambda p: "",
        "the ID token is empty or too long",
    ),
    (
        "too long",
        lambda p: p.mint(sub=SUB, nonce=NONCE, pid=PID, extra_claims={"pad": "x" * 20_000}),
        "the ID token is empty or too long",
    ),
]


@pytest.mark.parametrize(
    ("forge", "message"), [case[1:] for case in REFUSALS], ids=[case[0] for case in REFUSALS]
)
def test_a_token_failing_one_check_is_refused_saying_which_without_the_pid(
    idporten: OidcProvider,
    validator: IdTokenValidator,
    forge: _Forge,
    message: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = forge(idporten)

    refusal = _refusal(validator, token)

    assert str(refusal) == message
    assert PID not in repr(refusal.args) and PID not in caplog.text


def test_a_token_is_accepted_up_to_the_leeway_after_its_expiry_and_refused_after(
    idporten: OidcProvider, validator: IdTokenValidator, clock: _Clock
) -> None:
    token = idporten.mint(sub=SUB, nonce=NONCE, pid=PID, expires_in=120)

    clock.now += 120 + 30
    assert validator.validate(token, nonce=NONCE).subject == SUB
    clock.now += 1
    assert str(_refusal(validator, token)) == "the ID token has expired"


def test_a_token_issued_in_the_future_is_accepted_only_within_the_leeway(
    idporten: OidcProvider, validator: IdTokenValidator, clock: _Clock
) -> None:
    skewed = idporten.mint(sub=SUB, nonce=NONCE, pid=PID, issued_at=clock.now + 30)
    future = idporten.mint(sub=SUB, nonce=NONCE, pid=PID, issued_at=clock.now + 31)

    assert validator.validate(skewed, nonce=NONCE).subject == SUB
    assert str(_refusal(validator, future)) == "the ID token's issue time (iat) is in the future"


def test_an_empty_nonce_from_the_caller_refuses_even_a_token_without_one(
    idporten: OidcProvider, validator: IdTokenValidator
) -> None:
    token = idporten.mint(sub=SUB, nonce=None, pid=PID)

    refusal = _refusal(validator, token, nonce="")

    assert str(refusal) == "no nonce was given to check the ID token's nonce against"


def test_the_claims_repr_leaves_out_the_pid(
    idporten: OidcProvider, validator: IdTokenValidator
) -> None:
    claims = validator.validate(idporten.mint(sub=SUB, nonce=NONCE, pid=PID), nonce=NONCE)

    assert PID not in repr(claims) and SUB in repr(claims)


def test_a_feide_token_without_pid_or_acr_validates(clock: _Clock, http: httpx.Client) -> None:
    with OidcProvider(client_id="nlr-feide-client", clock=clock) as feide:
        settings = OidcProviderSettings(
            name="feide", issuer=feide.issuer, audience="nlr-feide-client", jwks=feide.jwks_uri
        )
        validator = IdTokenValidator(settings, clock=clock, http=http)
        token = feide.mint(sub="feide-user-77", nonce=NONCE, pid=None, acr=None)

        claims = validator.validate(token, nonce=NONCE)

    assert claims == IdTokenClaims(
        provider="feide",
        subject="feide-user-77",
        pid=None,
        acr=None,
        auth_time=datetime.fromtimestamp(clock.now, UTC),
        expires_at=datetime.fromtimestamp(clock.now + 120, UTC),
    )


def test_an_idporten_token_is_refused_by_the_feide_validator(
    idporten: OidcProvider, clock: _Clock, http: httpx.Client
) -> None:
    with OidcProvider(client_id="nlr-feide-client", clock=clock) as feide:
        settings = OidcProviderSettings(
            name="feide", issuer=feide.issuer, audience="nlr-feide-client", jwks=feide.jwks_uri
        )
        validator = IdTokenValidator(settings, clock=clock, http=http)

        refusal = _refusal(validator, idporten.mint(sub=SUB, nonce=NONCE, pid=PID))

    # Both providers name their first key "test-key-1": the signature tells them apart.
    assert str(refusal) == "the ID token's signature does not verify"


# JWKS from a file


def test_keys_from_a_file_validate_without_asking_the_provider(
    idporten: OidcProvider, clock: _Clock, tmp_path: Path
) -> None:
    path = idporten.write_jwks(tmp_path / "idporten-jwks.json")
    validator = IdTokenValidator(_settings(idporten, jwks=str(path)), clock=clock)

    claims = validator.validate(idporten.mint(sub=SUB, nonce=NONCE, pid=PID), nonce=NONCE)

    assert claims.pid == PID
    assert idporten.state.jwks_requests == 0


def test_a_rewritten_jwks_file_is_read_again_and_its_dropped_key_refused(
    idporten: OidcProvider, clock: _Clock, tmp_path: Path
) -> None:
    path = idporten.write_jwks(tmp_path / "idporten-jwks.json")
    validator = IdTokenValidator(_settings(idporten, jwks=str(path)), clock=clock)
    old = idporten.mint(sub=SUB, nonce=NONCE, pid=PID)
    assert validator.validate(old, nonce=NONCE).subject == SUB

    idporten.rotate_key()
    idporten.write_jwks(path)
    new = idporten.mint(sub=SUB, nonce=NONCE, pid=PID)

    assert validator.validate(new, nonce=NONCE).subject == SUB
    refusal = _refusal(validator, old)
    assert str(refusal) == "the ID token's signing key is not among the provider's keys"


def test_a_missing_jwks_file_is_unavailable_at_start(
    idporten: OidcProvider, clock: _Clock, tmp_path: Path
) -> None:
    path = tmp_path / "missing.json"

    with pytest.raises(JwksUnavailable) as raised:
        IdTokenValidator(_settings(idporten, jwks=str(path)), clock=clock)

    assert str(raised.value) == f"the JWKS file {path} cannot be used: No such file or directory"
    assert raised.value.reason == "JWKS_UNAVAILABLE"


def test_a_jwks_file_without_usable_keys_is_unavailable(
    idporten: OidcProvider, clock: _Clock, tmp_path: Path
) -> None:
    path = tmp_path / "symmetric.json"
    path.write_text('{"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]}')

    with pytest.raises(JwksUnavailable) as raised:
        IdTokenValidator(_settings(idporten, jwks=str(path)), clock=clock)

    assert str(raised.value) == (
        f"the JWKS file {path} cannot be used: it has no usable signing keys"
    )


# JWKS from the provider's URL


def test_keys_from_the_url_are_fetched_once_and_cached(
    idporten: OidcProvider, validator: IdTokenValidator, clock: _Clock
) -> None:
    for _ in range(3):
        clock.now += 10
        validator.validate(idporten.mint(sub=SUB, nonce=NONCE, pid=PID), nonce=NONCE)

    assert idporten.state.jwks_requests == 1


def test_a_rotated_key_is_fetched_when_a_token_names_it(
    idporten: OidcProvider, validator: IdTokenValidator, clock: _Clock
) -> None:
    validator.validate(idporten.mint(sub=SUB, nonce=NONCE, pid=PID), nonce=NONCE)
    old_after_rotation = idporten.mint(sub=SUB, nonce=NONCE, pid=PID, issued_at=clock.now + 60)

    idporten.rotate_key()
    clock.now += 60
    claims = validator.validate(idporten.mint(sub=SUB, nonce=NONCE, pid=PID), nonce=NONCE)

    assert claims.subject == SUB
    assert idporten.state.jwks_requests == 2
    refusal = _refusal(validator, old_after_rotation)
    assert str(refusal) == "the ID token's signing key is not among the provider's keys"
    assert idporten.state.jwks_requests == 2


def test_a_flood_of_unknown_kids_fetches_the_keys_at_most_once_per_interval(
    idporten: OidcProvider, validator: IdTokenValidator, clock: _Clock
) -> None:
    validator.validate(idporten.mint(sub=SUB, nonce=NONCE, pid=PID), nonce=NONCE)

    def forged(n: int) -> str:
        return idporten.mint(sub=SUB, nonce=NONCE, kid=f"forged-{n}", sign_with_other_key=True)

    for n in range(50):
        clock.now += 1  # 50 s: all within the 60 s since the first fetch
        _refusal(validator, forged(n))
    assert idporten.state.jwks_requests == 1

    clock.now += 10
    for n in range(50, 100):
        _refusal(validator, forged(n))
    assert idporten.state.jwks_requests == 2


def test_a_rotation_within_the_interval_is_seen_once_the_interval_has_passed(
    idporten: OidcProvider, validator: IdTokenValidator, clock: _Clock
) -> None:
    validator.validate(idporten.mint(sub=SUB, nonce=NONCE, pid=PID), nonce=NONCE)
    idporten.rotate_key()

    clock.now += 59
    early = idporten.mint(sub=SUB, nonce=NONCE, pid=PID)
    assert str(_refusal(validator, early)) == (
        "the ID token's signing key is not among the provider's keys"
    )
    clock.now += 1

    assert validator.validate(early, nonce=NONCE).subject == SUB
    assert idporten.state.jwks_requests == 2


def test_cached_keys_older_than_the_max_age_are_fetched_again_dropping_a_removed_key(
    idporten: OidcProvider, validator: IdTokenValidator, clock: _Clock
) -> None:
    validator.validate(idporten.mint(sub=SUB, nonce=NONCE, pid=PID), nonce=NONCE)
    old_key_later = idporten.mint(sub=SUB, nonce=NONCE, pid=PID, issued_at=clock.now + 3600)
    idporten.rotate_key()

    clock.now += 3599
    assert validator.validate(old_key_later, nonce=NONCE).subject == SUB
    clock.now += 1

    refusal = _refusal(validator, old_key_later)
    assert str(refusal) == "the ID token's signing key is not among the provider's keys"
    assert idporten.state.jwks_requests == 2


def test_an_unreachable_jwks_url_is_unavailable_not_unauthenticated(
    clock: _Clock, http: httpx.Client
) -> None:
    with OidcProvider(clock=clock) as stopped:
        pass
    validator = IdTokenValidator(_settings(stopped), clock=clock, http=http)
    token = stopped.mint(sub=SUB, nonce=NONCE, pid=PID)

    with pytest.raises(JwksUnavailable) as raised:
        validator.validate(token, nonce=NONCE)

    assert not isinstance(raised.value, Unauthenticated)
    assert raised.value.reason == "JWKS_UNAVAILABLE"
    assert raised.value.retry_after == 60
    assert str(raised.value) == (
        f"the JWKS of idporten cannot be fetched from {stopped.jwks_uri}: no answer (ConnectError)"
    )


def test_a_failing_jwks_url_is_not_asked_again_within_the_interval(
    idporten: OidcProvider, validator: IdTokenValidator, clock: _Clock
) -> None:
    idporten.state.jwks_status = 500
    token = idporten.mint(sub=SUB, nonce=NONCE, pid=PID)
    with pytest.raises(JwksUnavailable) as first:
        validator.validate(token, nonce=NONCE)
    clock.now += 20
    with pytest.raises(JwksUnavailable) as again:
        validator.validate(token, nonce=NONCE)

    assert str(first.value) == (
        f"the JWKS of idporten cannot be fetched from {idporten.jwks_uri}: HTTP 500"
    )
    assert str(again.value) == "the JWKS of idporten could not be fetched; not tried again yet"
    assert again.value.retry_after == 40
    assert idporten.state.jwks_requests == 1

    idporten.state.jwks_status = 200
    clock.now += 40
    assert validator.validate(token, nonce=NONCE).subject == SUB
    assert idporten.state.jwks_requests == 2


def test_cached_keys_keep_validating_while_the_provider_is_down(
    idporten: OidcProvider, validator: IdTokenValidator, clock: _Clock
) -> None:
    validator.validate(idporten.mint(sub=SUB, nonce=NONCE, pid=PID), nonce=NONCE)
    idporten.state.jwks_status = 503
    clock.now += 3600

    claims = validator.validate(idporten.mint(sub=SUB, nonce=NONCE, pid=PID), nonce=NONCE)

    assert claims.subject == SUB
    assert idporten.state.jwks_requests == 2


def test_a_plain_http_jwks_url_is_refused_unless_it_is_loopback() -> None:
    with pytest.raises(ValueError) as raised:
        JwksUrl(
            "http://idporten.no/jwks",
            provider="idporten",
            refetch_seconds=60,
            max_age_seconds=3600,
        )

    assert str(raised.value) == "the JWKS URL of idporten must be https (http only on loopback)"


# The provider's authorization-code flow, as the portal will use it


def _authorize(provider: OidcProvider, http: httpx.Client, verifier: str) -> dict[str, str]:
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": "state-123",
        "nonce": NONCE,
        "code_challenge": pkce_challenge(verifier),
        "code_challenge_method": "S256",
    }
    answer = http.get(provider.url + "/authorize", params=query)
    assert answer.status_code == 302
    location = urllib.parse.urlsplit(answer.headers["Location"])
    assert location._replace(query="").geturl() == REDIRECT_URI
    return dict(urllib.parse.parse_qsl(location.query))


def test_the_code_flow_with_pkce_gives_an_id_token_that_validates(
    idporten: OidcProvider, validator: IdTokenValidator, http: httpx.Client
) -> None:
    verifier = "v" * 43
    idporten.next_login(sub=SUB, pid=PID, acr="idporten-loa-high")
    redirect = _authorize(idporten, http, verifier)

    answer = http.post(
        idporten.url + "/token",
        data={
            "grant_type": "authorization_code",
            "code": redirect["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
    )

    assert redirect["state"] == "state-123"
    assert answer.status_code == 200
    body = answer.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 120)
    assert body["access_token"] in idporten.state.access_tokens
    claims = validator.validate(body["id_token"], nonce=NONCE)
    assert (claims.subject, claims.pid, claims.acr) == (SUB, PID, "idporten-loa-high")


def test_a_code_is_refused_with_a_wrong_verifier_and_used_only_once(
    idporten: OidcProvider, http: httpx.Client
) -> None:
    verifier = "right-verifier-" + "x" * 40
    idporten.next_login(sub=SUB, pid=PID)
    code = _authorize(idporten, http, verifier)["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }

    wrong_secret = http.post(idporten.url + "/token", data=form | {"client_secret": "guess"})
    wrong_verifier = http.post(idporten.url + "/token", data=form | {"code_verifier": "w" * 43})
    reused = http.post(idporten.url + "/token", data=form | {"code_verifier": verifier})

    assert (wrong_secret.status_code, wrong_secret.json()) == (401, {"error": "invalid_client"})
    assert (wrong_verifier.status_code, wrong_verifier.json()) == (400, {"error": "invalid_grant"})
    assert (reused.status_code, reused.json()) == (400, {"error": "invalid_grant"})


def test_authorize_without_a_chosen_login_redirects_with_login_required(
    idporten: OidcProvider, http: httpx.Client
) -> None:
    redirect = _authorize(idporten, http, "v" * 43)

    assert redirect == {"state": "state-123", "error": "login_required"}


def test_authorize_never_redirects_to_an_unregistered_uri(
    idporten: OidcProvider, http: httpx.Client
) -> None:
    idporten.next_login(sub=SUB)

    answer = http.get(
        idporten.url + "/authorize",
        params={"client_id": CLIENT_ID, "redirect_uri": "https://evil.example/cb"},
    )

    assert (answer.status_code, answer.json()) == (400, {"error": "invalid_request"})
