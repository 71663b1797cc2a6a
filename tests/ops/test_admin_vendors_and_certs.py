"""`nlr-admin vendors` and `nlr-admin certs`, run as the operator runs them, on both stores."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from admin_runner import Admin
from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.domain.vendor import Role, VendorCertificate
from nlr_server.ops.dev_pki import DevPkiPaths, certificate_fingerprint
from nlr_server.store.database import create_store_engine
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory

VENDOR = "Bibliotekdata AS"


@pytest.fixture
def admin(database_url: str, keyring_path: Path) -> Admin:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NLR_")}
    env.update(NLR_DATABASE_URL=database_url, NLR_KEYRING=str(keyring_path))
    runner = Admin(env)
    runner("migrate")
    return runner


@pytest.fixture
def vendor(admin: Admin) -> str:
    admin("vendors", "add", VENDOR)
    return VENDOR


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """Where issued certificates go: not yet there, as an operator's fresh directory."""
    return tmp_path / "issued"


def _issue_command(
    out: Path, pki: DevPkiPaths | None, vendor: str = VENDOR, role: str = "ils"
) -> list[str]:
    """`certs issue` with the CA named by options (none when ``pki`` is None)."""
    ca = [] if pki is None else ["--ca-cert", str(pki.ca_cert), "--ca-key", str(pki.ca_key)]
    return ["certs", "issue", "--vendor", vendor, "--role", role, "--out", str(out), *ca]


def _issue(admin: Admin, pki: DevPkiPaths, out: Path, role: str = "ils") -> str:
    admin(*_issue_command(out, pki, role=role))
    return certificate_fingerprint((out / f"bibliotekdata-as-{role}.pem").read_bytes())


def test_a_vendor_is_added_listed_disabled_and_enabled(admin: Admin) -> None:
    admin("vendors", "add", VENDOR)
    admin("vendors", "add", "Demo eBok AS")

    listed = admin.json("vendors", "list")

    assert [(v["name"], v["active"], v["active_certificates"]) for v in listed] == [
        (VENDOR, True, 0),
        ("Demo eBok AS", True, 0),
    ]
    assert all(isinstance(v["id"], int) for v in listed)
    admin("vendors", "disable", VENDOR)
    assert [v["active"] for v in admin.json("vendors", "list")] == [False, True]
    admin("vendors", "enable", VENDOR)
    assert [v["active"] for v in admin.json("vendors", "list")] == [True, True]
    assert VENDOR in admin("vendors", "list").stdout


def test_a_vendor_name_is_taken_only_once(admin: Admin, vendor: str) -> None:
    assert "already exists" in admin.error("vendors", "add", vendor, expect=2)

    assert len(admin.json("vendors", "list")) == 1


def test_disabling_an_unknown_vendor_is_not_found(admin: Admin) -> None:
    assert "no vendor named 'Nobody AS'" in admin.error("vendors", "disable", "Nobody AS", expect=1)
    admin.error("vendors", "enable", "Nobody AS", expect=1)


def test_an_empty_vendor_name_is_refused(admin: Admin) -> None:
    admin.error("vendors", "add", "  ", expect=2)


def test_issued_certificate_is_signed_by_the_ca_names_the_vendor_and_is_registered(
    admin: Admin, vendor: str, pki: DevPkiPaths, out: Path
) -> None:
    printed = admin(*_issue_command(out, pki), "--days", "30").stdout

    cert_path, key_path = out / "bibliotekdata-as-ils.pem", out / "bibliotekdata-as-ils.key"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    cert_pem = cert_path.read_bytes()
    certificate = x509.load_pem_x509_certificate(cert_pem)
    certificate.verify_directly_issued_by(x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()))
    subject = certificate.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == vendor
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == vendor
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "ils"
    fingerprint = certificate_fingerprint(cert_pem)
    assert fingerprint in printed and str(cert_path) in printed and str(key_path) in printed
    assert "PRIVATE KEY" not in printed
    [listed] = admin.json("certs", "list")
    assert listed == {
        "fingerprint": fingerprint,
        "vendor": vendor,
        "role": "ils",
        "serial": format(certificate.serial_number, "x"),
        "subject": subject.rfc4514_string(),
        "not_after": certificate.not_valid_after_utc.isoformat().replace("+00:00", "Z"),
        "revoked_at": None,
    }
    remaining = certificate.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=29) < remaining <= dt.timedelta(days=30)
    assert admin.json("vendors", "list")[0]["active_certificates"] == 1


def test_the_ca_may_come_from_the_environment(
    admin: Admin, vendor: str, pki: DevPkiPaths, out: Path
) -> None:
    admin.env.update(NLR_CA_CERT=str(pki.ca_cert), NLR_CA_KEY=str(pki.ca_key))

    admin(*_issue_command(out, None, role="auth"))

    assert (out / "bibliotekdata-as-auth.pem").exists()
    assert [c["role"] for c in admin.json("certs", "list")] == ["auth"]


def test_issuing_without_a_ca_is_refused(admin: Admin, vendor: str, out: Path) -> None:
    message = admin.error(*_issue_command(out, None), expect=2)

    assert "NLR_CA_CERT" in message
    assert not out.exists()


