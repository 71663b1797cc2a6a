"""A borrower's TOTP second factor, as the register keeps it: enrolled (its secret sealed),
confirmed by a first code, and the last time step a code was accepted for."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from nlr_server.domain.errors import FailedPrecondition


@dataclass(frozen=True, slots=True)
class TotpFactor:
    borrower_id: int
    secret_ciphertext: bytes = field(repr=False)
    enrolled_at: dt.datetime
    confirmed_at: dt.datetime | None = None
    last_step: int | None = None

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None


def totp_not_enrolled() -> FailedPrecondition:
    return FailedPrecondition(
        "the borrower has no confirmed TOTP second factor (EnrollTotp, then ConfirmTotp)",
        reason="TOTP_NOT_ENROLLED",
    )
