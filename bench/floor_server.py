"""The floor: the least a GetBorrower can cost in this stack, to tell what is the register's own.

``python -m bench.floor_server --listen 127.0.0.1:PORT --cert C --key K --client-ca CA
--database URL`` serves ``/nlr.registry.v1.BorrowerRegistry/GetBorrower`` on the register's
database until SIGTERM or SIGINT, with only what no implementation can leave out: the mutual TLS
of the empty server, the request parsed, one prepared statement reading the borrower and their
affiliations (PostgreSQL: psycopg's asyncio driver on the event loop, a few connections;
SQLite: its driver on the loop), a Borrower message built from the row, and one audit row per
call committed before the answer by group commit, as the register does.

It checks no certificate, library or code, applies no view, decrypts nothing, counts nothing
and logs nothing. It is not a register: a measure of where the stack's costs end and the
register's begin.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import psycopg
from bench.empty_server import arguments, parse, serve_until_stopped
from sqlalchemy.engine import make_url

from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb

SERVICE = "nlr.registry.v1.BorrowerRegistry"
CONNECTIONS = 8

_COLUMNS = (
    "b.id, b.card_number, b.given_name, b.family_name, b.birth_date, b.address_line1,"
    " b.postal_code, b.city, b.country_code, b.email, b.mobile_phone, b.home_library, b.version"
)
_POSTGRES_READ = (
    f"SELECT {_COLUMNS}, (SELECT string_agg(a.library_number, ',') FROM affiliations a"
    " WHERE a.borrower_id = b.id) FROM borrowers b WHERE b.card_number = %s"
)
_SQLITE_READ = (
    f"SELECT {_COLUMNS}, (SELECT group_concat(a.library_number, ',') FROM affiliations a"
    " WHERE a.borrower_id = b.id) FROM borrowers b WHERE b.card_number = ?"
)
_AUDIT_TABLE = (
    "CREATE TABLE IF NOT EXISTS bench_floor_audit (occurred_at TEXT, rpc TEXT,"
    " card_number TEXT, borrower_id INTEGER, outcome TEXT)"
)
_POSTGRES_AUDIT = "INSERT INTO bench_floor_audit VALUES (%s, %s, %s, %s, %s)"
_SQLITE_AUDIT = "INSERT INTO bench_floor_audit VALUES (?, ?, ?, ?, ?)"

Row = tuple[Any, ...]
Read = Callable[[str], Awaitable[Row | None]]
Append = Callable[[Sequence[Row]], Awaitable[None]]


class GroupCommit:
    """Each call waits until its row is committed; rows that arrive meanwhile go together."""

    def __init__(self, append: Append) -> None:
        self._append = append
        self._waiting: list[tuple[Row, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()

    async def write(self, row: Row) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((row, done))
        self._wake.set()
        await done

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            waiting, self._waiting = self._waiting, []
            try:
                await self._append([row for row, _ in waiting])
            except Exception as error:
                for _, done in waiting:
                    done.set_exception(error)
            else:
                for _, done in waiting:
                    done.set_result(None)


async def _postgres(url: str) -> tuple[Read, Append]:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
    readers: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        # prepare_threshold=0: every statement prepared on its first use.
        readers.put_nowait(
            await psycopg.AsyncConnection.connect(dsn, autocommit=True, prepare_threshold=0)
        )
    writer = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    await writer.execute(_AUDIT_TABLE)

    async def read(card_number: str) -> Row | None:
        connection = await readers.get()
        try:
            cursor = await connection.execute(_POSTGRES_READ, (card_number,))
            return await cursor.fetchone()
        finally:
            readers.put_nowait(connection)

    async def append(rows: Sequence[Row]) -> None:
        async with writer.transaction(), writer.cursor() as cursor:
            await cursor.executemany(_POSTGRES_AUDIT, rows)

    return read, append


async def _sqlite(url: str) -> tuple[Read, Append]:
    path = make_url(url).database or ""
    reader = sqlite3.connect(path, check_same_thread=False)
    writer = sqlite3.connect(path, isolation_level=None, timeout=5)
    writer.execute(_AUDIT_TABLE)

    async def read(card_number: str) -> Row | None:
        row: Row | None = reader.execute(_SQLITE_READ, (card_number,)).fetchone()
        return row

    async def append(rows: Sequence[Row]) -> None:
        writer.execute("BEGIN IMMEDIATE")
        writer.executemany(_SQLITE_AUDIT, rows)
        writer.execute("COMMIT")

    return read, append


def _borrower(row: Row) -> borrower_pb2.Borrower:
    (_, card, given, family, birth, line1, postal, city, country, email, mobile, home) = row[:12]
    version, libraries = row[12], row[13]
    birth_date = birth if isinstance(birth, dt.date) else dt.date.fromisoformat(birth)
    return borrower_pb2.Borrower(
        card_number=card,
        given_name=given,
        family_name=family,
        birth_date=birth_date.isoformat(),
        birth_year=birth_date.year,
        registered_address=borrower_pb2.Address(
            lines=[line1] if line1 else [],
            postal_code=postal or "",
            city=city or "",
            country_code=country or "",
        ),
        email=email or "",
        mobile_phone=mobile or "",
        home_library=home,
        affiliations=[
            borrower_pb2.Affiliation(library_number=number)
            for number in (libraries or "").split(",")
            if number
        ],
        etag=str(version),
    )


def _handler(read: Read, audit: GroupCommit) -> grpc.GenericRpcHandler:
    async def get_borrower(
        request: pb.GetBorrowerRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetBorrowerResponse:
        row = await read(request.card_number)
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such borrower")
        assert row is not None
        await audit.write(
            (dt.datetime.now(dt.UTC).isoformat(), "GetBorrower", row[1], row[0], "OK")
        )
        return pb.GetBorrowerResponse(borrower=_borrower(row))

    call: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(
        get_borrower,
        request_deserializer=pb.GetBorrowerRequest.FromString,
        response_serializer=pb.GetBorrowerResponse.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(SERVICE, {"GetBorrower": call})


async def serve(listen: str, cert: Path, key: Path, client_ca: Path, database: str) -> None:
    store = _postgres if make_url(database).get_backend_name() == "postgresql" else _sqlite
    read, append = await store(database)
    audit = GroupCommit(append)
    committing = asyncio.create_task(audit.run())
    try:
        await serve_until_stopped((_handler(read, audit),), listen, cert, key, client_ca)
    finally:
        committing.cancel()


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--database", required=True, help="the register's database URL")
    args = parse(parser)
    asyncio.run(serve(args.listen, args.cert, args.key, args.client_ca, args.database))


if __name__ == "__main__":
    main()
