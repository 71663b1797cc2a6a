"""Two-factor login end to end: TOTP enrolment in SelfService (the secret shown once, sealed at
rest, confirmed by a first code, recovery codes), the second factor raising a session, codes
accepted once and locked after five wrong ones; the borrower's own record; and the security
levels TWO_FACTOR and EID on every login path."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from nlr.auth.v1 import authenticate_pb2 as auth_pb
from nlr.auth.v1 import authenticate_pb2_grpc
from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as registry_pb
from nlr.selfservice.v1 import selfservice_pb2 as pb
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import (
    BERGEN,
    OSLO,
    ClientCertificates,
    Registry,
    ServerThread,
    client_channel,
    create,
    error_details,
    get,
    new_borrower,
    table_text,
)
from selfservice_harness import (
    PASSWORD,
    Portal,
    borrower_with_password,
    code_now,
    portal_client,
    secret_of,
)

LEVEL = borrower_pb2.SecurityLevel
TWO_FACTOR = borrower_pb2.SECURITY_LEVEL_TWO_FACTOR
EID = borrower_pb2.SECURITY_LEVEL_EID
Authenticate = authenticate_pb2_grpc.AuthenticateStub


@pytest.fixture
def authenticate(server: ServerThread, pki: DevPkiPaths) -> Iterator[Authenticate]:
    with client_channel(server.target, pki, cert=pki.auth_cert, key=pki.auth_key) as channel:
        yield Authenticate(channel)


def refused(call: object) -> tuple[grpc.StatusCode, str]:
    assert isinstance(call, grpc.RpcError)
    return call.code(), error_details(call)[0]


def set_level(portal: Portal, level: LEVEL.ValueType) -> int:
    answer = portal.stub.SetMySecurityLevel(
        pb.SetMySecurityLevelRequest(security_level=level), metadata=portal.metadata
    )
    return answer.security_level


def enrolled(registry: Registry, portal: Portal, card_number: str) -> str:
    """A borrower with a password and two-factor login; the portal's session has two factors."""
    borrower_with_password(registry, card_number)
    portal.log_in(card_number)
    return portal.enroll()


def test_enrolment_shows_the_secret_once_and_confirming_it_gives_recovery_codes(
    registry: Registry, portal: Portal, prepared_database: str
) -> None:
    borrower_with_password(registry, "N000181001")
    portal.log_in("N000181001")

    uri = portal.stub.EnrollTotp(pb.EnrollTotpRequest(), metadata=portal.metadata).provisioning_uri
    assert uri.startswith("otpauth://totp/bibliotekkortet:N000181001?")
    assert "issuer=bibliotekkortet" in uri
    secret = secret_of(uri)
    # Sealed at rest: the secret is nowhere in the database.
    assert secret not in table_text(prepared_database)

    with pytest.raises(grpc.RpcError) as wrong:
        portal.stub.ConfirmTotp(
            pb.ConfirmTotpRequest(totp_code=f"{(int(code_now(secret)) + 1) % 10**6:06d}"),
            metadata=portal.metadata,
        )
    assert refused(wrong.value) == (grpc.StatusCode.UNAUTHENTICATED, "CODE_INVALID")

    codes = portal.stub.ConfirmTotp(
        pb.ConfirmTotpRequest(totp_code=code_now(secret)), metadata=portal.metadata
    ).recovery_codes
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(len(code) == 19 and code.count("-") == 3 for code in codes)
    stored = table_text(prepared_database)
    assert not any(code in stored or code.replace("-", "") in stored for code in codes)

    # The code that confirmed it proved the second factor: this session has two.
    record = portal.record()
    assert record.borrower.card_number == "N000181001"
    assert record.totp_enabled is True
    assert record.recovery_codes_left == 10
    assert [(lib.library_number, lib.name) for lib in record.libraries] == [
        (OSLO, "Test Oslo bibliotek")
    ]
    assert record.borrower.view == borrower_pb2.BORROWER_VIEW_FULL
    assert record.borrower.national_id == ""

    with pytest.raises(grpc.RpcError) as again:
        portal.stub.EnrollTotp(pb.EnrollTotpRequest(), metadata=portal.metadata)
    assert refused(again.value) == (grpc.StatusCode.FAILED_PRECONDITION, "TOTP_ALREADY_ENROLLED")


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({}, "totp_code"),
        ({"totp_code": "12345"}, "totp_code"),
        ({"totp_code": "12345a"}, "totp_code"),
        ({"recovery_code": "too-short"}, "recovery_code"),
    ],
)
def test_a_malformed_code_names_its_field(
    registry: Registry, portal: Portal, request_fields: dict[str, str], field: str
) -> None:
    enrolled(registry, portal, "N000181002")
    portal.log_in("N000181002")

    with pytest.raises(grpc.RpcError) as bad:
        portal.stub.ConfirmSecondFactor(
            pb.ConfirmSecondFactorRequest(**request_fields), metadata=portal.metadata
        )

    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(bad.value)[1]) == [field]


