"""Synthetic exports of the legacy register: its real record (``Laaner``), any size, as the
legacy server's SOAP answers or as JSON Lines with the legacy field names.

``python -m bench.legacy_export --count N --out FILE [--format soap|jsonl] [--libraries-csv
FILE]`` streams N borrowers (``-`` for stdout), writes the PINs' legacy key next to FILE
(``FILE.pin-key``, mode 0600, for ``nlr-admin import --legacy-pin-key-file``) and, optionally,
the CSV of their libraries that ``nlr-admin libraries import`` accepts. Every record is a pure
function of its index, the count and the seed (with the day it is made on anchoring its dates),
so the benchmark can rebuild any borrower's card number, national id and PIN without reading
the file back.

The records are what the legacy register held (server/nlr_server/ops/legacy_export.py): every
Laaner field, each a string; ``fnr_hash`` the plain national id, ``kjonn`` F or M, ``gyldig_til``
the card's expiry, ``m_gyldig_til`` the temporary address's last day, the "should be checked"
flags ``0``, ``1`` or empty, empty dates as ``""`` or ``0000-00-00``, ``pin`` the hex of
AES-128-ECB of the PIN under a key derived from the seed (bench_pin_key: public, synthetic),
``passord`` empty. JSON Lines add ``tilknyttede``, the borrower's libraries; the SOAP record has
no such field, so there each borrower is affiliated with the home library only. Every record is
valid: it imports with no reject and no notice.

Only synthetic national ids (month + 80) are made, each one unique, as are the card numbers.
Names, streets and the spread of borrowers over a few hundred libraries are Norwegian-looking;
postal codes and places are real pairs, phone numbers valid Norwegian ones, e-mail addresses on
the reserved example.* domains. The SOAP writer uses string templates, not an XML library: it
writes millions of records.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import operator
import os
import sys
import time
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape

from nlr_server.crypto.legacy_pin import LEGACY_KEY_BYTES, LegacyPins
from nlr_server.ops.legacy_export import LEGACY_FIELDS

# Birth dates are spread evenly over these days; each day has a few hundred synthetic ids, so
# counts up to about ten million stay unique.
FIRST_BIRTH_DATE = dt.date(1925, 1, 1)
LAST_BIRTH_DATE = dt.date(2020, 12, 31)
BIRTH_DAYS = (LAST_BIRTH_DATE - FIRST_BIRTH_DATE).days + 1
_FEWEST_IDS_PER_DAY = 300
MAX_COUNT = BIRTH_DAYS * _FEWEST_IDS_PER_DAY

# Card numbers: an affine permutation of the index over this range (7919 is prime and does not
# divide the range), so they are unique but not in the order of the borrowers' ages.
_FIRST_CARD = 100_000_000
_CARD_RANGE = 800_000_000
_CARD_STEP = 7919

# (municipality number, name, inhabitants in thousands, [(postal code, place), ...]): real
# municipalities (2024 numbers) with real postal codes; branches follow the population.
MUNICIPALITIES: tuple[tuple[str, str, int, tuple[tuple[str, str], ...]], ...] = (
    (
        "0301",
        "Oslo",
        717,
        (
            ("0150", "OSLO"),
            ("0260", "OSLO"),
            ("0364", "OSLO"),
            ("0456", "OSLO"),
            ("0560", "OSLO"),
            ("0661", "OSLO"),
            ("0771", "OSLO"),
            ("0874", "OSLO"),
            ("0960", "OSLO"),
            ("1150", "OSLO"),
            ("1251", "OSLO"),
        ),
    ),
    (
        "4601",
        "Bergen",
        291,
        (
            ("5003", "BERGEN"),
            ("5089", "BERGEN"),
            ("5141", "FYLLINGSDALEN"),
            ("5221", "NESTTUN"),
            ("5131", "NYBORG"),
        ),
    ),
    (
        "5001",
        "Trondheim",
        214,
        (("7010", "TRONDHEIM"), ("7030", "TRONDHEIM"), ("7048", "TRONDHEIM"), ("7089", "HEIMDAL")),
    ),
    (
        "1103",
        "Stavanger",
        149,
        (("4005", "STAVANGER"), ("4014", "STAVANGER"), ("4021", "STAVANGER")),
    ),
    ("3201", "Bærum", 129, (("1337", "SANDVIKA"), ("1344", "HASLUM"), ("1360", "FORNEBU"))),
    ("4204", "Kristiansand", 116, (("4608", "KRISTIANSAND S"), ("4630", "KRISTIANSAND S"))),
    ("3301", "Drammen", 103, (("3015", "DRAMMEN"), ("3040", "DRAMMEN"))),
    ("3203", "Asker", 98, (("1384", "ASKER"), ("1394", "NESBRU"))),
    ("3205", "Lillestrøm", 90, (("2000", "LILLESTRØM"), ("2010", "STRØMMEN"))),
    ("3107", "Fredrikstad", 85, (("1606", "FREDRIKSTAD"), ("1630", "GAMLE FREDRIKSTAD"))),
    ("1108", "Sandnes", 82, (("4306", "SANDNES"), ("4318", "SANDNES"))),
    ("5501", "Tromsø", 78, (("9008", "TROMSØ"), ("9019", "TROMSØ"))),
    ("3105", "Sarpsborg", 59, (("1706", "SARPSBORG"), ("1724", "SARPSBORG"))),
    ("3207", "Nordre Follo", 62, (("1400", "SKI"), ("1410", "KOLBOTN"))),
    ("4003", "Skien", 55, (("3710", "SKIEN"), ("3732", "SKIEN"))),
    ("1508", "Ålesund", 58, (("6002", "ÅLESUND"), ("6010", "ÅLESUND"))),
    ("3907", "Sandefjord", 65, (("3210", "SANDEFJORD"), ("3232", "SANDEFJORD"))),
    ("3909", "Larvik", 48, (("3256", "LARVIK"),)),
    ("3905", "Tønsberg", 58, (("3110", "TØNSBERG"), ("3125", "TØNSBERG"))),
    ("1804", "Bodø", 53, (("8006", "BODØ"), ("8010", "BODØ"))),
    ("4203", "Arendal", 46, (("4836", "ARENDAL"),)),
    ("1106", "Haugesund", 38, (("5527", "HAUGESUND"),)),
    ("4001", "Porsgrunn", 37, (("3915", "PORSGRUNN"),)),
    ("3403", "Hamar", 32, (("2317", "HAMAR"),)),
    ("3405", "Lillehammer", 29, (("2609", "LILLEHAMMER"),)),
    ("3407", "Gjøvik", 31, (("2815", "GJØVIK"),)),
    ("3103", "Moss", 50, (("1530", "MOSS"),)),
    ("3101", "Halden", 31, (("1767", "HALDEN"),)),
    ("1506", "Molde", 32, (("6413", "MOLDE"),)),
    ("5503", "Harstad", 25, (("9405", "HARSTAD"),)),
    ("3303", "Kongsberg", 28, (("3611", "KONGSBERG"),)),
    ("3903", "Horten", 27, (("3181", "HORTEN"),)),
    ("3222", "Lørenskog", 46, (("1470", "LØRENSKOG"),)),
    ("3209", "Ullensaker", 41, (("2050", "JESSHEIM"),)),
    ("5006", "Steinkjer", 24, (("7713", "STEINKJER"),)),
    ("1806", "Narvik", 21, (("8514", "NARVIK"),)),
    ("5601", "Alta", 21, (("9510", "ALTA"),)),
    ("5603", "Hammerfest", 11, (("9600", "HAMMERFEST"),)),
    ("5605", "Sør-Varanger", 10, (("9900", "KIRKENES"),)),
    ("5607", "Vadsø", 6, (("9800", "VADSØ"),)),
    ("5612", "Guovdageaidnu Kautokeino", 3, (("9520", "KAUTOKEINO"),)),
    ("5610", "Kárášjohka Karasjok", 3, (("9730", "KARASJOK"),)),
    ("1833", "Rana", 26, (("8622", "MO I RANA"),)),
    ("1824", "Vefsn", 13, (("8656", "MOSJØEN"),)),
    ("5037", "Levanger", 20, (("7600", "LEVANGER"),)),
    ("5035", "Stjørdal", 25, (("7500", "STJØRDAL"),)),
    ("5059", "Orkland", 18, (("7300", "ORKANGER"),)),
    ("5025", "Røros", 6, (("7374", "RØROS"),)),
    ("1505", "Kristiansund", 24, (("6509", "KRISTIANSUND N"),)),
    ("1520", "Ørsta", 11, (("6150", "ØRSTA"),)),
    ("4647", "Sunnfjord", 22, (("6800", "FØRDE"),)),
    ("4640", "Sogndal", 12, (("6851", "SOGNDAL"),)),
    ("4621", "Voss", 16, (("5700", "VOSS"),)),
    ("4614", "Stord", 19, (("5411", "STORD"),)),
    ("4618", "Ullensvang", 11, (("5750", "ODDA"),)),
    ("1101", "Eigersund", 15, (("4370", "EGERSUND"),)),
    ("4205", "Lindesnes", 23, (("4515", "MANDAL"),)),
    ("4207", "Flekkefjord", 9, (("4400", "FLEKKEFJORD"),)),
    ("4202", "Grimstad", 24, (("4876", "GRIMSTAD"),)),
    ("3401", "Kongsvinger", 18, (("2211", "KONGSVINGER"),)),
    ("3420", "Elverum", 21, (("2406", "ELVERUM"),)),
    ("3427", "Tynset", 6, (("2500", "TYNSET"),)),
    ("4005", "Notodden", 13, (("3674", "NOTODDEN"),)),
    ("3305", "Ringerike", 31, (("3510", "HØNEFOSS"),)),
    ("2111", "Svalbard", 3, (("9170", "LONGYEARBYEN"),)),
)
# Inhabitants per library branch (at least one branch, at most 25 per municipality).
_INHABITANTS_PER_BRANCH = 12

_FAMILY_NAMES = [
    "Hansen",
    "Johansen",
    "Olsen",
    "Larsen",
    "Andersen",
    "Pedersen",
    "Nilsen",
    "Kristiansen",
    "Jensen",
    "Karlsen",
    "Johnsen",
    "Pettersen",
    "Eriksen",
    "Berg",
    "Haugen",
    "Hagen",
    "Johannessen",
    "Andreassen",
    "Jacobsen",
    "Dahl",
    "Jørgensen",
    "Halvorsen",
    "Henriksen",
    "Lund",
    "Sørensen",
    "Jakobsen",
    "Moen",
    "Gundersen",
    "Iversen",
    "Strand",
    "Solberg",
    "Svendsen",
    "Eide",
    "Knutsen",
    "Martinsen",
    "Paulsen",
    "Bakken",
    "Kristoffersen",
    "Mathisen",
    "Lie",
    "Amundsen",
    "Nguyen",
    "Rasmussen",
    "Ali",
    "Lunde",
    "Solheim",
    "Berge",
    "Moe",
    "Nygård",
    "Bakke",
    "Kristensen",
    "Fredriksen",
    "Holm",
    "Lien",
    "Hauge",
    "Christensen",
    "Andresen",
    "Nielsen",
    "Knudsen",
    "Evensen",
    "Sæther",
    "Aas",
    "Myhre",
    "Hanssen",
    "Ahmed",
    "Haugland",
    "Thomassen",
    "Sivertsen",
    "Simonsen",
    "Danielsen",
    "Berntsen",
    "Sandvik",
    "Rønning",
    "Arnesen",
    "Antonsen",
    "Næss",
    "Vik",
    "Haug",
    "Ellingsen",
    "Thorsen",
    "Edvardsen",
    "Birkeland",
    "Isaksen",
    "Gulbrandsen",
    "Ruud",
    "Aasen",
    "Strøm",
    "Myklebust",
    "Tangen",
    "Ødegård",
    "Eliassen",
    "Helland",
    "Bøe",
    "Jenssen",
    "Aune",
    "Mikkelsen",
    "Tveit",
    "Brekke",
    "Abrahamsen",
    "Madsen",
    "Kowalski",
    "Nowak",
    "Hussain",
    "Khan",
    "Mohamed",
    "Tran",
    "Le",
    "Pham",
    "Sara",
    "Somby",
    "Eira",
    "Gaup",
    "Utsi",
]
_FEMALE_NAMES = [
    "Anne",
    "Inger",
    "Kari",
    "Marit",
    "Ingrid",
    "Liv",
    "Eva",
    "Berit",
    "Astrid",
    "Bjørg",
    "Hilde",
    "Anna",
    "Solveig",
    "Marianne",
    "Randi",
    "Ida",
    "Nina",
    "Maria",
    "Elisabeth",
    "Kristin",
    "Emma",
    "Nora",
    "Sofie",
    "Sara",
    "Ingeborg",
    "Olivia",
    "Ella",
    "Maja",
    "Leah",
    "Frida",
    "Åse",
    "Sigrid",
    "Tone",
    "Heidi",
    "Silje",
    "Camilla",
    "Julie",
    "Thea",
    "Amalie",
    "Aurora",
    "Selma",
    "Hedda",
    "Vilde",
    "Ragnhild",
    "Gunn",
    "Wenche",
    "Turid",
    "Laila",
    "Aisha",
    "Fatima",
    "Agnieszka",
    "Ellen",
    "Máret",
    "Ánne",
]
_MALE_NAMES = [
    "Jan",
    "Per",
    "Bjørn",
    "Ole",
    "Lars",
    "Kjell",
    "Knut",
    "Arne",
    "Svein",
    "Thomas",
    "Hans",
    "Geir",
    "Tor",
    "Morten",
    "Terje",
    "Odd",
    "Erik",
    "Martin",
    "Andreas",
    "John",
    "Anders",
    "Rune",
    "Trond",
    "Tore",
    "Jonas",
    "Jakob",
    "Emil",
    "Noah",
    "Oliver",
    "Filip",
    "William",
    "Lucas",
    "Henrik",
    "Magnus",
    "Øyvind",
    "Håkon",
    "Sindre",
    "Aksel",
    "Ludvig",
    "Isak",
    "Mathias",
    "Kristian",
    "Espen",
    "Stian",
    "Eirik",
    "Jørgen",
    "Mohammed",
    "Ali",
    "Piotr",
    "Tomasz",
    "Nils",
    "Ánde",
    "Máhtte",
]
_STREETS = (
    "Storgata",
    "Kirkegata",
    "Skolegata",
    "Parkveien",
    "Strandveien",
    "Fjellveien",
    "Bakkeveien",
    "Industriveien",
    "Skogveien",
    "Granveien",
    "Bjørkeveien",
    "Solbakken",
    "Kongens gate",
    "Dronningens gate",
    "Sjøgata",
    "Havnegata",
    "Elvegata",
    "Eikeveien",
    "Lindeveien",
    "Furuveien",
    "Tunveien",
    "Åsveien",
    "Hagegata",
    "Torggata",
    "Nygata",
    "Jernbanegata",
    "Prestegårdsveien",
    "Løkkeveien",
    "Myrveien",
    "Rådhusgata",
    "Fossveien",
    "Bekkeveien",
    "Øvre Slottsgate",
    "Nedre Storgate",
)
_SECOND_LINES = ("Leil. H0101", "Leil. H0201", "Leil. H0302", "Leil. U0101", "Inngang B")
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
_MOBILE_PREFIXES = (
    "40",
    "41",
    "46",
    "47",
    "48",
    "90",
    "91",
    "92",
    "93",
    "94",
    "95",
    "97",
    "98",
    "99",
)
_LANDLINE_PREFIXES = ("22", "23", "33", "35", "51", "55", "57", "61", "62", "69", "71", "73")
_FOREIGN_ADDRESSES = (
    ("Storgatan 12", "411 38", "GÖTEBORG", "SE"),
    ("Vesterbrogade 40", "1620", "KØBENHAVN V", "DK"),
    ("Hämeentie 5", "00530", "HELSINKI", "FI"),
)

_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class LegacyLibrary:
    number: str
    name: str
    municipality_number: str


def _branch_counts() -> list[int]:
    return [
        max(1, min(25, round(inhabitants / _INHABITANTS_PER_BRANCH)))
        for _, _, inhabitants, _ in MUNICIPALITIES
    ]


def libraries() -> list[LegacyLibrary]:
    """Every library the export's borrowers belong to: the municipality's main library
    (``2`` + municipality + ``00``) and its branches (``01``, ``02``, ...)."""
    made: list[LegacyLibrary] = []
    for (number, name, _, _), branches in zip(MUNICIPALITIES, _branch_counts(), strict=True):
        for branch in range(branches):
            suffix = "bibliotek" if branch == 0 else f"bibliotek, filial {branch}"
            made.append(LegacyLibrary(f"2{number}{branch:02d}", f"{name} {suffix}", number))
    return made


def write_libraries_csv(stream: IO[str], vendor: str) -> None:
    """The libraries as ``nlr-admin libraries import`` reads them."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(("library_number", "name", "municipality_number", "vendor"))
    for library in libraries():
        writer.writerow((library.number, library.name, library.municipality_number, vendor))


