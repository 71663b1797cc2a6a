"""Moving stored secrets to the keyring's active key versions, in batches, while serving."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from nlr_server.crypto.keyring import KeyPurpose
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.crypto.totp import TotpSecretSealer
from nlr_server.store.models import BorrowerRow, TotpCredentialRow


def reencrypt_national_ids(
    engine: Engine,
    sealer: NationalIdSealer,
    active_version: int,
    *,
    batch_size: int = 500,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Re-encrypts every national id not under ``active_version``; returns how many.

    Each batch is its own short transaction, so the server keeps serving meanwhile; a row
    changed by the server in between is left alone (its update already used a current key, or
    the next run takes it). The blind index does not change, so lookups work throughout.
    """
    done = 0
    last_id = 0
    while True:
        with Session(engine) as session, session.begin():
            rows = session.execute(
                select(
                    BorrowerRow.id,
                    BorrowerRow.national_id_ciphertext,
                    BorrowerRow.national_id_key_version,
                )
                .where(
                    BorrowerRow.national_id_key_version != active_version, BorrowerRow.id > last_id
                )
                .order_by(BorrowerRow.id)
                .limit(batch_size)
            ).all()
            for borrower_id, ciphertext, old_version in rows:
                sealed = sealer.reseal(ciphertext)
                session.execute(
                    update(BorrowerRow)
                    .where(
                        BorrowerRow.id == borrower_id,
                        BorrowerRow.national_id_key_version == old_version,
                    )
                    .values(
                        national_id_ciphertext=sealed.ciphertext,
                        national_id_key_version=sealed.key_version,
                    )
                    .execution_options(synchronize_session=False)
                )
        if not rows:
            return done
        done += len(rows)
        last_id = rows[-1][0]
        if on_batch is not None:
            on_batch(done)


def reencrypt_totp_secrets(
    engine: Engine,
    sealer: TotpSecretSealer,
    active_version: int,
    *,
    batch_size: int = 500,
) -> int:
    """Re-seals every TOTP secret not under ``active_version`` (they share the national ids'
    key); returns how many. As reencrypt_national_ids, in short batches."""
    done = 0
    last_id = 0
    totp = TotpCredentialRow
    while True:
        with Session(engine) as session, session.begin():
            rows = session.execute(
                select(totp.borrower_id, totp.secret_ciphertext, totp.key_version)
                .where(totp.key_version != active_version, totp.borrower_id > last_id)
                .order_by(totp.borrower_id)
                .limit(batch_size)
            ).all()
            for borrower_id, ciphertext, old_version in rows:
                sealed = sealer.reseal(ciphertext, borrower_id)
                session.execute(
                    update(totp)
                    .where(totp.borrower_id == borrower_id, totp.key_version == old_version)
                    .values(secret_ciphertext=sealed.ciphertext, key_version=sealed.key_version)
                    .execution_options(synchronize_session=False)
                )
        if not rows:
            return done
        done += len(rows)
        last_id = rows[-1][0]


def records_using(engine: Engine, purpose: KeyPurpose, version: int) -> int:
    """How many stored values still need ``version`` of the ``purpose`` key."""
    column = {
        KeyPurpose.NATIONAL_ID_ENCRYPTION: BorrowerRow.national_id_key_version,
        KeyPurpose.PIN_VERIFIER: BorrowerRow.pin_key_version,
    }.get(purpose)
    if column is None:
        # Every blind index is made with the one index key: all records use it.
        with Session(engine) as session:
            return session.scalar(select(func.count()).select_from(BorrowerRow)) or 0
    with Session(engine) as session:
        using = session.scalar(select(func.count()).where(column == version)) or 0
        if purpose is KeyPurpose.NATIONAL_ID_ENCRYPTION:
            # TOTP secrets are sealed with the same key.
            using += (
                session.scalar(select(func.count()).where(TotpCredentialRow.key_version == version))
                or 0
            )
        return using
