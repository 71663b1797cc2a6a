"""Mutual TLS: only clients with a certificate from the register's CA, over TLS 1.2+, get in."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nlr_server.ops.dev_pki import CertificateAuthority, DevPkiPaths, issue_client_certificate
from register_harness import ServerThread

CALL_TIMEOUT = 5.0
# Old protocols and their ciphers sit below OpenSSL 3's default security level.
LEGACY_CIPHERS = "DEFAULT@SECLEVEL=0"

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    TLS_1_1 = ssl.TLSVersion.TLSv1_1


def pin_version(context: ssl.SSLContext, version: ssl.TLSVersion) -> None:
    """Makes the context speak exactly one protocol version (old ones warn of deprecation)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    context.set_ciphers(LEGACY_CIPHERS)


@pytest.fixture(scope="module")
def foreign_ca_client(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(CA certificate, client certificate, client key) from a CA the register does not know."""
    directory = tmp_path_factory.mktemp("foreign")
    ca = CertificateAuthority.create("Foreign CA")
    cert_pem, key_pem = issue_client_certificate(
        ca, "Foreign ILS vendor", role="ils", organization="Elsewhere AS"
    )
    paths = (directory / "ca.pem", directory / "client.pem", directory / "client.key")
    for path, content in zip(paths, (ca.certificate_pem, cert_pem, key_pem), strict=True):
        path.write_bytes(content)
    return paths


def check_health(
    target: str, *, root: Path, cert: Path | None = None, key: Path | None = None
) -> health_pb2.HealthCheckResponse:
    """One Health/Check over a fresh channel; raises grpc.RpcError if the call cannot complete."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=root.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )
    with grpc.secure_channel(target, credentials) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response: health_pb2.HealthCheckResponse = stub.Check(
            health_pb2.HealthCheckRequest(service=""), timeout=CALL_TIMEOUT
        )
        return response


def assert_call_fails_unavailable(
    target: str, *, root: Path, cert: Path | None = None, key: Path | None = None
) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        check_health(target, root=root, cert=cert, key=key)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


def test_client_with_the_dev_ils_certificate_can_check_health(
    sqlite_server: ServerThread, pki: DevPkiPaths
) -> None:
    response = check_health(
        sqlite_server.target, root=pki.ca_cert, cert=pki.ils_cert, key=pki.ils_key
    )

    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_client_without_certificate_cannot_connect(
    sqlite_server: ServerThread, pki: DevPkiPaths
) -> None:
    assert_call_fails_unavailable(sqlite_server.target, root=pki.ca_cert)


def test_client_with_certificate_from_a_foreign_ca_cannot_connect(
    sqlite_server: ServerThread, pki: DevPkiPaths, foreign_ca_client: tuple[Path, Path, Path]
) -> None:
    _, foreign_cert, foreign_key = foreign_ca_client

    assert_call_fails_unavailable(
        sqlite_server.target, root=pki.ca_cert, cert=foreign_cert, key=foreign_key
    )


def test_client_that_does_not_trust_the_register_ca_cannot_connect(
    sqlite_server: ServerThread, pki: DevPkiPaths, foreign_ca_client: tuple[Path, Path, Path]
) -> None:
    foreign_ca, _, _ = foreign_ca_client

    assert_call_fails_unavailable(
        sqlite_server.target, root=foreign_ca, cert=pki.ils_cert, key=pki.ils_key
    )


# --- protocol versions, below gRPC, with Python's ssl module and the openssl command ---


def client_context(pki: DevPkiPaths, version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that offers exactly one TLS version, with the dev ILS certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    pin_version(context, version)
    context.load_verify_locations(pki.ca_cert)
    context.load_cert_chain(pki.ils_cert, pki.ils_key)
    context.set_alpn_protocols(["h2"])
    return context


def handshake(port: int, context: ssl.SSLContext) -> str:
    """Completes a TLS handshake with 127.0.0.1:port; returns the negotiated protocol version."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=CALL_TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        version = tls.version()
    assert version is not None
    return version


@contextlib.contextmanager
def tls_1_1_peer(pki: DevPkiPaths) -> Iterator[int]:
    """A loopback TLS server that speaks only TLS 1.1, to prove this machine's client can offer it.

    Without this control a refusal could come from the local OpenSSL, not from the register.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    pin_version(context, TLS_1_1)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(CALL_TIMEOUT)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                connection.settimeout(CALL_TIMEOUT)
                with (
                    contextlib.suppress(OSError),
                    context.wrap_socket(connection, server_side=True),
                ):
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(timeout=CALL_TIMEOUT)


def test_local_client_can_offer_tls_1_1(pki: DevPkiPaths) -> None:
    with tls_1_1_peer(pki) as port:
        assert handshake(port, client_context(pki, TLS_1_1)) == "TLSv1.1"


def test_register_refuses_a_tls_1_1_handshake(
    sqlite_server: ServerThread, pki: DevPkiPaths
) -> None:
    with tls_1_1_peer(pki) as control_port:
        assert handshake(control_port, client_context(pki, TLS_1_1)) == "TLSv1.1"

    # The server's TLS stack drops the connection without a protocol_version alert, so the client
    # sees an EOF in the handshake rather than an alert.
    with pytest.raises(ssl.SSLError) as refused:
        handshake(sqlite_server.port, client_context(pki, TLS_1_1))
    # A client that could not offer TLS 1.1 would fail with NO_PROTOCOLS_AVAILABLE instead.
    assert refused.value.reason in ("UNEXPECTED_EOF_WHILE_READING", "TLSV1_ALERT_PROTOCOL_VERSION")


def test_register_accepts_a_tls_1_2_handshake_from_the_same_client_code(
    sqlite_server: ServerThread, pki: DevPkiPaths
) -> None:
    assert handshake(sqlite_server.port, client_context(pki, ssl.TLSVersion.TLSv1_2)) == "TLSv1.2"


def s_client(port: int, pki: DevPkiPaths, protocol_flag: str) -> subprocess.CompletedProcess[str]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    return subprocess.run(
        [
            openssl,
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            protocol_flag,
            "-cipher",
            LEGACY_CIPHERS,
            "-cert",
            str(pki.ils_cert),
            "-key",
            str(pki.ils_key),
            "-CAfile",
            str(pki.ca_cert),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def negotiated_cipher_line(output: str) -> str:
    """s_client's summary line: 'New, <version>, Cipher is <cipher>' or '... (NONE)'."""
    return next(line for line in output.splitlines() if line.startswith("New, "))


def test_openssl_s_client_cannot_negotiate_tls_1_1_with_the_register(
    sqlite_server: ServerThread, pki: DevPkiPaths
) -> None:
    with tls_1_1_peer(pki) as control_port:
        control = s_client(control_port, pki, "-tls1_1")
    # Exit statuses are no signal: neither peer sends close_notify, so s_client always reports an
    # unexpected EOF. The summary line says whether a cipher (hence a protocol) was negotiated.
    assert "Cipher is (NONE)" not in negotiated_cipher_line(control.stdout)
    assert "Protocol  : TLSv1.1" in control.stdout

    refused = s_client(sqlite_server.port, pki, "-tls1_1")

    assert refused.returncode != 0
    assert negotiated_cipher_line(refused.stdout) == "New, (NONE), Cipher is (NONE)"


def test_openssl_s_client_negotiates_tls_1_2_with_the_register(
    sqlite_server: ServerThread, pki: DevPkiPaths
) -> None:
    accepted = s_client(sqlite_server.port, pki, "-tls1_2")

    assert negotiated_cipher_line(accepted.stdout).startswith("New, TLSv1.2, Cipher is ECDHE-")
    assert "Verify return code: 0 (ok)" in accepted.stdout
