"""A development certificate authority that issues the server and client certificates for mTLS."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nlr_server.crypto.private_file import write_file_atomically, write_private_file

CLIENT_ROLES = ("ils", "auth", "portal")
DEV_SERVER_HOSTNAMES = ("localhost", "127.0.0.1", "::1")

_CERTIFICATE_FILE_MODE = 0o644
_DIRECTORY_MODE = 0o700
# Backdating the start tolerates small clock differences between the issuer and the peers.
_CLOCK_SKEW = datetime.timedelta(minutes=5)


class DevPkiError(Exception):
    """The dev PKI files cannot be used; the message tells the operator what to do."""


@dataclass(frozen=True, repr=False)
class CertificateAuthority:
    """A CA certificate and its private key, both PEM-encoded."""

    certificate_pem: bytes
    private_key_pem: bytes

    def __repr__(self) -> str:
        # The dataclass repr would print the private key, so only the subject is shown.
        try:
            subject = self._certificate().subject.rfc4514_string()
        except ValueError:
            subject = "<unreadable certificate>"
        return f"CertificateAuthority(subject={subject!r})"

    @classmethod
    def create(cls, common_name: str, valid_days: int = 3650) -> CertificateAuthority:
        """Create a self-signed CA that may sign leaf certificates but no further CAs."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        key_identifier = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + datetime.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                _key_usage(digital_signature=False, key_cert_sign=True, crl_sign=True),
                critical=True,
            )
            .add_extension(key_identifier, critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(key_identifier),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM),
            private_key_pem=_private_key_pem(key),
        )

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> CertificateAuthority:
        """Read a CA from PEM files and check that the key belongs to the certificate."""
        try:
            certificate_pem = cert_path.read_bytes()
            private_key_pem = key_path.read_bytes()
        except OSError as error:
            raise DevPkiError(
                f"cannot read CA file {error.filename}: {error.strerror or error}"
            ) from None
        authority = cls(certificate_pem=certificate_pem, private_key_pem=private_key_pem)
        try:
            certificate = authority._certificate()
        except ValueError:
            raise DevPkiError(f"{cert_path} is not a PEM certificate") from None
        try:
            key = authority._private_key()
        except (ValueError, TypeError):
            raise DevPkiError(f"{key_path} is not an unencrypted EC P-256 private key") from None
        try:
            is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise DevPkiError(f"{cert_path} is not a CA certificate")
        if certificate.public_key() != key.public_key():
            raise DevPkiError(f"{key_path} is not the private key of {cert_path}")
        return authority

    def _certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_pem)

    def _private_key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.private_key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError("CA key is not an elliptic-curve key")
        return key


def issue_server_certificate(
    ca: CertificateAuthority, hostnames: Sequence[str], valid_days: int = 825
) -> tuple[bytes, bytes]:
    """Issue a TLS server certificate for ``hostnames``; returns ``(cert_pem, key_pem)``.

    Names that parse as IP addresses become IP address SANs, the rest DNS names.
    """
    if not hostnames:
        raise ValueError("a server certificate needs at least one hostname")
    names: list[x509.GeneralName] = []
    for hostname in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(hostname)))
        except ValueError:
            names.append(x509.DNSName(hostname))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    return _issue_leaf(
        ca,
        subject,
        ExtendedKeyUsageOID.SERVER_AUTH,
        valid_days,
        subject_alternative_names=x509.SubjectAlternativeName(names),
    )


def issue_client_certificate(
    ca: CertificateAuthority,
    common_name: str,
    role: str,
    organization: str | None = None,
    valid_days: int = 825,
) -> tuple[bytes, bytes]:
    """Issue a TLS client certificate whose OU names the caller's role; returns the PEMs.

    ``role`` is one of ``CLIENT_ROLES``: the server reads it to decide which API the caller may
    use.
    """
    if role not in CLIENT_ROLES:
        raise ValueError(f"role must be one of {', '.join(CLIENT_ROLES)}, not {role!r}")
    attributes: list[x509.NameAttribute[str]] = []
    if organization is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return _issue_leaf(ca, x509.Name(attributes), ExtendedKeyUsageOID.CLIENT_AUTH, valid_days)