def test_confirm_without_enrolling_first_is_a_failed_precondition(
    registry: Registry, portal: Portal
) -> None:
    borrower_with_password(registry, "N000181003")
    portal.log_in("N000181003")

    with pytest.raises(grpc.RpcError) as early:
        portal.stub.ConfirmTotp(pb.ConfirmTotpRequest(totp_code="123456"), metadata=portal.metadata)
    assert refused(early.value) == (grpc.StatusCode.FAILED_PRECONDITION, "TOTP_NOT_ENROLLED")

    with pytest.raises(grpc.RpcError) as none:
        portal.confirm("123456")
    assert refused(none.value) == (grpc.StatusCode.FAILED_PRECONDITION, "TOTP_NOT_ENROLLED")


def test_a_totp_code_raises_a_password_session_and_is_accepted_once(
    registry: Registry, portal: Portal
) -> None:
    secret = enrolled(registry, portal, "N000181004")

    login = portal.log_in("N000181004")
    assert login.second_factor_available is True
    assert login.second_factor_required is False
    # The code that confirmed the enrolment is spent: only a later one raises the session.
    with pytest.raises(grpc.RpcError) as spent:
        portal.confirm(code_now(secret))
    assert refused(spent.value) == (grpc.StatusCode.UNAUTHENTICATED, "CODE_INVALID")

    raised = portal.confirm(code_now(secret, steps_ahead=1))
    assert raised.strength == TWO_FACTOR
    assert portal.record().borrower.card_number == "N000181004"


def test_a_recovery_code_stands_in_for_a_totp_code_once(registry: Registry, portal: Portal) -> None:
    borrower_with_password(registry, "N000181005")
    portal.log_in("N000181005")
    uri = portal.stub.EnrollTotp(pb.EnrollTotpRequest(), metadata=portal.metadata).provisioning_uri
    codes = portal.stub.ConfirmTotp(
        pb.ConfirmTotpRequest(totp_code=code_now(secret_of(uri))), metadata=portal.metadata
    ).recovery_codes

    portal.log_in("N000181005")
    answer = portal.stub.ConfirmSecondFactor(
        pb.ConfirmSecondFactorRequest(recovery_code=codes[3].upper().replace("-", " ")),
        metadata=portal.metadata,
    )
    assert answer.strength == TWO_FACTOR
    assert answer.recovery_codes_left == 9

    portal.log_in("N000181005")
    with pytest.raises(grpc.RpcError) as used:
        portal.stub.ConfirmSecondFactor(
            pb.ConfirmSecondFactorRequest(recovery_code=codes[3]), metadata=portal.metadata
        )
    assert refused(used.value) == (grpc.StatusCode.UNAUTHENTICATED, "CODE_INVALID")


