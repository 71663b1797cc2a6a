"""The audit trail: who touched which borrower, when, through which call, with what outcome.

An event holds identifiers only (vendor id, library number, card number, internal borrower id),
never personal data values, so the trail can be kept and handed to an auditor as it is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


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
