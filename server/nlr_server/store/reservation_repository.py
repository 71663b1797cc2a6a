"""Card number reservations in the database, handed out from one series without overlap."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from nlr_server.domain.card_reservation import CardNumberReservation
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.store.models import CardNumberReservationRow, CardNumberRow, CardNumberSeriesRow


class SqlReservationRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def next_free_number(self) -> int:
        """The first number past every reservation and every card number ever issued.

        Locks the series row first, so concurrent reservations queue up here (PostgreSQL row
        lock; SQLite writers are serialised anyway) and never get overlapping ranges.
        """
        self._session.execute(
            update(CardNumberSeriesRow)
            .where(CardNumberSeriesRow.id == 1)
            .values(next_number=CardNumberSeriesRow.next_number)
        )
        series = self._session.scalar(
            select(CardNumberSeriesRow.next_number).where(CardNumberSeriesRow.id == 1)
        )
        highest_issued = self._session.scalar(select(func.max(CardNumberRow.card_number)))
        issued = int(highest_issued[1:]) + 1 if highest_issued else 1
        return max(series or 1, issued)

    def add(self, reservation: CardNumberReservation) -> None:
        self._session.add(
            CardNumberReservationRow(
                library_number=reservation.library_number.value,
                first_number=reservation.first,
                last_number=reservation.last,
                reserved_at=reservation.reserved_at,
            )
        )
        self._session.execute(
            update(CardNumberSeriesRow)
            .where(CardNumberSeriesRow.id == 1)
            .values(next_number=reservation.last + 1)
        )
        self._session.flush()

    def holder_of(self, number: int) -> LibraryNumber | None:
        """The library whose reserved range holds ``number``, if any."""
        library = self._session.scalar(
            select(CardNumberReservationRow.library_number).where(
                CardNumberReservationRow.first_number <= number,
                CardNumberReservationRow.last_number >= number,
            )
        )
        return None if library is None else LibraryNumber(library)

    def of_library(self, library: LibraryNumber) -> list[CardNumberReservation]:
        rows = self._session.scalars(
            select(CardNumberReservationRow)
            .where(CardNumberReservationRow.library_number == library.value)
            .order_by(CardNumberReservationRow.id)
        )
        return [
            CardNumberReservation(
                library_number=LibraryNumber(r.library_number),
                first=r.first_number,
                count=r.last_number - r.first_number + 1,
                reserved_at=r.reserved_at,
            )
            for r in rows
        ]
