"""Sends a one-time code for a new email address, as one plain-text email through the
configured SMTP server (blocking: call it off the event loop)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from nlr_server.domain.errors import Unavailable
from nlr_server.mail.smtp_sender import SMTP_TIMEOUT_SECONDS

SUBJECT = "Kode for bibliotekkortet / Code for your library card"


def code_text(code: str, minutes: int) -> str:
    return (
        f"Koden din er {code}. Den gjelder i {minutes} minutter.\n"
        f"Your code is {code}. It is valid for {minutes} minutes.\n"
    )


class CodeMailer:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._starttls = starttls
        self._tls_context = tls_context or ssl.create_default_context()

    def send(self, address: str, text: str) -> None:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = address
        message["Subject"] = SUBJECT
        message["Message-ID"] = make_msgid(domain=self._sender.rpartition("@")[2] or None)
        message.set_content(text)
        # The exceptions' own messages may quote the address: only types go on.
        try:
            with smtplib.SMTP(self._host, self._port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
                if self._starttls:
                    smtp.starttls(context=self._tls_context)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as error:
            raise Unavailable(
                f"the code could not be mailed ({type(error).__name__}): try again shortly",
                retry_after=30.0,
                reason="CODE_NOT_SENT",
            ) from None
