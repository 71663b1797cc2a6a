"""A borrower's contact data and preferences: email address, phone numbers, how to reach them and
in which language, validated and normalised."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email

from nlr_server.domain.errors import InvalidValue

_MAX_EMAIL_LENGTH = 254  # the longest address SMTP can deliver to (RFC 5321 path limit)
_MAX_PHONE_INPUT_LENGTH = 40


@dataclass(frozen=True, slots=True)
class EmailAddress:
    """An email address in email-validator's normalised form (domain lower-cased, IDNA)."""

    value: str

    @classmethod
    def parse(cls, raw: str) -> EmailAddress:
        """Check the syntax of ``raw`` (not whether the domain receives mail) and normalise it."""
        candidate = raw.strip()
        if len(candidate) > _MAX_EMAIL_LENGTH:
            raise InvalidValue(f"must be at most {_MAX_EMAIL_LENGTH} characters")
        try:
            normalized = validate_email(candidate, check_deliverability=False).normalized
        except EmailNotValidError:
            # email-validator's own messages may quote parts of the address: never pass them on.
            raise InvalidValue("must be a valid email address such as name@example.no") from None
        if len(normalized) > _MAX_EMAIL_LENGTH:
            raise InvalidValue(f"must be at most {_MAX_EMAIL_LENGTH} characters")
        return cls(normalized)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A phone number in E.164 form, e.g. ``+4791234567``."""

    value: str

    @classmethod
    def parse(cls, raw: str, default_region: str = "NO") -> PhoneNumber:
        """Parse ``raw`` in national form for ``default_region``, or in international form."""
        if len(raw) > _MAX_PHONE_INPUT_LENGTH:
            raise InvalidValue(f"must be at most {_MAX_PHONE_INPUT_LENGTH} characters")
        try:
            number = phonenumbers.parse(raw, default_region)
        except phonenumbers.NumberParseException:
            raise InvalidValue("must be a phone number such as +47 912 34 567") from None
        if not (phonenumbers.is_possible_number(number) and phonenumbers.is_valid_number(number)):
            raise InvalidValue("must be a valid phone number for its country")
        return cls(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

    def __str__(self) -> str:
        return self.value


class PhoneKind(enum.StrEnum):
    """Which of the borrower's phones."""

    MOBILE = "mobile"
    HOME = "home"
    WORK = "work"

    @property
    def field(self) -> str:
        """The record's field holding this phone."""
        return f"{self.value}_phone"


class ContactMethod(enum.StrEnum):
    """How the borrower wants to be contacted."""

    EMAIL = "email"
    SMS = "sms"
    LETTER = "letter"


@dataclass(frozen=True, slots=True)
class LanguageCode:
    """A preferred language: ISO 639-1 where the language has a two-letter code, else ISO 639-3
    (Lule and Southern Sami have only three-letter ones)."""

    value: str

    @classmethod
    def parse(cls, raw: str) -> LanguageCode:
        code = raw.strip().lower()
        language = None
        if len(code) == 2 and code.isascii():
            language = pycountry.languages.get(alpha_2=code)
        elif len(code) == 3 and code.isascii():
            language = pycountry.languages.get(alpha_3=code)
        if language is None:
            raise InvalidValue("must be an ISO 639 language code such as nb, nn, se or smj")
        return cls(getattr(language, "alpha_2", None) or language.alpha_3)

    def __str__(self) -> str:
        return self.value
