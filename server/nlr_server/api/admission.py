"""How a call to each service is admitted: one strategy per service, and none for the rest.

A service is guarded because it has an admission strategy; one that is served without one
(added to the server and forgotten here) is refused, never passed through unguarded. Only the
open services (health and reflection, which probes and grpcurl use without registration) are
answered for any client whose certificate the TLS layer accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from nlr_server.api.access_control import AccessControl
from nlr_server.api.call_context import CallContext
from nlr_server.api.rate_limit import SharedCallRateLimiter
from nlr_server.api.services import Services, now
from nlr_server.crypto import session_token
from nlr_server.domain import errors
from nlr_server.domain.session import require_opened, session_invalid
from nlr_server.domain.vendor import may_call
from nlr_server.usecases import sessions

Context = grpc.aio.ServicerContext[Any, Any]


class Admission(Protocol):
    """Decides who the call is from (and for) before the servicer sees it; raises to refuse."""

    async def admit(self, call: CallContext, context: Context) -> None: ...


@dataclass(frozen=True)
class VendorOnly:
    """A registered, unrevoked certificate of a role that may call the service, within its
    vendor's rate (Authenticate)."""

    access: AccessControl
    rate_limiter: SharedCallRateLimiter

    async def admit(self, call: CallContext, context: Context) -> None:
        certificates = list(context.auth_context().get("x509_pem_cert") or ())
        certificate = certificates[0] if certificates else None
        if certificate:
            # Known before the caller is: a refused certificate is audited by it too.
            call.certificate_fingerprint = self.access.fingerprint(certificate)
        call.caller = await self.access.caller(certificate)
        if not may_call(call.caller.role, call.service):
            raise errors.PermissionDenied(
                f"a {call.caller.role.value} certificate may not call {call.service}",
                reason="ROLE_NOT_ALLOWED",
            )
        await self.rate_limiter.take(f"vendor:{call.caller.vendor.id}")


@dataclass(frozen=True)
class VendorAndLibrary:
    """As VendorOnly, and then the library the vendor acts for, proved by its number and
    authorization code in the metadata (BorrowerRegistry)."""

    vendor: VendorOnly

    async def admit(self, call: CallContext, context: Context) -> None:
        await self.vendor.admit(call, context)
        assert call.caller is not None
        metadata = {
            key: value
            for key, value in context.invocation_metadata() or ()
            if isinstance(value, str)
        }
        call.library = await self.vendor.access.library(call.caller, metadata)


# Where a SelfService call names its session: ``authorization: Bearer <token>``.
SESSION_METADATA_KEY = "authorization"
_BEARER = "bearer "


@dataclass(frozen=True)
class PortalSession:
    """As VendorOnly (a portal certificate), and then, for every call but the logins, the
    borrower's session named in the metadata, bound to that very certificate (SelfService).
    Below the borrower's security level a session opens only its ``waiting_rpcs`` (the second
    factor, logging out)."""

    vendor: VendorOnly
    services: Services
    login_rpcs: frozenset[str]
    waiting_rpcs: frozenset[str]

    async def admit(self, call: CallContext, context: Context) -> None:
        await self.vendor.admit(call, context)
        if call.rpc in self.login_rpcs:
            return
        token = _bearer_token(context)
        if token is None or not session_token.looks_like_token(token):
            raise session_invalid()
        assert call.certificate_fingerprint is not None
        services = self.services
        live = await services.run_short(
            sessions.find_session,
            session_token.digest(token),
            call.certificate_fingerprint,
            now(),
            services.sessions,
        )
        call.session = live
        call.note_borrower(live.session.card_number, live.session.borrower_id)
        if call.rpc not in self.waiting_rpcs:
            require_opened(live.session, live.security_level)


def _bearer_token(context: Context) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if (
            key == SESSION_METADATA_KEY
            and isinstance(value, str)
            and value[: len(_BEARER)].lower() == _BEARER
        ):
            return value[len(_BEARER) :].strip()
    return None


class NotAdmitted:
    """For a service served without an admission strategy: every call refused."""

    async def admit(self, call: CallContext, context: Context) -> None:
        raise errors.PermissionDenied(
            f"{call.service} is not open to callers", reason="SERVICE_NOT_ADMITTED"
        )


NOT_ADMITTED = NotAdmitted()


@dataclass(frozen=True)
class AdmissionTable:
    """The strategy of each guarded service, and the services open to any TLS client."""

    strategies: Mapping[str, Admission]
    open_services: frozenset[str]

    def for_service(self, service: str) -> Admission | None:
        """The service's strategy; None for an open service (served unguarded); NOT_ADMITTED
        for any other."""
        if service in self.open_services:
            return None
        return self.strategies.get(service, NOT_ADMITTED)
