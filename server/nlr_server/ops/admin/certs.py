"""`nlr-admin certs`: vendors' client certificates, issued from the operator's CA or registered.

The CA's private key stays with the operator (a file named by option or environment); the
register keeps only each certificate's fingerprint, role and validity, never a private key.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import string
import unicodedata
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from nlr_server.crypto.private_file import write_file_atomically, write_private_file
from nlr_server.domain.vendor import Role, Vendor, VendorCertificate
from nlr_server.ops.admin import (
    AdminError,
    Commands,
    NotFound,
    add_command,
    add_group,
    add_json_option,
    now,
    print_json,
    store,
    timestamp,
    vendor_named,
)
from nlr_server.ops.dev_pki import (
    CertificateAuthority,
    certificate_fingerprint,
    issue_client_certificate,
)

CA_CERT_VARIABLE = "NLR_CA_CERT"
CA_KEY_VARIABLE = "NLR_CA_KEY"
DEFAULT_VALID_DAYS = 825
MAX_VALID_DAYS = 3650
# Shorter prefixes of a SHA-256 fingerprint are too easy to mistype into another certificate's.
MIN_FINGERPRINT_PREFIX = 12
_CERTIFICATE_FILE_MODE = 0o644
_OUT_DIRECTORY_MODE = 0o700
_MAX_SUBJECT_LENGTH = 300
_ROLES = [role.value for role in Role]
_HEX = frozenset(string.hexdigits.lower())
# Letters the ASCII folding below would drop rather than spell out.
_SPELLED_OUT = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "ß": "ss", "œ": "oe", "đ": "d"})


def add_commands(commands: Commands) -> None:
    certs = add_group(commands, "certs", "vendors' client certificates")

    issue = add_command(
        certs,
        "issue",
        _issue,
        "issue a client certificate for a vendor and register it",
        f"Writes DIR/<vendor>-<role>.pem and .key (0600; never overwrites) for the operator to "
        f"hand to the vendor. The CA certificate and key come from --ca-cert/--ca-key or "
        f"{CA_CERT_VARIABLE}/{CA_KEY_VARIABLE}; the CA key is never stored in the register.",
    )
    issue.add_argument("--vendor", required=True, metavar="NAME", help="the vendor's name")
    issue.add_argument("--role", required=True, choices=_ROLES, help="what the certificate is for")
    issue.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="directory for the files"
    )
    issue.add_argument(
        "--ca-cert", type=Path, metavar="PATH", help=f"CA certificate (default ${CA_CERT_VARIABLE})"
    )
    issue.add_argument(
        "--ca-key", type=Path, metavar="PATH", help=f"CA private key (default ${CA_KEY_VARIABLE})"
    )
    issue.add_argument(
        "--days",
        type=int,
        default=DEFAULT_VALID_DAYS,
        metavar="N",
        help=f"days the certificate is valid (1..{MAX_VALID_DAYS}, default {DEFAULT_VALID_DAYS})",
    )

    register = add_command(
        certs,
        "register",
        _register,
        "register an existing client certificate for a vendor",
        "For certificates issued elsewhere (e.g. the dev PKI). The certificate's OU must name "
        "the role.",
    )
    register.add_argument("--vendor", required=True, metavar="NAME", help="the vendor's name")
    register.add_argument(
        "--role", required=True, choices=_ROLES, help="what the certificate is for"
    )
    register.add_argument("certificate", type=Path, metavar="CERT_PEM", help="PEM certificate")

    listing = add_command(certs, "list", _list, "list registered certificates")
    listing.add_argument("--vendor", metavar="NAME", help="only this vendor's certificates")
    add_json_option(listing)

    revoke = add_command(
        certs,
        "revoke",
        _revoke,
        "revoke a certificate: the register refuses it from then on",
        f"FINGERPRINT is the SHA-256 fingerprint from `certs list`, or an unambiguous prefix "
        f"of at least {MIN_FINGERPRINT_PREFIX} hex digits (colons are ignored).",
    )
    revoke.add_argument("fingerprint", metavar="FINGERPRINT", help="fingerprint or prefix")


def certificate_record(
    certificate_pem: bytes, vendor: Vendor, role: Role, issued_at: dt.datetime
) -> VendorCertificate:
    """What the register keeps of a certificate: identifiers and validity, no key material."""
    certificate = _load_certificate(certificate_pem)
    subject = certificate.subject.rfc4514_string()
    if len(subject) > _MAX_SUBJECT_LENGTH:
        raise AdminError(f"certificate subject is longer than {_MAX_SUBJECT_LENGTH} characters")
    return VendorCertificate(
        fingerprint=certificate_fingerprint(certificate_pem),
        vendor_id=vendor.id,
        role=role,
        serial_number=format(certificate.serial_number, "x"),
        subject=subject,
        issued_at=issued_at,
        not_after=certificate.not_valid_after_utc,
    )


def _certificate_role(certificate_pem: bytes) -> str | None:
    """The role a certificate claims in its OU; None unless there is exactly one OU."""
    units = _load_certificate(certificate_pem).subject.get_attributes_for_oid(
        NameOID.ORGANIZATIONAL_UNIT_NAME
    )
    return str(units[0].value) if len(units) == 1 else None


def _file_slug(name: str) -> str:
    """A vendor's name as a file name: ``Bibliotekdata AS`` becomes ``bibliotekdata-as``."""
    folded = unicodedata.normalize("NFKD", name.lower().translate(_SPELLED_OUT))
    ascii_only = folded.encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_only).strip("-")


