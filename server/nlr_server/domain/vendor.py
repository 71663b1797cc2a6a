"""System vendors (systemleverandører), their certificates and what each role may call."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    """What a client certificate is for; carried in the certificate's OU and in the register."""

    ILS = "ils"
    AUTH = "auth"
    PORTAL = "portal"


# Which services each role may call. An ILS checks PINs through Authenticate too (its own web
# catalogue logs borrowers in there), since PINs never leave the register.
REGISTRY_SERVICE = "nlr.registry.v1.BorrowerRegistry"
AUTH_SERVICE = "nlr.auth.v1.Authenticate"
SELF_SERVICE = "nlr.selfservice.v1.SelfService"

_SERVICES_BY_ROLE: dict[Role, frozenset[str]] = {
    Role.ILS: frozenset({REGISTRY_SERVICE, AUTH_SERVICE}),
    Role.AUTH: frozenset({AUTH_SERVICE}),
    Role.PORTAL: frozenset({SELF_SERVICE}),
}


def may_call(role: Role, service: str) -> bool:
    return service in _SERVICES_BY_ROLE[role]


@dataclass(frozen=True, slots=True)
class Vendor:
    id: int
    name: str
    active: bool


@dataclass(frozen=True, slots=True)
class VendorCertificate:
    """One issued client certificate, known by the SHA-256 fingerprint of its DER encoding.

    A re-issued certificate for the same subject has another fingerprint, so it is another
    credential: revoking one never revokes or re-admits the other.
    """

    fingerprint: str
    vendor_id: int
    role: Role
    serial_number: str
    subject: str
    issued_at: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the vendor behind a valid, registered, unrevoked certificate."""

    vendor: Vendor
    role: Role
    fingerprint: str