def test_five_wrong_codes_lock_the_second_factor(registry: Registry, portal: Portal) -> None:
    secret = enrolled(registry, portal, "N000181006")
    portal.log_in("N000181006")
    right = code_now(secret, steps_ahead=1)
    wrong = f"{(int(right) + 500_000) % 10**6:06d}"
    for _ in range(5):
        with pytest.raises(grpc.RpcError) as bad:
            portal.confirm(wrong)
        assert refused(bad.value) == (grpc.StatusCode.UNAUTHENTICATED, "CODE_INVALID")

    with pytest.raises(grpc.RpcError) as locked:
        portal.confirm(right)

    assert refused(locked.value) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "LOGIN_LOCKED")


def test_a_borrower_chooses_two_factor_only_in_a_session_of_two(
    registry: Registry, portal: Portal
) -> None:
    borrower_with_password(registry, "N000181007")
    portal.log_in("N000181007")
    with pytest.raises(grpc.RpcError) as above:
        set_level(portal, TWO_FACTOR)
    assert refused(above.value) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "SECURITY_LEVEL_ABOVE_SESSION",
    )

    portal.enroll()
    assert set_level(portal, TWO_FACTOR) == TWO_FACTOR
    assert get(registry, card_number="N000181007").security_level == TWO_FACTOR
    with pytest.raises(grpc.RpcError) as eid:
        set_level(portal, EID)
    assert refused(eid.value) == (grpc.StatusCode.PERMISSION_DENIED, "SECURITY_LEVEL_ABOVE_SESSION")
    with pytest.raises(grpc.RpcError) as unset:
        set_level(portal, borrower_pb2.SECURITY_LEVEL_UNSPECIFIED)
    assert unset.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(unset.value)[1]) == ["security_level"]


def test_a_two_factor_borrower_password_login_waits_for_the_code(
    registry: Registry, portal: Portal
) -> None:
    secret = enrolled(registry, portal, "N000181008")
    set_level(portal, TWO_FACTOR)

    login = portal.log_in("N000181008")
    assert login.second_factor_required is True
    with pytest.raises(grpc.RpcError) as waiting:
        portal.record()
    assert refused(waiting.value) == (grpc.StatusCode.PERMISSION_DENIED, "SECOND_FACTOR_REQUIRED")
    with pytest.raises(grpc.RpcError) as waiting_level:
        set_level(portal, borrower_pb2.SECURITY_LEVEL_PASSWORD)
    assert refused(waiting_level.value)[1] == "SECOND_FACTOR_REQUIRED"

    portal.confirm(code_now(secret, steps_ahead=1))
    assert portal.record().borrower.security_level == TWO_FACTOR


def test_lowering_the_level_needs_two_factors_and_ends_the_other_sessions(
    registry: Registry,
    portal: Portal,
    server: ServerThread,
    pki: DevPkiPaths,
    certificates: ClientCertificates,
) -> None:
    enrolled(registry, portal, "N000181009")
    set_level(portal, TWO_FACTOR)
    with portal_client(server.target, pki, certificates) as stub:
        other = Portal(stub)
        other.log_in("N000181009")

        assert set_level(portal, borrower_pb2.SECURITY_LEVEL_PASSWORD) == (
            borrower_pb2.SECURITY_LEVEL_PASSWORD
        )

        with pytest.raises(grpc.RpcError) as ended:
            other.stub.LogOut(pb.LogOutRequest(), metadata=other.metadata)
        assert refused(ended.value) == (grpc.StatusCode.UNAUTHENTICATED, "SESSION_INVALID")
    # The session that chose it goes on.
    assert portal.record().borrower.security_level == borrower_pb2.SECURITY_LEVEL_PASSWORD


