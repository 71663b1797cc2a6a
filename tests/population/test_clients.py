"""The Maskinporten and Folkeregisteret clients against a local fake speaking both protocols."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from nlr_server.population.folkeregisteret import (
    PERSON_PARTS,
    FolkeregisteretClient,
    RetryLater,
    SequenceTooOld,
)
from nlr_server.population.maskinporten import (
    MaskinportenError,
    MaskinportenSettings,
    MaskinportenTokens,
)
from population_fake import CLIENT_ID, KEY_ID, SCOPE, PopulationRegisterFake, write_client_key

PERSON = {
    "identifikasjonsnummer": [{"foedselsEllerDNummer": "01017012345", "erGjeldende": True}],
    "navn": [{"fornavn": "Kari", "etternavn": "Nordmann", "erGjeldende": True, "nytt": 1}],
}


@pytest.fixture(scope="module")
def client_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def key_file(tmp_path: Path, client_key: rsa.RSAPrivateKey) -> Path:
    return write_client_key(tmp_path / "maskinporten.pem", client_key)


@pytest.fixture
def fake(client_key: rsa.RSAPrivateKey) -> Iterator[PopulationRegisterFake]:
    with PopulationRegisterFake({KEY_ID: client_key.public_key()}) as running:
        yield running


def _settings(fake: PopulationRegisterFake, key_file: Path, **changes: str) -> MaskinportenSettings:
    values = {
        "issuer": fake.state.issuer,
        "client_id": CLIENT_ID,
        "key_id": KEY_ID,
        "scope": SCOPE,
    } | changes
    return MaskinportenSettings(key_file=key_file, **values)


class _Clock:
    """The tokens' clock, started 100 s ago so that moving it on stays in the fake's past."""

    def __init__(self) -> None:
        self.now = time.time() - 100

    def __call__(self) -> float:
        return self.now


def test_a_token_is_granted_for_a_signed_assertion_and_reused_until_near_its_expiry(
    fake: PopulationRegisterFake, key_file: Path
) -> None:
    clock = _Clock()
    tokens = MaskinportenTokens(_settings(fake, key_file), clock=clock)

    first = tokens.token()
    assert tokens.token() == first
    clock.now += 120 - 30  # within the last 30 s of its 120
    renewed = tokens.token()

    assert renewed != first and {first, renewed} <= fake.state.tokens
    assert len(fake.state.grants) == 2
    (header, claims), (_, second) = fake.state.grants
    assert (header["alg"], header["kid"]) == ("RS256", KEY_ID)
    assert (claims["aud"], claims["iss"], claims["scope"]) == (fake.state.issuer, CLIENT_ID, SCOPE)
    assert claims["exp"] - claims["iat"] == 120
    assert "resource" not in claims
    assert claims["jti"] != second["jti"]


@pytest.mark.parametrize(
    "changes",
    [{"scope": "folkeregister:annet"}, {"client_id": "someone-else"}, {"key_id": "unknown"}],
    ids=["scope", "client", "key"],
)
def test_a_refused_grant_is_an_error_that_quotes_no_secret(
    fake: PopulationRegisterFake, key_file: Path, changes: dict[str, str]
) -> None:
    tokens = MaskinportenTokens(_settings(fake, key_file, **changes))

    with pytest.raises(MaskinportenError) as refused:
        tokens.token()

    assert str(refused.value) == "Maskinporten refused the token request: HTTP 400 invalid_grant"
    assert not fake.state.tokens


def test_a_key_file_others_can_read_is_refused(
    fake: PopulationRegisterFake, key_file: Path
) -> None:
    os.chmod(key_file, 0o640)

    with pytest.raises(MaskinportenError, match="accessible to group or others"):
        MaskinportenTokens(_settings(fake, key_file))


def _client(fake: PopulationRegisterFake, key_file: Path) -> FolkeregisteretClient:
    return FolkeregisteretClient(fake.url, MaskinportenTokens(_settings(fake, key_file)))


def test_the_feed_is_read_page_by_page_and_an_unchanged_page_is_not_sent_again(
    fake: PopulationRegisterFake, key_file: Path
) -> None:
    fake.state.page_size = 3
    for serial in range(7):
        fake.state.add_event(f"0101701234{serial}", "endringINavn", nyFelt="tolerated")
    client = _client(fake, key_file)

    pages = [client.feed_page(sequence) for sequence in (1, 4, 7, 8)]

    assert [[e.sequence for e in page.events] for page in pages if page] == [
        [1, 2, 3],
        [4, 5, 6],
        [7],
        [],
    ]
    first = pages[0]
    assert first is not None and first.events[0].national_id == "01017012340"
    assert first.events[0].kind == "endringINavn"
    assert first.events[0].document["nyFelt"] == "tolerated"
    assert client.latest_sequence() == 7
    end = pages[3]
    assert end is not None and end.etag
    assert client.feed_page(8, end.etag) is None
    fake.state.add_event("01017012349", "personErDoed")
    news = client.feed_page(8, end.etag)
    assert news is not None and [e.kind for e in news.events] == ["personErDoed"]


def test_429_gives_the_wait_in_milliseconds_and_406_a_sequence_too_old(
    fake: PopulationRegisterFake, key_file: Path
) -> None:
    client = _client(fake, key_file)
    fake.state.throttle, fake.state.retry_after_ms = 1, 1500

    with pytest.raises(RetryLater) as wait:
        client.feed_page(1)
    assert wait.value.seconds == 1.5
    assert client.feed_page(1) is not None

    fake.state.oldest_sequence = 100
    with pytest.raises(SequenceTooOld):
        client.feed_page(99)


def test_a_token_the_api_no_longer_takes_is_replaced_once(
    fake: PopulationRegisterFake, key_file: Path
) -> None:
    client = _client(fake, key_file)
    assert client.latest_sequence() == 0
    fake.state.tokens.clear()  # the API forgot it (expired early)

    assert client.latest_sequence() == 0
    assert len(fake.state.grants) == 2


def test_persons_are_read_one_by_one_or_in_bulk_with_the_parts_the_register_needs(
    fake: PopulationRegisterFake, key_file: Path
) -> None:
    fake.state.persons["01017012345"] = PERSON
    client = _client(fake, key_file)

    assert client.person("01017012345") == PERSON
    assert client.person("02027012345") is None
    assert client.persons(["01017012345", "02027012345"]) == {
        "01017012345": PERSON,
        "02027012345": None,
    }
    method, path, headers = fake.state.requests[0]
    assert method == "GET" and headers["Accept"] == "application/json"
    assert path.endswith("?" + "&".join(f"part={part}" for part in PERSON_PARTS))
    with pytest.raises(ValueError, match="at most 1000"):
        client.persons([f"{n:011d}" for n in range(1001)])
