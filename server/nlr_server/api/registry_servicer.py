"""BorrowerRegistry: each method decodes the request, runs one use case, encodes the answer."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Any

import grpc

from nlr.registry.v1 import registry_service_pb2 as pb
from nlr.registry.v1 import registry_service_pb2_grpc
from nlr_server.api.borrower_codec import encode_borrower
from nlr_server.api.borrower_details_codec import timestamp
from nlr_server.api.call_context import acting, acting_library, current_call
from nlr_server.api.feed_codec import decode_page_token, encode_change, encode_page_token
from nlr_server.api.services import Services, now
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_reservation import CardNumberReservation
from nlr_server.domain.credentials import Password, Pin
from nlr_server.domain.errors import InvalidArgument
from nlr_server.domain.policy import view_for
from nlr_server.domain.views import BorrowerView
from nlr_server.usecases import (
    affiliations,
    borrowers,
    cards,
    change_feed,
    credentials,
    guardians,
    identities,
)

Context = grpc.aio.ServicerContext[Any, Any]


class BorrowerRegistryServicer(registry_service_pb2_grpc.BorrowerRegistryServicer):
    def __init__(self, services: Services) -> None:
        self._services = services
        self._decode = services.decode

    async def CreateBorrower(
        self, request: pb.CreateBorrowerRequest, context: Context
    ) -> pb.CreateBorrowerResponse:
        card_number, personal, national_id = self._decode.new_borrower(request.borrower)
        guardian = (
            self._decode.card_number(request.guardian_card_number, "guardian_card_number")
            if request.guardian_card_number
            else None
        )
        borrower = await self._services.write(
            functools.partial(
                borrowers.create_borrower,
                guardian=guardian,
                guardian_age=self._services.guardian_age,
            ),
            acting(),
            acting_library(),
            card_number,
            personal,
            national_id,
            now(),
        )
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        return pb.CreateBorrowerResponse(borrower=encode_borrower(borrower, BorrowerView.FULL))

    async def GetBorrower(
        self, request: pb.GetBorrowerRequest, context: Context
    ) -> pb.GetBorrowerResponse:
        key = request.WhichOneof("key")
        if key == "card_number":
            found_by = borrowers.BorrowerKey(
                card_number=self._decode.card_number(request.card_number, "card_number")
            )
        elif key == "national_id":
            found_by = borrowers.BorrowerKey(
                national_id=self._decode.national_id(request.national_id, "national_id")
            )
        elif key == "identity":
            found_by = borrowers.BorrowerKey(
                identity=self._decode.identity_key(
                    request.identity.kind, request.identity.value, "identity"
                )
            )
        else:
            raise InvalidArgument.one("key", "give card_number, national_id or identity")
        borrower, view = await self._services.read(
            borrowers.get_borrower, current_call().acting().actor, found_by
        )
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        return pb.GetBorrowerResponse(borrower=encode_borrower(borrower, view))

    async def UpdateBorrower(
        self, request: pb.UpdateBorrowerRequest, context: Context
    ) -> pb.UpdateBorrowerResponse:
        card_number = self._decode.card_number(request.borrower.card_number, "borrower.card_number")
        if not request.borrower.etag:
            raise InvalidArgument.one("borrower.etag", "is required: send the etag you read")
        patch, national_id = self._decode.patch(request.borrower, list(request.update_mask.paths))
        borrower = await self._services.write(
            borrowers.update_borrower,
            acting(),
            card_number,
            request.borrower.etag,
            patch,
            national_id,
            now(),
        )
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        return pb.UpdateBorrowerResponse(borrower=encode_borrower(borrower, BorrowerView.FULL))

    async def AffiliateBorrower(
        self, request: pb.AffiliateBorrowerRequest, context: Context
    ) -> pb.AffiliateBorrowerResponse:
        card_number = self._decode.card_number(request.card_number, "card_number")
        proof = self._decode.affiliation_proof(request)
        borrower = await self._services.write(
            borrowers.affiliate_borrower,
            acting(),
            card_number,
            proof,
            now(),
            self._services.pins.matches,
            self._services.lockout,
        )
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        return pb.AffiliateBorrowerResponse(borrower=encode_borrower(borrower, _view(borrower)))

    async def DeleteBorrower(
        self, request: pb.DeleteBorrowerRequest, context: Context
    ) -> pb.DeleteBorrowerResponse:
        card_number = self._decode.card_number(request.card_number, "card_number")
        reason = self._decode.deletion_reason(request.reason)
        deleted_at = now()
        queued = await self._services.write(
            borrowers.delete_borrower,
            acting(),
            card_number,
            reason,
            request.etag or None,
            deleted_at,
        )
        return pb.DeleteBorrowerResponse(
            card_number=card_number.value,
            delete_time=timestamp(deleted_at),
            notification_queued=queued,
        )

    async def SetPin(self, request: pb.SetPinRequest, context: Context) -> pb.SetPinResponse:
        card_number = self._decode.card_number(request.card_number, "card_number")
        pin = self._decode.secret(request.pin, "pin", Pin.parse)
        verifier = self._services.pins.make(pin.value)
        etag = await self._services.write(
            credentials.set_pin,
            acting(),
            card_number,
            verifier,
            self._services.pins.key_version(verifier),
            now(),
        )
        return pb.SetPinResponse(etag=etag)

    async def SetPassword(
        self, request: pb.SetPasswordRequest, context: Context
    ) -> pb.SetPasswordResponse:
        card_number = self._decode.card_number(request.card_number, "card_number")
        password = self._decode.secret(request.password, "password", Password.parse)
        verifier = await self._services.passwords.make(password.value)
        etag = await self._services.write(
            credentials.set_password, acting(), card_number, verifier, now()
        )
        return pb.SetPasswordResponse(etag=etag)

    async def SetHomeLibrary(
        self, request: pb.SetHomeLibraryRequest, context: Context
    ) -> pb.SetHomeLibraryResponse:
        card_number = self._decode.card_number(request.card_number, "card_number")
        new_home = self._decode.library_number(request.library_number, "library_number")
        borrower = await self._services.write(
            affiliations.set_home_library, acting(), card_number, new_home, now()
        )
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        return pb.SetHomeLibraryResponse(borrower=encode_borrower(borrower, _view(borrower)))

    async def RemoveAffiliation(
        self, request: pb.RemoveAffiliationRequest, context: Context
    ) -> pb.RemoveAffiliationResponse:
        card_number = self._decode.card_number(request.card_number, "card_number")
        new_home = (
            self._decode.library_number(request.new_home_library, "new_home_library")
            if request.new_home_library
            else None
        )
        borrower = await self._services.write(
            affiliations.remove_affiliation, acting(), card_number, new_home, now()
        )
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        return pb.RemoveAffiliationResponse(
            borrower=encode_borrower(borrower, view_for(current_call().acting().actor, borrower))
        )

    async def ReplaceCard(
        self, request: pb.ReplaceCardRequest, context: Context
    ) -> pb.ReplaceCardResponse:
        card_number = self._decode.card_number(request.card_number, "card_number")
        new_card_number = self._decode.card_number(request.new_card_number, "new_card_number")
        borrower = await self._services.write(
            cards.replace_card, acting(), card_number, new_card_number, now()
        )
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        return pb.ReplaceCardResponse(borrower=encode_borrower(borrower, BorrowerView.FULL))

    async def LinkGuardian(
        self, request: pb.LinkGuardianRequest, context: Context
    ) -> pb.LinkGuardianResponse:
        card_number = self._decode.card_number(request.card_number, "card_number")
        guardian = self._decode.card_number(request.guardian_card_number, "guardian_card_number")
        borrower = await self._services.write(
            guardians.link_guardian, acting(), card_number, guardian, now()
        )
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        return pb.LinkGuardianResponse(borrower=encode_borrower(borrower, BorrowerView.FULL))

    async def UnlinkGuardian(
        self, request: pb.UnlinkGuardianRequest, context: Context
    ) -> pb.UnlinkGuardianResponse:
        card_number = self._decode.card_number(request.card_number, "card_number")
        guardian = self._decode.card_number(request.guardian_card_number, "guardian_card_number")
        borrower = await self._services.write(
            guardians.unlink_guardian,
            acting(),
            card_number,
            guardian,
            self._services.guardian_age,
            now(),
        )
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        return pb.UnlinkGuardianResponse(borrower=encode_borrower(borrower, BorrowerView.FULL))

    async def AddIdentity(
        self, request: pb.AddIdentityRequest, context: Context
    ) -> pb.AddIdentityResponse:
        card_number = self._decode.card_number(request.card_number, "card_number")
        added_at = now()
        identity, delete_after = self._decode.new_identity(request.identity, "identity", added_at)
        borrower = await self._services.write(
            identities.add_identity,
            acting(),
            card_number,
            identity,
            delete_after,
            self._services.identity_lifetime,
            added_at,
        )
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        return pb.AddIdentityResponse(borrower=encode_borrower(borrower, BorrowerView.FULL))

    async def RemoveIdentity(
        self, request: pb.RemoveIdentityRequest, context: Context
    ) -> pb.RemoveIdentityResponse:
        card_number = self._decode.card_number(request.card_number, "card_number")
        kind = self._decode.identity_kind(request.kind, "kind")
        borrower = await self._services.write(
            identities.remove_identity, acting(), card_number, kind, now()
        )
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        return pb.RemoveIdentityResponse(borrower=encode_borrower(borrower, BorrowerView.FULL))

    async def ListAffiliatedBorrowers(
        self, request: pb.ListAffiliatedBorrowersRequest, context: Context
    ) -> pb.ListAffiliatedBorrowersResponse:
        limit = change_feed.page_size(request.page_size)
        cursor, after_id = decode_page_token(request.page_token)
        page = await self._services.read_pages(
            change_feed.list_affiliated_borrowers, acting_library(), after_id, cursor, limit
        )
        return pb.ListAffiliatedBorrowersResponse(
            borrowers=[encode_borrower(b, _view(b)) for b in page.borrowers],
            next_page_token=(
                encode_page_token(page.cursor, page.last_id) if page.last_id is not None else ""
            ),
            cursor=page.cursor,
        )

    async def ListChanges(
        self, request: pb.ListChangesRequest, context: Context
    ) -> pb.ListChangesResponse:
        limit = change_feed.page_size(request.page_size)
        page = await self._services.read_pages(
            change_feed.list_changes, acting_library(), request.after, limit
        )
        return pb.ListChangesResponse(
            changes=[encode_change(change) for change in page.changes],
            cursor=page.cursor,
            more=page.more,
        )

    async def WatchChanges(
        self, request: pb.WatchChangesRequest, context: Context
    ) -> AsyncIterator[pb.WatchChangesResponse]:
        """Replays from the cursor, then delivers live from the hub; catches up from the
        database again whenever the stream fell too far behind the hub."""
        library = acting_library()
        hub = self._services.feed_hub
        position = request.after
        heartbeat = self._services.feed_heartbeat_seconds
        while True:
            watcher = hub.subscribe(library)
            try:
                # Replay: everything up to the head, which is at or past where the hub stood
                # when this stream subscribed, so replay and live delivery leave no gap.
                while True:
                    page = await self._services.read_pages(
                        change_feed.list_changes, library, position, change_feed.MAX_PAGE_SIZE
                    )
                    for change in page.changes:
                        yield pb.WatchChangesResponse(change=encode_change(change))
                    position = page.cursor
                    if not page.more:
                        break
                while not (watcher.overflowed and watcher.queue.empty()):
                    try:
                        async with asyncio.timeout(heartbeat):
                            sequence, message = await watcher.queue.get()
                    except TimeoutError:
                        position = max(position, hub.position)
                        yield pb.WatchChangesResponse(
                            heartbeat=pb.Heartbeat(cursor=position, time=timestamp(now()))
                        )
                        continue
                    if message is None:
                        return  # the server is stopping
                    if sequence > position:
                        position = sequence
                        yield pb.WatchChangesResponse(change=message)
            finally:
                hub.unsubscribe(watcher)

    async def ReserveCardNumbers(
        self, request: pb.ReserveCardNumbersRequest, context: Context
    ) -> pb.ReserveCardNumbersResponse:
        reservation = await self._services.write(
            cards.reserve_card_numbers, acting(), request.count, now()
        )
        return pb.ReserveCardNumbersResponse(reservation=_reservation(reservation))

    async def ListCardNumberReservations(
        self, request: pb.ListCardNumberReservationsRequest, context: Context
    ) -> pb.ListCardNumberReservationsResponse:
        reservations = await self._services.read(cards.list_reservations, acting_library())
        return pb.ListCardNumberReservationsResponse(
            reservations=[_reservation(r) for r in reservations]
        )


def _reservation(reservation: CardNumberReservation) -> pb.CardNumberReservation:
    return pb.CardNumberReservation(
        first_card_number=reservation.first_card_number.value,
        last_card_number=reservation.last_card_number.value,
        count=reservation.count,
        library_number=reservation.library_number.value,
        reserve_time=timestamp(reservation.reserved_at),
    )


def _view(borrower: Borrower) -> BorrowerView:
    """The view the acting library gets (a borrower who restricted processing: the full one
    for their home library only)."""
    return view_for(current_call().acting().actor, borrower)
