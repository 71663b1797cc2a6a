"""ID-porten and Feide logins end to end, against real local identity providers: the register
validates the ID token itself, finds an ID-porten borrower by the national id (pid) and a Feide
borrower by the Feide user they linked, and every login honours the borrower's level."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from nlr.registry.v1 import borrower_pb2, registry_service_pb2_grpc
from nlr.registry.v1 import registry_service_pb2 as registry_pb
from nlr.selfservice.v1 import selfservice_pb2 as pb
from nlr_server.api.server import StartupError
from nlr_server.ops.dev_idporten import DEV_AUDIENCE, DEV_ISSUER, ensure_dev_idporten
from nlr_server.ops.dev_pki import DevPkiPaths
from oidc_provider import CLIENT_ID, OidcProvider
from register_harness import (
    OSLO,
    ClientCertificates,
    Registry,
    ServerThread,
    client_channel,
    create,
    error_details,
    make_config,
    national_id,
    new_borrower,
)
from selfservice_harness import Portal, borrower_with_password, code_now, portal_client

NONCE = "n-0S6_WzA2Mj"
EID = borrower_pb2.SECURITY_LEVEL_EID


@pytest.fixture
def idporten() -> Iterator[OidcProvider]:
    with OidcProvider() as provider:
        yield provider


@pytest.fixture
def feide() -> Iterator[OidcProvider]:
    with OidcProvider() as provider:
        yield provider


@pytest.fixture
def eid_server(
    prepared_database: str,
    pki: DevPkiPaths,
    keyring_path: Path,
    idporten: OidcProvider,
    feide: OidcProvider,
    tmp_path: Path,
) -> Iterator[ServerThread]:
    """A server that takes ID-porten logins (keys by URL) and Feide logins (keys from a file)."""
    config = make_config(
        pki,
        keyring_path,
        prepared_database,
        idporten_issuer=idporten.issuer,
        idporten_audience=CLIENT_ID,
        idporten_jwks=idporten.jwks_uri,
        feide_issuer=feide.issuer,
        feide_audience=CLIENT_ID,
        feide_jwks=str(feide.write_jwks(tmp_path / "feide-jwks.json")),
    )
    running = ServerThread(config).start()
    yield running
    running.stop()


@pytest.fixture
def registry(eid_server: ServerThread, pki: DevPkiPaths) -> Iterator[Registry]:
    with client_channel(eid_server.target, pki) as channel:
        yield Registry(registry_service_pb2_grpc.BorrowerRegistryStub(channel), OSLO).as_library(
            OSLO
        )


@pytest.fixture
def portal(
    eid_server: ServerThread, pki: DevPkiPaths, certificates: ClientCertificates
) -> Iterator[Portal]:
    with portal_client(eid_server.target, pki, certificates) as stub:
        yield Portal(stub)


def refused(error: object) -> tuple[grpc.StatusCode, str]:
    assert isinstance(error, grpc.RpcError)
    return error.code(), error_details(error)[0]


def log_in_with_idporten(portal: Portal, token: str, nonce: str = NONCE) -> pb.Session:
    answer = portal.stub.LogInWithIdPorten(pb.LogInWithIdPortenRequest(id_token=token, nonce=nonce))
    portal.token = answer.session.session_token
    return answer.session


def log_in_with_feide(portal: Portal, token: str) -> pb.Session:
    answer = portal.stub.LogInWithFeide(pb.LogInWithFeideRequest(id_token=token, nonce=NONCE))
    portal.token = answer.session.session_token
    return answer.session


def link_feide(portal: Portal, token: str) -> None:
    portal.stub.LinkFeide(
        pb.LinkFeideRequest(id_token=token, nonce=NONCE), metadata=portal.metadata
    )


def test_an_idporten_login_finds_the_borrower_by_pid_and_opens_everything(
    registry: Registry, portal: Portal, idporten: OidcProvider
) -> None:
    number = national_id()
    create(registry, new_borrower("N000182001", national_id=number))

    session = log_in_with_idporten(portal, idporten.mint(sub="s-1", nonce=NONCE, pid=number))

    assert session.card_number == "N000182001"
    assert session.strength == EID
    assert session.second_factor_required is False
    assert portal.record().borrower.card_number == "N000182001"


@pytest.mark.parametrize(
    "wrong",
    ["nonce", "audience", "issuer", "acr", "signature", "expired"],
)
def test_an_idporten_token_that_fails_a_check_opens_nothing(
    registry: Registry, portal: Portal, idporten: OidcProvider, wrong: str
) -> None:
    number = national_id()
    create(registry, new_borrower("N000182002", national_id=number))
    fields: dict[str, object] = {"sub": "s-2", "nonce": NONCE, "pid": number}
    changes: dict[str, dict[str, object]] = {
        "nonce": {"nonce": "another nonce"},
        "audience": {"audience": "another-client"},
        "issuer": {"issuer": "https://idporten.example"},
        "acr": {"acr": "idporten-loa-low"},
        "signature": {"sign_with_other_key": True},
        "expired": {"expires_in": -120},
    }
    fields |= changes[wrong]

    with pytest.raises(grpc.RpcError) as refusal:
        log_in_with_idporten(portal, idporten.mint(**fields))  # type: ignore[arg-type]

    assert refused(refusal.value) == (grpc.StatusCode.UNAUTHENTICATED, "ID_TOKEN_INVALID")
    assert number not in (refusal.value.details() or "")


def test_an_idporten_login_of_a_person_who_is_no_borrower_is_not_found(
    portal: Portal, idporten: OidcProvider
) -> None:
    with pytest.raises(grpc.RpcError) as refusal:
        log_in_with_idporten(portal, idporten.mint(sub="s-3", nonce=NONCE, pid=national_id()))

    assert refused(refusal.value) == (grpc.StatusCode.NOT_FOUND, "NOT_REGISTERED")


@pytest.mark.parametrize(("token", "nonce", "field"), [("", NONCE, "id_token"), ("x", "", "nonce")])
def test_a_login_without_token_or_nonce_names_the_field(
    portal: Portal, token: str, nonce: str, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as refusal:
        portal.stub.LogInWithIdPorten(pb.LogInWithIdPortenRequest(id_token=token, nonce=nonce))

    assert refusal.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(refusal.value)[1]) == [field]


def test_a_register_without_provider_settings_refuses_those_logins(
    server: ServerThread, pki: DevPkiPaths, certificates: ClientCertificates
) -> None:
    with portal_client(server.target, pki, certificates) as stub:
        with pytest.raises(grpc.RpcError) as idporten:
            stub.LogInWithIdPorten(pb.LogInWithIdPortenRequest(id_token="x", nonce=NONCE))
        with pytest.raises(grpc.RpcError) as feide:
            stub.LogInWithFeide(pb.LogInWithFeideRequest(id_token="x", nonce=NONCE))
    for refusal in (idporten.value, feide.value):
        assert refused(refusal) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "PROVIDER_NOT_CONFIGURED",
        )


def test_an_eid_borrower_logs_in_with_idporten_only(
    registry: Registry, portal: Portal, idporten: OidcProvider
) -> None:
    number = national_id()
    borrower_with_password(registry, "N000182004", national_id=number)
    log_in_with_idporten(portal, idporten.mint(sub="s-4", nonce=NONCE, pid=number))
    chosen = portal.stub.SetMySecurityLevel(
        pb.SetMySecurityLevelRequest(security_level=EID), metadata=portal.metadata
    )
    assert chosen.security_level == EID

    with pytest.raises(grpc.RpcError) as by_password:
        portal.log_in("N000182004")
    assert refused(by_password.value) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")
    assert log_in_with_idporten(
        portal, idporten.mint(sub="s-4", nonce=NONCE, pid=number)
    ).strength == (EID)


def test_a_feide_user_is_linked_in_an_idporten_session_and_then_logs_in(
    registry: Registry, portal: Portal, idporten: OidcProvider, feide: OidcProvider
) -> None:
    number = national_id()
    borrower_with_password(registry, "N000182005", national_id=number)
    feide_user = "76a7a061-3c55-430d-8ee0-6f82ec42501f"
    with pytest.raises(grpc.RpcError) as unlinked:
        log_in_with_feide(portal, feide.mint(sub=feide_user, nonce=NONCE, acr=None))
    assert refused(unlinked.value) == (grpc.StatusCode.NOT_FOUND, "FEIDE_NOT_LINKED")

    portal.log_in("N000182005")  # a password session may not link
    with pytest.raises(grpc.RpcError) as by_password:
        link_feide(portal, feide.mint(sub=feide_user, nonce=NONCE, acr=None))
    assert refused(by_password.value) == (grpc.StatusCode.PERMISSION_DENIED, "EID_REQUIRED")

    log_in_with_idporten(portal, idporten.mint(sub="s-5", nonce=NONCE, pid=number))
    link_feide(portal, feide.mint(sub=feide_user, nonce=NONCE, acr=None))
    identities = [(i.kind, i.value) for i in portal.record().borrower.identities]
    assert identities == [(borrower_pb2.IDENTITY_KIND_FEIDE_ID, feide_user)]

    session = log_in_with_feide(portal, feide.mint(sub=feide_user, nonce=NONCE, acr=None))
    assert session.card_number == "N000182005"
    assert session.strength == borrower_pb2.SECURITY_LEVEL_PASSWORD
    # One factor: the record needs a second.
    with pytest.raises(grpc.RpcError) as one_factor:
        portal.record()
    assert refused(one_factor.value) == (grpc.StatusCode.PERMISSION_DENIED, "TWO_FACTORS_REQUIRED")


def test_a_feide_login_takes_a_totp_code_as_its_second_factor(
    registry: Registry, portal: Portal, idporten: OidcProvider, feide: OidcProvider
) -> None:
    number = national_id()
    borrower_with_password(registry, "N000182006", national_id=number)
    log_in_with_idporten(portal, idporten.mint(sub="s-6", nonce=NONCE, pid=number))
    link_feide(portal, feide.mint(sub="feide-user-6", nonce=NONCE, acr=None))
    secret = portal.enroll()

    session = log_in_with_feide(portal, feide.mint(sub="feide-user-6", nonce=NONCE, acr=None))
    assert session.second_factor_available is True
    raised = portal.confirm(code_now(secret, steps_ahead=1))

    assert raised.strength == borrower_pb2.SECURITY_LEVEL_TWO_FACTOR


def test_a_feide_user_links_to_one_borrower_and_never_through_a_library(
    registry: Registry, portal: Portal, idporten: OidcProvider, feide: OidcProvider
) -> None:
    first, second = national_id(), national_id()
    create(registry, new_borrower("N000182007", national_id=first))
    create(registry, new_borrower("N000182008", national_id=second))
    log_in_with_idporten(portal, idporten.mint(sub="s-7", nonce=NONCE, pid=first))
    link_feide(portal, feide.mint(sub="feide-user-7", nonce=NONCE, acr=None))

    log_in_with_idporten(portal, idporten.mint(sub="s-8", nonce=NONCE, pid=second))
    with pytest.raises(grpc.RpcError) as taken:
        link_feide(portal, feide.mint(sub="feide-user-7", nonce=NONCE, acr=None))
    assert refused(taken.value) == (grpc.StatusCode.ALREADY_EXISTS, "IDENTITY_IN_USE")

    with pytest.raises(grpc.RpcError) as by_library:
        registry.stub.AddIdentity(
            registry_pb.AddIdentityRequest(
                card_number="N000182008",
                identity=borrower_pb2.Identity(
                    kind=borrower_pb2.IDENTITY_KIND_FEIDE_ID, value="feide-user-8"
                ),
            ),
            metadata=registry.metadata,
        )
    assert refused(by_library.value) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "IDENTITY_LINKED_BY_BORROWER",
    )


def test_an_eid_borrower_cannot_log_in_with_feide(
    registry: Registry, portal: Portal, idporten: OidcProvider, feide: OidcProvider
) -> None:
    number = national_id()
    create(registry, new_borrower("N000182009", national_id=number))
    log_in_with_idporten(portal, idporten.mint(sub="s-9", nonce=NONCE, pid=number))
    link_feide(portal, feide.mint(sub="feide-user-9", nonce=NONCE, acr=None))
    portal.stub.SetMySecurityLevel(
        pb.SetMySecurityLevelRequest(security_level=EID), metadata=portal.metadata
    )

    with pytest.raises(grpc.RpcError) as refusal:
        log_in_with_feide(portal, feide.mint(sub="feide-user-9", nonce=NONCE, acr=None))

    assert refused(refusal.value) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "SECURITY_LEVEL_NOT_REACHED",
    )


def test_the_server_refuses_to_start_with_an_issuer_but_no_keys(
    prepared_database: str, pki: DevPkiPaths, keyring_path: Path, idporten: OidcProvider
) -> None:
    config = make_config(pki, keyring_path, prepared_database, idporten_issuer=idporten.issuer)
    with pytest.raises(StartupError, match="NLR_IDPORTEN_AUDIENCE and NLR_IDPORTEN_JWKS"):
        ServerThread(config).start()


def test_the_server_refuses_the_dev_idporten_unless_synthetic_ids_are_allowed(
    prepared_database: str, pki: DevPkiPaths, keyring_path: Path, tmp_path: Path
) -> None:
    paths, _ = ensure_dev_idporten(tmp_path)
    config = make_config(
        pki,
        keyring_path,
        prepared_database,
        allow_synthetic_ids=False,
        idporten_issuer=DEV_ISSUER,
        idporten_audience=DEV_AUDIENCE,
        idporten_jwks=str(paths.jwks),
    )
    with pytest.raises(StartupError, match="dev setup's stand-in for ID-porten"):
        ServerThread(config).start()


@pytest.mark.parametrize(("token", "nonce", "field"), [("", NONCE, "id_token"), ("x", "", "nonce")])
def test_a_feide_login_without_token_or_nonce_names_the_field(
    portal: Portal, token: str, nonce: str, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as refusal:
        portal.stub.LogInWithFeide(pb.LogInWithFeideRequest(id_token=token, nonce=nonce))

    assert refusal.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(refusal.value)[1]) == [field]


def test_a_feide_token_that_fails_a_check_logs_in_or_links_nothing(
    registry: Registry, portal: Portal, idporten: OidcProvider, feide: OidcProvider
) -> None:
    number = national_id()
    create(registry, new_borrower("N000182010", national_id=number))
    log_in_with_idporten(portal, idporten.mint(sub="s-10", nonce=NONCE, pid=number))
    forged = feide.mint(sub="feide-user-10", nonce=NONCE, acr=None, sign_with_other_key=True)

    with pytest.raises(grpc.RpcError) as linking:
        link_feide(portal, forged)
    with pytest.raises(grpc.RpcError) as login:
        log_in_with_feide(portal, forged)

    for refusal in (linking.value, login.value):
        assert refused(refusal) == (grpc.StatusCode.UNAUTHENTICATED, "ID_TOKEN_INVALID")
    log_in_with_idporten(portal, idporten.mint(sub="s-10", nonce=NONCE, pid=number))
    assert list(portal.record().borrower.identities) == []
