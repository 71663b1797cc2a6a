"""A keyed hash (HMAC-SHA256) of a login key, under which failed logins of a key that no
borrower holds are counted without keeping the card number or identity itself."""

from __future__ import annotations

import hashlib
import hmac

from nlr_server.crypto.keyring import KeyPurpose, Keyring
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.identity import IdentityValue

# Under the blind index's key (which is never rotated in normal operation), kept distinct from
# its national-id tags by this prefix.
_DOMAIN = b"nlr/login_key/v1\x00"


class LoginKeyIndex:
    """Maps a card number or an identity to a 32-byte tag that a database dump cannot reverse:
    someone's Feide id typed by mistake, or a card number an attacker tried, never lands in the
    database in clear. Keyed, as card numbers are few enough to hash them all."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def tag(self, key: CardNumber | IdentityValue) -> bytes:
        if isinstance(key, CardNumber):
            text = f"card\x00{key.value}"
        else:
            text = f"identity\x00{key.kind.value}\x00{key.value}"
        _, secret = self._keyring.active_key(KeyPurpose.NATIONAL_ID_INDEX)
        return hmac.digest(secret, _DOMAIN + text.encode("utf-8"), hashlib.sha256)
