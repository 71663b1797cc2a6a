"""A borrower's contact data and preferences: email address, phone numbers, how to reach them and
in which language, validated and normalised."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import email_validator
import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email

from nlr_server.domain.errors import InvalidValue

_MAX_EMAIL_LENGTH = 254  # the longest address SMTP can deliver to (RFC 5321 path limit)
# Plain ASCII addresses (dot-atom local part of letters, digits, _ + -; lower-case-able domain
# labels without "--", an alphabetic top-level domain) are all valid to email-validator, which
# would only lower-case their domain: they skip it, as it costs more than the rest of a
# borrower's checks together. The rest still goes to email-validator. tests/domain/
# test_contact.py compares the two on generated addresses.
_PLAIN_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9_+-]{1,64}(?:\.[A-Za-z0-9_+-]{1,64})*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
_SPECIAL_USE_DOMAINS = frozenset(email_validator.SPECIAL_USE_DOMAIN_NAMES)
_MAX_PHONE_INPUT_LENGTH = 40
# The common Norwegian forms ("91234567", "912 34 567", "+47 912 34 567") with the spaces taken
# out: read without phonenumbers.parse, which costs more than the validity check it precedes.
# The result is the same as parse's (tests/domain/test_contact.py compares them).
_NORWEGIAN_FORM = re.compile(r"(?:\+47)?([1-9][0-9]{7})")


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
        plain = _plain_email(candidate)
        if plain is not None:
            return cls(plain)
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


def _plain_email(candidate: str) -> str | None:
    """``candidate`` as email-validator would normalise it, if it is a plain address."""
    plain = _PLAIN_EMAIL.fullmatch(candidate)
    if plain is None or len(plain["local"]) > 64 or "--" in plain["domain"]:
        return None
    domain = plain["domain"].lower()
    labels = domain.split(".")
    if any(".".join(labels[start:]) in _SPECIAL_USE_DOMAINS for start in range(len(labels))):
        return None
    return f"{plain['local']}@{domain}"


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A phone number in E.164 form, e.g. ``+4791234567``."""

    value: str

    @classmethod
    def parse(cls, raw: str, default_region: str = "NO") -> PhoneNumber:
        """Parse ``raw`` in national form for ``default_region``, or in international form."""
        if len(raw) > _MAX_PHONE_INPUT_LENGTH:
            raise InvalidValue(f"must be at most {_MAX_PHONE_INPUT_LENGTH} characters")
        norwegian = _NORWEGIAN_FORM.fullmatch(raw.replace(" ", ""))
        if norwegian is not None and default_region == "NO":
            number = phonenumbers.PhoneNumber(country_code=47, national_number=int(norwegian[1]))
        else:
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
