"""A borrower's change of email or mobile phone in SelfService: the new value waits, with a
one-time code sent to it, until the code comes back; a few wrong codes drop it, and only a few
codes are sent an hour."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from nlr_server.domain.errors import RateLimited, Unauthenticated

CODE_DIGITS = 6
CODE_LIFETIME = dt.timedelta(minutes=15)
# Wrong codes before the waiting change is dropped (and must be asked for again).
CODE_ATTEMPTS = 5
# Codes sent per borrower and kind within the window.
SENDS_PER_WINDOW = 5
SEND_WINDOW = dt.timedelta(hours=1)


class ContactKind(enum.StrEnum):
    EMAIL = "email"
    MOBILE_PHONE = "mobile_phone"


@dataclass(frozen=True, slots=True)
class PendingContact:
    """A new email or mobile waiting for its code (the code itself only as a verifier)."""

    borrower_id: int
    kind: ContactKind
    value: str = field(repr=False)
    code_verifier: bytes = field(repr=False)
    expires_at: dt.datetime
    attempts: int = 0
    # How many codes were sent since window_started_at.
    sends: int = 1
    window_started_at: dt.datetime | None = None

    def sends_after(self, now: dt.datetime) -> tuple[int, dt.datetime]:
        """The count of sends and its window's start once one more is sent at ``now``;
        RateLimited when the window's sends are used up."""
        started = self.window_started_at
        if started is None or now - started >= SEND_WINDOW:
            return 1, now
        if self.sends >= SENDS_PER_WINDOW:
            raise RateLimited(
                "too many codes sent: try again later",
                retry_after=(started + SEND_WINDOW - now).total_seconds(),
                reason="TOO_MANY_CODES",
            )
        return self.sends + 1, started


def contact_code_invalid(left: int) -> Unauthenticated:
    if left <= 0:
        return Unauthenticated(
            "the code is wrong: too many tries, ask for a new code", reason="CODE_INVALID"
        )
    return Unauthenticated(f"the code is wrong ({left} tries left)", reason="CODE_INVALID")
