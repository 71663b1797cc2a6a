"""Other identities of a borrower (Feide, Pocket, school card): keys besides the card number."""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass

from nlr_server.domain.errors import InvalidValue


class IdentityKind(enum.StrEnum):
    FEIDE = "feide"
    POCKET = "pocket"
    SCHOOL_CARD = "school_card"
    # Feide's persistent user id, the `sub` of its ID tokens: linked by the borrower only
    # (SelfService's LinkFeide), as it is what a Feide login finds them by.
    FEIDE_ID = "feide_id"


# The kinds only the borrower links, never a library.
LINKED_BY_BORROWER: frozenset[IdentityKind] = frozenset({IdentityKind.FEIDE_ID})


# Feide's eduPersonPrincipalName: "name@realm", the realm a domain name such as "uio.no".
_LOCAL_PART = r"[a-z0-9_][a-z0-9._+-]{0,63}"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_FEIDE = re.compile(rf"{_LOCAL_PART}@(?:{_LABEL}\.)+[a-z]{{2,63}}")
_FEIDE_MAX_LENGTH = 254
# Pocket ID and school cards: the identifier as issued.
_ISSUED = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Feide's user ids: a UUID, or another opaque token of its issuer.
_FEIDE_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")

# How far ahead a deletion time may be set.
MAX_LIFETIME_YEARS = 10


@dataclass(frozen=True, slots=True)
class IdentityValue:
    """One identifier of a kind, normalised: build it with :meth:`parse` from untrusted input."""

    kind: IdentityKind
    value: str

    @classmethod
    def parse(cls, kind: IdentityKind, raw: str) -> IdentityValue:
        """Validate ``raw`` for ``kind`` (surrounding whitespace is dropped; Feide lower-cased)."""
        candidate = raw.strip()
        if kind is IdentityKind.FEIDE:
            # Lower-cased only when ASCII: str.lower() could map other characters to ASCII ones.
            candidate = candidate.lower() if candidate.isascii() else candidate
            if len(candidate) > _FEIDE_MAX_LENGTH or not _FEIDE.fullmatch(candidate):
                raise InvalidValue('must be a Feide eduPersonPrincipalName such as "name@uio.no"')
        elif kind is IdentityKind.FEIDE_ID:
            if not _FEIDE_ID.fullmatch(candidate):
                raise InvalidValue("must be a Feide user id (the sub of a Feide ID token)")
        elif not _ISSUED.fullmatch(candidate):
            raise InvalidValue("must be 1 to 64 letters, digits, '-', '_' or '.'")
        return cls(kind, candidate)


@dataclass(frozen=True, slots=True)
class Identity:
    """An identity the borrower has: what it is, when it was added, when it is deleted."""

    kind: IdentityKind
    value: str
    created_at: dt.datetime
    delete_after: dt.datetime


def latest_delete_after(now: dt.datetime) -> dt.datetime:
    """The furthest a deletion time may lie ahead of ``now``."""
    try:
        return now.replace(year=now.year + MAX_LIFETIME_YEARS)
    except ValueError:  # 29 February, ten years on not a leap year
        return now.replace(year=now.year + MAX_LIFETIME_YEARS, day=28)


def check_delete_after(delete_after: dt.datetime, now: dt.datetime) -> dt.datetime:
    """A requested deletion time: after ``now`` and at most ten years ahead."""
    if delete_after <= now:
        raise InvalidValue("must be in the future")
    if delete_after > latest_delete_after(now):
        raise InvalidValue(f"must be at most {MAX_LIFETIME_YEARS} years ahead")
    return delete_after


def new_identity(
    value: IdentityValue,
    now: dt.datetime,
    delete_after: dt.datetime | None,
    default_lifetime: dt.timedelta,
) -> Identity:
    """An identity added now; deleted after the requested time, or after the default lifetime."""
    until = delete_after if delete_after is not None else now + default_lifetime
    return Identity(value.kind, value.value, now, min(until, latest_delete_after(now)))
