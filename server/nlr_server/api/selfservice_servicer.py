"""SelfService: a borrower's own record, through a portal, in a session of their own login."""

from __future__ import annotations

import functools
import json
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format

from nlr.selfservice.v1 import selfservice_pb2 as pb
from nlr.selfservice.v1 import selfservice_pb2_grpc
from nlr_server.api import password_login
from nlr_server.api.borrower_codec import (
    actor_kind_to_proto,
    encode_borrower,
    security_level_from_proto,
    security_level_to_proto,
)
from nlr_server.api.borrower_details_codec import timestamp
from nlr_server.api.call_context import acting, current_call
from nlr_server.api.services import Services, now
from nlr_server.crypto import one_time_code, session_token, totp
from nlr_server.domain.borrower import Borrower, DeletionReason
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.contact import EmailAddress, PhoneNumber
from nlr_server.domain.contact_change import CODE_LIFETIME, ContactKind
from nlr_server.domain.credentials import LoginMethod, Password, Pin, SecurityLevel, may_reach
from nlr_server.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    InvalidValue,
    PermissionDenied,
    Unauthenticated,
)
from nlr_server.domain.identity import IdentityKind, IdentityValue
from nlr_server.domain.national_id import NationalId
from nlr_server.domain.second_factor import totp_not_enrolled
from nlr_server.domain.session import require_two_factors
from nlr_server.domain.views import BorrowerView
from nlr_server.mail.code_mail import code_text
from nlr_server.oidc.id_token import IdTokenClaims
from nlr_server.usecases import (
    borrowers,
    contact_changes,
    credentials,
    identities,
    second_factor,
    selfservice,
    sessions,
)
from nlr_server.usecases.second_factor import CodeKind, CodeOutcome, SecondFactorCode
from nlr_server.usecases.sessions import LiveSession

Context = grpc.aio.ServicerContext[Any, Any]
T = TypeVar("T")

# The calls that open a session, and those a session below the borrower's level may make.
LOGIN_RPCS = frozenset({"LogInWithPassword", "LogInWithIdPorten", "LogInWithFeide"})
WAITING_RPCS = frozenset({"ConfirmSecondFactor", "LogOut"})