def certificate_fingerprint(cert_pem: bytes) -> str:
    """The lowercase hex SHA-256 of the certificate's DER encoding."""
    certificate = x509.load_pem_x509_certificate(cert_pem)
    return certificate.fingerprint(hashes.SHA256()).hex()


@dataclass(frozen=True)
class DevPkiPaths:
    """Where ``ensure_dev_pki`` keeps each certificate and private key."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    ils_cert: Path
    ils_key: Path
    auth_cert: Path
    auth_key: Path
    portal_cert: Path
    portal_key: Path


def ensure_dev_pki(directory: Path) -> DevPkiPaths:
    """Create the dev CA, server and demo client certificates in ``directory``, reusing any present.

    Existing files are never overwritten, so clients that already trust the CA keep working; a
    missing leaf is issued from the existing CA.
    """
    paths = DevPkiPaths(
        ca_cert=directory / "ca.pem",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        ils_cert=directory / "ils.pem",
        ils_key=directory / "ils.key",
        auth_cert=directory / "auth.pem",
        auth_key=directory / "auth.key",
        portal_cert=directory / "portal.pem",
        portal_key=directory / "portal.key",
    )
    directory.mkdir(mode=_DIRECTORY_MODE, parents=True, exist_ok=True)

    if _pair_exists(paths.ca_cert, paths.ca_key):
        ca = CertificateAuthority.load(paths.ca_cert, paths.ca_key)
    else:
        ca = CertificateAuthority.create("NLR development CA")
        _write_pair(paths.ca_cert, paths.ca_key, ca.certificate_pem, ca.private_key_pem)

    if not _pair_exists(paths.server_cert, paths.server_key):
        _write_pair(
            paths.server_cert,
            paths.server_key,
            *issue_server_certificate(ca, DEV_SERVER_HOSTNAMES),
        )
    if not _pair_exists(paths.ils_cert, paths.ils_key):
        _write_pair(
            paths.ils_cert,
            paths.ils_key,
            *issue_client_certificate(
                ca, "Demo ILS vendor", role="ils", organization="Demo Bibliotekdata AS"
            ),
        )
    if not _pair_exists(paths.auth_cert, paths.auth_key):
        _write_pair(
            paths.auth_cert,
            paths.auth_key,
            *issue_client_certificate(
                ca, "Demo ebook platform", role="auth", organization="Demo eBok AS"
            ),
        )
    if not _pair_exists(paths.portal_cert, paths.portal_key):
        _write_pair(
            paths.portal_cert,
            paths.portal_key,
            *issue_client_certificate(
                ca, "Demo borrower portal", role="portal", organization="Demo Bibliotekkortet"
            ),
        )
    return paths


def _pair_exists(cert_path: Path, key_path: Path) -> bool:
    cert_exists, key_exists = cert_path.exists(), key_path.exists()
    if cert_exists != key_exists:
        present, missing = (cert_path, key_path) if cert_exists else (key_path, cert_path)
        raise DevPkiError(
            f"dev PKI has {present} but not {missing}: remove {present} so both can be issued again"
        )
    return cert_exists


def _write_pair(cert_path: Path, key_path: Path, cert_pem: bytes, key_pem: bytes) -> None:
    write_private_file(key_path, key_pem, overwrite=False)
    write_file_atomically(cert_path, cert_pem, mode=_CERTIFICATE_FILE_MODE, overwrite=False)


def _issue_leaf(
    ca: CertificateAuthority,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    valid_days: int,
    subject_alternative_names: x509.SubjectAlternativeName | None = None,
) -> tuple[bytes, bytes]:
    ca_certificate = ca._certificate()
    ca_key = ca._private_key()
    key = ec.generate_private_key(ec.SECP256R1())
    try:
        authority_key_identifier = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        )
    except x509.ExtensionNotFound:
        # A CA made elsewhere may lack the extension; the key identifier is then derived anew.
        authority_key_identifier = x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()
        )
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(authority_key_identifier, critical=False)
    )
    if subject_alternative_names is not None:
        builder = builder.add_extension(subject_alternative_names, critical=False)
    certificate = builder.sign(ca_key, hashes.SHA256())
    return certificate.public_bytes(serialization.Encoding.PEM), _private_key_pem(key)


def _key_usage(
    *, digital_signature: bool, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
