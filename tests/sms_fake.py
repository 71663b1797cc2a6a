"""A local SMS gateway for the tests: a real HTTP server that takes ``POST /messages`` with the
JSON body ``{"to", "message"}`` (as NLR_SMS_URL is called), checks the bearer token when one is
set, and keeps what it was sent; ``status`` makes it answer an error instead."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class SmsState:
    token: str | None = None
    status: int = 202
    messages: list[dict[str, Any]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the numbers sent to are personal data

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"null")
        if self.path != "/messages":
            self._answer(404)
        elif state.token and self.headers.get("Authorization") != f"Bearer {state.token}":
            self._answer(401)
        elif not isinstance(body, dict) or set(body) != {"to", "message"}:
            self._answer(400)
        elif state.status >= 300:
            self._answer(state.status)
        else:
            state.messages.append(body)
            self._answer(state.status)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    def __init__(self, state: SmsState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class SmsGatewayFake:
    def __init__(self, token: str | None = None) -> None:
        self.state = SmsState(token=token)
        self._server = _Server(self.state)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/messages"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> SmsGatewayFake:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
