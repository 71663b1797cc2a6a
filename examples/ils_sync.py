"""A library system keeps its copy of the register's borrowers in sync.

The first run pages through every borrower affiliated with the library (the full sync) and
keeps the feed cursor that came with it; every run then follows the change feed from the saved
cursor, applying each change and saving the cursor after it, so a restart (or a dropped
connection, which the client resumes by itself) loses and repeats nothing. Needs the nlr-client
package. Against `make run`, from the repository root:

    python examples/ils_sync.py --state oslo-sync.json

and, in another terminal, change a borrower of Demo Oslo bibliotek (e.g. with grpcurl) to see
the change arrive. ``--max-changes N`` stops after N changes (0: after the full sync).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict

from nlr.auth.errors import NlrError
from nlr.registry.client import RegistryClient
from nlr.registry.v1 import registry_service_pb2


class LocalCopy:
    """The ILS's own copy: borrowers by card number, and the feed cursor, in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cursor: int | None = None
        self.borrowers: dict[str, dict[str, Any]] = {}
        if path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
            self.cursor, self.borrowers = saved["cursor"], saved["borrowers"]

    def save(self) -> None:
        state = {"cursor": self.cursor, "borrowers": self.borrowers}
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")
        temporary.replace(self.path)  # atomic: a crash never leaves half a file

    def apply(self, change: registry_service_pb2.Change) -> str:
        """Applies one change; returns the card number it concerned."""
        if change.HasField("tombstone"):
            # Deleted, or this library's affiliation ended: the copy goes.
            self.borrowers.pop(change.tombstone.card_number, None)
            return change.tombstone.card_number
        borrower = change.borrower
        if borrower.previous_card_number:
            self.borrowers.pop(borrower.previous_card_number, None)
        self.borrowers[borrower.card_number] = MessageToDict(
            borrower, preserving_proto_field_name=True
        )
        return borrower.card_number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051", help="the register's host:port")
    parser.add_argument(
        "--pki", type=Path, default=Path(".nlr-dev/pki"), help="ca.pem, ils.pem, ils.key"
    )
    parser.add_argument("--library", default="2030100", help="the acting library's number")
    parser.add_argument("--code", default="oslo-demo-2030100", help="its authorization code")
    parser.add_argument("--state", type=Path, default=Path("ils-sync.json"))
    parser.add_argument("--max-changes", type=int, default=None)
    args = parser.parse_args(argv)

    copy = LocalCopy(args.state)
    with RegistryClient(
        args.target,
        ca_cert=args.pki / "ca.pem",
        client_cert=args.pki / "ils.pem",
        client_key=args.pki / "ils.key",
        library_number=args.library,
        library_code=args.code,
    ) as client:
        try:
            if copy.cursor is None:
                sync = client.full_sync()
                for borrower in sync:
                    copy.borrowers[borrower.card_number] = MessageToDict(
                        borrower, preserving_proto_field_name=True
                    )
                copy.cursor = sync.cursor
                copy.save()
                print(f"full sync: {len(copy.borrowers)} borrowers, cursor {copy.cursor}")
            if args.max_changes == 0:
                return 0
            changes = client.watch_changes(copy.cursor)
            for applied, change in enumerate(changes, start=1):
                card_number = copy.apply(change)
                copy.cursor = change.sequence
                copy.save()
                kind = registry_service_pb2.ChangeKind.Name(change.kind)
                print(f"change {change.sequence}: {kind} {card_number}")
                if args.max_changes is not None and applied >= args.max_changes:
                    break
            changes.close()
        except NlrError as error:
            # RESYNC_REQUIRED: the copy is older than the feed keeps; delete the state file.
            print(f"stopped: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