class SelfServiceServicer(selfservice_pb2_grpc.SelfServiceServicer):
    def __init__(self, services: Services) -> None:
        self._services = services
        self._decode = services.decode

    async def LogInWithPassword(
        self, request: pb.LogInWithPasswordRequest, context: Context
    ) -> pb.LogInWithPasswordResponse:
        key = self._decode.login_key(request)
        password = self._decode.secret(request.password, "password", Password.parse)
        services = self._services
        # A password may be followed by a TOTP code, so it opens a TWO_FACTOR borrower's
        # login too, which then waits for its code.
        borrower = await password_login.log_in_with_password(
            services, key, password, second_factor=True
        )
        opened = await self._open(borrower, LoginMethod.PASSWORD)
        return pb.LogInWithPasswordResponse(session=_session_message(*opened))

    async def LogInWithIdPorten(
        self, request: pb.LogInWithIdPortenRequest, context: Context
    ) -> pb.LogInWithIdPortenResponse:
        claims = await self._claims(LoginMethod.IDPORTEN, request.id_token, request.nonce)
        number = self._national_id_of(claims)
        services = self._services
        borrower = await services.read(sessions.borrower_of_person, number)
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        opened = await self._open(borrower, LoginMethod.IDPORTEN)
        return pb.LogInWithIdPortenResponse(session=_session_message(*opened))

    async def LogInWithFeide(
        self, request: pb.LogInWithFeideRequest, context: Context
    ) -> pb.LogInWithFeideResponse:
        claims = await self._claims(LoginMethod.FEIDE, request.id_token, request.nonce)
        user = _feide_user(claims)
        services = self._services
        borrower = await services.read(sessions.borrower_of_feide_user, user, now())
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        if not may_reach(LoginMethod.FEIDE, borrower.personal.security_level):
            raise PermissionDenied(
                "this borrower has chosen to log in with ID-porten only",
                reason="SECURITY_LEVEL_NOT_REACHED",
            )
        opened = await self._open(borrower, LoginMethod.FEIDE)
        return pb.LogInWithFeideResponse(session=_session_message(*opened))

    async def LinkFeide(
        self, request: pb.LinkFeideRequest, context: Context
    ) -> pb.LinkFeideResponse:
        live = _live()
        if live.session.method is not LoginMethod.IDPORTEN:
            raise PermissionDenied(
                "a Feide user is linked only in a session of an ID-porten login",
                reason="EID_REQUIRED",
            )
        claims = await self._claims(LoginMethod.FEIDE, request.id_token, request.nonce)
        services = self._services
        await services.write(
            identities.add_identity,
            acting(),
            CardNumber(live.session.card_number),
            _feide_user(claims),
            None,
            services.identity_lifetime,
            now(),
        )
        return pb.LinkFeideResponse()

    async def _claims(self, method: LoginMethod, id_token: str, nonce: str) -> IdTokenClaims:
        """The claims of a valid ID token of the provider of ``method``."""
        validator = self._services.id_tokens.get(method)
        if validator is None:
            raise FailedPrecondition(
                f"the register takes no {method.value} logins (it has no settings for them)",
                reason="PROVIDER_NOT_CONFIGURED",
            )
        if not id_token:
            raise InvalidArgument.one("id_token", "is required")
        if not nonce:
            raise InvalidArgument.one("nonce", "is required: the nonce of the login request")
        # On a worker: the provider's keys may have to be fetched.
        return await self._services.run_plain(
            functools.partial(validator.validate, id_token, nonce=nonce)
        )

    def _national_id_of(self, claims: IdTokenClaims) -> NationalId:
        if claims.pid is None:
            raise Unauthenticated("the ID token names no person (pid)", reason="ID_TOKEN_INVALID")
        try:
            return self._decode.national_id(claims.pid, "pid")
        except InvalidArgument:
            raise Unauthenticated(
                "the ID token's pid is not a national id this register takes",
                reason="ID_TOKEN_INVALID",
            ) from None

    async def _open(
        self, borrower: Borrower, method: LoginMethod
    ) -> tuple[str, sessions.OpenedSession]:
        """A new session of ``borrower``'s login by ``method`` through this portal."""
        assert borrower.id is not None
        services = self._services
        token, digest = session_token.new_token()
        fingerprint = current_call().certificate_fingerprint
        assert fingerprint is not None
        opened = await services.run(
            sessions.open_session,
            digest,
            borrower.id,
            borrower.card_number.value,
            fingerprint,
            method,
            method.reaches,
            borrower.personal.security_level,
            now(),
            services.sessions,
        )
        return token, opened

    async def ConfirmSecondFactor(
        self, request: pb.ConfirmSecondFactorRequest, context: Context
    ) -> pb.ConfirmSecondFactorResponse:
        live = _live()
        code = _second_factor_code(request)
        services = self._services
        if not live.session.method.takes_second_factor:
            raise FailedPrecondition(
                "this login needs no second factor", reason="SECOND_FACTOR_NOT_TAKEN"
            )
        checked = await services.run(
            second_factor.check_code,
            live.session.borrower_id,
            code,
            now(),
            services.lockout,
            services.totp_sealer,
        )
        if checked.outcome is CodeOutcome.NOT_ENROLLED:
            raise totp_not_enrolled()
        if checked.outcome is CodeOutcome.WRONG:
            if checked.locked_now:
                current_call().audit_reason = "LOCKED_OUT"
            raise second_factor.code_invalid()
        session = await services.run(sessions.strengthen, live, SecurityLevel.TWO_FACTOR)
        return pb.ConfirmSecondFactorResponse(
            strength=security_level_to_proto(session.strength),
            expire_time=timestamp(session.expires_at),
            recovery_codes_left=checked.recovery_codes_left,
        )

    async def LogOut(self, request: pb.LogOutRequest, context: Context) -> pb.LogOutResponse:
        await self._services.run(sessions.close_session, _live().digest)
        return pb.LogOutResponse()

    async def GetMyRecord(
        self, request: pb.GetMyRecordRequest, context: Context
    ) -> pb.GetMyRecordResponse:
        record = await self._services.read(selfservice.my_record, acting(), _live())
        return pb.GetMyRecordResponse(
            borrower=encode_borrower(record.borrower, BorrowerView.FULL),
            libraries=[
                pb.Library(library_number=library.number.value, name=library.name)
                for library in record.libraries
            ],
            totp_enabled=record.totp_enabled,
            recovery_codes_left=record.recovery_codes_left,
        )

    async def ListMyAccessLog(
        self, request: pb.ListMyAccessLogRequest, context: Context
    ) -> pb.ListMyAccessLogResponse:
        if not 0 <= request.page_size <= selfservice.ACCESS_LOG_MAX_PAGE:
            raise InvalidArgument.one(
                "page_size", f"must be 0 to {selfservice.ACCESS_LOG_MAX_PAGE}"
            )
        before = _page_token(request.page_token)
        page = await self._services.read(
            selfservice.my_access_log, _live(), request.page_size, before
        )
        return pb.ListMyAccessLogResponse(
            entries=[_access_entry(entry) for entry in page.entries],
            next_page_token=str(page.next_before) if page.next_before is not None else "",
        )

    async def ExportMyData(
        self, request: pb.ExportMyDataRequest, context: Context
    ) -> pb.ExportMyDataResponse:
        data = await self._services.read(selfservice.export_my_data, acting(), _live())
        record = data.record
        borrower = json_format.MessageToDict(
            encode_borrower(record.borrower, BorrowerView.FULL), preserving_proto_field_name=True
        )
        document = {
            "format": "nlr-export/1",
            "exported_at": now().isoformat(),
            "borrower": borrower,
            "libraries": [
                {"library_number": library.number.value, "name": library.name}
                for library in record.libraries
            ],
            "two_factor": {
                "totp_enabled": record.totp_enabled,
                "recovery_codes_left": record.recovery_codes_left,
            },
            "access_log": [
                json_format.MessageToDict(_access_entry(entry), preserving_proto_field_name=True)
                for entry in data.access_log
            ],
        }
        card_number = record.borrower.card_number.value
        return pb.ExportMyDataResponse(
            document=json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8"),
            media_type="application/json",
            file_name=f"bibliotekkortet-{card_number}.json",
        )

    async def UpdateMyContact(
        self, request: pb.UpdateMyContactRequest, context: Context
    ) -> pb.UpdateMyContactResponse:
        live = _live()
        require_two_factors(live.session)
        kind, value = self._new_contact(request)
        services = self._services
        send = services.code_senders.get(kind)
        if send is None:
            raise FailedPrecondition(
                f"the register sends no codes to a new {kind.value} (not configured)",
                reason="CHANNEL_NOT_CONFIGURED",
            )
        code = one_time_code.new_code()
        pending = await services.write(
            contact_changes.request_change,
            acting(),
            live,
            kind,
            value,
            one_time_code.verifier(code),
            now(),
        )
        minutes = int(CODE_LIFETIME.total_seconds() // 60)
        await services.run_plain(functools.partial(send, value, code_text(code, minutes)))
        return pb.UpdateMyContactResponse(expire_time=timestamp(pending.expires_at))

    async def ConfirmMyContact(
        self, request: pb.ConfirmMyContactRequest, context: Context
    ) -> pb.ConfirmMyContactResponse:
        live = _live()
        kind = _CONTACT_KINDS.get(request.kind)
        if kind is None:
            raise InvalidArgument.one("kind", "is required: EMAIL or MOBILE_PHONE")
        code = request.code.strip()
        if not one_time_code.is_code_shaped(code):
            raise InvalidArgument.one("code", "must be the 6 digits that were sent")
        services = self._services
        value = await services.run(
            contact_changes.check_code,
            live,
            kind,
            functools.partial(one_time_code.matches, code),
            now(),
        )
        borrower = await services.write(
            contact_changes.apply_change, acting(), live, kind, value, now()
        )
        personal = borrower.personal
        return pb.ConfirmMyContactResponse(
            email=personal.email.value if personal.email is not None else "",
            mobile_phone=personal.mobile_phone.value if personal.mobile_phone is not None else "",
        )

    def _new_contact(self, request: pb.UpdateMyContactRequest) -> tuple[ContactKind, str]:
        which = request.WhichOneof("contact")
        if which == "email":
            return ContactKind.EMAIL, self._decode.value(
                request.email, "email", EmailAddress.parse
            ).value
        if which == "mobile_phone":
            number = self._decode.value(request.mobile_phone, "mobile_phone", PhoneNumber.parse)
            return ContactKind.MOBILE_PHONE, number.value
        raise InvalidArgument.one("contact", "give the new email or mobile_phone")

    async def SetMyPin(self, request: pb.SetMyPinRequest, context: Context) -> pb.SetMyPinResponse:
        live = _live()
        require_two_factors(live.session)
        pin = self._decode.secret(request.pin, "pin", Pin.parse)
        services = self._services
        verifier = services.pins.make(pin.value)
        await services.write(
            credentials.set_pin,
            acting(),
            CardNumber(live.session.card_number),
            verifier,
            services.pins.key_version(verifier),
            now(),
            live.digest,
        )
        return pb.SetMyPinResponse()

    async def SetMyPassword(
        self, request: pb.SetMyPasswordRequest, context: Context
    ) -> pb.SetMyPasswordResponse:
        live = _live()
        require_two_factors(live.session)
        password = self._decode.secret(request.password, "password", Password.parse)
        services = self._services
        verifier = await services.passwords.make(password.value)
        await services.write(
            credentials.set_password,
            acting(),
            CardNumber(live.session.card_number),
            verifier,
            now(),
            live.digest,
        )
        return pb.SetMyPasswordResponse()

    async def DeleteMe(self, request: pb.DeleteMeRequest, context: Context) -> pb.DeleteMeResponse:
        live = _live()
        require_two_factors(live.session)
        if request.card_number.strip().upper() != live.session.card_number:
            raise InvalidArgument.one(
                "card_number", "must be your own card number, typed again to confirm"
            )
        services = self._services
        record = await services.read(selfservice.my_record, acting(), live)
        deleted_at = now()
        queued = await services.write(
            borrowers.delete_borrower,
            acting(),
            CardNumber(live.session.card_number),
            DeletionReason.BORROWER_REQUEST,
            None,
            deleted_at,
        )
        return pb.DeleteMeResponse(
            delete_time=timestamp(deleted_at),
            libraries=[
                pb.Library(library_number=library.number.value, name=library.name)
                for library in record.libraries
            ],
            notification_queued=queued,
        )

    async def RestrictProcessing(
        self, request: pb.RestrictProcessingRequest, context: Context
    ) -> pb.RestrictProcessingResponse:
        await self._services.write(
            selfservice.set_processing_restricted, acting(), _live(), True, now()
        )
        return pb.RestrictProcessingResponse()

    async def LiftRestriction(
        self, request: pb.LiftRestrictionRequest, context: Context
    ) -> pb.LiftRestrictionResponse:
        await self._services.write(
            selfservice.set_processing_restricted, acting(), _live(), False, now()
        )
        return pb.LiftRestrictionResponse()

    async def EnrollTotp(
        self, request: pb.EnrollTotpRequest, context: Context
    ) -> pb.EnrollTotpResponse:
        live = _live()
        services = self._services
        uri = await services.write(
            second_factor.enroll,
            acting(),
            live.session.borrower_id,
            live.session.card_number,
            now(),
            services.totp_sealer,
        )
        return pb.EnrollTotpResponse(provisioning_uri=uri)

    async def ConfirmTotp(
        self, request: pb.ConfirmTotpRequest, context: Context
    ) -> pb.ConfirmTotpResponse:
        live = _live()
        code = request.totp_code
        if not totp.is_code_shaped(code):
            raise InvalidArgument.one("totp_code", f"must be {totp.DIGITS} digits")
        services = self._services
        codes = await services.write(
            second_factor.confirm,
            acting(),
            live.session.borrower_id,
            live.session.card_number,
            code,
            now(),
            services.lockout,
            services.totp_sealer,
        )
        # The code just shown proves the second factor: this session has two.
        if live.session.method.takes_second_factor:
            await services.run(sessions.strengthen, live, SecurityLevel.TWO_FACTOR)
        return pb.ConfirmTotpResponse(recovery_codes=codes)

    async def DisableTotp(
        self, request: pb.DisableTotpRequest, context: Context
    ) -> pb.DisableTotpResponse:
        live = _live()
        require_two_factors(live.session)
        await self._services.write(
            second_factor.disable,
            acting(),
            live.session.borrower_id,
            live.session.card_number,
            now(),
        )
        return pb.DisableTotpResponse()

    async def SetMySecurityLevel(
        self, request: pb.SetMySecurityLevelRequest, context: Context
    ) -> pb.SetMySecurityLevelResponse:
        level = security_level_from_proto(request.security_level)
        if level is None:
            raise InvalidArgument.one(
                "security_level", "is required: PIN, PASSWORD, TWO_FACTOR or EID"
            )
        level = await self._services.write(
            selfservice.set_my_security_level, acting(), _live(), level, now()
        )
        return pb.SetMySecurityLevelResponse(security_level=security_level_to_proto(level))


def _live() -> LiveSession:
    live = current_call().session
    assert live is not None, "the admission finds the session first"
    return live


_CONTACT_KINDS = {
    pb.CONTACT_KIND_EMAIL: ContactKind.EMAIL,
    pb.CONTACT_KIND_MOBILE_PHONE: ContactKind.MOBILE_PHONE,
}


def _page_token(token: str) -> int | None:
    if not token:
        return None
    if not (token.isascii() and token.isdigit()) or len(token) > 19:
        raise InvalidArgument.one("page_token", "is not a token this call gave")
    return int(token)


def _access_entry(entry: selfservice.AccessEntry) -> pb.AccessLogEntry:
    event = entry.event
    message = pb.AccessLogEntry(
        time=timestamp(event.occurred_at),
        action=event.rpc,
        outcome=event.outcome,
        vendor=entry.vendor or "",
    )
    if event.actor_kind is not None:
        message.actor_kind = actor_kind_to_proto(event.actor_kind)
    if entry.library is not None:
        message.library.CopyFrom(
            pb.Library(library_number=entry.library.number.value, name=entry.library.name)
        )
    elif event.library_number is not None:
        message.library.CopyFrom(pb.Library(library_number=event.library_number))
    return message


def _feide_user(claims: IdTokenClaims) -> IdentityValue:
    try:
        return IdentityValue.parse(IdentityKind.FEIDE_ID, claims.subject)
    except InvalidValue:
        raise Unauthenticated(
            "the ID token's sub is not a Feide user id", reason="ID_TOKEN_INVALID"
        ) from None


def _second_factor_code(request: pb.ConfirmSecondFactorRequest) -> SecondFactorCode:
    which = request.WhichOneof("code")
    if which == "recovery_code":
        if not totp.is_recovery_code_shaped(request.recovery_code):
            raise InvalidArgument.one(
                "recovery_code", "must be 16 letters and digits, as the recovery codes were given"
            )
        return SecondFactorCode(CodeKind.RECOVERY, request.recovery_code)
    if which != "totp_code" or not totp.is_code_shaped(request.totp_code):
        raise InvalidArgument.one("totp_code", f"must be {totp.DIGITS} digits")
    return SecondFactorCode(CodeKind.TOTP, request.totp_code)


def _session_message(token: str, opened: sessions.OpenedSession) -> pb.Session:
    session = opened.session
    return pb.Session(
        session_token=token,
        expire_time=timestamp(session.expires_at),
        strength=security_level_to_proto(session.strength),
        second_factor_available=opened.second_factor_available,
        second_factor_required=not session.opens(opened.security_level),
        card_number=session.card_number,
    )
