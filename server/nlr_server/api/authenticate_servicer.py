"""Authenticate: PIN and password checks that answer with the least an auth-only caller needs."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import grpc

from nlr.auth.v1 import authenticate_pb2 as pb
from nlr.auth.v1 import authenticate_pb2_grpc
from nlr_server.api import password_login
from nlr_server.api.call_context import current_call
from nlr_server.api.services import Services, now
from nlr_server.crypto import totp
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.credentials import Password, Pin, SecurityLevel
from nlr_server.domain.errors import InvalidArgument
from nlr_server.usecases import authentication, second_factor
from nlr_server.usecases.second_factor import CodeKind, CodeOutcome, SecondFactorCode

Context = grpc.aio.ServicerContext[Any, Any]

_ASSURANCE = {
    SecurityLevel.PIN: pb.ASSURANCE_LEVEL_PIN,
    SecurityLevel.PASSWORD: pb.ASSURANCE_LEVEL_PASSWORD,
    SecurityLevel.TWO_FACTOR: pb.ASSURANCE_LEVEL_TWO_FACTOR,
}


class AuthenticateServicer(authenticate_pb2_grpc.AuthenticateServicer):
    def __init__(self, services: Services) -> None:
        self._services = services
        self._decode = services.decode

    async def VerifyPin(
        self, request: pb.VerifyPinRequest, context: Context
    ) -> pb.VerifyPinResponse:
        key = self._decode.login_key(request)
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
        return pb.VerifyPinResponse(borrower=_summary(borrower, SecurityLevel.PIN))

    async def VerifyPassword(
        self, request: pb.VerifyPasswordRequest, context: Context
    ) -> pb.VerifyPasswordResponse:
        key = self._decode.login_key(request)
        password = self._decode.secret(request.password, "password", Password.parse)
        code = request.totp_code
        if code and not totp.is_code_shaped(code):
            raise InvalidArgument.one("totp_code", f"must be {totp.DIGITS} digits")
        services = self._services
        borrower = await password_login.log_in_with_password(
            services, key, password, second_factor=bool(code)
        )
        reached = SecurityLevel.PASSWORD
        if code:
            assert borrower.id is not None
            checked = await services.run(
                second_factor.check_code,
                borrower.id,
                SecondFactorCode(CodeKind.TOTP, code),
                now(),
                services.lockout,
                services.totp_sealer,
            )
            if checked.outcome is CodeOutcome.WRONG:
                if checked.locked_now:
                    current_call().audit_reason = "LOCKED_OUT"
                raise authentication.credentials_invalid()
            if checked.outcome is CodeOutcome.ACCEPTED:
                reached = SecurityLevel.TWO_FACTOR
        if reached < borrower.personal.security_level:
            raise authentication.credentials_invalid()
        return pb.VerifyPasswordResponse(borrower=_summary(borrower, reached))


def _summary(borrower: Borrower, reached: SecurityLevel) -> pb.AuthenticatedBorrower:
    return pb.AuthenticatedBorrower(
        card_number=borrower.card_number.value,
        age=borrower.age_on(dt.datetime.now(dt.UTC).date()),
        home_library=borrower.home_library.value,
        affiliated_libraries=[a.library_number.value for a in borrower.affiliations],
        assurance_level=_ASSURANCE[reached],
    )
