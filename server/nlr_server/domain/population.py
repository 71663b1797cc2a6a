"""A person as the population register (Folkeregisteret) holds them: what the register follows.

Name, sex and the registered address are the population register's to keep true for the
borrowers found in it (DESIGN.md §10); address protection, death and status act on the record.
A part the population register did not give (or gave in a form the register cannot hold) is
None, and then the record keeps what it has.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from nlr_server.domain.address import Address, AddressProtection
from nlr_server.domain.borrower import Sex
from nlr_server.domain.person_name import PersonName


class ResidenceKind(enum.StrEnum):
    """What the population register says of where the person lives."""

    ADDRESS = "address"  # a registered address the register can hold
    UNKNOWN = "unknown"  # ukjentBosted: no address to hold
    NOT_GIVEN = "not_given"  # none given, or one the register cannot hold (e.g. no street)


@dataclass(frozen=True, slots=True)
class PopulationPerson:
    national_id: str
    name: PersonName | None
    sex: Sex | None
    residence: ResidenceKind
    address: Address | None  # set exactly when residence is ADDRESS
    protection: AddressProtection
    # bosatt, utflyttet, doed, opphoert, inaktiv, ...; an unknown status is kept as it came.
    status: str | None
    died_on: dt.date | None

    @property
    def is_dead(self) -> bool:
        return self.died_on is not None or self.status == "doed"
