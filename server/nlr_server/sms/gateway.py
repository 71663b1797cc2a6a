"""An SMS gateway over HTTP: ``POST {NLR_SMS_URL}`` with the JSON body
``{"to": "+4791234567", "message": "..."}``, authorised by a bearer token read from an
owner-only file (NLR_SMS_TOKEN_FILE) when one is set; any 2xx answer is taken as sent.
Blocking: call it off the event loop."""

from __future__ import annotations

from pathlib import Path

import httpx

from nlr_server.crypto.private_file import read_private_file
from nlr_server.domain.errors import Unavailable

TIMEOUT_SECONDS = 10.0


class SmsGateway:
    def __init__(self, url: str, token_file: Path | None = None) -> None:
        self._url = url
        self._token = (
            read_private_file(token_file, "SMS gateway token").decode().strip()
            if token_file is not None
            else None
        )

    def send(self, number: str, text: str) -> None:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            answer = httpx.post(
                self._url,
                json={"to": number, "message": text},
                headers=headers,
                timeout=TIMEOUT_SECONDS,
            )
        except httpx.HTTPError as error:
            raise _not_sent(type(error).__name__) from None
        if not answer.is_success:
            raise _not_sent(f"HTTP {answer.status_code}")


def _not_sent(why: str) -> Unavailable:
    # Never the number or the text: only what went wrong.
    return Unavailable(
        f"the code could not be sent by SMS ({why}): try again shortly",
        retry_after=30.0,
        reason="CODE_NOT_SENT",
    )
