"""The one place where register errors become gRPC status codes with google.rpc details."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from nlr_server.domain import errors

log = logging.getLogger(__name__)

ERROR_DOMAIN = "nlr.no"

_CODES: dict[type[errors.RegisterError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.EtagMismatch: grpc.StatusCode.ABORTED,
    errors.CardNumberRetired: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
}


def to_status(error: errors.RegisterError) -> status_pb2.Status:
    """The google.rpc.Status for an error: code, message, ErrorInfo, and BadRequest if any."""
    code = _CODES.get(type(error), grpc.StatusCode.INTERNAL)
    details: list[any_pb2.Any] = []
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN))
    details.append(info)
    if isinstance(error, errors.InvalidArgument):
        bad_request = any_pb2.Any()
        bad_request.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in error.violations
                ]
            )
        )
        details.append(bad_request)
    return status_pb2.Status(
        code=getattr(code_pb2, code.name), message=str(error) or code.name, details=details
    )


Behaviour = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


def _wrap(behaviour: Behaviour) -> Behaviour:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behaviour(request, context)
        except errors.RegisterError as error:
            await context.abort_with_status(rpc_status.to_status(to_status(error)))

    return wrapper


class RegisterErrorInterceptor(grpc.aio.ServerInterceptor):
    """Turns RegisterError raised by any unary servicer method into its status and details."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        behaviour: Behaviour = handler.unary_unary  # type: ignore[assignment]  # aio: a coroutine
        return grpc.unary_unary_rpc_method_handler(
            _wrap(behaviour),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
