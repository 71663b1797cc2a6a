"""Prints the TOTP code an authenticator app would show now, for an ``otpauth://`` URI or its
secret: for trying SelfService's two-factor login from a shell (the README's walkthrough).

    python -m nlr_server.ops.dev_totp 'otpauth://totp/...?secret=...'
"""

from __future__ import annotations

import datetime as dt
import sys
import urllib.parse

from nlr_server.crypto.totp import code_at


def secret_of(text: str) -> str:
    if text.startswith("otpauth://"):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(text).query)
        return query["secret"][0]
    return text


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m nlr_server.ops.dev_totp OTPAUTH_URI_OR_SECRET", file=sys.stderr)
        return 2
    print(code_at(secret_of(argv[0]), dt.datetime.now(dt.UTC)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
