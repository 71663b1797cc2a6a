"""Decides who is calling and for which library, remembering answers for a short while."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from nlr_server.api.rate_limit import SharedFailureLimiter
from nlr_server.domain.errors import (
    InvalidArgument,
    InvalidValue,
    PermissionDenied,
    Unauthenticated,
)
from nlr_server.domain.library import Library
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.vendor import Caller
from nlr_server.usecases import access
from nlr_server.usecases.ports import UnitOfWorkFactory

T = TypeVar("T")

LIBRARY_NUMBER_KEY = "nlr-library-number"
LIBRARY_CODE_KEY = "nlr-library-code"
_ATTEMPTS_EXCEEDED = "LIBRARY_CODE_ATTEMPTS_EXCEEDED"


class _TtlCache:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._entries: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < self._clock():
            return None
        return entry[1]

    def put(self, key: Any, value: Any) -> None:
        if self._seconds > 0:
            if len(self._entries) > 100_000:
                self._entries.clear()
            self._entries[key] = (self._clock() + self._seconds, value)


class AccessControl:
    """The caller from its certificate; the acting library from number and code.

    Answers are remembered for ``cache_seconds`` (revoking a certificate or disabling a vendor
    or library takes effect within that time). A verified library code is remembered only as a
    keyed hash, under the library's current verifier, so changing the code ends it at once.
    """

    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        executor: Executor,
        *,
        cache_seconds: float,
        code_failures: SharedFailureLimiter,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uow = unit_of_work
        self._executor = executor
        # The clock is a parameter so tests can move it past the cache's lifetime.
        self._callers = _TtlCache(cache_seconds, clock)
        self._libraries = _TtlCache(cache_seconds, clock)
        self._verified_codes = _TtlCache(max(cache_seconds, 60.0), clock)
        self._fingerprints: dict[bytes, str] = {}
        self._code_failures = code_failures
        self._cache_key = os.urandom(32)
        self._checks: dict[Any, asyncio.Future[bool]] = {}

    async def caller(self, peer_certificate_pem: bytes | None) -> Caller:
        if not peer_certificate_pem:
            raise Unauthenticated("no client certificate", reason="CERTIFICATE_MISSING")
        fingerprint = self.fingerprint(peer_certificate_pem)
        caller: Caller | None = self._callers.get(fingerprint)
        if caller is None:
            caller = await self._run(access.identify_caller, self._uow, fingerprint)
            self._callers.put(fingerprint, caller)
        return caller

    async def library(self, caller: Caller, metadata: dict[str, str]) -> LibraryNumber:
        number = _library_number(metadata)
        code = metadata.get(LIBRARY_CODE_KEY, "")
        if not code:
            raise Unauthenticated(
                f"send the library's authorization code in the metadata {LIBRARY_CODE_KEY!r}",
                reason="LIBRARY_CODE_MISSING",
            )
        library: Library | None = self._libraries.get((caller.vendor.id, number))
        if library is None:
            library = await self._run(access.find_vendors_library, self._uow, caller.vendor, number)
            self._libraries.put((caller.vendor.id, number), library)
        failures_key = f"library-code:{caller.vendor.id}:{number}"
        remembered = (number, library.code_verifier)
        # Keyed BLAKE2 is a MAC in its own right (RFC 7693), and Python's own: HMAC-SHA-256
        # goes through OpenSSL, whose lookup of the algorithm at every call cost far more.
        code_mac = hashlib.blake2b(code.encode(), key=self._cache_key, digest_size=32).digest()
        if self._verified_codes.get(remembered) == code_mac:
            # Known good: the shared count is not asked (api/rate_limit.py), only what this
            # worker knows of it.
            if not self._code_failures.passes_locally(failures_key, reason=_ATTEMPTS_EXCEEDED):
                await self._code_failures.succeed(failures_key)
            return number
        await self._code_failures.check(failures_key, reason=_ATTEMPTS_EXCEEDED)
        if not await self._verify_once((remembered, code_mac), library, code):
            await self._code_failures.fail(failures_key)
            raise PermissionDenied(
                "the library's authorization code is wrong", reason="LIBRARY_CODE_INVALID"
            )
        await self._code_failures.succeed(failures_key)
        self._verified_codes.put(remembered, code_mac)
        return number

    async def _verify_once(self, key: Any, library: Library, code: str) -> bool:
        """One slow check per library and code at a time: concurrent calls share its answer,
        so an expired cache entry costs one check, not one per call in flight."""
        pending = self._checks.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._run(access.code_matches, library, code))
            self._checks[key] = pending
            pending.add_done_callback(lambda _: self._checks.pop(key, None))
        return await asyncio.shield(pending)

    def fingerprint(self, pem: bytes) -> str:
        """The SHA-256 fingerprint of a PEM certificate, as the register knows certificates."""
        fingerprint = self._fingerprints.get(pem)
        if fingerprint is None:
            certificate = x509.load_pem_x509_certificate(pem)
            fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
            if len(self._fingerprints) > 10_000:
                self._fingerprints.clear()
            self._fingerprints[pem] = fingerprint
        return fingerprint

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)


def _library_number(metadata: dict[str, str]) -> LibraryNumber:
    raw = metadata.get(LIBRARY_NUMBER_KEY)
    if not raw:
        raise Unauthenticated(
            f"name the acting library in the metadata {LIBRARY_NUMBER_KEY!r}",
            reason="LIBRARY_MISSING",
        )
    try:
        return LibraryNumber.parse(raw)
    except InvalidValue as error:
        raise InvalidArgument.one(f"metadata.{LIBRARY_NUMBER_KEY}", str(error)) from error
