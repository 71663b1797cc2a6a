"""Borrowers' SelfService sessions: opened by a login, found by the portal's calls (and moved
on by them), raised by a second factor, ended by logging out or by a change of the borrower's
secrets or level (domain/session.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nlr_server.domain.borrower import Borrower
from nlr_server.domain.credentials import LoginMethod, SecurityLevel
from nlr_server.domain.errors import NotFound
from nlr_server.domain.identity import IdentityValue
from nlr_server.domain.national_id import NationalId
from nlr_server.domain.session import Session, SessionPolicy, session_invalid
from nlr_server.usecases.lookup import BorrowerKey, find
from nlr_server.usecases.ports import UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class OpenedSession:
    session: Session
    # The borrower's chosen level, and whether a second factor can raise the session.
    security_level: SecurityLevel
    second_factor_available: bool


@dataclass(frozen=True, slots=True)
class LiveSession:
    """A session a call was admitted with: the digest it is known by, and the borrower's
    level as it now stands."""

    digest: bytes
    session: Session
    security_level: SecurityLevel


def open_session(
    unit_of_work: UnitOfWorkFactory,
    digest: bytes,
    borrower_id: int,
    card_number: str,
    certificate_fingerprint: str,
    method: LoginMethod,
    strength: SecurityLevel,
    security_level: SecurityLevel,
    now: dt.datetime,
    policy: SessionPolicy,
) -> OpenedSession:
    session = Session.opened(
        borrower_id, card_number, certificate_fingerprint, method, strength, now, policy
    )
    with unit_of_work() as uow:
        uow.sessions.add(digest, session)
        factor = uow.second_factors.totp_of(borrower_id)
        uow.commit()
    available = factor is not None and factor.confirmed and method.takes_second_factor
    return OpenedSession(session, security_level, available)


def find_session(
    unit_of_work: UnitOfWorkFactory,
    digest: bytes,
    certificate_fingerprint: str,
    now: dt.datetime,
    policy: SessionPolicy,
) -> LiveSession:
    """The live session of the token shown through this certificate, moved on by this use;
    SESSION_INVALID for any other (unknown, expired, ended, another portal's)."""
    with unit_of_work() as uow:
        found = uow.sessions.get(digest)
        if found is None:
            raise session_invalid()
        session, level = found
        if not session.is_live(now) or session.certificate_fingerprint != certificate_fingerprint:
            raise session_invalid()
        extended = session.extended(now, policy)
        if extended is not None:
            uow.sessions.save(digest, extended)
            uow.commit()
            session = extended
        return LiveSession(digest, session, level)


def strengthen(
    unit_of_work: UnitOfWorkFactory, live: LiveSession, strength: SecurityLevel
) -> Session:
    """The session raised to ``strength`` (a second factor confirmed)."""
    stronger = live.session.strengthened(strength)
    with unit_of_work() as uow:
        uow.sessions.save(live.digest, stronger)
        uow.commit()
    return stronger


def close_session(unit_of_work: UnitOfWorkFactory, digest: bytes) -> None:
    with unit_of_work() as uow:
        uow.sessions.remove(digest)
        uow.commit()


def borrower_of_person(unit_of_work: UnitOfWorkFactory, number: NationalId) -> Borrower:
    """The borrower an ID-porten login names by its national id (the blind index)."""
    with unit_of_work(read_only=True) as uow:
        try:
            return find(uow, BorrowerKey(national_id=number))
        except NotFound:
            raise NotFound(
                "this person is not a borrower: register (RegisterMyself) or ask a library",
                reason="NOT_REGISTERED",
            ) from None


def borrower_of_feide_user(
    unit_of_work: UnitOfWorkFactory, user: IdentityValue, now: dt.datetime
) -> Borrower:
    """The borrower who linked this Feide user (LinkFeide)."""
    with unit_of_work(read_only=True) as uow:
        try:
            return find(uow, BorrowerKey(identity=user), now)
        except NotFound:
            raise NotFound(
                "no borrower has linked this Feide user: log in with ID-porten and link it",
                reason="FEIDE_NOT_LINKED",
            ) from None
