"""Skatteetaten's Folkeregisteret API for consumers with a legal basis (offentlig med hjemmel).

Under ``{base}/folkeregisteret/offentlig-med-hjemmel/api/v1/``, JSON, with a Maskinporten token:

- ``hendelser/feed?seq=N``: the events from sequence number N on, a bare JSON array in fixed
  pages (``[]`` past the end); ``ETag`` and ``If-None-Match`` give 304 when nothing is new; 429
  with ``Retry-After`` in milliseconds; 406 for a sequence number older than 36 months.
- ``hendelser/siste/sekvensnummer``: the latest sequence number, a bare number.
- ``personer/{id}?part=...`` and ``POST personer/bulkoppslag?part=...`` (up to 1000 ids): the
  persons' current data.

Unknown fields and values are kept as they came (the caller reads what it knows). No answer
body is ever logged: it is personal data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

API_PATH = "folkeregisteret/offentlig-med-hjemmel/api/v1/"
# What the register reads of a person (identifikasjonsnummer always comes too).
PERSON_PARTS = ("navn", "kjoenn", "bostedsadresse", "adressebeskyttelse", "status", "doedsfall")
BULK_LIMIT = 1000
_TIMEOUT = httpx.Timeout(15.0)


class FolkeregisteretError(Exception):
    """The API did not give an answer the register can use; the message quotes no body."""


class RetryLater(FolkeregisteretError):
    """429: asked to wait ``seconds`` (from Retry-After, in milliseconds) before asking again."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Folkeregisteret asks to wait {seconds:.3f} s (HTTP 429)")
        self.seconds = seconds


class SequenceTooOld(FolkeregisteretError):
    """406: the sequence number is older than the feed keeps (36 months): reconcile instead."""


@dataclass(frozen=True)
class Event:
    sequence: int
    national_id: str
    kind: str  # hendelsetype, e.g. endringINavn; an unknown one is kept as it is
    document: dict[str, Any]  # the whole entry's hendelse, as it came


@dataclass(frozen=True)
class FeedPage:
    events: tuple[Event, ...]
    etag: str | None


class Tokens(Protocol):
    """What the client needs of Maskinporten (MaskinportenTokens)."""

    def token(self) -> str: ...

    def forget(self) -> None: ...


class FolkeregisteretClient:
    """The consumer API at ``base_url`` with tokens from ``tokens``."""

    def __init__(
        self,
        base_url: str,
        tokens: Tokens,
        http: httpx.Client | None = None,
    ) -> None:
        self._root = base_url.rstrip("/") + "/" + API_PATH
        self._tokens = tokens
        self._http = http or httpx.Client(timeout=_TIMEOUT)

    def feed_page(self, sequence: int, etag: str | None = None) -> FeedPage | None:
        """The page of events from ``sequence`` on; None if unchanged since ``etag`` (304)."""
        headers = {"If-None-Match": etag} if etag else {}
        answer = self._get("hendelser/feed", params={"seq": str(sequence)}, headers=headers)
        if answer.status_code == httpx.codes.NOT_MODIFIED:
            return None
        entries = _json(answer)
        if not isinstance(entries, list):
            raise FolkeregisteretError("the feed page is not a JSON array")
        return FeedPage(tuple(_event(entry) for entry in entries), answer.headers.get("ETag"))

    def latest_sequence(self) -> int:
        body = _json(self._get("hendelser/siste/sekvensnummer"))
        if not isinstance(body, int):
            raise FolkeregisteretError("the latest sequence number is not a number")
        return body

    def person(self, national_id: str) -> dict[str, Any] | None:
        """One person's current data, or None if the register has no such person (404)."""
        answer = self._get(f"personer/{national_id}", params=[("part", p) for p in PERSON_PARTS])
        if answer.status_code == httpx.codes.NOT_FOUND:
            return None
        body = _json(answer)
        if not isinstance(body, dict):
            raise FolkeregisteretError("the person is not a JSON object")
        return body

    def persons(self, national_ids: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """Each id's person (None where the register answers with an error for it)."""
        if len(national_ids) > BULK_LIMIT:
            raise ValueError(f"at most {BULK_LIMIT} ids per bulk lookup")
        answer = self._send(
            "POST",
            "personer/bulkoppslag",
            params=[("part", p) for p in PERSON_PARTS],
            json={"foedselsEllerDNummer": list(national_ids)},
        )
        body = _json(answer)
        found: dict[str, dict[str, Any] | None] = dict.fromkeys(national_ids)
        for item in body.get("oppslag", []) if isinstance(body, dict) else []:
            person = item.get("folkeregisterperson") if isinstance(item, dict) else None
            number = item.get("foedselsEllerDNummer") if isinstance(item, dict) else None
            if isinstance(number, str) and number in found:
                found[number] = person if isinstance(person, dict) else None
        return found

    def _get(self, path: str, **options: Any) -> httpx.Response:
        return self._send("GET", path, **options)

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One request with a token (a 401 fetches a new token once); the errors the API
        documents as exceptions."""
        headers = {"Accept": "application/json", **options.pop("headers", {})}
        for attempt in range(2):
            headers["Authorization"] = f"Bearer {self._tokens.token()}"
            try:
                answer = self._http.request(method, self._root + path, headers=headers, **options)
            except httpx.HTTPError as error:
                raise FolkeregisteretError(
                    f"no answer from Folkeregisteret ({type(error).__name__})"
                ) from None
            if answer.status_code == httpx.codes.UNAUTHORIZED and attempt == 0:
                self._tokens.forget()
                continue
            break
        status = answer.status_code
        if status == httpx.codes.TOO_MANY_REQUESTS:
            raise RetryLater(_retry_after_seconds(answer))
        if status == httpx.codes.NOT_ACCEPTABLE:
            raise SequenceTooOld("the sequence number is older than the feed keeps (HTTP 406)")
        if status not in (httpx.codes.OK, httpx.codes.NOT_MODIFIED, httpx.codes.NOT_FOUND):
            raise FolkeregisteretError(f"Folkeregisteret answered HTTP {status}")
        return answer


def _retry_after_seconds(answer: httpx.Response) -> float:
    """Retry-After, which Folkeregisteret gives in milliseconds (1 s if missing or unreadable)."""
    try:
        return max(0.0, int(answer.headers.get("Retry-After", "1000")) / 1000)
    except ValueError:
        return 1.0


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        raise FolkeregisteretError("Folkeregisteret's answer is not JSON") from None


def _event(entry: Any) -> Event:
    try:
        event = entry["hendelse"]
        return Event(
            sequence=int(entry["sekvensnummer"]),
            national_id=str(event["folkeregisteridentifikator"]),
            kind=str(event.get("hendelsetype", "")),
            document=dict(event),
        )
    except (KeyError, TypeError, ValueError):
        raise FolkeregisteretError("a feed entry lacks sekvensnummer or its person") from None
