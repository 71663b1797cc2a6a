"""Helpers for validating request fields and collecting every bad field at once."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import TypeVar

from nlr_server.domain.errors import InvalidValue, Violations

T = TypeVar("T")


def check(violations: Violations, field: str, parse: Callable[[], T]) -> T | None:
    """Return ``parse()``, or record its InvalidValue as a violation of ``field`` and give None."""
    try:
        return parse()
    except InvalidValue as exc:
        violations.add(field, str(exc))
        return None


def field_path(prefix: str, name: str) -> str:
    """Join a field prefix such as ``borrower.registered_address`` and a sub-field name."""
    return f"{prefix}.{name}" if prefix else name


def clean_text(raw: str, *, max_length: int) -> str:
    """Return ``raw`` in NFC with its whitespace trimmed and collapsed; check its length.

    Raises InvalidValue if the text is empty after trimming, longer than ``max_length``
    characters, or holds control or other invisible characters (category C*). Those are
    checked before whitespace is collapsed, so a tab or newline is refused, not turned into a
    space.
    """
    text = unicodedata.normalize("NFC", raw)
    # isprintable() is false for every C* character (and for separators other than the space),
    # so only text it refuses needs the character-by-character look.
    if not text.isprintable() and any(unicodedata.category(c).startswith("C") for c in text):
        raise InvalidValue("must not contain control characters")
    text = " ".join(text.split())
    if not text:
        raise InvalidValue("is required")
    if len(text) > max_length:
        raise InvalidValue(f"must be at most {max_length} characters")
    return text


def check_optional(
    violations: Violations, field: str, raw: str, parse: Callable[[str], T]
) -> T | None:
    """None for an empty ``raw``; else as ``check``."""
    if not raw.strip():
        return None
    return check(violations, field, lambda: parse(raw))
