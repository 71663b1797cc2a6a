"""SelfService through a real server: a portal's client, logins, sessions and TOTP codes."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc

from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as registry_pb
from nlr.selfservice.v1 import selfservice_pb2 as pb
from nlr.selfservice.v1 import selfservice_pb2_grpc
from nlr_server.crypto import totp
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import ClientCertificates, Registry, client_channel, create, new_borrower

PASSWORD = "correct horse battery staple"
SelfServiceStub = selfservice_pb2_grpc.SelfServiceStub


@contextmanager
def portal_client(
    target: str, pki: DevPkiPaths, certificates: ClientCertificates, name: str = "portal"
) -> Iterator[SelfServiceStub]:
    """A SelfService client with one of the test portal certificates."""
    cert, key = certificates.path(name)
    with client_channel(target, pki, cert=cert, key=key) as channel:
        yield SelfServiceStub(channel)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@dataclass
class Portal:
    """A portal's client with the session it logged in (``token``)."""

    stub: SelfServiceStub
    token: str = ""
    # The recovery codes of the last enrolment.
    recovery_codes: tuple[str, ...] = ()

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return bearer(self.token)

    def log_in(self, card_number: str, password: str = PASSWORD) -> pb.Session:
        answer: pb.LogInWithPasswordResponse = self.stub.LogInWithPassword(
            pb.LogInWithPasswordRequest(card_number=card_number, password=password)
        )
        self.token = answer.session.session_token
        return answer.session

    def confirm(self, code: str) -> pb.ConfirmSecondFactorResponse:
        answer: pb.ConfirmSecondFactorResponse = self.stub.ConfirmSecondFactor(
            pb.ConfirmSecondFactorRequest(totp_code=code), metadata=self.metadata
        )
        return answer

    def record(self) -> pb.GetMyRecordResponse:
        answer: pb.GetMyRecordResponse = self.stub.GetMyRecord(
            pb.GetMyRecordRequest(), metadata=self.metadata
        )
        return answer

    def enroll(self) -> str:
        """Sets up TOTP (enrol and confirm); the secret, as the authenticator app holds it."""
        uri = self.stub.EnrollTotp(pb.EnrollTotpRequest(), metadata=self.metadata).provisioning_uri
        secret = secret_of(uri)
        confirmed = self.stub.ConfirmTotp(
            pb.ConfirmTotpRequest(totp_code=code_now(secret)), metadata=self.metadata
        )
        self.recovery_codes = tuple(confirmed.recovery_codes)
        return secret

    def confirm_with_recovery_code(self) -> pb.ConfirmSecondFactorResponse:
        """Raises the session with the next unused recovery code of the last enrolment."""
        code, self.recovery_codes = self.recovery_codes[0], self.recovery_codes[1:]
        answer: pb.ConfirmSecondFactorResponse = self.stub.ConfirmSecondFactor(
            pb.ConfirmSecondFactorRequest(recovery_code=code), metadata=self.metadata
        )
        return answer


def secret_of(provisioning_uri: str) -> str:
    query = urllib.parse.urlparse(provisioning_uri).query
    return urllib.parse.parse_qs(query)["secret"][0]


def code_now(secret: str, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows now (or ``steps_ahead`` steps of 30 s later)."""
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=totp.STEP_SECONDS * steps_ahead)
    return totp.code_at(secret, at)


def borrower_with_password(
    registry: Registry, card_number: str, password: str = PASSWORD, **fields: object
) -> borrower_pb2.Borrower:
    """A new borrower of the registry's library, with a password set by it."""
    created = create(registry, new_borrower(card_number, **fields))
    registry.stub.SetPassword(
        registry_pb.SetPasswordRequest(card_number=card_number, password=password),
        metadata=registry.metadata,
    )
    return created


def status_of(error: grpc.RpcError) -> grpc.StatusCode:
    code: grpc.StatusCode = error.code()
    return code
