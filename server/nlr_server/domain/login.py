"""What a right secret opens, on every login path: Authenticate's VerifyPin and VerifyPassword,
and the PIN a borrower gives as proof in AffiliateBorrower.

Two rules, checked in two places of a login: before the secret, the method must reach the
borrower's security level (credentials.opens: a PIN of a borrower who logs in with a password
only is checked as no PIN, and fails like a wrong one); after a right secret, the card must
still be valid (``refusal_after_success``).
"""

from __future__ import annotations

import datetime as dt

from nlr_server.domain.borrower import Borrower
from nlr_server.domain.credentials import LoginMethod, SecurityLevel, opens
from nlr_server.domain.errors import PermissionDenied


def method_reaches(method: LoginMethod, level: SecurityLevel, second_factor: bool = False) -> bool:
    """Whether a right secret of ``method`` may open anything for a borrower at ``level``;
    ``second_factor``: with a right TOTP code after it (checked next)."""
    return opens(method, level, second_factor)


def refusal_after_success(borrower: Borrower, today: dt.date) -> PermissionDenied | None:
    """What the right secret still does not open: an expired card."""
    if not borrower.card_valid_on(today):
        return PermissionDenied("the card has expired", reason="CARD_EXPIRED")
    return None