def _issue(args: argparse.Namespace) -> None:
    role = Role(args.role)
    if not 1 <= args.days <= MAX_VALID_DAYS:
        raise AdminError(f"--days must be between 1 and {MAX_VALID_DAYS}")
    if args.out.exists() and not args.out.is_dir():
        raise AdminError(f"--out {args.out} is not a directory")
    authority = _certificate_authority(args.ca_cert, args.ca_key)
    ca_expires = _load_certificate(authority.certificate_pem).not_valid_after_utc
    if now() + dt.timedelta(days=args.days) > ca_expires:
        raise AdminError(
            f"the CA expires {timestamp(ca_expires)}, before a {args.days}-day certificate "
            f"would: issue a shorter one with --days or renew the CA"
        )
    with store() as unit_of_work, unit_of_work() as uow:
        vendor = _vendor_in_good_standing(uow.vendors.get_by_name(args.vendor.strip()), args)
        slug = _file_slug(vendor.name) or f"vendor-{vendor.id}"
        cert_path = args.out / f"{slug}-{role.value}.pem"
        key_path = args.out / f"{slug}-{role.value}.key"
        for path in (cert_path, key_path):
            if path.exists():
                raise AdminError(f"{path} exists: move it away or choose another --out")
        cert_pem, key_pem = issue_client_certificate(
            authority,
            common_name=vendor.name,
            role=role.value,
            organization=vendor.name,
            valid_days=args.days,
        )
        record = certificate_record(cert_pem, vendor, role, now())
        uow.vendors.add_certificate(record)
        _write_certificate_files(args.out, cert_path, cert_pem, key_path, key_pem)
        try:
            uow.commit()
        except BaseException:
            # Files for a certificate the register does not know would only confuse.
            for path in (cert_path, key_path):
                path.unlink(missing_ok=True)
            raise
    print(f"issued {role.value} certificate for {vendor.name!r}")
    print(f"fingerprint  {record.fingerprint}")
    print(f"certificate  {cert_path}")
    print(f"private key  {key_path} (owner-only: hand it to the vendor, then delete it)")
    print(f"valid until  {timestamp(record.not_after)}")


def _register(args: argparse.Namespace) -> None:
    role = Role(args.role)
    try:
        cert_pem = args.certificate.read_bytes()
    except OSError as error:
        raise AdminError(f"cannot read {args.certificate}: {error.strerror or error}") from None
    _load_certificate(cert_pem, args.certificate)
    claimed = _certificate_role(cert_pem)
    if claimed != role.value:
        found = "no single OU" if claimed is None else f"OU {claimed!r}"
        raise AdminError(f"{args.certificate} has {found}, not the role {role.value!r}")
    record_time = now()
    with store() as unit_of_work, unit_of_work() as uow:
        vendor = _vendor_in_good_standing(uow.vendors.get_by_name(args.vendor.strip()), args)
        record = certificate_record(cert_pem, vendor, role, record_time)
        if record.not_after <= record_time:
            raise AdminError(f"{args.certificate} expired {timestamp(record.not_after)}")
        existing = uow.vendors.certificate(record.fingerprint)
        if existing is not None:
            owner = uow.vendors.get(existing.vendor_id)
            owner_name = owner.name if owner is not None else f"vendor {existing.vendor_id}"
            raise AdminError(
                f"certificate {record.fingerprint} is already registered to {owner_name!r}"
            )
        uow.vendors.add_certificate(record)
        uow.commit()
    print(f"registered {role.value} certificate for {vendor.name!r}")
    print(f"fingerprint  {record.fingerprint}")
    print(f"valid until  {timestamp(record.not_after)}")


