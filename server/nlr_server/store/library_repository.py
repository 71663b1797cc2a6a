"""Libraries in the database."""

from __future__ import annotations

from sqlalchemy.orm import Session

from nlr_server.domain.library import Library
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.store.models import LibraryRow


class SqlLibraryRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, number: LibraryNumber) -> Library | None:
        row = self._session.get(LibraryRow, number.value)
        if row is None:
            return None
        return Library(number=LibraryNumber(row.library_number), name=row.name, active=row.active)

    def add(self, library: Library) -> None:
        self._session.add(
            LibraryRow(
                library_number=library.number.value, name=library.name, active=library.active
            )
        )
        self._session.flush()
