"""Reads the acting library from the call's metadata."""

from __future__ import annotations

from typing import Any

import grpc

from nlr_server.domain.errors import InvalidArgument, InvalidValue, Unauthenticated
from nlr_server.domain.library_number import LibraryNumber

LIBRARY_NUMBER_KEY = "nlr-library-number"


def acting_library(context: grpc.aio.ServicerContext[Any, Any]) -> LibraryNumber:
    values = [v for k, v in context.invocation_metadata() or () if k == LIBRARY_NUMBER_KEY]
    if not values:
        raise Unauthenticated(
            f"name the acting library in the metadata {LIBRARY_NUMBER_KEY!r}",
            reason="LIBRARY_MISSING",
        )
    raw = values[0]
    try:
        return LibraryNumber.parse(raw if isinstance(raw, str) else raw.decode())
    except InvalidValue as error:
        raise InvalidArgument.one(f"metadata.{LIBRARY_NUMBER_KEY}", str(error)) from error
