"""AuthClient: checks a borrower's PIN or password with the register (nlr.auth.v1.Authenticate)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import TracebackType

import grpc

from nlr.auth.channel import Pem, secure_channel
from nlr.auth.errors import NlrError
from nlr.auth.v1 import authenticate_pb2, authenticate_pb2_grpc

__all__ = ["AssuranceLevel", "AuthClient", "AuthResult", "IdentityKind"]

_SERVICE = "nlr.auth.v1.Authenticate"


class IdentityKind(enum.StrEnum):
    """Another identity a borrower can be named by instead of the card number."""

    FEIDE = "FEIDE"
    """Feide: the eduPersonPrincipalName, e.g. ``kari@uio.no``."""
    POCKET = "POCKET"
    """Pocket ID."""
    SCHOOL_CARD = "SCHOOL_CARD"
    """A school card's identifier."""


class AssuranceLevel(enum.StrEnum):
    """How the borrower was authenticated."""

    PIN = "PIN"
    PASSWORD = "PASSWORD"


@dataclass(frozen=True)
class AuthResult:
    """All the register tells an auth-only caller about a borrower who logged in."""

    card_number: str
    """Card number, ``N`` + 9 digits."""
    age: int
    """Age in whole years today."""
    home_library: str
    """The home library's 7-digit library number."""
    affiliated_libraries: tuple[str, ...]
    """Every library the borrower is affiliated with (home library included), oldest first."""
    assurance_level: AssuranceLevel
    """How the borrower was authenticated."""


_IDENTITY_KINDS = {
    IdentityKind.FEIDE: authenticate_pb2.IDENTITY_KIND_FEIDE,
    IdentityKind.POCKET: authenticate_pb2.IDENTITY_KIND_POCKET,
    IdentityKind.SCHOOL_CARD: authenticate_pb2.IDENTITY_KIND_SCHOOL_CARD,
}
_ASSURANCE_LEVELS = {
    authenticate_pb2.ASSURANCE_LEVEL_PIN: AssuranceLevel.PIN,
    authenticate_pb2.ASSURANCE_LEVEL_PASSWORD: AssuranceLevel.PASSWORD,
}


class AuthClient:
    """A client of the register's Authenticate service, over mutual TLS.

    `ca_cert` is the register's CA certificate, `client_cert` and `client_key` the certificate
    (role ``auth``) and key its operator issued to you: file paths or PEM bytes. Every call has
    a deadline of `timeout` seconds and is never retried: a second try of a PIN counts as
    another attempt towards the lockout. Failures raise `NlrError`. Use it as a context manager,
    or call `close()`; one client is meant to be shared by all threads of a process.
    """

    def __init__(
        self,
        target: str,
        *,
        ca_cert: Pem,
        client_cert: Pem,
        client_key: Pem,
        timeout: float = 5.0,
    ) -> None:
        self._timeout = timeout
        self._channel = secure_channel(
            target,
            ca_cert,
            client_cert,
            client_key,
            service_config={
                "methodConfig": [{"name": [{"service": _SERVICE}], "timeout": f"{timeout:.3f}s"}]
            },
        )
        self._stub = authenticate_pb2_grpc.AuthenticateStub(self._channel)

    @property
    def stub(self) -> authenticate_pb2_grpc.AuthenticateStub:
        """The generated stub on this client's channel, for what the wrapper does not cover."""
        return self._stub

    def verify_pin(
        self,
        pin: str,
        *,
        card_number: str | None = None,
        identity: tuple[IdentityKind, str] | None = None,
    ) -> AuthResult:
        """Checks the PIN of the borrower named by exactly one of `card_number` or `identity`.

        Raises NlrError: UNAUTHENTICATED ``CREDENTIALS_INVALID`` (unknown borrower, wrong PIN,
        or a borrower who logs in with a password only: deliberately alike), RESOURCE_EXHAUSTED
        ``LOGIN_LOCKED`` (see `retry_after`), PERMISSION_DENIED ``CARD_EXPIRED``,
        INVALID_ARGUMENT.
        """
        request = authenticate_pb2.VerifyPinRequest(pin=pin)
        _set_borrower_key(request, card_number, identity)
        try:
            response = self._stub.VerifyPin(request, timeout=self._timeout)
        except grpc.RpcError as error:
            raise NlrError.from_rpc_error(error) from error
        return _result(response.borrower, AssuranceLevel.PIN)

    def verify_password(
        self,
        password: str,
        *,
        card_number: str | None = None,
        identity: tuple[IdentityKind, str] | None = None,
    ) -> AuthResult:
        """Checks the password of the borrower named by exactly one of `card_number` or
        `identity`. Raises NlrError as `verify_pin` does."""
        request = authenticate_pb2.VerifyPasswordRequest(password=password)
        _set_borrower_key(request, card_number, identity)
        try:
            response = self._stub.VerifyPassword(request, timeout=self._timeout)
        except grpc.RpcError as error:
            raise NlrError.from_rpc_error(error) from error
        return _result(response.borrower, AssuranceLevel.PASSWORD)

    def close(self) -> None:
        """Closes the channel; calls still running are cancelled."""
        self._channel.close()

    def __enter__(self) -> AuthClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _set_borrower_key(
    request: authenticate_pb2.VerifyPinRequest | authenticate_pb2.VerifyPasswordRequest,
    card_number: str | None,
    identity: tuple[IdentityKind, str] | None,
) -> None:
    if (card_number is None) == (identity is None):
        raise ValueError("name the borrower by exactly one of card_number or identity")
    if card_number is not None:
        request.card_number = card_number
    elif identity is not None:
        kind, value = identity
        request.identity.kind = _IDENTITY_KINDS[IdentityKind(kind)]
        request.identity.value = value


def _result(
    borrower: authenticate_pb2.AuthenticatedBorrower, checked: AssuranceLevel
) -> AuthResult:
    return AuthResult(
        card_number=borrower.card_number,
        age=borrower.age,
        home_library=borrower.home_library,
        affiliated_libraries=tuple(borrower.affiliated_libraries),
        # A server always names the level; should it not, it is what was checked.
        assurance_level=_ASSURANCE_LEVELS.get(borrower.assurance_level, checked),
    )
