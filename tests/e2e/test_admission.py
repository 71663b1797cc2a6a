"""Admission per service: a service served without an admission strategy is refused, never
passed through unguarded; the open services answer any client the TLS layer accepted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nlr.registry.v1 import registry_service_pb2 as pb
from nlr.registry.v1 import registry_service_pb2_grpc
from nlr_server.api.server import RegisterServer
from nlr_server.api.services import Services
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.models import AuditEventRow
from register_harness import (
    OSLO,
    Registry,
    ServerThread,
    client_channel,
    create,
    error_details,
    get,
    make_config,
    new_borrower,
    wait_for_audit_rows,
)

UNLISTED = "nlr.test.v1.Unlisted"
answered: list[str] = []


async def _echo(request: bytes, context: Any) -> bytes:
    answered.append("Echo")
    return request


async def _gather(requests: Any, context: Any) -> bytes:
    answered.append("Gather")
    return b"".join([item async for item in requests])


class ServerWithAnUnlistedService(RegisterServer):
    """The register, plus a service someone added without an admission strategy for it."""

    def _add_services(self, server: grpc.aio.Server, services: Services) -> None:
        super()._add_services(server, services)
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    UNLISTED,
                    {
                        "Echo": grpc.unary_unary_rpc_method_handler(_echo),
                        "Gather": grpc.stream_unary_rpc_method_handler(_gather),
                    },
                )
            ]
        )


@pytest.fixture
def unlisted_server(
    prepared_database: str, pki: DevPkiPaths, keyring_path: Path
) -> Iterator[ServerThread]:
    config = make_config(pki, keyring_path, prepared_database)
    running = ServerThread(config, ServerWithAnUnlistedService).start()
    yield running
    running.stop()


def _raw(data: bytes) -> bytes:
    return data


def test_a_service_without_an_admission_strategy_is_refused_and_audited(
    unlisted_server: ServerThread, pki: DevPkiPaths, prepared_database: str
) -> None:
    answered.clear()
    with client_channel(unlisted_server.target, pki) as channel:
        with pytest.raises(grpc.RpcError) as echo:
            channel.unary_unary(f"/{UNLISTED}/Echo", _raw, _raw)(b"hello", timeout=10)
        with pytest.raises(grpc.RpcError) as gather:
            channel.stream_unary(f"/{UNLISTED}/Gather", _raw, _raw)(iter([b"a", b"b"]), timeout=10)
        registry = Registry(registry_service_pb2_grpc.BorrowerRegistryStub(channel), OSLO)
        registry = registry.as_library(OSLO)
        created = create(registry, new_borrower("N000000951"))
        assert get(registry, card_number="N000000951").etag == created.etag
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())

    assert echo.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_details(echo.value)[0] == "SERVICE_NOT_ADMITTED"
    assert gather.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_details(gather.value)[0] == "CALL_KIND_NOT_GUARDED"
    assert answered == []
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    refused = AuditEventRow.outcome == "PERMISSION_DENIED"
    rows = wait_for_audit_rows(
        prepared_database, 2, AuditEventRow.rpc, AuditEventRow.reason, where=refused
    )
    assert sorted(rows) == [
        ("Echo", "SERVICE_NOT_ADMITTED"),
        ("Gather", "CALL_KIND_NOT_GUARDED"),
    ]


def test_an_unknown_method_of_a_guarded_service_is_unimplemented(
    channel: grpc.Channel,
) -> None:
    with pytest.raises(grpc.RpcError) as unknown:
        channel.unary_unary("/nlr.registry.v1.BorrowerRegistry/NoSuchMethod", _raw, _raw)(
            pb.GetBorrowerRequest().SerializeToString(), timeout=10
        )
    assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
