"""The views of a borrower, and what each holds: the least data that serves its caller.

Which view a caller gets is the policy's (domain/policy.py); what is in it is decided here,
and the codecs encode what ``disclosed`` leaves.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import replace

from nlr_server.domain.borrower import Borrower, PersonalData
from nlr_server.domain.guardian import GuardianLinks


class BorrowerView(enum.Enum):
    # Card number, name, birth year, card validity: enough to confirm the person at the desk.
    BASIC = "basic"
    # Everything but the national id, which nobody gets back.
    FULL = "full"


def disclosed(borrower: Borrower, view: BorrowerView, today: dt.date) -> Borrower:
    """The borrower with only what ``view`` holds on ``today``.

    The basic view keeps the card, the name, the birth date (of which only the year is
    shown) and the card's expiry (of which only whether the card is valid is shown). A
    protected address never leaves the register, whichever view, and a temporary address past
    its last day is no longer the borrower's. Each address's "should be checked" flag goes
    with its address: withheld (false) whenever the address is.
    """
    personal = borrower.personal
    if view is BorrowerView.BASIC:
        return replace(
            borrower,
            personal=PersonalData(
                name=personal.name,
                birth_date=personal.birth_date,
                card_expiry_date=personal.card_expiry_date,
            ),
            affiliations=(),
            links=GuardianLinks(),
            identities=(),
            previous_card_number=None,
            last_active_on=None,
            population_register_checked_at=None,
            population_register_status=None,
        )
    protected = borrower.address_protected
    registered = None if protected else personal.registered_address
    temporary = None if protected else borrower.temporary_address_on(today)
    if registered is personal.registered_address and temporary is personal.temporary_address:
        return borrower
    return replace(
        borrower,
        personal=replace(
            personal,
            registered_address=registered,
            temporary_address=temporary,
            registered_address_should_be_checked=(
                not protected and personal.registered_address_should_be_checked
            ),
            temporary_address_should_be_checked=(
                temporary is not None and personal.temporary_address_should_be_checked
            ),
        ),
    )
