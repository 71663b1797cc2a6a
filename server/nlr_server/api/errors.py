"""The one place where register errors become gRPC status codes with google.rpc details."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from nlr_server.domain import errors

ERROR_DOMAIN = "nlr.no"

# Every error class maps through the nearest class of its hierarchy listed here, so a new
# subclass of a listed error gets its parent's status, never INTERNAL by accident.
_CODES: dict[type[errors.RegisterError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}

# Bounds that keep every trailer small (gRPC's default limit for received metadata is 8 KB
# on some clients, 16 KB on others): a request with thousands of bad fields names the first
# few, and says how many there were.
MAX_VIOLATIONS = 20
MAX_FIELD_CHARS = 120
MAX_DESCRIPTION_CHARS = 200
MAX_MESSAGE_CHARS = 1000


def status_code(error: errors.RegisterError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        code = _CODES.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def to_status(error: errors.RegisterError) -> status_pb2.Status:
    """The google.rpc.Status for an error: code, message, ErrorInfo, and BadRequest if any."""
    code = status_code(error)
    details: list[any_pb2.Any] = []
    message = str(error) or code.name
    metadata: dict[str, str] = dict(getattr(error, "metadata", {}))
    if isinstance(error, errors.InvalidArgument):
        shown = error.violations[:MAX_VIOLATIONS]
        if len(error.violations) > len(shown):
            metadata["field_violations"] = str(len(error.violations))
            message = f"{len(error.violations)} bad fields, the first {len(shown)}: " + "; ".join(
                f"{_cut(v.field, MAX_FIELD_CHARS)}: {v.description}" for v in shown
            )
        bad_request = any_pb2.Any()
        bad_request.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=_cut(v.field, MAX_FIELD_CHARS),
                        description=_cut(v.description, MAX_DESCRIPTION_CHARS),
                    )
                    for v in shown
                ]
            )
        )
        details.append(bad_request)
    info = any_pb2.Any()
    info.Pack(
        error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=metadata)
    )
    details.insert(0, info)
    if isinstance(error, errors.RetryLater):
        retry = any_pb2.Any()
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(max(1, round(error.retry_after * 1000)))
        retry.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        details.append(retry)
    return status_pb2.Status(
        code=getattr(code_pb2, code.name),
        message=_cut(message, MAX_MESSAGE_CHARS),
        details=details,
    )


def internal_status() -> status_pb2.Status:
    """The answer to a failure the register did not foresee: a fixed text, no details of it."""
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN))
    return status_pb2.Status(
        code=code_pb2.INTERNAL, message="internal error; it has been logged", details=[info]
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
