"""Refusals recorded and mapped right: a cancelled stream, a refused certificate, a raced
uniqueness check, a new kind of error."""

from __future__ import annotations

import logging
import time

import grpc
import pytest
from sqlalchemy import select, update

from feed_harness import Watch
from nlr.registry.v1 import registry_service_pb2_grpc
from nlr_server.api.errors import status_code
from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.domain import errors
from nlr_server.ops.dev_pki import DevPkiPaths, certificate_fingerprint
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import AuditEventRow, BorrowerRow, table_of
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory
from register_harness import (
    OSLO,
    ClientCertificates,
    Registry,
    ServerThread,
    client_channel,
    create,
    error_details,
    get,
    new_borrower,
    revoke_certificate,
    wait_for_audit_rows,
)


def test_a_stream_cancelled_by_its_client_logs_no_error(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Enough changes that each stream is still replaying when it is cancelled.
    for n in range(200):
        create(registry, new_borrower(f"N00000{1000 + n:04d}"))
    watches = [Watch(registry) for _ in range(3)]
    for watch in watches:
        watch.changes(1)
        watch.cancel()
    # Cancelled mid-replay, a stream's generator is closed later by the event loop, in a
    # context of its own; give the server the moment that takes.
    time.sleep(1.0)
    assert get(registry, card_number="N000001000").card_number == "N000001000"
    troubles = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING or "Context" in r.getMessage() or r.exc_info
    ]
    assert troubles == []


@pytest.mark.parametrize(
    ("certificate", "reason"),
    [("unregistered", "CERTIFICATE_UNKNOWN"), ("revoked", "CERTIFICATE_REVOKED")],
)
def test_a_refused_certificate_is_audited_with_its_fingerprint(
    server: ServerThread,
    pki: DevPkiPaths,
    certificates: ClientCertificates,
    prepared_database: str,
    keyring: Keyring,
    certificate: str,
    reason: str,
) -> None:
    cert, key = certificates.path(certificate)
    if certificate == "revoked":
        revoke_certificate(prepared_database, keyring, cert)
    fingerprint = certificate_fingerprint(cert.read_bytes())
    with client_channel(server.target, pki, cert=cert, key=key) as channel:
        stranger = Registry(registry_service_pb2_grpc.BorrowerRegistryStub(channel), OSLO)
        with pytest.raises(grpc.RpcError) as refused:
            get(stranger.as_library(OSLO), card_number="N000000902")
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    seen_reason = error_details(refused.value)[0]
    rows = wait_for_audit_rows(
        prepared_database,
        1,
        AuditEventRow.outcome,
        AuditEventRow.reason,
        where=AuditEventRow.certificate_fingerprint == fingerprint,
    )
    assert rows == [("UNAUTHENTICATED", seen_reason)]
    assert seen_reason == reason


def test_every_subclass_of_a_register_error_maps_to_its_parents_status() -> None:
    class ShelfNotFound(errors.NotFound):
        pass

    class StaleShelf(errors.EtagMismatch):
        pass

    class TooManyShelves(errors.RateLimited):
        pass

    assert status_code(ShelfNotFound("x")) == grpc.StatusCode.NOT_FOUND
    assert status_code(StaleShelf("x")) == grpc.StatusCode.ABORTED
    assert status_code(TooManyShelves("x", retry_after=1)) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_code(errors.CardNumberRetired("x")) == grpc.StatusCode.FAILED_PRECONDITION
    assert status_code(errors.Unavailable("x", retry_after=1)) == grpc.StatusCode.UNAVAILABLE
    assert status_code(errors.RegisterError("x")) == grpc.StatusCode.INTERNAL


def _race(url: str, keyring: Keyring, change: dict[str, object]) -> errors.RegisterError:
    """What a unit of work raises when the database refuses, at commit, a value a concurrent
    writer has taken since the use case checked it: the second borrower made to take it."""
    borrowers = table_of(BorrowerRow)
    engine = create_store_engine(url)
    try:
        with (
            pytest.raises(errors.RegisterError) as raised,
            SqlUnitOfWorkFactory(engine, NationalIdSealer(keyring))() as uow,
        ):
            uow.borrowers  # noqa: B018  # the use case's repositories, as it would have them
            session = uow._session  # the racer's raw write, past every check
            second = session.scalars(select(borrowers.c.id).order_by(borrowers.c.id.desc())).first()
            session.execute(update(borrowers).where(borrowers.c.id == second).values(**change))
            uow.commit()
        return raised.value
    finally:
        engine.dispose()


def test_a_lost_uniqueness_race_answers_with_the_reason_of_the_unraced_path(
    registry: Registry, prepared_database: str, keyring: Keyring
) -> None:
    create(registry, new_borrower("N000000903"))
    create(registry, new_borrower("N000000904"))
    borrowers = table_of(BorrowerRow)
    engine = create_store_engine(prepared_database)
    try:
        with engine.connect() as connection:
            first_index = connection.execute(
                select(borrowers.c.national_id_index).where(borrowers.c.card_number == "N000000903")
            ).scalar_one()
    finally:
        engine.dispose()

    card_race = _race(prepared_database, keyring, {"card_number": "N000000903"})
    national_id_race = _race(prepared_database, keyring, {"national_id_index": first_index})

    assert isinstance(card_race, errors.AlreadyExists)
    assert card_race.reason == "CARD_NUMBER_IN_USE"
    assert isinstance(national_id_race, errors.AlreadyExists)
    assert national_id_race.reason == "NATIONAL_ID_IN_USE"
    for raced in (card_race, national_id_race):
        assert "N000000903" not in str(raced)
        assert raced.__cause__ is None and raced.__suppress_context__
    assert get(registry, card_number="N000000904").card_number == "N000000904"
