"""BorrowerRegistry: each method decodes the request, runs one use case, encodes the answer."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import grpc

from nlr.registry.v1 import registry_service_pb2 as pb
from nlr.registry.v1 import registry_service_pb2_grpc
from nlr_server.api.borrower_codec import BorrowerDecoder, encode_borrower, timestamp
from nlr_server.api.call_context import acting_library, current_call
from nlr_server.domain.errors import InvalidArgument
from nlr_server.domain.views import BorrowerView
from nlr_server.ops.config import Config
from nlr_server.usecases import borrowers
from nlr_server.usecases.ports import UnitOfWorkFactory

T = TypeVar("T")
Context = grpc.aio.ServicerContext[Any, Any]


class BorrowerRegistryServicer(registry_service_pb2_grpc.BorrowerRegistryServicer):
    def __init__(self, unit_of_work: UnitOfWorkFactory, executor: Executor, config: Config) -> None:
        self._uow = unit_of_work
        self._executor = executor
        self._decode = BorrowerDecoder(allow_synthetic_ids=config.allow_synthetic_ids)

    async def _run(self, use_case: Callable[..., T], *args: Any) -> T:
        # The store is synchronous: run the transaction on a worker so the event loop stays free.
        call = functools.partial(use_case, self._uow, *args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def CreateBorrower(
        self, request: pb.CreateBorrowerRequest, context: Context
    ) -> pb.CreateBorrowerResponse:
        library = acting_library()
        card_number, personal, national_id = self._decode.new_borrower(request.borrower)
        current_call().note_borrower(card_number.value)
        borrower = await self._run(
            borrowers.create_borrower, library, card_number, personal, national_id, _now()
        )
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        return pb.CreateBorrowerResponse(borrower=encode_borrower(borrower, BorrowerView.FULL))

    async def GetBorrower(
        self, request: pb.GetBorrowerRequest, context: Context
    ) -> pb.GetBorrowerResponse:
        library = acting_library()
        key = request.WhichOneof("key")
        if key == "card_number":
            found_by = borrowers.BorrowerKey(
                card_number=self._decode.card_number(request.card_number, "card_number")
            )
        elif key == "national_id":
            found_by = borrowers.BorrowerKey(
                national_id=self._decode.national_id(request.national_id, "national_id")
            )
        else:
            raise InvalidArgument.one("key", "give card_number or national_id")
        if found_by.card_number is not None:
            current_call().note_borrower(found_by.card_number.value)
        borrower, view = await self._run(borrowers.get_borrower, library, found_by)
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        return pb.GetBorrowerResponse(borrower=encode_borrower(borrower, view))

    async def UpdateBorrower(
        self, request: pb.UpdateBorrowerRequest, context: Context
    ) -> pb.UpdateBorrowerResponse:
        library = acting_library()
        card_number = self._decode.card_number(request.borrower.card_number, "borrower.card_number")
        current_call().note_borrower(card_number.value)
        if not request.borrower.etag:
            raise InvalidArgument.one("borrower.etag", "is required: send the etag you read")
        patch, national_id = self._decode.patch(request.borrower, list(request.update_mask.paths))
        borrower = await self._run(
            borrowers.update_borrower,
            library,
            card_number,
            request.borrower.etag,
            patch,
            national_id,
            _now(),
        )
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        return pb.UpdateBorrowerResponse(borrower=encode_borrower(borrower, BorrowerView.FULL))

    async def AffiliateBorrower(
        self, request: pb.AffiliateBorrowerRequest, context: Context
    ) -> pb.AffiliateBorrowerResponse:
        library = acting_library()
        card_number = self._decode.card_number(request.card_number, "card_number")
        current_call().note_borrower(card_number.value)
        if request.WhichOneof("proof") != "national_id":
            raise InvalidArgument.one("proof", "give the borrower's national_id as proof")
        proof = self._decode.national_id(request.national_id, "national_id")
        borrower = await self._run(
            borrowers.affiliate_borrower, library, card_number, proof, _now()
        )
        current_call().note_borrower(borrower.card_number.value, borrower.id)
        return pb.AffiliateBorrowerResponse(borrower=encode_borrower(borrower, BorrowerView.FULL))

    async def DeleteBorrower(
        self, request: pb.DeleteBorrowerRequest, context: Context
    ) -> pb.DeleteBorrowerResponse:
        library = acting_library()
        card_number = self._decode.card_number(request.card_number, "card_number")
        current_call().note_borrower(card_number.value)
        reason = self._decode.deletion_reason(request.reason)
        now = _now()
        await self._run(
            borrowers.delete_borrower, library, card_number, reason, request.etag or None, now
        )
        return pb.DeleteBorrowerResponse(card_number=card_number.value, delete_time=timestamp(now))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
