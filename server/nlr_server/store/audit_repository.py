"""The audit trail in the database: appended in batches, queried by operators."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from nlr_server.domain.actor import ActorKind
from nlr_server.domain.audit import AuditEvent
from nlr_server.store.models import AuditEventRow


def append_events(target: Session | Connection, events: Sequence[AuditEvent]) -> None:
    """Adds the events to ``target``'s transaction: a unit of work's session, or the
    connection of a bulk write (nlr-admin import)."""
    if not events:
        return
    target.execute(
        insert(AuditEventRow),
        [
            {
                "occurred_at": e.occurred_at,
                "vendor_id": e.vendor_id,
                "certificate_fingerprint": e.certificate_fingerprint,
                "library_number": e.library_number,
                "rpc": e.rpc,
                "card_number": e.card_number,
                "borrower_id": e.borrower_id,
                "outcome": e.outcome,
                "reason": e.reason,
                "actor_kind": e.actor_kind.value if e.actor_kind is not None else None,
                "actor_id": e.actor_id,
            }
            for e in events
        ],
    )


class SqlAuditRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def append(self, events: Sequence[AuditEvent]) -> None:
        append_events(self._session, events)

    def for_card(self, card_number: str) -> list[AuditEvent]:
        query = (
            select(AuditEventRow)
            .where(AuditEventRow.card_number == card_number)
            .order_by(AuditEventRow.occurred_at, AuditEventRow.id)
        )
        return [_event(r) for r in self._session.scalars(query)]

    def for_certificate(self, fingerprint: str) -> list[AuditEvent]:
        query = (
            select(AuditEventRow)
            .where(AuditEventRow.certificate_fingerprint == fingerprint)
            .order_by(AuditEventRow.occurred_at, AuditEventRow.id)
        )
        return [_event(r) for r in self._session.scalars(query)]

    def in_window(
        self,
        vendor_id: int,
        start: dt.datetime,
        end: dt.datetime,
        library_number: str | None = None,
    ) -> list[AuditEvent]:
        """Events of one vendor (optionally one library) with start <= occurred_at < end."""
        query = (
            select(AuditEventRow)
            .where(AuditEventRow.vendor_id == vendor_id)
            .where(AuditEventRow.occurred_at >= start, AuditEventRow.occurred_at < end)
            .order_by(AuditEventRow.occurred_at, AuditEventRow.id)
        )
        if library_number is not None:
            query = query.where(AuditEventRow.library_number == library_number)
        return [_event(r) for r in self._session.scalars(query)]


def _event(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        occurred_at=row.occurred_at,
        rpc=row.rpc,
        outcome=row.outcome,
        vendor_id=row.vendor_id,
        certificate_fingerprint=row.certificate_fingerprint,
        library_number=row.library_number,
        card_number=row.card_number,
        borrower_id=row.borrower_id,
        reason=row.reason,
        actor_kind=ActorKind(row.actor_kind) if row.actor_kind is not None else None,
        actor_id=row.actor_id,
    )
