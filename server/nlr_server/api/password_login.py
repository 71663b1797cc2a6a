"""A password login, shared by Authenticate's VerifyPassword and SelfService's login: the
check is reserved under the login subject's lock before the (slow) password is checked on its
pool and reported after it, so concurrent guesses get no more checks than the lockout allows,
and concurrent right passwords all get theirs."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

from nlr_server.api.call_context import current_call
from nlr_server.api.services import Services, now
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.credentials import LoginMethod, Password
from nlr_server.domain.errors import RateLimited
from nlr_server.usecases import authentication
from nlr_server.usecases.authentication import LoginKey

# Checks a secret against a stored verifier: whether it matches, and a re-made verifier if due.
Check = Callable[[str | None], Awaitable[tuple[bool, str | None]]]
# How long a password login waits for room among the checks under way for its card or
# identity before it is refused as locked: several password checks' time on a busy server.
RESERVE_PATIENCE = 10.0


async def log_in_with_password(
    services: Services, key: LoginKey, password: Password, *, second_factor: bool
) -> Borrower:
    """The borrower whose password this is, or CREDENTIALS_INVALID (LOGIN_LOCKED, CARD_EXPIRED)
    as Authenticate answers them. ``second_factor``: a TOTP code follows, so the password
    opens a borrower whose level a password and a code reach (domain/credentials.py)."""

    async def check(verifier: str | None) -> tuple[bool, str | None]:
        return await services.passwords.verify(password.value, verifier)

    return await _log_in(services, key, LoginMethod.PASSWORD, check, second_factor)


async def _log_in(
    services: Services, key: LoginKey, method: LoginMethod, check: Check, second_factor: bool
) -> Borrower:
    started = now()
    reserved = await _reserve(services, key, method, started, second_factor)
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
    services: Services,
    key: LoginKey,
    method: LoginMethod,
    started: dt.datetime,
    second_factor: bool,
) -> authentication.ReservedCheck:
    """A reserved check; while the checks under way leave no room, waits for one of them to
    report (they are all as quick as a password check), up to RESERVE_PATIENCE."""
    tag = services.login_keys.tag(key)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + RESERVE_PATIENCE
    pause = 0.005
    while True:
        reserved = await services.run(
            authentication.reserve_check,
            key,
            tag,
            method,
            now(),
            services.lockout,
            second_factor,
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
