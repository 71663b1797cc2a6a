"""Sends a deletion notice as one plain-text email through the configured SMTP server."""

from __future__ import annotations

import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from nlr_server.domain.deletion_notice import DeletionNotice, NoticeNotDelivered

# One notice per connection; a server that does not answer within this is tried again later.
SMTP_TIMEOUT_SECONDS = 20.0


class SmtpSender:
    """A NoticeSender over SMTP (standard library, blocking: call it off the event loop)."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = SMTP_TIMEOUT_SECONDS,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._starttls = starttls
        # Verifies the mail server's certificate against the system's trusted CAs by default.
        self._tls_context = tls_context or ssl.create_default_context()
        self._timeout = timeout

    def message(self, notice: DeletionNotice) -> EmailMessage:
        name = notice.borrower_name
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = Address(
            display_name=f"{name.given_name} {name.family_name}",
            addr_spec=notice.recipient.value,
        )
        message["Subject"] = notice.subject
        message["Date"] = format_datetime(notice.created_at)
        message["Message-ID"] = make_msgid(domain=self._sender.rpartition("@")[2] or None)
        message.set_content(notice.body)
        return message

    def __call__(self, notice: DeletionNotice) -> None:
        message = self.message(notice)
        # The exceptions' own messages may quote the address: only codes and types go on.
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                if self._starttls:
                    smtp.starttls(context=self._tls_context)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            codes = sorted({code for code, _ in error.recipients.values()})
            raise NoticeNotDelivered(f"recipient refused with SMTP {codes}") from None
        except smtplib.SMTPResponseException as error:
            raise NoticeNotDelivered(
                f"{type(error).__name__} with SMTP {error.smtp_code}"
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            raise NoticeNotDelivered(type(error).__name__) from None
