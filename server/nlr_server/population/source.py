"""Folkeregisteret as the sync's PopulationSource: feed pages as events, persons as the domain's
PopulationPerson."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from nlr_server.domain.population import PopulationPerson
from nlr_server.population.folkeregisteret import BULK_LIMIT, FolkeregisteretClient
from nlr_server.population.maskinporten import MaskinportenSettings, MaskinportenTokens
from nlr_server.population.person_document import PersonDocumentError, read_person
from nlr_server.usecases.ports import PopulationEvent, PopulationEvents


class FolkeregisteretSource:
    def __init__(self, client: FolkeregisteretClient) -> None:
        self._client = client

    def events(self, sequence: int, etag: str | None) -> PopulationEvents | None:
        page = self._client.feed_page(sequence, etag)
        if page is None:
            return None
        return PopulationEvents(
            tuple(PopulationEvent(e.sequence, e.national_id, e.kind) for e in page.events),
            page.etag,
        )

    def latest_sequence(self) -> int:
        return self._client.latest_sequence()

    def persons(self, national_ids: Sequence[str]) -> dict[str, PopulationPerson | None]:
        found: dict[str, PopulationPerson | None] = {}
        for start in range(0, len(national_ids), BULK_LIMIT):
            for number, document in self._client.persons(
                national_ids[start : start + BULK_LIMIT]
            ).items():
                try:
                    found[number] = read_person(document) if document is not None else None
                except PersonDocumentError:
                    # Unreadable: left as it is (applied again with the person's next event).
                    found[number] = None
        return found


# The settings Maskinporten needs besides the scope (which has a default).
MASKINPORTEN_SETTINGS = (
    "NLR_MASKINPORTEN_URL",
    "NLR_MASKINPORTEN_CLIENT_ID",
    "NLR_MASKINPORTEN_KEY",
    "NLR_MASKINPORTEN_KID",
)


def missing_settings(settings: Mapping[str, str]) -> list[str]:
    """The Maskinporten settings a source for ``settings`` (by their NLR_ names) lacks."""
    return [name for name in MASKINPORTEN_SETTINGS if not settings.get(name)]


def folkeregisteret_source(settings: Mapping[str, str]) -> FolkeregisteretSource:
    """Folkeregisteret at NLR_FREG_URL with tokens for the NLR_MASKINPORTEN_* client (check
    missing_settings first). Reads the client's key now: MaskinportenError if it cannot."""
    tokens = MaskinportenTokens(
        MaskinportenSettings(
            issuer=settings["NLR_MASKINPORTEN_URL"],
            client_id=settings["NLR_MASKINPORTEN_CLIENT_ID"],
            key_file=Path(settings["NLR_MASKINPORTEN_KEY"]).expanduser(),
            key_id=settings["NLR_MASKINPORTEN_KID"],
            scope=settings["NLR_MASKINPORTEN_SCOPE"],
        )
    )
    return FolkeregisteretSource(FolkeregisteretClient(settings["NLR_FREG_URL"], tokens))
