"""What the register knows about the call in progress: caller, actor, borrower."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from dataclasses import dataclass

from nlr_server.domain.actor import Actor
from nlr_server.domain.audit import Acting, AuditEvent
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.vendor import Caller
from nlr_server.usecases.sessions import LiveSession


@dataclass
class CallContext:
    service: str
    rpc: str
    started_at: dt.datetime
    caller: Caller | None = None
    # SHA-256 of the client certificate, set before the caller is known.
    certificate_fingerprint: str | None = None
    library: LibraryNumber | None = None
    card_number: str | None = None
    borrower_id: int | None = None
    # Overrides the error's reason in the audit trail, e.g. "LOCKED_OUT" for the failure that
    # locked a login, which the caller sees as an ordinary wrong PIN.
    audit_reason: str | None = None
    # Set once a use case has committed the call's audit event with its change: the
    # interceptor then writes none of its own.
    audited: bool = False
    # The borrower's SelfService session the call was admitted with (api/admission.py).
    session: LiveSession | None = None

    def note_borrower(self, card_number: str, borrower_id: int | None = None) -> None:
        """Names the borrower this call is about, for the audit trail."""
        self.card_number = card_number
        if borrower_id is not None:
            self.borrower_id = borrower_id

    @property
    def actor(self) -> Actor | None:
        """Who acts in this call, once the admission knows: the library, or the borrower of
        the session."""
        if self.library is not None:
            return Actor.library(self.library)
        if self.session is not None:
            return Actor.borrower(self.session.session.card_number)
        return None

    def acting(self) -> Acting:
        """The actor and how they came, for a use case that acts and audits."""
        actor = self.actor
        assert actor is not None, "the admission names the actor first"
        return Acting(
            actor,
            self.rpc,
            vendor_id=self.caller.vendor.id if self.caller else None,
            certificate_fingerprint=self.certificate_fingerprint,
        )

    def audit_event(self, outcome: str, reason: str | None) -> AuditEvent:
        actor = self.actor
        return AuditEvent(
            occurred_at=self.started_at,
            rpc=self.rpc,
            outcome=outcome,
            vendor_id=self.caller.vendor.id if self.caller else None,
            certificate_fingerprint=self.certificate_fingerprint,
            library_number=self.library.value if self.library else None,
            card_number=self.card_number,
            borrower_id=self.borrower_id,
            reason=self.audit_reason or reason,
            actor_kind=actor.kind if actor is not None else None,
            actor_id=actor.id if actor is not None else None,
        )


_current: contextvars.ContextVar[CallContext] = contextvars.ContextVar("nlr_call")


def current_call() -> CallContext:
    return _current.get()


def enter_call(call: CallContext) -> contextvars.Token[CallContext]:
    return _current.set(call)


def leave_call(token: contextvars.Token[CallContext]) -> None:
    # A server stream cancelled by its client is closed from another context, where the
    # token cannot be reset; that context ends with the call anyway.
    with contextlib.suppress(ValueError):
        _current.reset(token)


def acting_library() -> LibraryNumber:
    library = current_call().library
    assert library is not None, "the interceptor authorizes the acting library first"
    return library


def acting() -> Acting:
    """The call's actor at work: what a use case that changes the register is given."""
    return current_call().acting()
