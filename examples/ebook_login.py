"""An ebook platform logs a borrower in with card number (or Feide id) and PIN.

Needs only the nlr-auth-client package. Against `make run`, from the repository root:

    python examples/ebook_login.py --card N000000001 --pin 1234

prints what the register tells an auth-only caller (card number, age, home library, affiliated
libraries, assurance level) as JSON, or the reason it refused; the exit status is 0 only for a
successful login.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nlr.auth.client import AuthClient, IdentityKind
from nlr.auth.errors import NlrError

# What the reasons mean for the person at the screen.
_ADVICE = {
    "CREDENTIALS_INVALID": "wrong card number or PIN (if you log in with a password, use it)",
    "LOGIN_LOCKED": "too many wrong PINs: try again later",
    "CARD_EXPIRED": "the card has expired: renew it at a library",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051", help="the register's host:port")
    parser.add_argument(
        "--pki", type=Path, default=Path(".nlr-dev/pki"), help="ca.pem, auth.pem, auth.key"
    )
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--card", help="card number, e.g. N000000001")
    who.add_argument("--feide", help="Feide id (eduPersonPrincipalName), e.g. kari@uio.no")
    parser.add_argument("--pin", required=True)
    args = parser.parse_args(argv)

    with AuthClient(
        args.target,
        ca_cert=args.pki / "ca.pem",
        client_cert=args.pki / "auth.pem",
        client_key=args.pki / "auth.key",
    ) as client:
        try:
            if args.card:
                result = client.verify_pin(args.pin, card_number=args.card)
            else:
                result = client.verify_pin(args.pin, identity=(IdentityKind.FEIDE, args.feide))
        except NlrError as error:
            advice = _ADVICE.get(error.reason, error.message)
            print(json.dumps({"refused": error.reason or error.code.name, "advice": advice}))
            return 1
    print(
        json.dumps(
            {
                "card_number": result.card_number,
                "age": result.age,
                "home_library": result.home_library,
                "affiliated_libraries": list(result.affiliated_libraries),
                "assurance_level": result.assurance_level.value,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
