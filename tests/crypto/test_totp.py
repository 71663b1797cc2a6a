"""TOTP codes (RFC 6238) on a controlled clock, and recovery codes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from nlr_server.crypto import totp
from nlr_server.crypto.field_cipher import DecryptionError
from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.totp import TotpSecretSealer

# RFC 6238, appendix B: the SHA-1 secret "12345678901234567890", 8 digits at these times.
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
AT = dt.datetime(2026, 12, 6, 12, 0, 10, tzinfo=dt.UTC)
STEP = int(AT.timestamp()) // 30


def test_codes_match_the_rfc_test_vectors_in_six_digits() -> None:
    # RFC 6238 gives 94287082 at T=59 s and 07081804 at T=1111111109 s (8 digits); the
    # 6-digit codes are their last six.
    assert totp.code_at(RFC_SECRET, dt.datetime.fromtimestamp(59, dt.UTC)) == "287082"
    assert totp.code_at(RFC_SECRET, dt.datetime.fromtimestamp(1111111109, dt.UTC)) == "081804"


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_a_code_of_the_step_before_now_or_after_matches(offset: int) -> None:
    code = totp.code_at(RFC_SECRET, AT + dt.timedelta(seconds=30 * offset))

    assert totp.matching_step(RFC_SECRET, code, AT, None) == STEP + offset


@pytest.mark.parametrize("offset", [-2, 2])
def test_a_code_two_steps_away_does_not(offset: int) -> None:
    code = totp.code_at(RFC_SECRET, AT + dt.timedelta(seconds=30 * offset))

    assert totp.matching_step(RFC_SECRET, code, AT, None) is None


def test_a_code_of_a_step_already_accepted_or_earlier_is_refused() -> None:
    code = totp.code_at(RFC_SECRET, AT)

    assert totp.matching_step(RFC_SECRET, code, AT, STEP) is None
    assert totp.matching_step(RFC_SECRET, code, AT, STEP + 1) is None
    assert totp.matching_step(RFC_SECRET, code, AT, STEP - 1) == STEP


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12345a", "١٢٣٤٥٦"])
def test_a_malformed_code_matches_nothing(code: str) -> None:
    assert totp.matching_step(RFC_SECRET, code, AT, None) is None


def test_the_provisioning_uri_names_the_card_and_the_issuer() -> None:
    uri = totp.provisioning_uri(RFC_SECRET, "N000123456")

    assert uri == (
        f"otpauth://totp/bibliotekkortet:N000123456?secret={RFC_SECRET}&issuer=bibliotekkortet"
    )


def test_new_secrets_are_160_bits_of_base32_and_differ() -> None:
    secrets = {totp.new_secret() for _ in range(20)}

    assert len(secrets) == 20
    assert all(len(s) == 32 and set(s) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for s in secrets)


def test_a_sealed_secret_opens_only_for_its_borrower(tmp_path: Path) -> None:
    sealer = TotpSecretSealer(Keyring.create(tmp_path / "keyring.json"))
    sealed = sealer.seal(RFC_SECRET, 7)

    assert RFC_SECRET.encode() not in sealed.ciphertext
    assert sealer.open(sealed.ciphertext, 7) == RFC_SECRET
    with pytest.raises(DecryptionError):
        sealer.open(sealed.ciphertext, 8)


def test_recovery_codes_verify_as_typed_and_only_themselves() -> None:
    codes = totp.new_recovery_codes()
    verifiers = [totp.recovery_verifier(code) for code in codes]

    assert len(set(codes)) == totp.RECOVERY_CODE_COUNT
    assert all(totp.is_recovery_code_shaped(code) for code in codes)
    typed = codes[0].upper().replace("-", " ")
    assert totp.recovery_matches(typed, verifiers[0])
    assert not totp.recovery_matches(codes[1], verifiers[0])
    assert codes[0].encode() not in verifiers[0]
    # Salted: the same code twice gives two verifiers.
    assert totp.recovery_verifier(codes[0]) != verifiers[0]
