"""Every BorrowerRegistry RPC (the change feed's stream too), and Authenticate, under every way
a caller can lack the right: exact status, reason, nothing written, nothing revealed; and the
same request from the right caller succeeds."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from nlr.auth.v1 import authenticate_pb2, authenticate_pb2_grpc
from nlr.registry.v1 import borrower_pb2, registry_service_pb2_grpc
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.crypto.keyring import Keyring
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import (
    BERGEN,
    DISABLED_LIBRARY,
    LIBRARY_CODES,
    OSLO,
    OTHER_VENDORS_LIBRARY,
    UNKNOWN_LIBRARY,
    ClientCertificates,
    Registry,
    ServerThread,
    client_channel,
    count_rows,
    create,
    error_details,
    get,
    national_id,
    new_borrower,
    revoke_certificate,
)

CARD = "N000000901"
NID = national_id()
GUARDIAN = "N000000904"
FEIDE_ID = "matrix@uio.no"


@dataclass(frozen=True)
class Case:
    certificate: str  # "ils" (the test vendor's), "auth", or a name in ClientCertificates
    library: str | None
    code: str | None
    status: grpc.StatusCode
    reason: str


CASES = {
    "no library metadata": Case(
        "ils", None, None, grpc.StatusCode.UNAUTHENTICATED, "LIBRARY_MISSING"
    ),
    "no library code": Case(
        "ils", OSLO, None, grpc.StatusCode.UNAUTHENTICATED, "LIBRARY_CODE_MISSING"
    ),
    "unknown library": Case(
        "ils", UNKNOWN_LIBRARY, "any-code", grpc.StatusCode.PERMISSION_DENIED, "LIBRARY_NOT_ALLOWED"
    ),
    "disabled library": Case(
        "ils",
        DISABLED_LIBRARY,
        LIBRARY_CODES[DISABLED_LIBRARY],
        grpc.StatusCode.PERMISSION_DENIED,
        "LIBRARY_NOT_ALLOWED",
    ),
    "wrong code": Case(
        "ils", OSLO, "not-the-code", grpc.StatusCode.PERMISSION_DENIED, "LIBRARY_CODE_INVALID"
    ),
    "another vendor's library": Case(
        "ils",
        OTHER_VENDORS_LIBRARY,
        LIBRARY_CODES[OTHER_VENDORS_LIBRARY],
        grpc.StatusCode.PERMISSION_DENIED,
        "LIBRARY_NOT_ALLOWED",
    ),
    "other vendor for our library": Case(
        "other_ils",
        OSLO,
        LIBRARY_CODES[OSLO],
        grpc.StatusCode.PERMISSION_DENIED,
        "LIBRARY_NOT_ALLOWED",
    ),
    "disabled vendor": Case(
        "disabled_vendor",
        OSLO,
        LIBRARY_CODES[OSLO],
        grpc.StatusCode.PERMISSION_DENIED,
        "VENDOR_DISABLED",
    ),
    "revoked certificate": Case(
        "revoked", OSLO, LIBRARY_CODES[OSLO], grpc.StatusCode.UNAUTHENTICATED, "CERTIFICATE_REVOKED"
    ),
    "unregistered certificate": Case(
        "unregistered",
        OSLO,
        LIBRARY_CODES[OSLO],
        grpc.StatusCode.UNAUTHENTICATED,
        "CERTIFICATE_UNKNOWN",
    ),
    "auth role": Case(
        "auth", OSLO, LIBRARY_CODES[OSLO], grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_ALLOWED"
    ),
    "portal role": Case(
        "portal", OSLO, LIBRARY_CODES[OSLO], grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_ALLOWED"
    ),
}

Call = Callable[[Registry], object]

RPCS: dict[str, Call] = {
    "CreateBorrower": lambda r: create(r, new_borrower("N000000902")),
    "GetBorrower": lambda r: r.stub.GetBorrower(
        pb.GetBorrowerRequest(card_number=CARD), metadata=r.metadata
    ),
    "GetBorrower by national id": lambda r: r.stub.GetBorrower(
        pb.GetBorrowerRequest(national_id=NID), metadata=r.metadata
    ),
    "UpdateBorrower": lambda r: r.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(card_number=CARD, etag='"1"', email="x@example.org"),
            update_mask=FieldMask(paths=["email"]),
        ),
        metadata=r.metadata,
    ),
    "AffiliateBorrower": lambda r: r.stub.AffiliateBorrower(
        pb.AffiliateBorrowerRequest(card_number=CARD, national_id=NID), metadata=r.metadata
    ),
    "DeleteBorrower": lambda r: r.stub.DeleteBorrower(
        pb.DeleteBorrowerRequest(
            card_number=CARD, reason=borrower_pb2.DELETION_REASON_BORROWER_REQUEST
        ),
        metadata=r.metadata,
    ),
    "SetPin": lambda r: r.stub.SetPin(
        pb.SetPinRequest(card_number=CARD, pin="4711"), metadata=r.metadata
    ),
    "SetPassword": lambda r: r.stub.SetPassword(
        pb.SetPasswordRequest(card_number=CARD, password="correct horse battery staple"),
        metadata=r.metadata,
    ),
    "SetHomeLibrary": lambda r: r.stub.SetHomeLibrary(
        pb.SetHomeLibraryRequest(card_number=CARD, library_number=OSLO), metadata=r.metadata
    ),
    "RemoveAffiliation": lambda r: r.stub.RemoveAffiliation(
        pb.RemoveAffiliationRequest(card_number=CARD), metadata=r.metadata
    ),
    "ReplaceCard": lambda r: r.stub.ReplaceCard(
        pb.ReplaceCardRequest(card_number=CARD, new_card_number="N000000903"),
        metadata=r.metadata,
    ),
    "ReserveCardNumbers": lambda r: r.stub.ReserveCardNumbers(
        pb.ReserveCardNumbersRequest(count=5), metadata=r.metadata
    ),
    "ListCardNumberReservations": lambda r: r.stub.ListCardNumberReservations(
        pb.ListCardNumberReservationsRequest(), metadata=r.metadata
    ),
    "LinkGuardian": lambda r: r.stub.LinkGuardian(
        pb.LinkGuardianRequest(card_number=CARD, guardian_card_number=GUARDIAN),
        metadata=r.metadata,
    ),
    "UnlinkGuardian": lambda r: r.stub.UnlinkGuardian(
        pb.UnlinkGuardianRequest(card_number=CARD, guardian_card_number=GUARDIAN),
        metadata=r.metadata,
    ),
    "AddIdentity": lambda r: r.stub.AddIdentity(
        pb.AddIdentityRequest(
            card_number=CARD,
            identity=borrower_pb2.Identity(kind=borrower_pb2.IDENTITY_KIND_FEIDE, value=FEIDE_ID),
        ),
        metadata=r.metadata,
    ),
    "RemoveIdentity": lambda r: r.stub.RemoveIdentity(
        pb.RemoveIdentityRequest(card_number=CARD, kind=borrower_pb2.IDENTITY_KIND_FEIDE),
        metadata=r.metadata,
    ),
    "GetBorrower by identity": lambda r: r.stub.GetBorrower(
        pb.GetBorrowerRequest(
            identity=borrower_pb2.IdentityKey(kind=borrower_pb2.IDENTITY_KIND_FEIDE, value=FEIDE_ID)
        ),
        metadata=r.metadata,
    ),
    "ListAffiliatedBorrowers": lambda r: r.stub.ListAffiliatedBorrowers(
        pb.ListAffiliatedBorrowersRequest(), metadata=r.metadata
    ),
    "ListChanges": lambda r: r.stub.ListChanges(pb.ListChangesRequest(), metadata=r.metadata),
    "WatchChanges": lambda r: _first_watched(r),
}


def _first_watched(registry: Registry) -> pb.WatchChangesResponse:
    """The stream's first message (the borrower's creation, replayed); refusals end it first."""
    call = registry.stub.WatchChanges(pb.WatchChangesRequest(), metadata=registry.metadata)
    try:
        return next(call)
    finally:
        call.cancel()


def _linked_guardian(registry: Registry) -> None:
    create(registry, new_borrower(GUARDIAN))
    RPCS["LinkGuardian"](registry)


# What must exist before an RPC can succeed at all (done by the right caller, before counting).
SETUP: dict[str, Call] = {
    "LinkGuardian": lambda r: create(r, new_borrower(GUARDIAN)),
    "UnlinkGuardian": _linked_guardian,
    "RemoveIdentity": RPCS["AddIdentity"],
    "GetBorrower by identity": RPCS["AddIdentity"],
}

# The library whose request goes through in each RPC's positive control: Bergen affiliates,
# and leaves again; Oslo does everything else.
RIGHT_LIBRARY = {"AffiliateBorrower": BERGEN, "RemoveAffiliation": BERGEN}


def _certificate_files(
    certificate: str, pki: DevPkiPaths, certificates: ClientCertificates
) -> tuple[Path, Path]:
    if certificate == "ils":
        return pki.ils_cert, pki.ils_key
    if certificate == "auth":
        return pki.auth_cert, pki.auth_key
    return certificates.path(certificate)


@pytest.fixture
def caller_for(
    server: ServerThread, pki: DevPkiPaths, certificates: ClientCertificates
) -> Iterator[Callable[[str, str | None, str | None], Registry]]:
    channels: list[grpc.Channel] = []

    def caller(certificate: str, library: str | None, code: str | None) -> Registry:
        cert, key = _certificate_files(certificate, pki, certificates)
        channel = client_channel(server.target, pki, cert=cert, key=key)
        channels.append(channel)
        return Registry(registry_service_pb2_grpc.BorrowerRegistryStub(channel), library, code)

    yield caller
    for channel in channels:
        channel.close()


@pytest.fixture
def authenticator_for(
    server: ServerThread, pki: DevPkiPaths, certificates: ClientCertificates
) -> Iterator[Callable[[str], authenticate_pb2_grpc.AuthenticateStub]]:
    """Authenticate clients by certificate; Authenticate takes no library metadata."""
    channels: list[grpc.Channel] = []

    def authenticator(certificate: str) -> authenticate_pb2_grpc.AuthenticateStub:
        cert, key = _certificate_files(certificate, pki, certificates)
        channel = client_channel(server.target, pki, cert=cert, key=key)
        channels.append(channel)
        return authenticate_pb2_grpc.AuthenticateStub(channel)

    yield authenticator
    for channel in channels:
        channel.close()


@pytest.mark.parametrize("rpc", list(RPCS))
def test_every_caller_without_the_right_is_refused_and_nothing_changes(
    rpc: str,
    server: ServerThread,
    caller_for: Callable[[str, str | None, str | None], Registry],
) -> None:
    oslo = caller_for("ils", OSLO, LIBRARY_CODES[OSLO])
    created = create(oslo, new_borrower(CARD, national_id=NID, given_name="Matrixperson"))
    if rpc == "RemoveAffiliation":
        bergen = caller_for("ils", BERGEN, LIBRARY_CODES[BERGEN])
        created = bergen.stub.AffiliateBorrower(
            pb.AffiliateBorrowerRequest(card_number=CARD, national_id=NID),
            metadata=bergen.metadata,
        ).borrower
    if rpc in SETUP:
        SETUP[rpc](oslo)
    before = count_rows(server.config.database_url)

    outcomes = {}
    for name, case in CASES.items():
        with pytest.raises(grpc.RpcError) as raised:
            RPCS[rpc](caller_for(case.certificate, case.library, case.code))
        outcomes[name] = (raised.value.code(), error_details(raised.value)[0])
        assert "Matrixperson" not in (raised.value.details() or "")

    assert outcomes == {name: (case.status, case.reason) for name, case in CASES.items()}
    assert count_rows(server.config.database_url) == before
    # Changes that add no rows (a PIN, a password, a new email) would show in the etag.
    assert get(oslo, card_number=CARD).etag == created.etag
    # The positive control: the same request from a caller with the right goes through.
    library = RIGHT_LIBRARY.get(rpc, OSLO)
    RPCS[rpc](caller_for("ils", library, LIBRARY_CODES[library]))


AUTHENTICATE_REFUSED = [
    "portal role",
    "revoked certificate",
    "unregistered certificate",
    "disabled vendor",
]


def test_every_certificate_without_the_right_is_refused_by_authenticate(
    server: ServerThread,
    caller_for: Callable[[str, str | None, str | None], Registry],
    authenticator_for: Callable[[str], authenticate_pb2_grpc.AuthenticateStub],
) -> None:
    oslo = caller_for("ils", OSLO, LIBRARY_CODES[OSLO])
    create(oslo, new_borrower(CARD, national_id=NID, given_name="Matrixperson"))
    oslo.stub.SetPin(pb.SetPinRequest(card_number=CARD, pin="4711"), metadata=oslo.metadata)
    request = authenticate_pb2.VerifyPinRequest(card_number=CARD, pin="4711")
    before = count_rows(server.config.database_url)

    outcomes = {}
    for name in AUTHENTICATE_REFUSED:
        with pytest.raises(grpc.RpcError) as raised:
            authenticator_for(CASES[name].certificate).VerifyPin(request)
        outcomes[name] = (raised.value.code(), error_details(raised.value)[0])
        assert "Matrixperson" not in (raised.value.details() or "")

    assert outcomes == {name: (CASES[name].status, CASES[name].reason) for name in outcomes}
    assert count_rows(server.config.database_url) == before
    assert get(oslo, card_number=CARD).last_active_on == ""
    # The positive control: the same request with an auth or an ILS certificate goes through.
    for certificate in ("auth", "ils"):
        assert authenticator_for(certificate).VerifyPin(request).borrower.card_number == CARD


def test_revoking_a_certificate_refuses_its_next_call(
    server: ServerThread,
    caller_for: Callable[[str, str | None, str | None], Registry],
    pki: DevPkiPaths,
    keyring: Keyring,
) -> None:
    oslo = caller_for("ils", OSLO, LIBRARY_CODES[OSLO])
    create(oslo, new_borrower(CARD, national_id=NID))

    revoke_certificate(server.config.database_url, keyring, pki.ils_cert)

    with pytest.raises(grpc.RpcError) as raised:
        RPCS["GetBorrower"](oslo)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_details(raised.value)[0] == "CERTIFICATE_REVOKED"
