"""Libraries in the database."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from nlr_server.domain.library import Library
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.store.models import LibraryRow


class SqlLibraryRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, number: LibraryNumber) -> Library | None:
        row = self._session.get(LibraryRow, number.value)
        return None if row is None else _library(row)

    def all(self) -> list[Library]:
        rows = self._session.scalars(select(LibraryRow).order_by(LibraryRow.library_number))
        return [_library(r) for r in rows]

    def add(self, library: Library) -> None:
        row = LibraryRow(library_number=library.number.value)
        _write(row, library)
        self._session.add(row)
        self._session.flush()

    def save(self, library: Library) -> None:
        """Stores every field of an existing library."""
        row = self._session.get(LibraryRow, library.number.value)
        assert row is not None, "save() is for libraries that exist"
        _write(row, library)
        self._session.flush()


def _write(row: LibraryRow, library: Library) -> None:
    row.name = library.name
    row.active = library.active
    row.vendor_id = library.vendor_id
    row.municipality_number = library.municipality_number
    row.code_verifier = library.code_verifier


def _library(row: LibraryRow) -> Library:
    return Library(
        number=LibraryNumber(row.library_number),
        name=row.name,
        active=row.active,
        vendor_id=row.vendor_id,
        municipality_number=row.municipality_number,
        code_verifier=row.code_verifier,
    )