def _mix(value: int) -> int:
    """splitmix64: a well-spread 64-bit hash of ``value``, cheap enough for millions of rows."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


class _Weighted:
    """Picks an item with probability proportional to its weight, from a 64-bit hash."""

    def __init__(self, items: list[Any], weights: list[float]) -> None:
        self.items = items
        self.bounds = list(accumulate(weights))

    def pick(self, bits: int) -> Any:
        point = (bits % 1_000_003) / 1_000_003 * self.bounds[-1]
        return self.items[min(len(self.items) - 1, bisect_right(self.bounds, point))]


def card_number(index: int) -> str:
    """The card number (lnr) of the ``index``-th borrower of any export."""
    return f"N{_FIRST_CARD + (index * _CARD_STEP) % _CARD_RANGE:09d}"


def birth_date(index: int, count: int) -> dt.date:
    return FIRST_BIRTH_DATE + dt.timedelta(days=index * BIRTH_DAYS // count)


def national_id(index: int, count: int) -> str:
    """The synthetic national id (fnr) of the ``index``-th of ``count`` borrowers.

    Borrowers in index order take the days in order, each day's first index taking serial 0:
    the same number ``make_synthetic_national_id(birth_date, serial)`` gives, found without
    checking the day's every individual number (the register's helper does that, which is
    too slow for millions of rows)."""
    day = index * BIRTH_DAYS // count
    first_of_day = -(-day * count // BIRTH_DAYS)
    return _synthetic_ids.get(day, index - first_of_day)


_WEIGHTS_1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_WEIGHTS_2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


class _SyntheticIds:
    """The valid synthetic ids of each birth day in order, found as far as they are asked for."""

    _MAX_DAYS = 4096

    def __init__(self) -> None:
        # day -> (the numbers found so far, the next individual number to try)
        self._days: dict[int, tuple[list[str], int]] = {}

    def get(self, day: int, serial: int) -> str:
        found, individual = self._days.get(day) or ([], -1)
        born = FIRST_BIRTH_DATE + dt.timedelta(days=day)
        stem = f"{born.day:02d}{born.month + 80:02d}{born.year % 100:02d}"
        if individual < 0:
            individual = 0 if born.year < 2000 else 500
        stop = 500 if born.year < 2000 else 1000
        digits = [int(c) for c in stem]
        first = sum(w * d for w, d in zip(_WEIGHTS_1, digits, strict=False))
        second = sum(w * d for w, d in zip(_WEIGHTS_2, digits, strict=False))
        while len(found) <= serial:
            if individual >= stop:
                raise ValueError(f"no synthetic id number {serial} for {born}")
            i1, i2, i3 = individual // 100, individual // 10 % 10, individual % 10
            k1 = -(first + 4 * i1 + 5 * i2 + 2 * i3) % 11
            k2 = -(second + 5 * i1 + 4 * i2 + 3 * i3 + 2 * k1) % 11
            if k1 != 10 and k2 != 10:
                found.append(f"{stem}{individual:03d}{k1}{k2}")
            individual += 1
        if len(self._days) >= self._MAX_DAYS and day not in self._days:
            self._days.clear()
        self._days[day] = (found, individual)
        return found[serial]


_synthetic_ids = _SyntheticIds()


class Generator:
    """The records of an export of ``count`` borrowers; ``today`` anchors the dates in it."""

    def __init__(self, count: int, today: dt.date, seed: int = 2026) -> None:
        if not 0 < count <= MAX_COUNT:
            raise ValueError(f"count must be 1 to {MAX_COUNT:,}")
        self.count = count
        self.today = today
        self.seed = seed
        self.libraries = libraries()
        branches = _branch_counts()
        by_municipality: dict[str, list[str]] = {}
        weights: list[float] = []
        for library in self.libraries:
            by_municipality.setdefault(library.municipality_number, []).append(library.number)
        for (_, _, inhabitants, _), branch_count in zip(MUNICIPALITIES, branches, strict=True):
            # The main library has half the municipality's borrowers, the branches the rest.
            if branch_count == 1:
                weights.append(float(inhabitants))
            else:
                branch_share = 0.5 / (branch_count - 1)
                weights += [inhabitants * 0.5] + [inhabitants * branch_share] * (branch_count - 1)
        self._home = _Weighted(self.libraries, weights)
        self._branches = by_municipality
        self._places = {number: places for number, _, _, places in MUNICIPALITIES}
        self._first_created = dt.datetime(2008, 1, 1, 8, 0)
        self._last_changed = dt.datetime.combine(today, dt.time())
        self._created_span = int((self._last_changed - self._first_created).total_seconds())
        self.pin_key = bench_pin_key(seed)
        self._legacy_pins = LegacyPins(self.pin_key)
        # ECB makes a PIN's ciphertext the same every time: 10,000 PINs, each encrypted once.
        self._encrypted: dict[str, str] = {}

    def pin(self, index: int) -> str | None:
        """The ``index``-th borrower's PIN (4 digits), or None: nine in ten have one."""
        h4 = _mix(_mix(_mix(_mix(index ^ (self.seed << 40)))))
        return _pin(h4, _mix(h4))

    def record(self, index: int) -> dict[str, Any]:
        """The ``index``-th borrower as the legacy register's ``Laaner``: every field, a string,
        in the Laaner's order, and ``tilknyttede`` (a list, JSON Lines only) last."""
        h = _mix(index ^ (self.seed << 40))
        h2 = _mix(h)
        h3 = _mix(h2)
        # h4 and h5 are the fields the legacy record has beyond the project's earlier export,
        # so the earlier fields of each borrower stay what they were.
        h4 = _mix(h3)
        h5 = _mix(h4)
        born = birth_date(index, self.count)
        age = (self.today - born).days // 365
        female = h & 1 == 1
        given_names = _FEMALE_NAMES if female else _MALE_NAMES
        given = given_names[(h >> 1) % len(given_names)]
        if (h >> 8) % 4 == 0:
            given += " " + given_names[(h >> 12) % len(given_names)]
        family = _FAMILY_NAMES[(h >> 20) % len(_FAMILY_NAMES)]
        home: LegacyLibrary = self._home.pick(h2)
        municipality = home.municipality_number
        # One in ten countries is written in lower case, as the legacy register let it be.
        lower_country = (h4 >> 10) % 10 == 0
        if (h2 >> 20) % 200 == 0:  # abroad
            p_line1, postal, place, country = _FOREIGN_ADDRESSES[(h2 >> 28) % 3]
            p_line2 = ""
        else:
            postal, place = self._places[municipality][(h2 >> 28) % len(self._places[municipality])]
            p_line1 = self._street(h3)
            p_line2 = _SECOND_LINES[(h3 >> 16) % 5] if (h3 >> 12) % 8 == 0 else ""
            country = "NO"
        record: dict[str, Any] = {
            "lnr": card_number(index),
            "navn": f"{family}, {given}",
            "p_adresse1": p_line1,
            "p_adresse2": p_line2,
            "p_postnr": postal,
            "p_sted": place,
            "p_land": country.lower() if lower_country else country,
            "p_sjekk": _check_flag(h4),
        }
        if (h3 >> 20) % 20 == 0:  # one in twenty has a temporary address (students, cabins)
            other = self._home.pick(h3 >> 24).municipality_number
            m_postal, m_place = self._places[other][0]
            record |= {
                "m_adresse1": self._street(_mix(h3)),
                "m_adresse2": "",
                "m_postnr": m_postal,
                "m_sted": m_place,
                "m_land": "no" if (h4 >> 14) % 10 == 0 else "NO",
                "m_sjekk": _check_flag(h4 >> 5),
                "m_gyldig_til": (self.today + dt.timedelta(days=1 + (h3 >> 32) % 365)).isoformat(),
            }
        else:
            record |= {
                "m_adresse1": "",
                "m_adresse2": "",
                "m_postnr": "",
                "m_sted": "",
                "m_land": "",
                "m_sjekk": "" if (h4 >> 5) % 20 < 2 else "0",
                "m_gyldig_til": "0000-00-00" if (h4 >> 18) % 2 else "",
            }
        mobile = _mobile(h2 >> 36) if age >= 10 and (h2 >> 34) % 20 < 17 else ""
        home_phone = _landline(h3 >> 40) if (h3 >> 36) % 7 == 0 else ""
        ascii_name = f"{given.split()[0]}.{family}".lower().translate(_ASCII)
        email = (
            f"{ascii_name}{index % 1000}@{_EMAIL_DOMAINS[(h >> 40) % 3]}"
            if age >= 13 and (h >> 44) % 10 < 8
            else ""
        )
        primary = ""
        if (h4 >> 19) % 4 == 0:  # one in four names a primary contact phone
            primary = mobile or home_phone or _landline(h5 >> 8)
        affiliated = [home.number]
        extra = (h3 >> 48) % 10
        if extra >= 6:  # four in ten have been to another branch, or another town's library
            branches = self._branches[municipality]
            affiliated.append(branches[(h3 >> 52) % len(branches)])
        if extra >= 8:
            affiliated.append(self._home.pick(h3 >> 8).number)
        affiliated = list(dict.fromkeys(affiliated))
        created = self._first_created + dt.timedelta(seconds=(h >> 8) % self._created_span)
        changed = created + dt.timedelta(
            seconds=(h2 >> 8) % max(1, int((self._last_changed - created).total_seconds()))
        )
        pin = _pin(h4, h5)
        feide = "0"
        if (h4 >> 21) % 20 == 0:
            feide = ""
        elif 6 <= age < 30 and (h4 >> 56) % 3 == 0:  # pupils and students log in with Feide
            feide = "1"
        record |= {
            "tlf_hjemme": home_phone,
            "tlf_jobb": _landline(h >> 50) if 20 <= age < 67 and (h >> 46) % 10 == 0 else "",
            "tlf_mobil": mobile,
            "epost": email,
            "epost_sjekk": _check_flag(h4 >> 32) if email else ("" if (h4 >> 32) % 20 < 2 else "0"),
            "prim_kontakt": primary,
            "hjemmebibliotek": home.number,
            "fdato": born.isoformat(),
            "fnr_hash": national_id(index, self.count),
            "kjonn": "F" if female else "M",
            "pin": "" if pin is None else self._encrypted_pin(pin),
            "passord": "",
            "feide": feide,
            # One in ten was created on a day only (the register's oldest records).
            "opprettet": created.date().isoformat()
            if (h4 >> 37) % 10 == 0
            else created.isoformat(timespec="seconds"),
            "opprettet_av": home.number,
            "sist_endret": changed.isoformat(timespec="seconds"),
            "sist_endret_av": affiliated[-1],
            "gyldig_til": self._card_expiry(h4, h5),
            "folkeregsjekk_dato": self._register_check(h4, h5, created.date()),
            "tilknyttede": affiliated,
        }
        return record

    def _encrypted_pin(self, pin: str) -> str:
        encrypted = self._encrypted.get(pin)
        if encrypted is None:
            encrypted = self._encrypted[pin] = self._legacy_pins.encrypt(pin)
        return encrypted

    def _card_expiry(self, h4: int, h5: int) -> str:
        """Three in ten cards have a last valid day: nine in ten of those ahead, one behind."""
        if (h4 >> 41) % 10 >= 3:
            return "0000-00-00" if (h4 >> 45) % 2 else ""
        if (h4 >> 46) % 10 == 0:
            return (self.today - dt.timedelta(days=1 + (h5 >> 20) % 730)).isoformat()
        return (self.today + dt.timedelta(days=1 + (h5 >> 30) % 1826)).isoformat()

    def _register_check(self, h4: int, h5: int, created: dt.date) -> str:
        """One in five was checked against the population register, on a day between their
        creation and yesterday; the rest have the legacy empty date (some an empty string)."""
        bits = (h4 >> 50) % 20
        if bits < 4:
            span = max(1, (self.today - dt.timedelta(days=1) - created).days)
            return (created + dt.timedelta(days=(h5 >> 40) % span)).isoformat()
        return "" if bits == 4 else "0000-00-00"

    def _street(self, bits: int) -> str:
        street = _STREETS[bits % len(_STREETS)]
        letter = "ABC"[(bits >> 10) % 3] if (bits >> 8) % 6 == 0 else ""
        return f"{street} {1 + (bits >> 16) % 120}{letter}"

    def lines(self, start: int = 0, stop: int | None = None) -> Iterator[str]:
        """JSON lines (with their newline) for indices ``start`` up to ``stop``."""
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        for index in range(start, self.count if stop is None else stop):
            yield dumps(self.record(index)) + "\n"

    def soap_items(self, start: int = 0, stop: int | None = None) -> Iterator[str]:
        """The records as the legacy server's SOAP ``item`` elements (see soap_item)."""
        for index in range(start, self.count if stop is None else stop):
            yield soap_item(self.record(index))


