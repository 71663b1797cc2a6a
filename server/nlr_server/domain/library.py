"""A library in the register: who may act, and for which borrowers."""

from __future__ import annotations

from dataclasses import dataclass

from nlr_server.domain.library_number import LibraryNumber


@dataclass(frozen=True, slots=True)
class Library:
    number: LibraryNumber
    name: str
    active: bool = True
