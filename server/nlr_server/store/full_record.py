"""A borrower's whole view in one statement, for reading units of work.

GetBorrower needs the record, its affiliations, its guardian links and its identities. Read one
query each, that is four round trips to PostgreSQL; here the three lists come with the record
as JSON arrays (``json_agg`` on PostgreSQL, ``json_group_array`` on SQLite) and are decoded
into the same domain values the repositories build from their own queries. The links and
identities are left in a ``Prefetched`` that the guardian and identity repositories of the same
reading unit of work answer from, so the use cases do not change. A change that leaves links and
identities as they are reads the record with them the same way, and answers with the full view
without reading again (usecases/changes.py).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select

from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.guardian import GuardianLink, GuardianLinks
from nlr_server.domain.identity import Identity, IdentityKind
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.store.models import (
    AffiliationRow,
    BorrowerRow,
    GuardianLinkRow,
    IdentityRow,
    table_of,
)

_BORROWERS = table_of(BorrowerRow)
_OTHER = _BORROWERS.alias("other")
_AFFILIATIONS = table_of(AffiliationRow)
_LINKS = table_of(GuardianLinkRow)
_IDENTITIES = table_of(IdentityRow)


@dataclass
class Prefetched:
    """Guardian links and identities read with borrowers' records, by internal id."""

    links: dict[int, GuardianLinks] = field(default_factory=dict)
    identities: dict[int, tuple[Identity, ...]] = field(default_factory=dict)

    def clear(self) -> None:
        self.links.clear()
        self.identities.clear()


def _json_list(dialect: str, *values: ColumnElement[Any]) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.json_agg(func.json_build_array(*values))
    return func.json_group_array(func.json_array(*values))


def statement(dialect: str, columns: list[Any], condition: ColumnElement[bool]) -> Select[Any]:
    """``columns`` of the borrower ``condition`` finds, with affiliations_json, links_json and
    identities_json."""
    me = _BORROWERS.c.id
    affiliations = (
        select(_json_list(dialect, _AFFILIATIONS.c.library_number, _AFFILIATIONS.c.affiliated_at))
        .where(_AFFILIATIONS.c.borrower_id == me)
        .scalar_subquery()
    )
    other = case((_LINKS.c.child_id == me, _LINKS.c.guardian_id), else_=_LINKS.c.child_id)
    links = (
        select(
            _json_list(
                dialect,
                _LINKS.c.child_id,
                _LINKS.c.linked_at,
                _LINKS.c.linked_by,
                _OTHER.c.card_number,
            )
        )
        .select_from(_LINKS.join(_OTHER, _OTHER.c.id == other))
        .where((_LINKS.c.child_id == me) | (_LINKS.c.guardian_id == me))
        .scalar_subquery()
    )
    identities = (
        select(
            _json_list(
                dialect,
                _IDENTITIES.c.kind,
                _IDENTITIES.c.value,
                _IDENTITIES.c.created_at,
                _IDENTITIES.c.delete_after,
            )
        )
        .where(_IDENTITIES.c.borrower_id == me)
        .scalar_subquery()
    )
    return select(
        *columns,
        affiliations.label("affiliations_json"),
        links.label("links_json"),
        identities.label("identities_json"),
    ).where(condition)


def affiliations(row: Any) -> list[tuple[str, dt.datetime]]:
    """The affiliations, oldest first, as the borrower repository reads them."""
    found = [(number, _timestamp(at)) for number, at in _entries(row.affiliations_json)]
    return sorted(found, key=lambda affiliation: affiliation[1])


def prefetch(row: Any, into: Prefetched) -> None:
    """Keeps the row's guardian links and identities for the repositories to answer from."""
    into.links[row.id] = links(row)
    into.identities[row.id] = identities(row)


def links(row: Any) -> GuardianLinks:
    """The row's guardian links, oldest first, as the guardian repository reads them."""
    guardians: list[GuardianLink] = []
    wards: list[GuardianLink] = []
    for child_id, linked_at, linked_by, card_number in sorted(
        _entries(row.links_json), key=lambda entry: _timestamp(entry[1])
    ):
        link = GuardianLink(
            CardNumber(card_number), _timestamp(linked_at), LibraryNumber(linked_by)
        )
        (guardians if child_id == row.id else wards).append(link)
    return GuardianLinks(guardians=tuple(guardians), wards=tuple(wards))


def identities(row: Any) -> tuple[Identity, ...]:
    """The row's other identities, as the identity repository reads them."""
    found = [
        Identity(IdentityKind(kind), value, _timestamp(created), _timestamp(delete_after))
        for kind, value, created, delete_after in _entries(row.identities_json)
    ]
    found.sort(key=lambda identity: (identity.created_at, identity.kind.value))
    return tuple(found)


def _entries(value: Any) -> list[Any]:
    """A JSON array as the driver gives it: parsed (psycopg), text (SQLite) or NULL (no rows
    on PostgreSQL)."""
    if value is None:
        return []
    if isinstance(value, str):
        parsed: list[Any] = json.loads(value)
        return parsed
    return list(value)


def _timestamp(text: str) -> dt.datetime:
    """A stored timestamp as JSON gives it back: ISO 8601 with the session's offset
    (PostgreSQL) or UTC without one (SQLite, as SQLAlchemy stores it)."""
    value = dt.datetime.fromisoformat(text)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
