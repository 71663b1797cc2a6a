"""Delivering the deletion notices in the outbox: send, retry with backoff, give up, purge."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from nlr_server.domain.deletion_notice import DeletionNotice, DeliveryPolicy, NoticeNotDelivered
from nlr_server.usecases.ports import UnitOfWorkFactory

# Notice ids only: never an address or a name (the messages of mail errors may hold both).
log = logging.getLogger(__name__)


class NoticeSender(Protocol):
    def __call__(self, notice: DeletionNotice) -> None:
        """Delivers the notice or raises (NoticeNotDelivered with a message safe to log)."""
        ...


@dataclass(frozen=True, slots=True)
class DeliveryRound:
    """What one round did, by notice id."""

    delivered: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()
    given_up: tuple[int, ...] = ()


def deliver_due_notices(
    unit_of_work: UnitOfWorkFactory,
    send: NoticeSender | None,
    clock: Callable[[], dt.datetime],
    *,
    policy: DeliveryPolicy,
    limit: int = 10,
) -> DeliveryRound:
    """Gives up (and purges) notices older than the policy allows, then claims up to ``limit``
    due ones and tries each once. With ``send`` None (no mail server configured) notices are
    only given up: nothing is sent, but nothing stays longer than the policy allows.

    A retry waits from the moment its attempt failed, however long the attempt took."""
    now = clock()
    with unit_of_work() as uow:
        given_up = uow.notices.give_up_created_before(policy.give_up_before(now), now)
        due = (
            uow.notices.due(now, limit, claim_until=now + policy.claim_for)
            if send is not None
            else []
        )
        uow.commit()
    for notice_id in given_up:
        log.warning("deletion notice %d given up undelivered, its personal data purged", notice_id)
    delivered: list[int] = []
    failed: list[int] = []
    for notice in due:
        assert send is not None and notice.id is not None
        try:
            send(notice)
        except Exception as error:
            failures = notice.attempts + 1
            log.warning(
                "deletion notice %d not delivered (attempt %d), will retry: %s",
                notice.id,
                failures,
                _describe(error),
            )
            with unit_of_work() as uow:
                uow.notices.mark_failed(notice.id, policy.next_attempt(failures, clock()))
                uow.commit()
            failed.append(notice.id)
        else:
            with unit_of_work() as uow:
                uow.notices.mark_delivered(notice.id, clock())
                uow.commit()
            log.info("deletion notice %d delivered", notice.id)
            delivered.append(notice.id)
    return DeliveryRound(tuple(delivered), tuple(failed), tuple(given_up))


def _describe(error: Exception) -> str:
    # Only our own messages are known to be free of personal data.
    return str(error) if isinstance(error, NoticeNotDelivered) else type(error).__name__


__all__ = ["DeliveryRound", "NoticeSender", "deliver_due_notices"]
