"""A keyed blind index (HMAC-SHA256) for exact lookups of a field that is stored only encrypted."""

from __future__ import annotations

import hashlib
import hmac

from nlr_server.crypto.keyring import KeyPurpose, Keyring

# Keeps these digests distinct from any other HMAC that might ever be made under the same key.
_DOMAIN = b"nlr/national_id/v1\x00"


class BlindIndex:
    """Maps a national id to a 32-byte tag that equal ids share and a database dump cannot reverse.

    The tag lets the store look a borrower up by national id, and enforce that each id appears
    once, without holding the id in clear. It is keyed because national ids are few enough to
    hash them all: a plain hash in a database dump would give every id away.
    The caller normalizes the value first (one canonical spelling per id), since the tag of a
    differently written but equal id would differ.

    Tags are made with the *active* ``NATIONAL_ID_INDEX`` key version, and are only comparable
    with tags made under that same version. Rotating this purpose therefore needs every stored
    tag recomputed (from the decrypted ids) before the new version is used; ``Keyring.rotate``
    alone does not do that, so this key is not rotated in normal operation.
    """

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def compute(self, value: str) -> bytes:
        _, key = self._keyring.active_key(KeyPurpose.NATIONAL_ID_INDEX)
        return hmac.digest(key, _DOMAIN + value.encode("utf-8"), hashlib.sha256)
