"""RegistryClient: a library system's typed client of the register (nlr.registry.v1)."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from nlr.auth.channel import Pem, secure_channel
from nlr.auth.errors import NlrError
from nlr.registry.v1 import borrower_pb2, registry_service_pb2, registry_service_pb2_grpc

__all__ = ["ChangeStream", "FullSync", "RegistryClient"]

_log = logging.getLogger(__name__)

_SERVICE = "nlr.registry.v1.BorrowerRegistry"
# Reads that change nothing: retrying one after UNAVAILABLE cannot do anything twice.
_SAFE_READS = (
    "GetBorrower",
    "ListChanges",
    "ListAffiliatedBorrowers",
    "ListCardNumberReservations",
)
_LIBRARY_NUMBER = "nlr-library-number"
_LIBRARY_CODE = "nlr-library-code"

# How WatchChanges ended, when reconnecting from the cursor is the cure: the server went away
# or restarted (UNAVAILABLE, CANCELLED), a proxy or load balancer cut the stream
# (INTERNAL, DEADLINE_EXCEEDED), or it ran into a rate limit (RESOURCE_EXHAUSTED).
_RECONNECT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)

_Response = TypeVar("_Response")


def service_config(timeout: float) -> dict[str, Any]:
    """The gRPC service config of a RegistryClient's channel: every call has a deadline of
    `timeout` seconds, except WatchChanges (a stream meant to last); only the safe reads are
    retried, on UNAVAILABLE only, at most 4 attempts in all within that deadline."""
    deadline = f"{timeout:.3f}s"
    return {
        "methodConfig": [
            {"name": [{"service": _SERVICE}], "timeout": deadline},
            {
                "name": [{"service": _SERVICE, "method": method} for method in _SAFE_READS],
                "timeout": deadline,
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            },
            # A more specific entry without a timeout: the stream has no deadline.
            {"name": [{"service": _SERVICE, "method": "WatchChanges"}]},
        ],
        # Retries stop when more than half the recent calls failed: no retry storm on an outage.
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
    }


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class _LibraryMetadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Names the acting library, and proves the right to act for it, on every call."""

    def __init__(self, library_number: str, library_code: str) -> None:
        self._metadata = ((_LIBRARY_NUMBER, library_number), (_LIBRARY_CODE, library_code))

    def _with_library(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        own = {key for key, _ in self._metadata}
        kept = tuple(item for item in (details.metadata or ()) if item[0] not in own)
        return _CallDetails(
            method=details.method,
            timeout=details.timeout,
            metadata=kept + self._metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
            compression=details.compression,
        )

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        return continuation(self._with_library(client_call_details), request)

    def intercept_unary_stream(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        return continuation(self._with_library(client_call_details), request)


class RegistryClient:
    """A client of the register's BorrowerRegistry, acting for one library, over mutual TLS.

    `ca_cert` is the register's CA certificate, `client_cert` and `client_key` the certificate
    (role ``ils``) and key the register's operator issued to you: file paths or PEM bytes.
    `library_number` and `library_code` (the library's authorization code from Base Bibliotek)
    go with every call, the raw `stub`'s too. Every call but WatchChanges has a deadline of
    `timeout` seconds; GetBorrower, ListChanges, ListAffiliatedBorrowers and
    ListCardNumberReservations are retried when the server is unavailable, nothing else is.
    Failures raise `NlrError`. Use it as a context manager, or call `close()`; one client may be
    shared by the threads of a process.
    """

    def __init__(
        self,
        target: str,
        *,
        ca_cert: Pem,
        client_cert: Pem,
        client_key: Pem,
        library_number: str,
        library_code: str,
        timeout: float = 10.0,
    ) -> None:
        self._timeout = timeout
        self._channel = secure_channel(
            target,
            ca_cert,
            client_cert,
            client_key,
            service_config=service_config(timeout),
            interceptors=[_LibraryMetadata(library_number, library_code)],
        )
        self._stub = registry_service_pb2_grpc.BorrowerRegistryStub(self._channel)

    @property
    def stub(self) -> registry_service_pb2_grpc.BorrowerRegistryStub:
        """The generated stub on this client's channel: every RPC, with the library metadata,
        deadlines and retries already applied. Its calls raise grpc.RpcError, not NlrError
        (`NlrError.from_rpc_error` converts one)."""
        return self._stub

    def get_borrower(
        self, *, card_number: str | None = None, national_id: str | None = None
    ) -> borrower_pb2.Borrower:
        """The borrower with this card number or national id (exactly one): the full view if
        the library is affiliated with them, else the basic view. NOT_FOUND if none."""
        if card_number is not None and national_id is None:
            request = registry_service_pb2.GetBorrowerRequest(card_number=card_number)
        elif national_id is not None and card_number is None:
            request = registry_service_pb2.GetBorrowerRequest(national_id=national_id)
        else:
            raise ValueError("find the borrower by exactly one of card_number or national_id")
        return self._call(self._stub.GetBorrower, request).borrower

    def create_borrower(
        self, borrower: borrower_pb2.Borrower, *, guardian_card_number: str = ""
    ) -> borrower_pb2.Borrower:
        """Creates the borrower (the library becomes home library) and returns the full view.
        A borrower under the guardian age needs `guardian_card_number`. Not retried."""
        request = registry_service_pb2.CreateBorrowerRequest(
            borrower=borrower, guardian_card_number=guardian_card_number
        )
        return self._call(self._stub.CreateBorrower, request).borrower

    def update_borrower(
        self, borrower: borrower_pb2.Borrower, paths: Sequence[str]
    ) -> borrower_pb2.Borrower:
        """Changes the fields named in `paths` (e.g. ``["email"]``) to their values in
        `borrower`, found by its card_number; `borrower.etag` must be the one last read
        (ABORTED if someone changed it since). Returns the new full view, with a new etag."""
        if isinstance(paths, str):
            raise TypeError("paths is a sequence of field names, e.g. ['email'], not a str")
        request = registry_service_pb2.UpdateBorrowerRequest(
            borrower=borrower, update_mask=FieldMask(paths=list(paths))
        )
        return self._call(self._stub.UpdateBorrower, request).borrower

    def full_sync(self, page_size: int = 500) -> FullSync:
        """Every borrower affiliated with the library, full view, page by page as you iterate
        (`page_size` 1 to 1000). Keep its `cursor` and follow `watch_changes(cursor)` (or
        `list_changes`) afterwards: nothing changed since the sync began is missed."""
        return FullSync(self, page_size)

    def list_changes(
        self, after: int, page_size: int = 500
    ) -> registry_service_pb2.ListChangesResponse:
        """One page of the library's change feed after the cursor `after`: `changes`, the
        `cursor` to continue from, and `more` if more are waiting. FAILED_PRECONDITION
        ``RESYNC_REQUIRED`` if the cursor is older than the feed keeps: run a full sync."""
        request = registry_service_pb2.ListChangesRequest(after=after, page_size=page_size)
        return self._call(self._stub.ListChanges, request)

    def watch_changes(
        self, after: int, *, reconnect_delay: float = 1.0, max_reconnect_delay: float = 30.0
    ) -> ChangeStream:
        """The library's changes after the cursor `after`, for ever: replayed, then live.

        A dropped stream is reconnected by itself, from the last change or heartbeat seen,
        waiting `reconnect_delay` seconds (doubling up to `max_reconnect_delay`) between tries,
        so nothing is lost or repeated. See `ChangeStream` for what ends it."""
        return ChangeStream(
            lambda cursor: self._stub.WatchChanges(
                registry_service_pb2.WatchChangesRequest(after=cursor)
            ),
            after,
            reconnect_delay=reconnect_delay,
            max_reconnect_delay=max_reconnect_delay,
        )

    def _list_affiliated_borrowers(
        self, page_size: int, page_token: str
    ) -> registry_service_pb2.ListAffiliatedBorrowersResponse:
        request = registry_service_pb2.ListAffiliatedBorrowersRequest(
            page_size=page_size, page_token=page_token
        )
        return self._call(self._stub.ListAffiliatedBorrowers, request)

    def _call(
        self, method: grpc.UnaryUnaryMultiCallable[Any, _Response], request: Any
    ) -> _Response:
        try:
            return method(request, timeout=self._timeout)
        except grpc.RpcError as error:
            raise NlrError.from_rpc_error(error) from error

    def close(self) -> None:
        """Closes the channel; calls and streams still running are cancelled."""
        self._channel.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class FullSync(Iterator[borrower_pb2.Borrower]):
    """The borrowers affiliated with the library, fetched a page at a time while iterated.

    `cursor` is the feed position the sync started at, the same on every page: follow the
    change feed from it once the last borrower is in. Reading it before iterating fetches the
    first page (which the iteration then uses). Iterate once; NlrError from any page.
    """

    def __init__(self, client: RegistryClient, page_size: int) -> None:
        self._client = client
        self._page_size = page_size
        self._first: registry_service_pb2.ListAffiliatedBorrowersResponse | None = None
        self._borrowers = self._pages()

    @property
    def cursor(self) -> int:
        """Where to follow the change feed from after this sync."""
        return self._first_page().cursor

    def __iter__(self) -> FullSync:
        return self

    def __next__(self) -> borrower_pb2.Borrower:
        return next(self._borrowers)

    def _first_page(self) -> registry_service_pb2.ListAffiliatedBorrowersResponse:
        if self._first is None:
            self._first = self._client._list_affiliated_borrowers(self._page_size, "")
        return self._first

    def _pages(self) -> Iterator[borrower_pb2.Borrower]:
        page = self._first_page()
        while True:
            yield from page.borrowers
            if not page.next_page_token:
                return
            page = self._client._list_affiliated_borrowers(self._page_size, page.next_page_token)


class _ResponseStream(Protocol):
    def __next__(self) -> registry_service_pb2.WatchChangesResponse: ...

    def cancel(self) -> bool: ...


class ChangeStream(Iterator[registry_service_pb2.Change]):
    """The change feed from a cursor, as an endless iterator of changes (heartbeats are
    consumed here and only move `cursor`).

    `cursor` is the sequence of the last change returned, or the last heartbeat's cursor when
    that is further: save it after applying each change (or now and then while idle), and
    resume with `watch_changes(cursor)` after a restart. Only `close()` (from any thread) ends
    the iteration; errors a reconnect cannot cure raise NlrError: FAILED_PRECONDITION
    ``RESYNC_REQUIRED`` (the cursor is older than the feed keeps: run a full sync),
    PERMISSION_DENIED, UNAUTHENTICATED, INVALID_ARGUMENT and the like.
    """

    def __init__(
        self,
        open_stream: Callable[[int], _ResponseStream],
        after: int,
        *,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 30.0,
    ) -> None:
        self.cursor = after
        self._open_stream = open_stream
        self._reconnect_delay = reconnect_delay
        self._max_reconnect_delay = max_reconnect_delay
        self._stream: _ResponseStream | None = None
        self._failures = 0
        self._closed = threading.Event()
        self._lock = threading.Lock()

    def __iter__(self) -> ChangeStream:
        return self

    def __next__(self) -> registry_service_pb2.Change:
        while not self._closed.is_set():
            stream = self._connect()
            if stream is None:
                break
            try:
                response = next(stream)
            except StopIteration:
                self._dropped("the server ended the stream")
                continue
            except grpc.RpcError as error:
                if self._closed.is_set():
                    break
                failure = NlrError.from_rpc_error(error)
                if failure.code not in _RECONNECT_CODES:
                    self._disconnect()
                    raise failure from error
                self._dropped(str(failure), at_least=failure.retry_after or 0.0)
                continue
            self._failures = 0
            if response.HasField("heartbeat"):
                self.cursor = max(self.cursor, response.heartbeat.cursor)
            elif response.HasField("change") and response.change.sequence > self.cursor:
                self.cursor = response.change.sequence
                return response.change
        raise StopIteration

    def close(self) -> None:
        """Ends the stream: the iteration stops (also when waiting in another thread)."""
        self._closed.set()
        self._disconnect()

    def __enter__(self) -> ChangeStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _connect(self) -> _ResponseStream | None:
        with self._lock:
            if self._closed.is_set():
                return None
            if self._stream is None:
                self._stream = self._open_stream(self.cursor)
            return self._stream

    def _disconnect(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.cancel()

    def _dropped(self, why: str, *, at_least: float = 0.0) -> None:
        """Waits before reconnecting: exponential backoff with jitter, so that many clients
        dropped together by a restart do not all come back in the same instant."""
        self._disconnect()
        ceiling = min(
            self._max_reconnect_delay, self._reconnect_delay * 2 ** min(self._failures, 16)
        )
        delay = max(at_least, random.uniform(ceiling / 2, ceiling))
        self._failures += 1
        _log.warning(
            "change feed stream dropped (%s); reconnecting from %d in %.1f s",
            why,
            self.cursor,
            delay,
        )
        self._closed.wait(delay)
