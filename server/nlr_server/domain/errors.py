"""The register's errors: one base class, mapped to gRPC status codes in one place (api/errors)."""

from __future__ import annotations

from dataclasses import dataclass


class RegisterError(Exception):
    """Base of every error the register reports to a caller."""

    reason: str = "REGISTER_ERROR"

    def __init__(
        self,
        message: str = "",
        *,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        # Facts a client branches on besides the reason (ErrorInfo.metadata), e.g. the fields.
        self.metadata: dict[str, str] = dict(metadata or {})


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its path (e.g. ``borrower.email``) and what is wrong."""

    field: str
    description: str


class InvalidArgument(RegisterError):
    """The request has one or more bad fields; nothing was changed."""

    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = list(violations)
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in self.violations))

    @classmethod
    def one(cls, field: str, description: str) -> InvalidArgument:
        return cls([FieldViolation(field, description)])


class NotFound(RegisterError):
    reason = "NOT_FOUND"


class AlreadyExists(RegisterError):
    reason = "ALREADY_EXISTS"


class Aborted(RegisterError):
    """The transaction was lost mid-way (e.g. its database connection ended); nothing was
    changed, unless the loss came during the commit itself. Safe to try again."""

    reason = "TRANSACTION_ABORTED"


class EtagMismatch(Aborted):
    """The caller's etag is stale: someone changed the borrower since the caller read it."""

    reason = "ETAG_MISMATCH"


class FailedPrecondition(RegisterError):
    """The request is well formed but the record is not in a state that allows it."""

    reason = "FAILED_PRECONDITION"


class CardNumberRetired(FailedPrecondition):
    """The card number belonged to a deleted borrower or a replaced card; it is never reused."""

    reason = "CARD_NUMBER_RETIRED"


class PermissionDenied(RegisterError):
    reason = "PERMISSION_DENIED"


class Unauthenticated(RegisterError):
    reason = "UNAUTHENTICATED"


class Violations:
    """Collects field violations so that a request reports every bad field at once."""

    def __init__(self) -> None:
        self._items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self._items.append(FieldViolation(field, description))

    def __bool__(self) -> bool:
        return bool(self._items)

    def raise_if_any(self) -> None:
        if self._items:
            raise InvalidArgument(self._items)


class InvalidValue(ValueError):
    """A single value failed validation; the message says what is wrong, without echoing it."""


class RetryLater(RegisterError):
    """A refusal that ends by itself: try again after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


class RateLimited(RetryLater):
    """Too many calls, or too many failed attempts."""

    reason = "RATE_LIMITED"


class Unavailable(RetryLater):
    """The store cannot be reached or cannot take writes just now; nothing was changed."""

    reason = "STORE_UNAVAILABLE"
