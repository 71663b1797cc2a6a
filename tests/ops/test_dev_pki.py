"""The dev PKI: a CA, a server certificate and demo client certificates that work for mTLS."""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nlr_server.crypto.private_file import write_private_file
from nlr_server.ops.dev_pki import (
    CertificateAuthority,
    DevPkiError,
    DevPkiPaths,
    certificate_fingerprint,
    ensure_dev_pki,
    issue_client_certificate,
    issue_server_certificate,
)

_TIMEOUT_SECONDS = 10.0


def _all_files(paths: DevPkiPaths) -> list[Path]:
    return [
        paths.ca_cert,
        paths.ca_key,
        paths.server_cert,
        paths.server_key,
        paths.ils_cert,
        paths.ils_key,
        paths.auth_cert,
        paths.auth_key,
        paths.portal_cert,
        paths.portal_key,
    ]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _assert_signed_by(certificate: x509.Certificate, ca_certificate: x509.Certificate) -> None:
    ca_public_key = ca_certificate.public_key()
    assert isinstance(ca_public_key, ec.EllipticCurvePublicKey)
    assert certificate.signature_hash_algorithm is not None
    # Raises InvalidSignature if the CA's key did not make this signature.
    ca_public_key.verify(
        certificate.signature,
        certificate.tbs_certificate_bytes,
        ec.ECDSA(certificate.signature_hash_algorithm),
    )
    assert certificate.issuer == ca_certificate.subject


def test_ca_may_sign_leaves_but_no_further_cas() -> None:
    ca = CertificateAuthority.create("Test CA")
    certificate = x509.load_pem_x509_certificate(ca.certificate_pem)

    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    assert usage.key_cert_sign
    assert usage.crl_sign
    certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(certificate.signature_hash_algorithm, hashes.SHA256)
    assert "PRIVATE KEY" not in repr(ca)


def test_ca_loads_from_its_files(tmp_path: Path) -> None:
    paths = ensure_dev_pki(tmp_path / "pki")

    ca = CertificateAuthority.load(paths.ca_cert, paths.ca_key)

    assert ca.certificate_pem == paths.ca_cert.read_bytes()
    assert ca.private_key_pem == paths.ca_key.read_bytes()


def test_ca_load_refuses_a_key_of_another_certificate(tmp_path: Path) -> None:
    paths = ensure_dev_pki(tmp_path / "pki")

    with pytest.raises(DevPkiError, match="not the private key"):
        CertificateAuthority.load(paths.ca_cert, paths.server_key)


def test_dev_pki_is_reused_on_second_run(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    first = ensure_dev_pki(directory)
    contents = {path: path.read_bytes() for path in _all_files(first)}

    second = ensure_dev_pki(directory)

    assert second == first
    assert {path: path.read_bytes() for path in _all_files(second)} == contents
    assert sorted(p.name for p in directory.iterdir()) == sorted(p.name for p in contents)


def test_missing_leaf_is_issued_from_the_existing_ca(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    paths = ensure_dev_pki(directory)
    ca_files = (paths.ca_cert.read_bytes(), paths.ca_key.read_bytes())
    old_ils_cert = paths.ils_cert.read_bytes()
    paths.ils_cert.unlink()
    paths.ils_key.unlink()

    ensure_dev_pki(directory)

    assert (paths.ca_cert.read_bytes(), paths.ca_key.read_bytes()) == ca_files
    assert paths.ils_cert.read_bytes() != old_ils_cert
    _assert_signed_by(
        x509.load_pem_x509_certificate(paths.ils_cert.read_bytes()),
        x509.load_pem_x509_certificate(ca_files[0]),
    )


def test_half_present_pair_is_refused_not_overwritten(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    paths = ensure_dev_pki(directory)
    paths.auth_key.unlink()
    auth_cert = paths.auth_cert.read_bytes()

    with pytest.raises(DevPkiError, match=r"auth\.pem"):
        ensure_dev_pki(directory)

    assert paths.auth_cert.read_bytes() == auth_cert


def test_leaf_certificates_chain_to_the_ca(tmp_path: Path) -> None:
    paths = ensure_dev_pki(tmp_path / "pki")
    ca_certificate = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    ca_key_identifier = ca_certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value.digest

    for leaf_path in (paths.server_cert, paths.ils_cert, paths.auth_cert):
        leaf = x509.load_pem_x509_certificate(leaf_path.read_bytes())
        _assert_signed_by(leaf, ca_certificate)
        # cryptography's own check as well, which also compares issuer and subject names.
        leaf.verify_directly_issued_by(ca_certificate)
        authority = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        assert authority.value.key_identifier == ca_key_identifier
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_server_certificate_names_localhost_and_loopback(tmp_path: Path) -> None:
    paths = ensure_dev_pki(tmp_path / "pki")
    certificate = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())

    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_server_certificate_needs_a_hostname() -> None:
    with pytest.raises(ValueError, match="hostname"):
        issue_server_certificate(CertificateAuthority.create("Test CA"), [])


def test_client_certificate_carries_role_in_ou(tmp_path: Path) -> None:
    paths = ensure_dev_pki(tmp_path / "pki")

    for cert_path, role, common_name, organization in (
        (paths.ils_cert, "ils", "Demo ILS vendor", "Demo Bibliotekdata AS"),
        (paths.auth_cert, "auth", "Demo ebook platform", "Demo eBok AS"),
    ):
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        subject = certificate.subject

        def values(oid: x509.ObjectIdentifier, subject: x509.Name = subject) -> list[str]:
            return [str(attribute.value) for attribute in subject.get_attributes_for_oid(oid)]

        assert values(NameOID.ORGANIZATIONAL_UNIT_NAME) == [role]
        assert values(NameOID.COMMON_NAME) == [common_name]
        assert values(NameOID.ORGANIZATION_NAME) == [organization]
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_client_certificate_without_organization_has_no_o() -> None:
    cert_pem, _ = issue_client_certificate(
        CertificateAuthority.create("Test CA"), "Portal", "portal"
    )

    subject = x509.load_pem_x509_certificate(cert_pem).subject
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME) == []
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "portal"


def test_client_certificate_refuses_an_unknown_role() -> None:
    with pytest.raises(ValueError, match="role"):
        issue_client_certificate(CertificateAuthority.create("Test CA"), "Someone", "admin")


def test_client_certificates_get_distinct_random_serials() -> None:
    ca = CertificateAuthority.create("Test CA")

    serials = {
        x509.load_pem_x509_certificate(issue_client_certificate(ca, "X", "ils")[0]).serial_number
        for _ in range(5)
    }

    assert len(serials) == 5


def test_certificate_fingerprint_is_sha256_of_der(tmp_path: Path) -> None:
    paths = ensure_dev_pki(tmp_path / "pki")
    pem = paths.ils_cert.read_bytes()

    fingerprint = certificate_fingerprint(pem)

    der = ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))
    assert fingerprint == hashlib.sha256(der).hexdigest()
    assert fingerprint == fingerprint.lower()
    assert len(fingerprint) == 64


