"""Synthetic lines of the legacy register's export, for the import tests (synthetic ids only)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from nlr_server.domain.national_id import make_synthetic_national_id

_FIRST_BIRTH_DATE = dt.date(1940, 1, 1)
_BIRTH_DATES = 2_000  # under the lru_cache of make_synthetic_national_id
_GIVEN = ("Kari", "Ola", "Ingrid", "Per", "Åse", "Bjørn", "Sámi Ánne", "Jon-Erik")
_FAMILY = ("Nordmann", "Hansen", "Johansen", "Ødegård", "Berg", "O'Neill", "Haugen")


def national_id(serial: int) -> str:
    """A different valid synthetic national id for each ``serial``."""
    birth = _FIRST_BIRTH_DATE + dt.timedelta(days=serial % _BIRTH_DATES)
    return make_synthetic_national_id(birth, serial // _BIRTH_DATES)


def card_number(serial: int) -> str:
    return f"N{100_000_000 + serial:09d}"


def legacy_record(serial: int, libraries: Sequence[str]) -> dict[str, Any]:
    """A complete, valid record; every fourth has a temporary address, every third a
    Norwegian-style birth date, the affiliations alternate between a list and a string."""
    fnr = national_id(serial)
    birth = _FIRST_BIRTH_DATE + dt.timedelta(days=serial % _BIRTH_DATES)
    home = libraries[serial % len(libraries)]
    other = libraries[(serial + 1) % len(libraries)]
    record: dict[str, Any] = {
        "lnr": card_number(serial),
        "fnr": fnr,
        "navn": f"{_FAMILY[serial % len(_FAMILY)]}, {_GIVEN[serial % len(_GIVEN)]}",
        "kjonn": "K" if serial % 2 else "M",
        "fdato": birth.strftime("%d.%m.%Y") if serial % 3 == 0 else birth.isoformat(),
        "p_adresse1": f"Storgata {serial % 200 + 1}",
        "p_adresse2": "" if serial % 5 else "H0101",
        "p_postnr": f"{(serial % 9000) + 1000:04d}",
        "p_sted": "Oslo",
        "p_land": "NO",
        "epost": f"laaner{serial}@example.no",
        "tlf_mobil": f"9{serial % 10_000_000:07d}",
        "tlf_hjemme": f"22{serial % 1_000_000:06d}" if serial % 2 else "",
        "tlf_jobb": "",
        "hjemmebibliotek": home,
        "tilknyttede": [home, other] if serial % 2 else f"{home},{other}",
        "opprettet": f"2005-03-{serial % 28 + 1:02d}T10:15:00",
        "opprettet_av": home,
        "sist_endret": "2019-11-02 08:00:00",
        "sist_endret_av": other,
    }
    if serial % 4 == 0:
        until = dt.date.today() + dt.timedelta(days=365 + serial % 100)
        record.update(
            m_adresse1="Hytteveien 3",
            m_postnr="3580",
            m_sted="Geilo",
            m_land="",
            m_gyldig_til=until.strftime("%d.%m.%Y") if serial % 8 else until.isoformat(),
        )
    return record


def legacy_lines(count: int, libraries: Sequence[str], first: int = 0) -> Iterator[str]:
    for serial in range(first, first + count):
        yield json.dumps(legacy_record(serial, libraries), ensure_ascii=False)


def write_export(path: Path, lines: Iterator[str] | Sequence[str]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(line + "\n")
    return path
