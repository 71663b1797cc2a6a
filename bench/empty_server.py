"""The ceiling: a bare grpc.aio server with the register's mutual TLS that answers at once.

``python -m bench.empty_server --listen 127.0.0.1:PORT --cert C --key K --client-ca CA`` serves
``/nlr.bench.Empty/Call`` until SIGTERM or SIGINT: bytes in, empty bytes out, no interceptor,
no database, no (de)serialisation. Whatever the register does beyond this is its own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

SERVICE = "nlr.bench.Empty"
METHOD = f"/{SERVICE}/Call"


async def _answer(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return b""


def _handler() -> grpc.GenericRpcHandler:
    # No serializers: the request and the response stay bytes.
    call: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(_answer)
    return grpc.method_handlers_generic_handler(SERVICE, {"Call": call})


async def serve(listen: str, cert: Path, key: Path, client_ca: Path) -> None:
    await serve_until_stopped((_handler(),), listen, cert, key, client_ca)


async def serve_until_stopped(
    handlers: Sequence[grpc.GenericRpcHandler],
    listen: str,
    cert: Path,
    key: Path,
    client_ca: Path,
) -> None:
    """Serves ``handlers`` with the register's mutual TLS until SIGTERM or SIGINT."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(tuple(handlers))
    credentials = grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())],
        root_certificates=client_ca.read_bytes(),
        require_client_auth=True,
    )
    if server.add_secure_port(listen, credentials) == 0:
        raise SystemExit(f"cannot listen on {listen}")
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await server.stop(0.5)


def arguments(description: str | None) -> argparse.ArgumentParser:
    """The options every bench server takes: where to listen and its TLS files."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--listen", required=True, help="host:port, loopback only")
    parser.add_argument("--cert", type=Path, required=True, help="server certificate (PEM)")
    parser.add_argument("--key", type=Path, required=True, help="server private key (PEM)")
    parser.add_argument("--client-ca", type=Path, required=True, help="client CA (PEM)")
    return parser


def parse(parser: argparse.ArgumentParser) -> argparse.Namespace:
    args = parser.parse_args()
    if not args.listen.startswith("127.0.0.1:"):
        parser.error("--listen must be on 127.0.0.1")
    return args


def main() -> None:
    args = parse(arguments(__doc__))
    asyncio.run(serve(args.listen, args.cert, args.key, args.client_ca))


if __name__ == "__main__":
    main()
