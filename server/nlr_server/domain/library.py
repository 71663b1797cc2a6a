"""A library in the register: who may act, and for which borrowers."""

from __future__ import annotations

from dataclasses import dataclass

from nlr_server.domain.library_number import LibraryNumber


@dataclass(frozen=True, slots=True)
class Library:
    """A library from the national library directory (Base Bibliotek).

    ``code_verifier`` is the stored verifier of the library's authorization code, never the
    code; ``vendor_id`` is its registered system vendor, the only one that may act for it.
    """

    number: LibraryNumber
    name: str
    active: bool = True
    vendor_id: int | None = None
    municipality_number: str | None = None
    code_verifier: str | None = None
