"""`nlr-admin vendors`: the system vendors (systemleverandører) whose certificates may call."""

from __future__ import annotations

import argparse
import unicodedata

from nlr_server.ops.admin import (
    AdminError,
    Commands,
    add_command,
    add_group,
    add_json_option,
    now,
    print_json,
    print_table,
    store,
    vendor_named,
)

# A vendor's name becomes its certificates' CN and O, which X.509 limits to 64 characters.
MAX_NAME_LENGTH = 64


def add_commands(commands: Commands) -> None:
    vendors = add_group(commands, "vendors", "system vendors and whether they may call")
    add = add_command(vendors, "add", _add, "register a vendor", "Names are unique.")
    add.add_argument("name", metavar="NAME", help="the vendor's name, e.g. 'Bibliotekdata AS'")
    listing = add_command(
        vendors, "list", _list, "list vendors with their number of active certificates"
    )
    add_json_option(listing)
    disable = add_command(
        vendors,
        "disable",
        _disable,
        "stop a vendor's certificates from being accepted",
        "Its certificates stay registered; `vendors enable` lets them in again.",
    )
    disable.add_argument("name", metavar="NAME", help="the vendor's name")
    enable = add_command(
        vendors, "enable", _enable, "accept a disabled vendor's certificates again"
    )
    enable.add_argument("name", metavar="NAME", help="the vendor's name")


def _check_name(raw: str) -> str:
    name = raw.strip()
    if not name:
        raise AdminError("vendor name: must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise AdminError(f"vendor name: at most {MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise AdminError("vendor name: no control characters")
    return name


def _add(args: argparse.Namespace) -> None:
    name = _check_name(args.name)
    with store() as unit_of_work, unit_of_work() as uow:
        if uow.vendors.get_by_name(name) is not None:
            raise AdminError(f"vendor {name!r} already exists")
        vendor = uow.vendors.add(name, now())
        uow.commit()
    print(f"added vendor {vendor.name!r} (id {vendor.id})")


def _list(args: argparse.Namespace) -> None:
    with store() as unit_of_work, unit_of_work(read_only=True) as uow:
        vendors = uow.vendors.all()
        active_certificates: dict[int, int] = {v.id: 0 for v in vendors}
        for certificate in uow.vendors.certificates():
            if certificate.revoked_at is None:
                active_certificates[certificate.vendor_id] += 1
    listing = [
        {
            "id": v.id,
            "name": v.name,
            "active": v.active,
            "active_certificates": active_certificates[v.id],
        }
        for v in vendors
    ]
    if args.json:
        print_json(listing)
        return
    if not listing:
        print("no vendors (add one with `nlr-admin vendors add NAME`)")
        return
    print_table(
        ("id", "state", "certificates", "name"),
        [
            (v["id"], "active" if v["active"] else "disabled", v["active_certificates"], v["name"])
            for v in listing
        ],
    )


def _disable(args: argparse.Namespace) -> None:
    _set_active(args.name, active=False)


def _enable(args: argparse.Namespace) -> None:
    _set_active(args.name, active=True)


def _set_active(name: str, *, active: bool) -> None:
    state = "enabled" if active else "disabled"
    with store() as unit_of_work, unit_of_work() as uow:
        vendor = vendor_named(uow, name)
        if vendor.active == active:
            print(f"vendor {vendor.name!r} is already {state}")
            return
        uow.vendors.set_active(vendor.id, active)
        uow.commit()
    print(f"vendor {vendor.name!r} {state}")