def _list(args: argparse.Namespace) -> None:
    with store() as unit_of_work, unit_of_work(read_only=True) as uow:
        vendor_id = None if args.vendor is None else vendor_named(uow, args.vendor).id
        names = {v.id: v.name for v in uow.vendors.all()}
        certificates = uow.vendors.certificates(vendor_id)
    listing = [
        {
            "fingerprint": c.fingerprint,
            "vendor": names.get(c.vendor_id),
            "role": c.role.value,
            "serial": c.serial_number,
            "subject": c.subject,
            "not_after": timestamp(c.not_after),
            "revoked_at": timestamp(c.revoked_at),
        }
        for c in certificates
    ]
    if args.json:
        print_json(listing)
        return
    if not listing:
        print("no certificates")
        return
    for entry in listing:
        state = f"revoked {entry['revoked_at']}" if entry["revoked_at"] else "active"
        print(f"{entry['fingerprint']}  {entry['role']:6}  {entry['vendor']}  ({state})")
        print(f"    serial {entry['serial']}  until {entry['not_after']}  {entry['subject']}")


def _revoke(args: argparse.Namespace) -> None:
    wanted = args.fingerprint.strip().lower().replace(":", "")
    if not wanted or not set(wanted) <= _HEX:
        raise AdminError("FINGERPRINT must be hex digits (as `nlr-admin certs list` shows)")
    if len(wanted) < MIN_FINGERPRINT_PREFIX:
        raise AdminError(f"give at least {MIN_FINGERPRINT_PREFIX} hex digits of the fingerprint")
    with store() as unit_of_work, unit_of_work() as uow:
        matches = [c for c in uow.vendors.certificates() if c.fingerprint.startswith(wanted)]
        if not matches:
            raise NotFound(f"no certificate with fingerprint {wanted}")
        if len(matches) > 1:
            candidates = ", ".join(c.fingerprint for c in matches)
            raise AdminError(f"{wanted} is ambiguous: it starts {candidates}")
        certificate = matches[0]
        if certificate.revoked_at is not None:
            print(
                f"{certificate.fingerprint} was already revoked {timestamp(certificate.revoked_at)}"
            )
            return
        uow.vendors.revoke_certificate(certificate.fingerprint, now())
        uow.commit()
    print(f"revoked {certificate.fingerprint}")


def _vendor_in_good_standing(vendor: Vendor | None, args: argparse.Namespace) -> Vendor:
    if vendor is None:
        raise NotFound(f"no vendor named {args.vendor!r} (see `nlr-admin vendors list`)")
    if not vendor.active:
        raise AdminError(
            f"vendor {vendor.name!r} is disabled and gets no new certificates "
            f"(`nlr-admin vendors enable` first)"
        )
    return vendor


def _certificate_authority(cert: Path | None, key: Path | None) -> CertificateAuthority:
    cert_path = cert or _path_from_environment(CA_CERT_VARIABLE, "--ca-cert")
    key_path = key or _path_from_environment(CA_KEY_VARIABLE, "--ca-key")
    return CertificateAuthority.load(cert_path, key_path)


def _path_from_environment(variable: str, option: str) -> Path:
    value = os.environ.get(variable, "").strip()
    if not value:
        raise AdminError(f"name the CA with {option} or {variable}")
    return Path(value).expanduser()


def _load_certificate(pem: bytes, source: Path | None = None) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise AdminError(f"{source or 'the file'} is not a PEM certificate") from None


def _write_certificate_files(
    directory: Path, cert_path: Path, cert_pem: bytes, key_path: Path, key_pem: bytes
) -> None:
    try:
        directory.mkdir(mode=_OUT_DIRECTORY_MODE, parents=True, exist_ok=True)
        write_private_file(key_path, key_pem, overwrite=False)
    except FileExistsError:
        raise AdminError(f"{key_path} exists: move it away or choose another --out") from None
    except OSError as error:
        raise AdminError(f"cannot write to {directory}: {error.strerror or error}") from None
    try:
        write_file_atomically(cert_path, cert_pem, mode=_CERTIFICATE_FILE_MODE, overwrite=False)
    except OSError as error:
        with contextlib.suppress(OSError):
            key_path.unlink()
        if isinstance(error, FileExistsError):
            raise AdminError(f"{cert_path} exists: move it away or choose another --out") from None
        raise AdminError(f"cannot write to {directory}: {error.strerror or error}") from None