def test_disabling_totp_needs_two_factors_and_a_level_below_two_factor(
    registry: Registry, portal: Portal
) -> None:
    secret = enrolled(registry, portal, "N000181010")
    set_level(portal, TWO_FACTOR)
    portal.log_in("N000181010")
    portal.confirm(code_now(secret, steps_ahead=1))
    with pytest.raises(grpc.RpcError) as needed:
        portal.stub.DisableTotp(pb.DisableTotpRequest(), metadata=portal.metadata)
    assert refused(needed.value) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "SECURITY_LEVEL_NEEDS_TOTP",
    )

    set_level(portal, borrower_pb2.SECURITY_LEVEL_PASSWORD)
    portal.log_in("N000181010")  # one factor
    with pytest.raises(grpc.RpcError) as one:
        portal.stub.DisableTotp(pb.DisableTotpRequest(), metadata=portal.metadata)
    assert refused(one.value) == (grpc.StatusCode.PERMISSION_DENIED, "TWO_FACTORS_REQUIRED")

    portal.confirm_with_recovery_code()
    portal.stub.DisableTotp(pb.DisableTotpRequest(), metadata=portal.metadata)

    record = portal.record()
    assert (record.totp_enabled, record.recovery_codes_left) == (False, 0)
    with pytest.raises(grpc.RpcError) as gone:
        portal.stub.DisableTotp(pb.DisableTotpRequest(), metadata=portal.metadata)
    assert refused(gone.value) == (grpc.StatusCode.FAILED_PRECONDITION, "TOTP_NOT_ENROLLED")
    # A login now has no second factor to give.
    assert portal.log_in("N000181010").second_factor_available is False


def test_authenticate_logs_a_two_factor_borrower_in_with_password_and_code(
    registry: Registry, portal: Portal, authenticate: Authenticate
) -> None:
    secret = enrolled(registry, portal, "N000181011")
    set_level(portal, TWO_FACTOR)

    def verify(code: str = "") -> auth_pb.VerifyPasswordResponse:
        answer: auth_pb.VerifyPasswordResponse = authenticate.VerifyPassword(
            auth_pb.VerifyPasswordRequest(
                card_number="N000181011", password=PASSWORD, totp_code=code
            )
        )
        return answer

    with pytest.raises(grpc.RpcError) as without:
        verify()
    assert refused(without.value) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")
    right = code_now(secret, steps_ahead=1)
    with pytest.raises(grpc.RpcError) as wrong:
        verify(f"{(int(right) + 1) % 10**6:06d}")
    assert refused(wrong.value) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")
    with pytest.raises(grpc.RpcError) as malformed:
        verify("12 456")
    assert malformed.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(malformed.value)[1]) == ["totp_code"]

    answer = verify(right)
    assert answer.borrower.card_number == "N000181011"
    assert answer.borrower.assurance_level == auth_pb.ASSURANCE_LEVEL_TWO_FACTOR
    with pytest.raises(grpc.RpcError) as reused:
        verify(right)
    assert refused(reused.value) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")


def test_a_pin_opens_nothing_for_a_two_factor_borrower(
    registry: Registry, portal: Portal, authenticate: Authenticate
) -> None:
    enrolled(registry, portal, "N000181012")
    set_level(portal, TWO_FACTOR)
    registry.stub.SetPin(
        registry_pb.SetPinRequest(card_number="N000181012", pin="4711"), metadata=registry.metadata
    )

    with pytest.raises(grpc.RpcError) as pin_login:
        authenticate.VerifyPin(auth_pb.VerifyPinRequest(card_number="N000181012", pin="4711"))
    with pytest.raises(grpc.RpcError) as pin_proof:
        registry.as_library(BERGEN).stub.AffiliateBorrower(
            registry_pb.AffiliateBorrowerRequest(
                card_number="N000181012",
                birth_date_and_pin=registry_pb.BirthDateAndPin(
                    birth_date=get(registry, card_number="N000181012").birth_date, pin="4711"
                ),
            ),
            metadata=registry.as_library(BERGEN).metadata,
        )

    assert refused(pin_login.value) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")
    assert refused(pin_proof.value) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "AFFILIATION_PROOF_MISMATCH",
    )


