"""The one interceptor every call of the register's services passes through.

In order: who is calling (certificate → vendor), may that role call this service, is the
vendor within its rate, which library it acts for (registry calls), did the request parse,
then the servicer; then the error mapping and the audit event, whatever the outcome. Nothing
a servicer raises reaches gRPC itself: an unforeseen failure is logged by its class alone and
answered INTERNAL with a fixed text, since an exception's text may quote personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_status import rpc_status

from nlr_server.api.access_control import AccessControl
from nlr_server.api.audit_writer import AuditWriter
from nlr_server.api.call_context import CallContext, enter_call, leave_call
from nlr_server.api.errors import internal_status, status_code, to_status
from nlr_server.api.malformed_request import MalformedRequest, tolerant
from nlr_server.api.rate_limit import CallRateLimiter
from nlr_server.domain import errors
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.vendor import AUTH_SERVICE, REGISTRY_SERVICE, may_call
from nlr_server.store.errors import as_register_error, describe

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
Behaviour = Callable[[Any, Context], Awaitable[Any]]
StreamBehaviour = Callable[[Any, Context], AsyncIterator[Any]]

# Only these services are guarded and audited; health and reflection answer any client whose
# certificate the TLS layer accepted (probes and grpcurl need no registration).
GUARDED_SERVICES = frozenset({REGISTRY_SERVICE, AUTH_SERVICE})


class RegisterInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self, access: AccessControl, rate_limiter: CallRateLimiter, audit: AuditWriter
    ) -> None:
        self._access = access
        self._rate_limiter = rate_limiter
        self._audit = audit
        # The guarded handler of each method, made once: the servicer hands out the same
        # handler for a method on every call.
        self._guarded: dict[str, tuple[Any, grpc.RpcMethodHandler[Any, Any]]] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        known = self._guarded.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        service, _, rpc = method.lstrip("/").partition("/")
        if handler is None or service not in GUARDED_SERVICES:
            return handler
        guarded = self._guard_handler(service, rpc, handler)
        self._guarded[method] = (handler, guarded)
        return guarded

    def _guard_handler(
        self, service: str, rpc: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        if handler.unary_unary is not None:
            behaviour: Behaviour = handler.unary_unary  # type: ignore[assignment]  # a coroutine
            return grpc.unary_unary_rpc_method_handler(
                self._guard(service, rpc, behaviour),
                request_deserializer=tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        # A guarded service has unary calls and server streams only; nothing passes unguarded.
        assert handler.unary_stream is not None, f"{rpc}: no guard for this kind of call"
        stream: StreamBehaviour = handler.unary_stream  # type: ignore[assignment]
        return grpc.unary_stream_rpc_method_handler(
            self._guard_stream(service, rpc, stream),
            request_deserializer=tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    def _guard(self, service: str, rpc: str, behaviour: Behaviour) -> Behaviour:
        async def guarded(request: Any, context: Context) -> Any:
            call = CallContext(service=service, rpc=rpc, started_at=dt.datetime.now(dt.UTC))
            token = enter_call(call)
            try:
                _note_requested_borrower(call, request)
                await self._admit(call, context)
                _refuse_if_malformed(call, request)
                response = await behaviour(request, context)
            except Exception as failure:
                error = _register_error(call, failure)
                if error is None:
                    self._audit.record(call.audit_event(grpc.StatusCode.INTERNAL.name, None))
                    await context.abort_with_status(rpc_status.to_status(internal_status()))
                else:
                    self._audit.record(call.audit_event(status_code(error).name, error.reason))
                    await context.abort_with_status(rpc_status.to_status(to_status(error)))
            else:
                self._audit.record(call.audit_event(grpc.StatusCode.OK.name, None))
                return response
            finally:
                leave_call(token)

        return guarded

    def _guard_stream(self, service: str, rpc: str, behaviour: StreamBehaviour) -> StreamBehaviour:
        """As _guard, for a server stream: admitted before the first message, audited once
        when the stream ends, however it ends."""

        async def guarded(request: Any, context: Context) -> AsyncIterator[Any]:
            call = CallContext(service=service, rpc=rpc, started_at=dt.datetime.now(dt.UTC))
            token = enter_call(call)
            outcome = grpc.StatusCode.OK.name
            reason: str | None = None
            try:
                _note_requested_borrower(call, request)
                await self._admit(call, context)
                _refuse_if_malformed(call, request)
                async for response in behaviour(request, context):
                    yield response
            except (asyncio.CancelledError, GeneratorExit):
                outcome = grpc.StatusCode.CANCELLED.name
                raise
            except Exception as failure:
                error = _register_error(call, failure)
                if error is None:
                    outcome = grpc.StatusCode.INTERNAL.name
                    await context.abort_with_status(rpc_status.to_status(internal_status()))
                else:
                    outcome, reason = status_code(error).name, error.reason
                    await context.abort_with_status(rpc_status.to_status(to_status(error)))
            finally:
                self._audit.record(call.audit_event(outcome, reason))
                leave_call(token)

        return guarded

    async def _admit(self, call: CallContext, context: Context) -> None:
        certificates = list(context.auth_context().get("x509_pem_cert") or ())
        certificate = certificates[0] if certificates else None
        if certificate:
            # Known before the caller is: a refused certificate is audited by it too.
            call.certificate_fingerprint = self._access.fingerprint(certificate)
        call.caller = await self._access.caller(certificate)
        if not may_call(call.caller.role, call.service):
            raise errors.PermissionDenied(
                f"a {call.caller.role.value} certificate may not call {call.service}",
                reason="ROLE_NOT_ALLOWED",
            )
        self._rate_limiter.take(call.caller.vendor.id)
        if call.service == REGISTRY_SERVICE:
            metadata = {
                key: value
                for key, value in context.invocation_metadata() or ()
                if isinstance(value, str)
            }
            call.library = await self._access.library(call.caller, metadata)


def _register_error(call: CallContext, failure: Exception) -> errors.RegisterError | None:
    """The register's error for a failure: as raised, or a database failure translated; None
    for an unforeseen one, logged here by its class alone, never its text."""
    if isinstance(failure, errors.RegisterError):
        return failure
    translated = as_register_error(failure)
    if translated is None:
        log.error("%s failed: %s", call.rpc, describe(failure))
    else:
        log.warning("%s: database failure %s", call.rpc, describe(failure))
    return translated


def _refuse_if_malformed(call: CallContext, request: Any) -> None:
    if isinstance(request, MalformedRequest):
        log.warning("%s: the request did not parse as %s", call.rpc, request.message_name)
        raise errors.InvalidArgument(request.violations)


def _note_requested_borrower(call: CallContext, request: Any) -> None:
    """Names the borrower a request is about before any check, so refusals are audited too."""
    raw = getattr(request, "card_number", "") or getattr(
        getattr(request, "borrower", None), "card_number", ""
    )
    # Not a card number: recording it could record something else typed there.
    with contextlib.suppress(errors.InvalidValue):
        if raw:
            call.note_borrower(CardNumber.parse(raw).value)