def test_private_keys_are_owner_only(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    paths = ensure_dev_pki(directory)

    assert _mode(directory) & 0o077 == 0
    for key_path in (paths.ca_key, paths.server_key, paths.ils_key, paths.auth_key):
        assert _mode(key_path) == 0o600
        assert b"PRIVATE KEY" in key_path.read_bytes()
    for cert_path in (paths.ca_cert, paths.server_cert, paths.ils_cert, paths.auth_cert):
        assert b"PRIVATE KEY" not in cert_path.read_bytes()


def _server_context(paths: DevPkiPaths) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(paths.server_cert, paths.server_key)
    context.load_verify_locations(paths.ca_cert)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _client_context(paths: DevPkiPaths, cert_path: Path, key_path: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(paths.ca_cert)
    context.load_cert_chain(cert_path, key_path)
    return context


def _handshake(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> tuple[dict[str, object], BaseException | None]:
    """Connect over loopback; returns what the server saw (peer OU) and the server's error."""
    outcome: dict[str, object] = {}
    failure: list[BaseException] = []

    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(_TIMEOUT_SECONDS)
        port = listener.getsockname()[1]

        def serve() -> None:
            try:
                connection, _ = listener.accept()
                connection.settimeout(_TIMEOUT_SECONDS)
                with server_context.wrap_socket(connection, server_side=True) as tls:
                    peer = tls.getpeercert(binary_form=True)
                    assert peer is not None
                    subject = x509.load_der_x509_certificate(peer).subject
                    role = subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
                    outcome["role"] = role[0].value
                    tls.sendall(b"ok")
            except BaseException as error:
                # Handed to the test thread, where a failed assertion can report it.
                failure.append(error)

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=_TIMEOUT_SECONDS) as raw,
                client_context.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                # With TLS 1.3 a refused client certificate shows up on the first read.
                outcome["reply"] = tls.recv(2)
        except (ssl.SSLError, ConnectionError) as error:
            outcome["client_error"] = error
        finally:
            server.join(_TIMEOUT_SECONDS)
        assert not server.is_alive(), "server thread did not finish in time"
    return outcome, failure[0] if failure else None


def test_dev_certificates_work_for_mutual_tls(tmp_path: Path) -> None:
    paths = ensure_dev_pki(tmp_path / "pki")

    outcome, server_error = _handshake(
        _server_context(paths), _client_context(paths, paths.ils_cert, paths.ils_key)
    )

    assert server_error is None
    assert outcome.get("reply") == b"ok"
    assert outcome.get("role") == "ils"


def test_client_certificate_from_a_foreign_ca_is_refused(tmp_path: Path) -> None:
    paths = ensure_dev_pki(tmp_path / "pki")
    foreign_cert, foreign_key = issue_client_certificate(
        CertificateAuthority.create("Foreign CA"), "Impostor", "ils"
    )
    (tmp_path / "foreign.pem").write_bytes(foreign_cert)
    write_private_file(tmp_path / "foreign.key", foreign_key)

    outcome, server_error = _handshake(
        _server_context(paths),
        _client_context(paths, tmp_path / "foreign.pem", tmp_path / "foreign.key"),
    )

    assert isinstance(server_error, ssl.SSLError)
    assert "certificate verify failed" in str(server_error)
    assert "reply" not in outcome
    assert "role" not in outcome
