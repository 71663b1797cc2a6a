"""The audit trail: who touched which borrower, when, through which call, with what outcome.

An event holds identifiers only (actor, vendor id, library number, card number, internal
borrower id), never personal data values, so the trail can be kept and handed to an auditor as
it is.

Where events are written: a use case that changes the register adds its event to the same unit
of work as the change (``Acting.event``), so a change and its trail commit together or not at
all. Reads and refusals change nothing; the API layer writes their events, and a call's answer
is sent only once its event is committed (api/audit_writer.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nlr_server.domain.actor import Actor, ActorKind

OK = "OK"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    occurred_at: dt.datetime
    rpc: str
    outcome: str
    vendor_id: int | None = None
    library_number: str | None = None
    card_number: str | None = None
    borrower_id: int | None = None
    reason: str | None = None
    # The client certificate's SHA-256 fingerprint, also for a refused, unknown certificate.
    certificate_fingerprint: str | None = None
    # Who acted; None only for a call refused before its caller was known.
    actor_kind: ActorKind | None = None
    actor_id: str | None = None


@dataclass(frozen=True, slots=True)
class Acting:
    """An actor at work, and how they came: what the use cases are given to act and to audit.

    ``action`` names what was done: the RPC ("UpdateBorrower"), the command ("nlr-admin
    borrowers protect-address") or the task ("maintenance").
    """

    actor: Actor
    action: str
    vendor_id: int | None = None
    certificate_fingerprint: str | None = None

    def event(
        self,
        at: dt.datetime,
        *,
        card_number: str | None = None,
        borrower_id: int | None = None,
        outcome: str = OK,
        reason: str | None = None,
    ) -> AuditEvent:
        library = self.actor.library_number
        return AuditEvent(
            occurred_at=at,
            rpc=self.action,
            outcome=outcome,
            vendor_id=self.vendor_id,
            library_number=library.value if library is not None else None,
            card_number=card_number,
            borrower_id=borrower_id,
            reason=reason,
            certificate_fingerprint=self.certificate_fingerprint,
            actor_kind=self.actor.kind,
            actor_id=self.actor.id,
        )
