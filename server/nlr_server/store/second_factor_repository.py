"""Borrowers' TOTP second factors and recovery codes in the database (secrets sealed,
recovery codes as verifiers only)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from nlr_server.domain.second_factor import TotpFactor
from nlr_server.store.erasure import erase_after_commit
from nlr_server.store.models import RecoveryCodeRow, TotpCredentialRow, table_of

_TOTP = table_of(TotpCredentialRow)
_CODES = table_of(RecoveryCodeRow)


class SqlSecondFactorRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def totp_of(self, borrower_id: int) -> TotpFactor | None:
        row = self._session.execute(
            select(
                _TOTP.c.secret_ciphertext,
                _TOTP.c.enrolled_at,
                _TOTP.c.confirmed_at,
                _TOTP.c.last_step,
            ).where(_TOTP.c.borrower_id == borrower_id)
        ).first()
        if row is None:
            return None
        return TotpFactor(
            borrower_id, row.secret_ciphertext, row.enrolled_at, row.confirmed_at, row.last_step
        )

    def begin_totp(
        self, borrower_id: int, ciphertext: bytes, key_version: int, now: dt.datetime
    ) -> None:
        """A new, unconfirmed secret in place of any the borrower had."""
        self.remove_totp(borrower_id)
        self._session.execute(
            insert(_TOTP).values(
                borrower_id=borrower_id,
                secret_ciphertext=ciphertext,
                key_version=key_version,
                enrolled_at=now,
            )
        )

    def confirm_totp(
        self, borrower_id: int, step: int, now: dt.datetime, recovery_verifiers: list[bytes]
    ) -> None:
        self._session.execute(
            update(_TOTP)
            .where(_TOTP.c.borrower_id == borrower_id)
            .values(confirmed_at=now, last_step=step)
        )
        self._session.execute(delete(_CODES).where(_CODES.c.borrower_id == borrower_id))
        self._session.execute(
            insert(_CODES),
            [{"borrower_id": borrower_id, "verifier": v} for v in recovery_verifiers],
        )

    def accept_step(self, borrower_id: int, step: int) -> bool:
        """Records that a code of ``step`` was accepted, unless one of it or a later step was
        already (by a concurrent login): whether this one counts."""
        result = self._session.execute(
            update(_TOTP)
            .where(
                _TOTP.c.borrower_id == borrower_id,
                (_TOTP.c.last_step.is_(None)) | (_TOTP.c.last_step < step),
            )
            .values(last_step=step)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def remove_totp(self, borrower_id: int) -> bool:
        """Removes the second factor with its recovery codes; whether there was one."""
        self._session.execute(delete(_CODES).where(_CODES.c.borrower_id == borrower_id))
        result = self._session.execute(delete(_TOTP).where(_TOTP.c.borrower_id == borrower_id))
        removed = bool(result.rowcount)  # type: ignore[attr-defined]
        if removed:
            erase_after_commit(self._session)
        return removed

    def recovery_codes(self, borrower_id: int) -> list[tuple[int, bytes]]:
        """The unused recovery codes' ids and verifiers."""
        rows = self._session.execute(
            select(_CODES.c.id, _CODES.c.verifier).where(
                _CODES.c.borrower_id == borrower_id, _CODES.c.used_at.is_(None)
            )
        ).all()
        return [(row.id, row.verifier) for row in rows]

    def use_recovery_code(self, code_id: int, now: dt.datetime) -> bool:
        """Marks a recovery code used, unless it already was: whether this use counts."""
        result = self._session.execute(
            update(_CODES)
            .where(_CODES.c.id == code_id, _CODES.c.used_at.is_(None))
            .values(used_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
