"""Authenticate: PIN and password checks that answer with the least an auth-only caller needs."""

from __future__ import annotations

import asyncio
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
from nlr_server.domain.credentials import LoginMethod, Password, Pin
from nlr_server.domain.errors import RateLimited
from nlr_server.usecases import authentication
from nlr_server.usecases.authentication import LoginKey

Context = grpc.aio.ServicerContext[Any, Any]
# Checks a secret against a stored verifier: whether it matches, and a re-made verifier if due.
Check = Callable[[str | None], Awaitable[tuple[bool, str | None]]]
# How long a password login waits for room among the checks under way for its card or
# identity before it is refused as locked: several password checks' time on a busy server.
RESERVE_PATIENCE = 10.0

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
            services.login_keys.tag(key),
            functools.partial(services.pins.matches, pin),
            started,
            services.lockout,
        )
        if login.holder is not None:
            current_call().note_borrower(login.holder.card_number, login.holder.borrower_id)
        check, borrower = login.check, login.borrower
        if check.locked:
            raise check.refusal(started)
        if not check.matched or borrower is None:
            if check.locked_by_this_failure(started):
                current_call().audit_reason = "LOCKED_OUT"
            raise authentication.credentials_invalid()
        if login.refusal is not None:
            raise login.refusal
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

    def _login_key(self, request: pb.VerifyPinRequest | pb.VerifyPasswordRequest) -> LoginKey:
        """Who is logging in: by card number (also when neither is given) or other identity."""
        if request.WhichOneof("borrower_key") == "identity":
            return self._decode.identity_key(
                request.identity.kind, request.identity.value, "identity"
            )
        return self._decode.card_number(request.card_number, "card_number")

    async def _login(self, key: LoginKey, method: LoginMethod, check: Check) -> Borrower:
        """The check is reserved under the login subject's lock before the (slow) secret is
        checked and reported after it, so concurrent guesses get no more checks than the
        lockout allows, and concurrent right secrets all get theirs."""
        services = self._services
        started = now()
        reserved = await self._reserve(key, method, started)
        if reserved.holder is not None:
            current_call().note_borrower(reserved.holder.card_number, reserved.holder.borrower_id)
        try:
            # No verifier (unknown key, none set): as long as a real check, never a match.
            matched, remade = await check(reserved.verifier)
        except BaseException:
            # Cancelled or failed mid-check: reported as a failure, so a check never holds its
            # place until its timeout.
            await asyncio.shield(
                services.run(
                    authentication.finish_check, reserved, method, False, now(), services.lockout
                )
            )
            raise
        finished = now()
        outcome = await services.run(
            authentication.finish_check,
            reserved,
            method,
            matched,
            finished,
            services.lockout,
            remade,
        )
        borrower = outcome.borrower
        if not matched or borrower is None:
            if outcome.attempts.is_locked(finished):
                current_call().audit_reason = "LOCKED_OUT"
            raise authentication.credentials_invalid()
        if outcome.refusal is not None:
            raise outcome.refusal
        return borrower

    async def _reserve(
        self, key: LoginKey, method: LoginMethod, started: dt.datetime
    ) -> authentication.ReservedCheck:
        """A reserved check; while the checks under way leave no room, waits for one of them
        to report (they are all as quick as a password check), up to RESERVE_PATIENCE."""
        services = self._services
        tag = services.login_keys.tag(key)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + RESERVE_PATIENCE
        pause = 0.005
        while True:
            reserved = await services.run(
                authentication.reserve_check, key, tag, method, now(), services.lockout
            )
            if reserved is not None:
                return reserved
            if loop.time() + pause > give_up:
                raise RateLimited(
                    "too many logins under way for this card: try again shortly",
                    retry_after=1.0,
                    reason="LOGIN_LOCKED",
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)


def _summary(borrower: Borrower, method: LoginMethod) -> pb.AuthenticatedBorrower:
    return pb.AuthenticatedBorrower(
        card_number=borrower.card_number.value,
        age=borrower.age_on(dt.datetime.now(dt.UTC).date()),
        home_library=borrower.home_library.value,
        affiliated_libraries=[a.library_number.value for a in borrower.affiliations],
        assurance_level=_ASSURANCE[method],
    )
