"""Folkeregisteret as the sync's PopulationSource: feed pages as events, persons as the domain's
PopulationPerson."""

from __future__ import annotations

from collections.abc import Sequence

from nlr_server.domain.population import PopulationPerson
from nlr_server.population.folkeregisteret import BULK_LIMIT, FolkeregisteretClient
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
