"""NlrError: the exception the NLR clients raise for a failed call, with its google.rpc details."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

__all__ = ["NlrError"]


class NlrError(Exception):
    """A call to the register failed.

    Branch on `code` and `reason` (stable, meant for programs, e.g. ``"CREDENTIALS_INVALID"``,
    ``"LOGIN_LOCKED"``, ``"RESYNC_REQUIRED"``), never on `message`, which is for people.

    Attributes:
        code: the gRPC status code.
        message: the status message (the server's explanation, for logs and people).
        reason: the ``google.rpc.ErrorInfo`` reason; ``""`` when the error carries none (e.g.
            UNAVAILABLE from the network rather than the register).
        field_violations: for INVALID_ARGUMENT, each bad request field named by the
            ``google.rpc.BadRequest``, mapped to what is wrong with it.
        retry_after: seconds to wait before trying again (``google.rpc.RetryInfo``), e.g. for
            ``LOGIN_LOCKED`` or a rate limit; ``None`` when the server gave none.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        field_violations: dict[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.reason = reason
        self.field_violations: dict[str, str] = dict(field_violations or {})
        self.retry_after = retry_after

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> NlrError:
        """The NlrError for an error raised by a gRPC call, with its google.rpc details."""
        code, message = _code_and_message(error)
        reason = ""
        field_violations: dict[str, str] = {}
        retry_after: float | None = None
        for detail in _status_details(error):
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                field_violations.update(
                    (violation.field, violation.description)
                    for violation in bad_request.field_violations
                )
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                retry_after = retry.retry_delay.ToTimedelta().total_seconds()
        return cls(
            code,
            message,
            reason=reason,
            field_violations=field_violations,
            retry_after=retry_after,
        )

    def __str__(self) -> str:
        reason = f" {self.reason}" if self.reason else ""
        return f"{self.code.name}{reason}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"NlrError({self.code.name}, {self.message!r}, reason={self.reason!r}, "
            f"field_violations={self.field_violations!r}, retry_after={self.retry_after!r})"
        )


def _code_and_message(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    # Errors raised by stubs are also grpc.Call objects; a bare RpcError (rare) has neither.
    code_of = getattr(error, "code", None)
    details_of = getattr(error, "details", None)
    code = code_of() if callable(code_of) else None
    message = details_of() if callable(details_of) else None
    return (
        code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN,
        message if isinstance(message, str) else str(error),
    )


def _status_details(error: grpc.RpcError) -> list[any_pb2.Any]:
    if not hasattr(error, "trailing_metadata"):
        return []
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        # Trailers whose status disagrees with the call's own: trust the call, skip details.
        return []
    return list(status.details) if status is not None else []
