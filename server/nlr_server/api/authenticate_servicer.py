"""Authenticate: PIN and password checks that answer with the least an auth-only caller needs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from nlr.auth.v1 import authenticate_pb2 as pb
from nlr.auth.v1 import authenticate_pb2_grpc
from nlr_server.api.call_context import current_call
from nlr_server.api.services import Services, now
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.credentials import LoginMethod, Password, Pin, SecurityLevel
from nlr_server.domain.errors import PermissionDenied
from nlr_server.domain.identity import IdentityValue
from nlr_server.usecases import authentication

Context = grpc.aio.ServicerContext[Any, Any]
# Checks a secret against a stored verifier: whether it matches, and a re-made verifier if due.
Check = Callable[[str | None], Awaitable[tuple[bool, str | None]]]

_ASSURANCE = {
    LoginMethod.PIN: pb.ASSURANCE_LEVEL_PIN,
    LoginMethod.PASSWORD: pb.ASSURANCE_LEVEL_PASSWORD,
}


class AuthenticateServicer(authenticate_pb2_grpc.AuthenticateServicer):
    def __init__(self, services: Services) -> None:
        self._services = services
        self._decode = services.decode

    async def VerifyPin(
        self, request: pb.VerifyPinRequest, context: Context
    ) -> pb.VerifyPinResponse:
        key = self._login_key(request)
        pin = self._decode.secret(request.pin, "pin", Pin.parse)
        services = self._services
        started = now()
        login = await services.run_short(
            authentication.log_in_with_pin,
            key,
            functools.partial(services.pins.matches, pin),
            started,
            services.lockout,
        )
        if login.borrower is None:
            services.pins.matches(pin, None)  # as long as a real check, so it tells nothing
            raise authentication.credentials_invalid()
        borrower = login.borrower
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        if login.locked:
            raise login.refusal(started)
        if not login.matched:
            if login.attempts.locked_until is not None:
                current_call().audit_reason = "LOCKED_OUT"
            raise authentication.credentials_invalid()
        _refuse_after_success(borrower, LoginMethod.PIN, started.date())
        return pb.VerifyPinResponse(borrower=_summary(borrower, LoginMethod.PIN))

    async def VerifyPassword(
        self, request: pb.VerifyPasswordRequest, context: Context
    ) -> pb.VerifyPasswordResponse:
        key = self._login_key(request)
        password = self._decode.secret(request.password, "password", Password.parse)

        async def check(verifier: str | None) -> tuple[bool, str | None]:
            return await self._services.passwords.verify(password.value, verifier)

        borrower = await self._login(key, LoginMethod.PASSWORD, check)
        return pb.VerifyPasswordResponse(borrower=_summary(borrower, LoginMethod.PASSWORD))

    def _login_key(
        self, request: pb.VerifyPinRequest | pb.VerifyPasswordRequest
    ) -> CardNumber | IdentityValue:
        """Who is logging in: by card number (also when neither is given) or other identity."""
        if request.WhichOneof("borrower_key") == "identity":
            return self._decode.identity_key(
                request.identity.kind, request.identity.value, "identity"
            )
        return self._decode.card_number(request.card_number, "card_number")

    async def _login(
        self, key: CardNumber | IdentityValue, method: LoginMethod, check: Check
    ) -> Borrower:
        """Locked? Then the attempt is counted as a failure under the borrower's lock before the
        secret is checked, so concurrent guesses cannot get more checks than the lockout allows;
        a right secret then clears the count."""
        services = self._services
        started = now()
        state = await services.read(authentication.begin_login, key, method, started)
        if state is None:
            await check(None)  # as long as a real check, so the answer tells nothing
            raise authentication.credentials_invalid()
        borrower_id = state.borrower.id
        assert borrower_id is not None
        current_call().note_borrower(state.borrower.card_number.value, borrower_id)
        authentication.refuse_if_locked(state, started)
        reserved = await services.run(
            authentication.reserve_attempt, borrower_id, method, started, services.lockout
        )
        matched, remade = await check(state.verifier)
        if not matched:
            if reserved.locked_until is not None:
                current_call().audit_reason = "LOCKED_OUT"
            raise authentication.credentials_invalid()
        state = dataclasses.replace(state, attempts=reserved)
        await services.run(authentication.record_success, state, method, started.date(), remade)
        _refuse_after_success(state.borrower, method, started.date())
        return state.borrower


def _refuse_after_success(borrower: Borrower, method: LoginMethod, today: dt.date) -> None:
    """What the right secret still does not open: a PIN where a password is required, an
    expired card."""
    if method is LoginMethod.PIN and borrower.personal.security_level is SecurityLevel.PASSWORD:
        raise PermissionDenied(
            "this borrower logs in with a password only", reason="PASSWORD_REQUIRED"
        )
    if not borrower.card_valid_on(today):
        raise PermissionDenied("the card has expired", reason="CARD_EXPIRED")


def _summary(borrower: Borrower, method: LoginMethod) -> pb.AuthenticatedBorrower:
    return pb.AuthenticatedBorrower(
        card_number=borrower.card_number.value,
        age=borrower.age_on(dt.datetime.now(dt.UTC).date()),
        home_library=borrower.home_library.value,
        affiliated_libraries=[a.library_number.value for a in borrower.affiliations],
        assurance_level=_ASSURANCE[method],
    )
