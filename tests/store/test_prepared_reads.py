"""The hot reads run on the driver (store/prepared.py) give what SQLAlchemy gives, on each store:
the same rows, the same values, the same types (a timestamp a UTC datetime, a day a date); and
the whole view read in one statement (store/full_record.py) is the one read a query at a time."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.identity import IdentityKind, IdentityValue
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.store import (
    borrower_repository,
    credential_repository,
    guardian_repository,
    identity_repository,
)
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import AffiliationRow, BorrowerRow, LoginAttemptsRow
from nlr_server.store.prepared import DriverConnection, PreparedRead
from nlr_server.store.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory
from nlr_server.usecases.views import full_view
from register_harness import (
    BERGEN,
    OSLO,
    Registry,
    ServerThread,
    create,
    national_id,
    new_borrower,
)

FEIDE = borrower_pb2.IdentityKind.IDENTITY_KIND_FEIDE


def _guardian_and_ward(registry: Registry) -> None:
    """A guardian with every kind of value the hot reads return (a temporary address, a PIN,
    a Feide id), and a ward linked to them."""
    guardian = new_borrower(
        "N000000701",
        card_expiry_date=f"{dt.date.today().year + 3}-12-31",
        temporary_address=borrower_pb2.TemporaryAddress(
            address=borrower_pb2.Address(lines=["Hytteveien 2"], postal_code="3580", city="Geilo"),
            valid_until=f"{dt.date.today().year + 1}-06-30",
        ),
    )
    create(registry, guardian)
    registry.stub.SetPin(
        pb.SetPinRequest(card_number="N000000701", pin="4711"), metadata=registry.metadata
    )
    registry.stub.AddIdentity(
        pb.AddIdentityRequest(
            card_number="N000000701",
            identity=borrower_pb2.Identity(kind=FEIDE, value="kari@uio.no"),
        ),
        metadata=registry.metadata,
    )
    ward = new_borrower("N000000702", national_id=national_id(dt.date.today().replace(year=2018)))
    registry.stub.CreateBorrower(
        pb.CreateBorrowerRequest(borrower=ward, guardian_card_number="N000000701"),
        metadata=registry.metadata,
    )


def test_each_hot_read_reads_as_through_sqlalchemy(
    registry: Registry, server: ServerThread
) -> None:
    _guardian_and_ward(registry)
    engine = create_store_engine(server.config.database_url)
    try:
        with Session(engine) as session:
            ids = dict(session.execute(select(BorrowerRow.card_number, BorrowerRow.id)).all())
            guardian, ward = ids["N000000701"], ids["N000000702"]
            session.execute(
                insert(LoginAttemptsRow).values(
                    login_key=b"borrower/%d" % guardian,
                    borrower_id=guardian,
                    method="pin",
                    consecutive_failures=3,
                    lockouts=1,
                    locked_until=dt.datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC),
                    last_failure_at=dt.datetime(2030, 1, 2, 2, 49, 5, 678901, tzinfo=dt.UTC),
                    checks_in_flight=1,
                    in_flight_until=dt.datetime(2030, 1, 2, 2, 50, 5, tzinfo=dt.UTC),
                    last_event_at=dt.datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC),
                )
            )
            session.commit()
        reads: list[tuple[PreparedRead, dict[str, Any]]] = [
            (borrower_repository._BY_CARD_NUMBER, {"key": "N000000701"}),
            (borrower_repository._BY_ID, {"key": ward}),
            (
                borrower_repository._BY_IDENTITY,
                {
                    "kind": IdentityKind.FEIDE.value,
                    "value": "kari@uio.no",
                    "now": dt.datetime.now(dt.UTC),
                },
            ),
            (borrower_repository._AFFILIATIONS_OF, {"id": guardian}),
            (guardian_repository._LINKS_OF_ONE, {"id": guardian}),
            (guardian_repository._LINKS_OF_ONE, {"id": ward}),
            (identity_repository._OF_ONE, {"id": guardian}),
            *(
                (read, {"card_number": "N000000701", "unknown_lock": -1, "key_tag": b"\x01" * 32})
                for (_, by), read in credential_repository._CANDIDATES.items()
                if by == "card_number"
            ),
            *(
                (
                    read,
                    {
                        "kind": IdentityKind.FEIDE.value,
                        "value": "kari@uio.no",
                        "now": dt.datetime.now(dt.UTC),
                        "unknown_lock": -1,
                        "key_tag": b"\x01" * 32,
                    },
                )
                for (_, by), read in credential_repository._CANDIDATES.items()
                if by == "identity"
            ),
            (
                credential_repository._ATTEMPTS_OF,
                {"key": b"borrower/%d" % guardian, "method": "pin"},
            ),
        ]
        with Session(engine) as session:
            driver = DriverConnection(session)
            for read, parameters in reads:
                expected = (
                    session.connection()
                    .execute(read.statement_for(engine.dialect.name), parameters)
                    .all()
                )
                got = read.rows(driver, parameters)
                assert expected, f"a control: {read.statement_for(engine.dialect.name)} finds rows"
                assert [tuple(row) for row in got] == [tuple(row) for row in expected]
                assert [[type(v) for v in row] for row in got] == [
                    [type(v) for v in row] for row in expected
                ]
                assert [row._fields for row in got] == [tuple(row._fields) for row in expected]
                timestamps = [v for row in got for v in row if isinstance(v, dt.datetime)]
                assert all(
                    v.tzinfo is not None and v.utcoffset() == dt.timedelta(0) for v in timestamps
                )
    finally:
        engine.dispose()


def test_a_reading_unit_of_work_reads_the_whole_view_in_one_statement_as_a_writing_one_does(
    registry: Registry, server: ServerThread, keyring: Keyring
) -> None:
    _guardian_and_ward(registry)
    registry.stub.AddIdentity(
        pb.AddIdentityRequest(
            card_number="N000000701",
            identity=borrower_pb2.Identity(
                kind=borrower_pb2.IdentityKind.IDENTITY_KIND_POCKET, value="pocket-701"
            ),
        ),
        metadata=registry.metadata,
    )
    engine = create_store_engine(server.config.database_url)
    try:
        with Session(engine) as session:
            ids = dict(session.execute(select(BorrowerRow.card_number, BorrowerRow.id)).all())
            # A second affiliation, made earlier than the first, so the order is tested too.
            session.execute(
                insert(AffiliationRow).values(
                    borrower_id=ids["N000000701"],
                    library_number=BERGEN,
                    affiliated_at=dt.datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=dt.UTC),
                )
            )
            session.commit()
        units = SqlUnitOfWorkFactory(engine, NationalIdSealer(keyring))
        feide = IdentityValue.parse(IdentityKind.FEIDE, "kari@uio.no")
        now = dt.datetime.now(dt.UTC)

        def views(uow: SqlUnitOfWork) -> list[Borrower]:
            found = [
                uow.borrowers.get_by_card_number(CardNumber.parse("N000000701")),
                uow.borrowers.get_by_id(ids["N000000702"]),
                uow.borrowers.get_by_identity(feide, now),
            ]
            assert all(borrower is not None for borrower in found)
            return [full_view(uow, borrower) for borrower in found if borrower is not None]

        with units(read_only=True) as reading:
            one_statement = views(reading)
        with units() as writing:
            statement_each = views(writing)
        assert one_statement == statement_each
        guardian, ward, by_feide = one_statement
        # Controls: there is something to compare in every list.
        assert [a.library_number for a in guardian.affiliations] == [
            LibraryNumber(BERGEN),
            LibraryNumber(OSLO),
        ]
        assert [i.kind for i in guardian.identities] == [IdentityKind.FEIDE, IdentityKind.POCKET]
        assert [link.card_number.value for link in guardian.links.wards] == ["N000000702"]
        assert [link.card_number.value for link in ward.links.guardians] == ["N000000701"]
        assert by_feide == guardian
    finally:
        engine.dispose()
