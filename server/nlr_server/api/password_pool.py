"""Password hashing on its own bounded pool, so a storm of logins cannot starve other calls."""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

from nlr_server.crypto import pbkdf2_verifier

# Verified when a card number is unknown or has no password, so that the answer takes as long
# as a real check and does not tell which card numbers exist.
_DUMMY_SECRET = "not a password of anyone's"


@functools.cache
def _dummy_verifier(iterations: int) -> str:
    # Made once per process: at the full cost it takes as long as a real password check.
    return pbkdf2_verifier.make_verifier(_DUMMY_SECRET, iterations=iterations)


class PasswordPool:
    """PBKDF2-HMAC-SHA512 checks on ``workers`` threads (hashlib releases the GIL meanwhile)."""

    def __init__(self, *, workers: int, iterations: int) -> None:
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="nlr-password")
        self._iterations = iterations
        self._dummy = _dummy_verifier(iterations)

    async def make(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._make, password
        )

    async def verify(self, password: str, verifier: str | None) -> tuple[bool, str | None]:
        """Whether it matches, and a re-made verifier when the stored one is below the cost."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._verify, password, verifier
        )

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _make(self, password: str) -> str:
        return pbkdf2_verifier.make_verifier(password, iterations=self._iterations)

    def _verify(self, password: str, verifier: str | None) -> tuple[bool, str | None]:
        if verifier is None:
            pbkdf2_verifier.verify(password, self._dummy)
            return False, None
        if not pbkdf2_verifier.verify(password, verifier):
            return False, None
        if pbkdf2_verifier.needs_rehash(verifier, iterations=self._iterations):
            return True, self._make(password)
        return True, None