_ASCII = str.maketrans(
    {"æ": "ae", "ø": "o", "å": "a", "á": "a", "ä": "a", "ö": "o", "é": "e", " ": ""}
)


def _pin(h4: int, h5: int) -> str | None:
    return None if (h4 >> 26) % 10 == 0 else f"{h5 % 10_000:04d}"


def _check_flag(bits: int) -> str:
    """A "should be checked" flag as the legacy register held it: mostly "0", one in twenty
    "1", one in ten empty."""
    value = bits % 20
    return "1" if value == 0 else "" if value < 3 else "0"


def bench_pin_key(seed: int) -> bytes:
    """The legacy PIN key of the synthetic exports of ``seed``: 16 bytes derived from the seed,
    public and for benchmarks only (the legacy register's real key is a secret)."""
    return hashlib.sha256(f"nlr bench: synthetic legacy PIN key, seed {seed}".encode()).digest()[
        :LEGACY_KEY_BYTES
    ]


def write_pin_key(path: Path, key: bytes) -> None:
    """``key`` as 32 hex digits in an owner-only file (mode 0600), as `nlr-admin import
    --legacy-pin-key-file` takes it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # An existing file keeps its mode through O_CREAT: make it owner-only as well.
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as stream:
        stream.write(key.hex() + "\n")


def _mobile(bits: int) -> str:
    prefix = _MOBILE_PREFIXES[bits % len(_MOBILE_PREFIXES)]
    number = f"{prefix}{(bits >> 5) % 1_000_000:06d}"
    if (bits >> 30) % 3 == 0:
        return f"+47 {number}"
    return f"{number[:3]} {number[3:5]} {number[5:]}" if (bits >> 30) % 3 == 1 else number


def _landline(bits: int) -> str:
    prefix = _LANDLINE_PREFIXES[bits % len(_LANDLINE_PREFIXES)]
    return f"{prefix}{(bits >> 8) % 1_000_000:06d}"


# The legacy server's SOAP answer (SOAP 1.1 RPC/encoded, as tests/legacy_soap_fixture.py shows
# it) in its wire form: an XML declaration, then the envelope on one line without indentation.
_ENVELOPE_START = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:ns1="http://lanekortet.no" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" '
    'SOAP-ENV:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">'
    '<SOAP-ENV:Body><ns1:soekEndretResponse><return xsi:type="ns1:Resultat">'
    '<status xsi:type="xsd:boolean">true</status><melding xsi:type="xsd:string">OK</melding>'
    '<antall_treff xsi:type="xsd:int">{total}</antall_treff>'
    '<antall_poster_returnert xsi:type="xsd:int">{count}</antall_poster_returnert>'
    '<neste_indeks xsi:type="xsd:int">{next}</neste_indeks>'
    '<respons_poster SOAP-ENC:arrayType="ns1:Laaner[{count}]" xsi:type="ns1:LaanerListe">'
)
_ENVELOPE_END = (
    '</respons_poster><server_tid xsi:type="xsd:string">{time}</server_tid></return>'
    "</ns1:soekEndretResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>\n"
)
_ITEM_START = '<item xsi:type="ns1:Laaner">'
_ITEM_END = "</item>"
# Per field of the Laaner, in its order: (its start tag, its end tag, its empty element).
_SOAP_FIELDS = tuple(
    (field, f'<{field} xsi:type="xsd:string">', f"</{field}>", f'<{field} xsi:type="xsd:string"/>')
    for field in LEGACY_FIELDS
)
_LAANER_VALUES = operator.itemgetter(*LEGACY_FIELDS)
SOAP_ITEMS_PER_ENVELOPE = 1000


def soap_item(record: dict[str, Any]) -> str:
    """One record as the legacy server's ``item``: every Laaner field in its order, each an
    element with ``xsi:type="xsd:string"``, an empty one an empty element (``tilknyttede`` is
    not a Laaner field and is left out)."""
    values = _LAANER_VALUES(record)
    joined = "".join(values)
    if "&" in joined or "<" in joined or ">" in joined:
        values = [escape(value) for value in values]
    return (
        _ITEM_START
        + "".join(
            [
                start + value + end if value else empty
                for (_, start, end, empty), value in zip(_SOAP_FIELDS, values, strict=True)
            ]
        )
        + _ITEM_END
    )


EXPORT_FORMATS = ("soap", "jsonl")


def write_export(generator: Generator, stream: IO[str], chunk: int = 10_000) -> int:
    """Streams the whole export as JSON Lines to ``stream``, ``chunk`` lines per write;
    returns how many of its records have a PIN."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    pins = 0
    for start in range(0, generator.count, chunk):
        lines = []
        for index in range(start, min(generator.count, start + chunk)):
            record = generator.record(index)
            pins += record["pin"] != ""
            lines.append(dumps(record) + "\n")
        stream.write("".join(lines))
    return pins


