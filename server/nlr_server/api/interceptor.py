"""The one interceptor every call of the register's services passes through.

In order: the service's admission (api/admission.py: who is calling, may that role call this
service, is the vendor within its rate, which library it acts for), did the request parse,
then the servicer; then the error mapping and the audit event, whatever the outcome. A change
commits its own audit event (its use case does, in the change's unit of work); for a read or
a refusal the interceptor writes it, and the answer waits until it is committed
(api/audit_writer.py). Nothing
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

from nlr_server.api.admission import Admission, AdmissionTable
from nlr_server.api.audit_writer import AuditUnavailable, AuditWriter
from nlr_server.api.call_context import CallContext, enter_call, leave_call
from nlr_server.api.errors import internal_status, status_code, to_status
from nlr_server.api.malformed_request import MalformedRequest, tolerant
from nlr_server.domain import errors
from nlr_server.domain.card_number import CardNumber
from nlr_server.store.errors import as_register_error, describe

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
Behaviour = Callable[[Any, Context], Awaitable[Any]]
StreamBehaviour = Callable[[Any, Context], AsyncIterator[Any]]


class RegisterInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, admissions: AdmissionTable, audit: AuditWriter) -> None:
        self._admissions = admissions
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
        admission = self._admissions.for_service(service)
        if handler is None or admission is None:
            return handler
        guarded = self._guard_handler(service, rpc, handler, admission)
        self._guarded[method] = (handler, guarded)
        return guarded

    def _guard_handler(
        self,
        service: str,
        rpc: str,
        handler: grpc.RpcMethodHandler[Any, Any],
        admission: Admission,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        if handler.unary_unary is not None:
            behaviour: Behaviour = handler.unary_unary  # type: ignore[assignment]  # a coroutine
            return grpc.unary_unary_rpc_method_handler(
                self._guard(service, rpc, behaviour, admission),
                request_deserializer=tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is None:
            # The register's services have unary calls and server streams only; a call of
            # another kind is refused rather than passed unguarded.
            return self._refusal(service, rpc, handler)
        stream: StreamBehaviour = handler.unary_stream  # type: ignore[assignment]
        return grpc.unary_stream_rpc_method_handler(
            self._guard_stream(service, rpc, stream, admission),
            request_deserializer=tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    def _refusal(
        self, service: str, rpc: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        refused = errors.PermissionDenied(
            f"{service}/{rpc}: client streams are not served", reason="CALL_KIND_NOT_GUARDED"
        )

        async def refuse(requests: Any, context: Context) -> Any:
            call = CallContext(service=service, rpc=rpc, started_at=dt.datetime.now(dt.UTC))
            await self._answer_error(call, context, refused)

        async def refuse_stream(requests: Any, context: Context) -> AsyncIterator[Any]:
            await refuse(requests, context)
            yield None  # never reached: abort raises

        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                refuse, response_serializer=handler.response_serializer
            )
        return grpc.stream_stream_rpc_method_handler(
            refuse_stream, response_serializer=handler.response_serializer
        )

    def _guard(
        self, service: str, rpc: str, behaviour: Behaviour, admission: Admission
    ) -> Behaviour:
        async def guarded(request: Any, context: Context) -> Any:
            call = CallContext(service=service, rpc=rpc, started_at=dt.datetime.now(dt.UTC))
            token = enter_call(call)
            try:
                _note_requested_borrower(call, request)
                await admission.admit(call, context)
                _refuse_if_malformed(call, request)
                response = await behaviour(request, context)
            except Exception as failure:
                await self._answer_error(call, context, _register_error(call, failure))
            else:
                if not call.audited:
                    # A read: its answer leaves only once its event is committed.
                    try:
                        await self._audit.write(call.audit_event(grpc.StatusCode.OK.name, None))
                    except AuditUnavailable as unavailable:
                        await self._answer_error(call, context, unavailable)
                return response
            finally:
                leave_call(token)

        return guarded

    async def _answer_error(
        self, call: CallContext, context: Context, error: errors.RegisterError | None
    ) -> None:
        """Answers with ``error`` (None: an unforeseen failure, INTERNAL) once its audit event
        is committed; if the trail cannot be written, the event waits for the next write and
        the answer is sent anyway, as it discloses nothing."""
        code = status_code(error).name if error is not None else grpc.StatusCode.INTERNAL.name
        event = call.audit_event(code, error.reason if error is not None else None)
        if isinstance(error, AuditUnavailable):
            self._audit.record(event)
        else:
            try:
                await self._audit.write(event)
            except AuditUnavailable:
                self._audit.record(event)
        status = to_status(error) if error is not None else internal_status()
        await context.abort_with_status(rpc_status.to_status(status))

    def _guard_stream(
        self, service: str, rpc: str, behaviour: StreamBehaviour, admission: Admission
    ) -> StreamBehaviour:
        """As _guard, for a server stream: admitted before the first message, audited once
        when the stream ends, however it ends."""

        async def guarded(request: Any, context: Context) -> AsyncIterator[Any]:
            call = CallContext(service=service, rpc=rpc, started_at=dt.datetime.now(dt.UTC))
            token = enter_call(call)
            outcome = grpc.StatusCode.OK.name
            reason: str | None = None
            try:
                _note_requested_borrower(call, request)
                await admission.admit(call, context)
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
