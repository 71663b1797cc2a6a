"""Demo libraries and borrowers for `make run`, all with synthetic national ids."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nlr_server.crypto.pbkdf2_verifier import make_verifier
from nlr_server.crypto.pin_verifier import PinVerifier
from nlr_server.domain.actor import Actor
from nlr_server.domain.address import Address
from nlr_server.domain.audit import Acting
from nlr_server.domain.borrower import PersonalData, Sex
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.contact import EmailAddress, PhoneNumber
from nlr_server.domain.errors import AlreadyExists, Violations
from nlr_server.domain.library import Library
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.national_id import NationalId, make_synthetic_national_id
from nlr_server.domain.person_name import PersonName
from nlr_server.usecases import borrowers, credentials
from nlr_server.usecases.ports import UnitOfWorkFactory

OSLO = Library(LibraryNumber("2030100"), "Demo Oslo bibliotek")
BERGEN = Library(LibraryNumber("2460100"), "Demo Bergen bibliotek")

# The dev PKI's ils.pem and auth.pem name these vendors as their organization.
ILS_VENDOR = "Demo Bibliotekdata AS"
AUTH_VENDOR = "Demo eBok AS"
PORTAL_VENDOR = "Demo Bibliotekkortet"

# Demo authorization codes: printed by `make run` and in the README, so never use them elsewhere.
OSLO_CODE = "oslo-demo-2030100"
BERGEN_CODE = "bergen-demo-2460100"
LIBRARY_CODES = {OSLO.number: OSLO_CODE, BERGEN.number: BERGEN_CODE}
# Every demo borrower's PIN, for trying Authenticate (and examples/ebook_login.py).
DEMO_PIN = "1234"
# Every demo borrower's password, for trying VerifyPassword and SelfService's login.
DEMO_PASSWORD = "demo-passord"


@dataclass(frozen=True, slots=True)
class DemoBorrower:
    card_number: str
    given_name: str
    family_name: str
    birth_date: dt.date
    sex: Sex
    library: Library
    email: str
    mobile_phone: str
    street: str
    postal_code: str
    city: str


DEMO_BORROWERS = (
    DemoBorrower(
        "N000000001",
        "Kari",
        "Nordmann",
        dt.date(1985, 3, 14),
        Sex.FEMALE,
        OSLO,
        "kari.nordmann@example.org",
        "+4791234567",
        "Storgata 1",
        "0155",
        "Oslo",
    ),
    DemoBorrower(
        "N000000002",
        "Ola",
        "Nordmann",
        dt.date(1979, 11, 2),
        Sex.MALE,
        OSLO,
        "ola.nordmann@example.org",
        "+4741234567",
        "Storgata 1",
        "0155",
        "Oslo",
    ),
    DemoBorrower(
        "N000000003",
        "Áile",
        "Somby",
        dt.date(2001, 6, 21),
        Sex.FEMALE,
        OSLO,
        "aile.somby@example.org",
        "+4792345678",
        "Thorvald Meyers gate 7",
        "0555",
        "Oslo",
    ),
    DemoBorrower(
        "N000000004",
        "Per",
        "Hansen",
        dt.date(1962, 1, 30),
        Sex.MALE,
        BERGEN,
        "per.hansen@example.org",
        "+4793456789",
        "Strandkaien 2",
        "5013",
        "Bergen",
    ),
)


def demo_national_id(borrower: DemoBorrower) -> str:
    """The demo borrower's synthetic national id (month + 80), stable from run to run."""
    return make_synthetic_national_id(borrower.birth_date, int(borrower.card_number[1:]))


def seed(
    unit_of_work: UnitOfWorkFactory,
    now: dt.datetime,
    pins: PinVerifier | None = None,
    password_iterations: int | None = None,
) -> int:
    """Adds whatever demo libraries and borrowers are missing; returns how many were added.
    With ``pins``, a demo borrower without a PIN gets DEMO_PIN; with ``password_iterations``,
    one without a password gets DEMO_PASSWORD."""
    added = 0
    with unit_of_work() as uow:
        for library in (OSLO, BERGEN):
            if uow.libraries.get(library.number) is None:
                uow.libraries.add(library)
                added += 1
        uow.commit()
    for demo in DEMO_BORROWERS:
        violations = Violations()
        address = Address.parse([demo.street], demo.postal_code, demo.city, "NO", violations, "")
        personal = PersonalData(
            name=PersonName(demo.given_name, demo.family_name),
            birth_date=demo.birth_date,
            sex=demo.sex,
            registered_address=address,
            email=EmailAddress.parse(demo.email),
            mobile_phone=PhoneNumber.parse(demo.mobile_phone),
        )
        national_id = NationalId.parse(demo_national_id(demo), allow_synthetic=True)
        try:
            borrowers.create_borrower(
                unit_of_work,
                _demo_setup(demo.library.number),
                demo.library.number,
                CardNumber(demo.card_number),
                personal,
                national_id,
                now,
            )
            added += 1
        except AlreadyExists:
            pass
        if pins is not None:
            _give_pin(unit_of_work, demo, pins, now)
        if password_iterations is not None:
            _give_password(unit_of_work, demo, password_iterations, now)
    return added


def _demo_setup(library: LibraryNumber) -> Acting:
    """The demo data are entered as their home library would enter them."""
    return Acting(Actor.library(library), "nlr-admin dev-setup")


def _give_pin(
    unit_of_work: UnitOfWorkFactory, demo: DemoBorrower, pins: PinVerifier, now: dt.datetime
) -> None:
    with unit_of_work(read_only=True) as uow:
        borrower = uow.borrowers.get_by_card_number(CardNumber(demo.card_number))
    if borrower is None or borrower.has_pin:
        return
    verifier = pins.make(DEMO_PIN)
    credentials.set_pin(
        unit_of_work,
        _demo_setup(borrower.home_library),
        borrower.card_number,
        verifier,
        pins.key_version(verifier),
        now,
    )


def _give_password(
    unit_of_work: UnitOfWorkFactory, demo: DemoBorrower, iterations: int, now: dt.datetime
) -> None:
    with unit_of_work(read_only=True) as uow:
        borrower = uow.borrowers.get_by_card_number(CardNumber(demo.card_number))
    if borrower is None or borrower.has_password:
        return
    credentials.set_password(
        unit_of_work,
        _demo_setup(borrower.home_library),
        borrower.card_number,
        make_verifier(DEMO_PASSWORD, iterations=iterations),
        now,
    )
