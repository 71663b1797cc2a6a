"""Who acts on the register: a library, a borrower, the population register, an operator or the
register itself.

An actor is what the record keeps as its creator and last changer, and what the audit trail
names. How the actor reached the register (the vendor's certificate, the portal, the command)
is not part of it: that is in the audit event (domain/audit.py, ``Acting``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from nlr_server.domain.library_number import LibraryNumber


class ActorKind(enum.StrEnum):
    # A library, through its vendor's system (ILS, ebook platform): the id is its number.
    LIBRARY = "library"
    # The borrower themself, through a portal: the id is their card number.
    BORROWER = "borrower"
    # Folkeregisteret, through the register's synchronisation: the id is "folkeregisteret".
    POPULATION_REGISTER = "population_register"
    # A person running nlr-admin: the id is their name (NLR_OPERATOR, else the OS user).
    OPERATOR = "operator"
    # The register's own housekeeping: the id names the task, e.g. "maintenance".
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    id: str

    @classmethod
    def library(cls, number: LibraryNumber) -> Actor:
        return cls(ActorKind.LIBRARY, number.value)

    @classmethod
    def borrower(cls, card_number: str) -> Actor:
        return cls(ActorKind.BORROWER, card_number)

    @classmethod
    def population_register(cls) -> Actor:
        return cls(ActorKind.POPULATION_REGISTER, "folkeregisteret")

    @classmethod
    def operator(cls, name: str) -> Actor:
        return cls(ActorKind.OPERATOR, name)

    @classmethod
    def system(cls, task: str) -> Actor:
        return cls(ActorKind.SYSTEM, task)

    @property
    def library_number(self) -> LibraryNumber | None:
        """The library's number for a library actor; None for every other kind."""
        return LibraryNumber(self.id) if self.kind is ActorKind.LIBRARY else None

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}"
