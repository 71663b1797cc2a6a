"""Who may act: the vendor behind a certificate, and the library it acts for."""

from __future__ import annotations

from nlr_server.crypto.library_code import verify_code
from nlr_server.domain.errors import PermissionDenied, Unauthenticated
from nlr_server.domain.library import Library
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.vendor import Caller, Vendor
from nlr_server.usecases.ports import UnitOfWorkFactory


def identify_caller(unit_of_work: UnitOfWorkFactory, fingerprint: str) -> Caller:
    """The registered, unrevoked certificate's vendor; refused if either is not in good standing."""
    with unit_of_work(read_only=True) as uow:
        certificate = uow.vendors.certificate(fingerprint)
        if certificate is None:
            raise Unauthenticated(
                "the client certificate is not registered", reason="CERTIFICATE_UNKNOWN"
            )
        if certificate.revoked_at is not None:
            raise Unauthenticated(
                "the client certificate has been revoked", reason="CERTIFICATE_REVOKED"
            )
        vendor = uow.vendors.get(certificate.vendor_id)
        if vendor is None or not vendor.active:
            raise PermissionDenied("the vendor is disabled", reason="VENDOR_DISABLED")
        return Caller(vendor=vendor, role=certificate.role, fingerprint=fingerprint)


def find_vendors_library(
    unit_of_work: UnitOfWorkFactory, vendor: Vendor, number: LibraryNumber
) -> Library:
    """The active library whose registered vendor is ``vendor``, with its code verifier.

    Unknown, disabled and other vendors' libraries are refused alike, so a vendor learns
    nothing about libraries that are not its own.
    """
    with unit_of_work(read_only=True) as uow:
        library = uow.libraries.get(number)
    if library is None or not library.active or library.vendor_id != vendor.id:
        raise PermissionDenied(
            "the calling vendor may not act for this library", reason="LIBRARY_NOT_ALLOWED"
        )
    return library


def code_matches(library: Library, code: str) -> bool:
    """Checks the presented authorization code against the stored verifier (slow by design)."""
    return library.code_verifier is not None and verify_code(code, library.code_verifier)