def test_a_password_borrower_with_totp_reaches_two_factor_with_a_code(
    registry: Registry, portal: Portal, authenticate: Authenticate
) -> None:
    secret = enrolled(registry, portal, "N000181013")

    plain = authenticate.VerifyPassword(
        auth_pb.VerifyPasswordRequest(card_number="N000181013", password=PASSWORD)
    )
    with_code = authenticate.VerifyPassword(
        auth_pb.VerifyPasswordRequest(
            card_number="N000181013", password=PASSWORD, totp_code=code_now(secret, steps_ahead=1)
        )
    )

    assert plain.borrower.assurance_level == auth_pb.ASSURANCE_LEVEL_PASSWORD
    assert with_code.borrower.assurance_level == auth_pb.ASSURANCE_LEVEL_TWO_FACTOR


def update_level(registry: Registry, card_number: str, level: LEVEL.ValueType) -> None:
    etag = get(registry, card_number=card_number).etag
    registry.stub.UpdateBorrower(
        registry_pb.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(
                card_number=card_number, etag=etag, security_level=level
            ),
            update_mask=FieldMask(paths=["security_level"]),
        ),
        metadata=registry.metadata,
    )


def test_a_library_sets_two_factor_only_for_a_borrower_with_totp(
    registry: Registry, portal: Portal
) -> None:
    borrower_with_password(registry, "N000181014")
    with pytest.raises(grpc.RpcError) as no_totp:
        update_level(registry, "N000181014", TWO_FACTOR)
    assert refused(no_totp.value) == (grpc.StatusCode.FAILED_PRECONDITION, "TOTP_NOT_ENROLLED")
    assert get(registry, card_number="N000181014").security_level == (
        borrower_pb2.SECURITY_LEVEL_PIN
    )
    with pytest.raises(grpc.RpcError) as at_create:
        create(registry, new_borrower("N000181015", security_level=TWO_FACTOR))
    assert refused(at_create.value) == (grpc.StatusCode.FAILED_PRECONDITION, "TOTP_NOT_ENROLLED")

    portal.log_in("N000181014")
    portal.enroll()
    update_level(registry, "N000181014", TWO_FACTOR)
    assert get(registry, card_number="N000181014").security_level == TWO_FACTOR
    # The level changed: the borrower's sessions ended.
    with pytest.raises(grpc.RpcError) as ended:
        portal.record()
    assert refused(ended.value) == (grpc.StatusCode.UNAUTHENTICATED, "SESSION_INVALID")
    with pytest.raises(grpc.RpcError) as lower:
        update_level(registry, "N000181014", borrower_pb2.SECURITY_LEVEL_PASSWORD)
    assert refused(lower.value) == (grpc.StatusCode.PERMISSION_DENIED, "SECURITY_LEVEL_LOWERING")


def test_an_eid_borrower_cannot_log_in_by_password_anywhere(
    registry: Registry, portal: Portal, authenticate: Authenticate
) -> None:
    borrower_with_password(registry, "N000181016")
    update_level(registry, "N000181016", EID)

    with pytest.raises(grpc.RpcError) as selfservice:
        portal.log_in("N000181016")
    with pytest.raises(grpc.RpcError) as ebook:
        authenticate.VerifyPassword(
            auth_pb.VerifyPasswordRequest(card_number="N000181016", password=PASSWORD)
        )

    for refusal in (selfservice.value, ebook.value):
        assert refused(refusal) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef"])
def test_a_malformed_enrolment_code_names_its_field_and_changes_nothing(
    registry: Registry, portal: Portal, code: str
) -> None:
    borrower_with_password(registry, "N000181017")
    portal.log_in("N000181017")
    portal.stub.EnrollTotp(pb.EnrollTotpRequest(), metadata=portal.metadata)

    with pytest.raises(grpc.RpcError) as bad:
        portal.stub.ConfirmTotp(pb.ConfirmTotpRequest(totp_code=code), metadata=portal.metadata)

    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(bad.value)[1]) == ["totp_code"]
    assert portal.log_in("N000181017").second_factor_available is False
