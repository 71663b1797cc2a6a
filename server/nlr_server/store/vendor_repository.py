"""Vendors and their certificates in the database."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from nlr_server.domain.vendor import Role, Vendor, VendorCertificate
from nlr_server.store.models import VendorCertificateRow, VendorRow


class SqlVendorRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, vendor_id: int) -> Vendor | None:
        row = self._session.get(VendorRow, vendor_id)
        return None if row is None else _vendor(row)

    def get_by_name(self, name: str) -> Vendor | None:
        row = self._session.scalars(select(VendorRow).where(VendorRow.name == name)).one_or_none()
        return None if row is None else _vendor(row)

    def all(self) -> list[Vendor]:
        return [_vendor(r) for r in self._session.scalars(select(VendorRow).order_by(VendorRow.id))]

    def add(self, name: str, created_at: dt.datetime) -> Vendor:
        row = VendorRow(name=name, active=True, created_at=created_at)
        self._session.add(row)
        self._session.flush()
        return _vendor(row)

    def set_active(self, vendor_id: int, active: bool) -> None:
        row = self._session.get(VendorRow, vendor_id)
        if row is not None:
            row.active = active
            self._session.flush()

    def certificate(self, fingerprint: str) -> VendorCertificate | None:
        row = self._session.get(VendorCertificateRow, fingerprint)
        return None if row is None else _certificate(row)

    def certificates(self, vendor_id: int | None = None) -> list[VendorCertificate]:
        query = select(VendorCertificateRow).order_by(VendorCertificateRow.issued_at)
        if vendor_id is not None:
            query = query.where(VendorCertificateRow.vendor_id == vendor_id)
        return [_certificate(r) for r in self._session.scalars(query)]

    def add_certificate(self, certificate: VendorCertificate) -> None:
        self._session.add(
            VendorCertificateRow(
                fingerprint=certificate.fingerprint,
                vendor_id=certificate.vendor_id,
                role=certificate.role.value,
                serial_number=certificate.serial_number,
                subject=certificate.subject,
                issued_at=certificate.issued_at,
                not_after=certificate.not_after,
                revoked_at=certificate.revoked_at,
            )
        )
        self._session.flush()

    def revoke_certificate(self, fingerprint: str, revoked_at: dt.datetime) -> bool:
        row = self._session.get(VendorCertificateRow, fingerprint)
        if row is None:
            return False
        if row.revoked_at is None:
            row.revoked_at = revoked_at
            self._session.flush()
        return True


def _vendor(row: VendorRow) -> Vendor:
    return Vendor(id=row.id, name=row.name, active=row.active)


def _certificate(row: VendorCertificateRow) -> VendorCertificate:
    return VendorCertificate(
        fingerprint=row.fingerprint,
        vendor_id=row.vendor_id,
        role=Role(row.role),
        serial_number=row.serial_number,
        subject=row.subject,
        issued_at=row.issued_at,
        not_after=row.not_after,
        revoked_at=row.revoked_at,
    )
