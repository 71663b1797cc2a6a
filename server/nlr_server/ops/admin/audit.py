"""`nlr-admin audit`: who touched a borrower, and whom a vendor touched in a time window."""

from __future__ import annotations

import argparse
import datetime as dt

from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.errors import InvalidValue
from nlr_server.ops.admin import (
    AdminError,
    Commands,
    add_command,
    add_json_option,
    library_numbered,
    parse_library_number,
    print_json,
    print_table,
    store,
    timestamp,
    vendor_named,
)


def add_commands(commands: Commands) -> None:
    audit = add_command(
        commands,
        "audit",
        _card_events,
        "query the audit trail",
        "`audit --card CARD_NUMBER` lists every event of one card number, oldest first; "
        "`audit --certificate FINGERPRINT` every call made with one client certificate, also "
        "refused ones of unknown or revoked certificates; "
        "`audit affected` counts the borrowers a vendor read or changed in a time window.",
    )
    audit.usage = (
        "nlr-admin audit --card CARD_NUMBER [--json]\n"
        "       nlr-admin audit --certificate FINGERPRINT [--json]\n"
        "       nlr-admin audit affected --vendor NAME [--library NUMBER] --from T --to T [--json]"
    )
    audit.add_argument("--card", metavar="CARD_NUMBER", help="the card number, e.g. N000000001")
    audit.add_argument(
        "--certificate",
        metavar="FINGERPRINT",
        help="a client certificate's SHA-256 fingerprint (64 hex digits, as `certs list` shows)",
    )
    add_json_option(audit)
    queries: Commands = audit.add_subparsers(dest="audit_command", required=False, metavar="QUERY")
    affected = add_command(
        queries,
        "affected",
        _affected,
        "the borrowers a vendor read or changed in [--from, --to)",
        "Counts the distinct card numbers in the vendor's successful calls with "
        "--from <= time < --to (the borrowers whose data it read or changed), and separately "
        "those it tried but was refused. Times are ISO 8601, e.g. 2026-11-24T10:00:00Z "
        "or 2026-11-24 (midnight); without an offset they are UTC.",
    )
    affected.add_argument("--vendor", required=True, metavar="NAME", help="the vendor's name")
    affected.add_argument("--library", metavar="NUMBER", help="only calls for this library")
    affected.add_argument(
        "--from", dest="start", required=True, type=_moment, metavar="T", help="window start"
    )
    affected.add_argument(
        "--to", dest="end", required=True, type=_moment, metavar="T", help="window end (excluded)"
    )
    # SUPPRESS: `audit --json affected ...` must not be undone by this option's default.
    affected.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON"
    )


def _card_events(args: argparse.Namespace) -> None:
    if (args.card is None) == (args.certificate is None):
        raise AdminError(
            "give --card CARD_NUMBER or --certificate FINGERPRINT, or a query such as "
            "`audit affected`"
        )
    columns: tuple[str, ...]
    if args.certificate is not None:
        fingerprint = args.certificate.strip().lower().replace(":", "")
        if len(fingerprint) != 64 or any(c not in "0123456789abcdef" for c in fingerprint):
            raise AdminError("--certificate: a SHA-256 fingerprint is 64 hexadecimal digits")
        subject, columns = f"certificate {fingerprint}", ("time", "actor", "vendor", "card")
    else:
        try:
            card_number = CardNumber.parse(args.card)
        except InvalidValue as error:
            raise AdminError(f"card number {args.card!r}: {error}") from error
        subject, columns = str(card_number), ("time", "actor", "vendor")
    with store() as unit_of_work, unit_of_work(read_only=True) as uow:
        names = {v.id: v.name for v in uow.vendors.all()}
        events = (
            uow.audit.for_certificate(fingerprint)
            if args.certificate is not None
            else uow.audit.for_card(card_number.value)
        )
    listing = [
        {
            "time": timestamp(e.occurred_at),
            # Who acted: "library:2030100", "operator:kari", "system:maintenance".
            "actor": None if e.actor_kind is None else f"{e.actor_kind.value}:{e.actor_id}",
            "vendor": None if e.vendor_id is None else names.get(e.vendor_id),
            "library": e.library_number,
            "card": e.card_number,
            "rpc": e.rpc,
            "outcome": e.outcome,
            "reason": e.reason,
            "certificate": e.certificate_fingerprint,
        }
        for e in events
    ]
    if args.json:
        print_json(listing)
        return
    if not listing:
        print(f"no audit events for {subject}")
        return
    columns = (*columns, "rpc", "outcome", "reason")
    print_table(columns, [[entry[column] for column in columns] for entry in listing])


def _affected(args: argparse.Namespace) -> None:
    if args.card is not None or args.certificate is not None:
        raise AdminError("--card, --certificate and `affected` are different queries; give one")
    if args.start >= args.end:
        raise AdminError("--from must be before --to")
    library = None if args.library is None else parse_library_number(args.library)
    with store() as unit_of_work, unit_of_work(read_only=True) as uow:
        vendor = vendor_named(uow, args.vendor)
        if library is not None:
            library_numbered(uow, library)
        events = uow.audit.in_window(
            vendor.id, args.start, args.end, None if library is None else library.value
        )
    card_numbers = sorted(
        {e.card_number for e in events if e.card_number is not None and e.outcome == "OK"}
    )
    refused = sorted(
        {e.card_number for e in events if e.card_number is not None and e.outcome != "OK"}
        - set(card_numbers)
    )
    report = {
        "vendor": vendor.name,
        "library": None if library is None else library.value,
        "from": timestamp(args.start),
        "to": timestamp(args.end),
        "borrowers": len(card_numbers),
        "card_numbers": card_numbers,
        "refused_card_numbers": refused,
        "events": len(events),
    }
    if args.json:
        print_json(report)
        return
    scope = "all its libraries" if library is None else f"library {library}"
    print(
        f"{vendor.name} ({scope}), {report['from']} to {report['to']}: "
        f"{len(card_numbers)} borrower{'s' if len(card_numbers) != 1 else ''} "
        f"in {len(events)} event{'s' if len(events) != 1 else ''}"
    )
    for card_number in card_numbers:
        print(f"  {card_number}")
    if refused:
        print(f"and {len(refused)} more it tried to reach but was refused:")
        for card_number in refused:
            print(f"  {card_number}")


def _moment(raw: str) -> dt.datetime:
    """ISO 8601 time or date (midnight); a time without an offset is taken as UTC."""
    try:
        moment = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not an ISO 8601 time such as 2026-11-24T10:00:00Z or 2026-11-24"
        ) from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
