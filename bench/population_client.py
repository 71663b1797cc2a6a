"""The population register rows' ceilings, in a process of their own: the register's own client
(nlr_server.population.source's FolkeregisteretSource, as `nlr-admin` makes it from the
NLR_FREG_URL and NLR_MASKINPORTEN_* settings in the environment) reading from the fake, with
nothing applied.

``python -m bench.population_client feed IDS.json`` reads Folkeregisteret's feed from sequence
number 1 page after page, as `nlr-admin population sync --once` does (each page asked for with
the previous page's ETag, until an empty page), and looks up in bulk, page by page, the persons
of the page's events whose national id is one of IDS (the register's borrowers: the ones the
sync's blind-index filter keeps).

``python -m bench.population_client lookups IDS.json`` looks the persons of IDS up in bulk, a
thousand at a time, in the order given, as `nlr-admin population reconcile` does.

Either prints one JSON object: events read, persons looked up and found, and its own seconds
(from its first request to its last answer; the benchmark times the whole process too).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from nlr_server.population.folkeregisteret import BULK_LIMIT
from nlr_server.population.source import FolkeregisteretSource, folkeregisteret_source

SETTINGS = (
    "NLR_FREG_URL",
    "NLR_MASKINPORTEN_URL",
    "NLR_MASKINPORTEN_CLIENT_ID",
    "NLR_MASKINPORTEN_KEY",
    "NLR_MASKINPORTEN_KID",
    "NLR_MASKINPORTEN_SCOPE",
)


def read_feed(source: FolkeregisteretSource, borrowers: set[str]) -> dict[str, int]:
    """Every page of the feed, and each page's borrowers looked up in bulk (sync_page's reads)."""
    sequence, etag = 1, None
    read = looked_up = found = 0
    while True:
        page = source.events(sequence, etag)
        if page is None or not page.events:
            break
        ours = {event.national_id for event in page.events} & borrowers
        persons = source.persons(sorted(ours)) if ours else {}
        read += len(page.events)
        looked_up += len(ours)
        found += sum(person is not None for person in persons.values())
        sequence = max(event.sequence for event in page.events) + 1
        etag = page.etag
    return {"read": read, "looked_up": looked_up, "found": found}


def look_up(source: FolkeregisteretSource, national_ids: list[str]) -> dict[str, int]:
    """The persons of ``national_ids``, a bulk lookup per thousand (reconcile_batch's reads)."""
    found = 0
    for start in range(0, len(national_ids), BULK_LIMIT):
        persons = source.persons(national_ids[start : start + BULK_LIMIT])
        found += sum(person is not None for person in persons.values())
    return {"read": 0, "looked_up": len(national_ids), "found": found}


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] not in ("feed", "lookups"):
        sys.exit("usage: python -m bench.population_client feed|lookups IDS.json")
    mode, ids_file = argv
    national_ids = [str(number) for number in json.loads(Path(ids_file).read_text())]
    source = folkeregisteret_source({name: os.environ.get(name, "") for name in SETTINGS})
    started = time.perf_counter()
    if mode == "feed":
        result = read_feed(source, set(national_ids))
    else:
        result = look_up(source, national_ids)
    seconds = time.perf_counter() - started
    print(json.dumps({**result, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1:])
