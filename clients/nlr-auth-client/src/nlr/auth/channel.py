"""The mutual-TLS gRPC channel both NLR clients talk to the register over."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias

import grpc

__all__ = ["Pem", "secure_channel"]

Pem: TypeAlias = Path | str | os.PathLike[str] | bytes
"""A PEM file's path, or its contents as bytes."""

ChannelInterceptor: TypeAlias = grpc.UnaryUnaryClientInterceptor | grpc.UnaryStreamClientInterceptor

# Keepalive pings find a connection that died silently (a NAT or proxy dropping it) within
# about a minute and a half, so a long WatchChanges stream reconnects instead of waiting for
# ever. Pings are sent only while a call is active; the register's heartbeats (every 15 s by
# default) count as data, so the server's ping policy never sees them as abuse.
_KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.enable_retries", 1),
)


def secure_channel(
    target: str,
    ca_cert: Pem,
    client_cert: Pem,
    client_key: Pem,
    *,
    service_config: dict[str, Any] | None = None,
    interceptors: Sequence[ChannelInterceptor] = (),
) -> grpc.Channel:
    """A channel to the register at `target` (host:port) over mutual TLS.

    `ca_cert` is the register's CA certificate (it signs the server's certificate), and
    `client_cert` / `client_key` the certificate and private key the register's operator issued
    to you; each is a file path or the PEM contents as bytes. `service_config` is a gRPC service
    config (default deadlines, retry policies); `interceptors` wrap every call.
    """
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read_pem(ca_cert),
        private_key=_read_pem(client_key),
        certificate_chain=_read_pem(client_cert),
    )
    options: list[tuple[str, Any]] = list(_KEEPALIVE_OPTIONS)
    if service_config is not None:
        options.append(("grpc.service_config", json.dumps(service_config)))
    channel = grpc.secure_channel(target, credentials, options=options)
    if interceptors:
        channel = grpc.intercept_channel(channel, *interceptors)
    return channel


def _read_pem(source: Pem) -> bytes:
    if isinstance(source, bytes):
        return source
    return Path(source).read_bytes()