def test_issuing_never_overwrites_files(
    admin: Admin, vendor: str, pki: DevPkiPaths, out: Path
) -> None:
    fingerprint = _issue(admin, pki, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    message = admin.error(*_issue_command(out, pki), expect=2)

    assert "exists" in message
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [c["fingerprint"] for c in admin.json("certs", "list")] == [fingerprint]


def test_issuing_for_an_unknown_vendor_is_not_found(
    admin: Admin, pki: DevPkiPaths, out: Path
) -> None:
    admin.error(*_issue_command(out, pki, "Nobody AS"), expect=1)

    assert not out.exists()


def test_a_disabled_vendor_gets_no_new_certificates(
    admin: Admin, vendor: str, pki: DevPkiPaths, out: Path
) -> None:
    admin("vendors", "disable", vendor)

    issued = admin.error(*_issue_command(out, pki), expect=2)
    registered = admin.error(
        "certs", "register", "--vendor", vendor, "--role", "ils", str(pki.ils_cert), expect=2
    )

    assert "disabled" in issued and "disabled" in registered
    assert not out.exists()
    assert admin.json("certs", "list") == []


def test_an_existing_certificate_is_registered_with_its_role(
    admin: Admin, vendor: str, pki: DevPkiPaths
) -> None:
    printed = admin("certs", "register", "--vendor", vendor, "--role", "ils", str(pki.ils_cert))

    fingerprint = certificate_fingerprint(pki.ils_cert.read_bytes())
    assert fingerprint in printed.stdout
    [listed] = admin.json("certs", "list", "--vendor", vendor)
    assert (listed["fingerprint"], listed["role"], listed["vendor"]) == (fingerprint, "ils", vendor)
    assert "OU=ils" in listed["subject"]


def test_registering_a_certificate_under_another_role_is_refused(
    admin: Admin, vendor: str, pki: DevPkiPaths
) -> None:
    message = admin.error(
        "certs", "register", "--vendor", vendor, "--role", "auth", str(pki.ils_cert), expect=2
    )

    assert "OU 'ils'" in message
    assert admin.json("certs", "list") == []


def test_a_certificate_is_registered_only_once(admin: Admin, vendor: str, pki: DevPkiPaths) -> None:
    admin("certs", "register", "--vendor", vendor, "--role", "auth", str(pki.auth_cert))

    message = admin.error(
        "certs", "register", "--vendor", vendor, "--role", "auth", str(pki.auth_cert), expect=2
    )

    assert "already registered" in message


def test_registering_a_file_that_is_no_certificate_is_refused(
    admin: Admin, vendor: str, pki: DevPkiPaths
) -> None:
    admin.error(
        "certs", "register", "--vendor", vendor, "--role", "ils", str(pki.ils_key), expect=2
    )


def test_certificates_are_listed_per_vendor(admin: Admin, vendor: str, pki: DevPkiPaths) -> None:
    admin("vendors", "add", "Demo eBok AS")
    admin("certs", "register", "--vendor", vendor, "--role", "ils", str(pki.ils_cert))
    admin("certs", "register", "--vendor", "Demo eBok AS", "--role", "auth", str(pki.auth_cert))

    assert [c["role"] for c in admin.json("certs", "list", "--vendor", "Demo eBok AS")] == ["auth"]
    assert len(admin.json("certs", "list")) == 2
    admin.error("certs", "list", "--vendor", "Nobody AS", expect=1)


def test_a_certificate_is_revoked_by_fingerprint_or_unambiguous_prefix(
    admin: Admin, vendor: str, pki: DevPkiPaths, out: Path
) -> None:
    ils = _issue(admin, pki, out, "ils")
    auth = _issue(admin, pki, out, "auth")

    admin("certs", "revoke", ils)
    admin("certs", "revoke", auth[:12].upper())

    revoked = {c["fingerprint"]: c["revoked_at"] for c in admin.json("certs", "list")}
    assert revoked.keys() == {ils, auth} and all(revoked.values())
    assert admin.json("vendors", "list")[0]["active_certificates"] == 0
    assert "already revoked" in admin("certs", "revoke", ils).stdout


def test_revoking_needs_a_known_fingerprint_of_twelve_hex_digits(admin: Admin) -> None:
    assert "12" in admin.error("certs", "revoke", "abcdef", expect=2)
    admin.error("certs", "revoke", "not-a-fingerprint-at-all", expect=2)
    admin.error("certs", "revoke", "0123456789ab", expect=1)


def test_revoking_by_an_ambiguous_prefix_changes_nothing(
    admin: Admin, vendor: str, database_url: str, keyring: Keyring
) -> None:
    prefix = "abcdef012345"
    engine = create_store_engine(database_url)
    try:
        with SqlUnitOfWorkFactory(engine, NationalIdSealer(keyring))() as uow:
            owner = uow.vendors.get_by_name(vendor)
            assert owner is not None
            for last in "01":
                uow.vendors.add_certificate(
                    VendorCertificate(
                        fingerprint=prefix + "0" * 51 + last,
                        vendor_id=owner.id,
                        role=Role.ILS,
                        serial_number="1",
                        subject="CN=test",
                        issued_at=dt.datetime.now(dt.UTC),
                        not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
                    )
                )
            uow.commit()
    finally:
        engine.dispose()

    assert "ambiguous" in admin.error("certs", "revoke", prefix, expect=2)

    assert [c["revoked_at"] for c in admin.json("certs", "list")] == [None, None]
    admin("certs", "revoke", prefix + "0" * 51 + "1")
    assert [c["revoked_at"] is None for c in admin.json("certs", "list")].count(True) == 1