def write_soap_export(
    generator: Generator, stream: IO[str], items_per_envelope: int = SOAP_ITEMS_PER_ENVELOPE
) -> int:
    """Streams the whole export to ``stream`` as the legacy server's SOAP answers, one after
    the other, each of ``items_per_envelope`` items (the last one the rest); returns how many
    of its records have a PIN."""
    server_time = f"{generator.today.isoformat()}T00:00:00"
    pins = 0
    for start in range(0, generator.count, items_per_envelope):
        stop = min(generator.count, start + items_per_envelope)
        items = []
        for index in range(start, stop):
            record = generator.record(index)
            pins += record["pin"] != ""
            items.append(soap_item(record))
        stream.write(
            _ENVELOPE_START.format(
                total=generator.count,
                count=stop - start,
                next=stop + 1 if stop < generator.count else 0,
            )
            + "".join(items)
            + _ENVELOPE_END.format(time=server_time)
        )
    return pins


def write(generator: Generator, stream: IO[str], file_format: str) -> int:
    """The whole export in ``file_format`` (soap or jsonl); returns how many of its records
    have a PIN."""
    if file_format == "soap":
        return write_soap_export(generator, stream)
    if file_format == "jsonl":
        return write_export(generator, stream)
    raise ValueError(f"export format must be one of {', '.join(EXPORT_FORMATS)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, required=True, help="how many borrowers")
    parser.add_argument("--out", required=True, help="the file to write, - for stdout")
    parser.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default="jsonl",
        help="the legacy server's SOAP answers (1,000 items each) or JSON Lines (default)",
    )
    parser.add_argument(
        "--pin-key-file",
        type=Path,
        help="where the PINs' legacy key goes, for nlr-admin import --legacy-pin-key-file "
        "(default: OUT.pin-key next to OUT; not written for stdout unless given)",
    )
    parser.add_argument(
        "--libraries-csv", type=Path, help="also write the libraries as a CSV for nlr-admin"
    )
    parser.add_argument(
        "--vendor",
        default="Test ILS vendor",
        help="the libraries' system vendor in the CSV (must exist in the register)",
    )
    parser.add_argument("--seed", type=int, default=2026, help="another seed, other people")
    args = parser.parse_args(argv)
    try:
        generator = Generator(args.count, dt.date.today(), args.seed)
    except ValueError as error:
        parser.error(str(error))
    if args.libraries_csv is not None:
        with args.libraries_csv.open("w", encoding="utf-8", newline="") as stream:
            write_libraries_csv(stream, args.vendor)
    key_file: Path | None = args.pin_key_file
    if key_file is None and args.out != "-":
        key_file = Path(f"{args.out}.pin-key")
    if key_file is not None:
        write_pin_key(key_file, generator.pin_key)
    started = time.monotonic()
    if args.out == "-":
        write(generator, sys.stdout, args.format)
    else:
        with open(args.out, "w", encoding="utf-8", buffering=1 << 20) as stream:
            pins = write(generator, stream, args.format)
        elapsed = time.monotonic() - started
        print(
            f"wrote {args.count:,} borrowers ({pins:,} with a PIN) as {args.format} to "
            f"{args.out} in {elapsed:.1f} s ({args.count / elapsed:,.0f}/s); "
            f"{len(generator.libraries)} libraries; PIN key in {key_file}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
