"""What each actor may do to a borrower: which view it gets, whether it may change the record,
and which fields it may change (field ownership).

The use cases ask here, once per borrower they act on; nothing else decides.

- A library sees the full view of the borrowers affiliated with it and the basic view of
  everyone else, and changes only the borrowers affiliated with it. While a borrower has
  restricted the processing of their data (GDPR art. 18), only their home library sees or
  changes more, and no other library is newly affiliated.
- A borrower sees and changes only their own record, and of it only what is theirs to keep
  true: how to reach them, their own choices, not who they are.
- The population register owns who the person is: name, sex, birth date, registered address.
  For a borrower found in it, a library may not change their name, sex or registered address
  (the population register keeps them true); for the others (DUF numbers, not found) it may.
- An operator and the register's own tasks act on any record.
- A borrower's security level is raised by whoever may change the record, and lowered only by
  the borrower (or an operator).
"""

from __future__ import annotations

from nlr_server.domain.actor import Actor, ActorKind
from nlr_server.domain.address import AddressProtection
from nlr_server.domain.borrower import UPDATABLE_FIELDS, Borrower
from nlr_server.domain.credentials import SecurityLevel
from nlr_server.domain.errors import PermissionDenied
from nlr_server.domain.identity import LINKED_BY_BORROWER, IdentityKind
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.views import BorrowerView

# Who a person is, as the population register says.
POPULATION_REGISTER_FIELDS: frozenset[str] = frozenset(
    {"given_name", "family_name", "national_id", "birth_date", "sex", "registered_address"}
)
# What the population register keeps true for a borrower found in it, so that no library
# changes it (the birth date follows the national id, which only an update names).
FOLLOWED_FIELDS: frozenset[str] = frozenset(
    {"given_name", "family_name", "sex", "registered_address"}
)
# The record's addresses.
ADDRESS_FIELDS: frozenset[str] = frozenset({"registered_address", "temporary_address"})
# What a borrower keeps true themself.
BORROWER_FIELDS: frozenset[str] = frozenset(
    {
        "email",
        "mobile_phone",
        "home_phone",
        "work_phone",
        "primary_contact_phone",
        "primary_phone",
        "temporary_address",
        "preferred_contact_method",
        "preferred_language",
        "security_level",
        "consent_time",
    }
)
# The fields each kind of actor may change.
FIELD_OWNERS: dict[ActorKind, frozenset[str]] = {
    ActorKind.LIBRARY: UPDATABLE_FIELDS,
    ActorKind.BORROWER: BORROWER_FIELDS,
    ActorKind.POPULATION_REGISTER: POPULATION_REGISTER_FIELDS,
    ActorKind.OPERATOR: UPDATABLE_FIELDS,
    ActorKind.SYSTEM: UPDATABLE_FIELDS,
}


def view_for(actor: Actor, borrower: Borrower) -> BorrowerView:
    """The view of ``borrower`` that ``actor`` is entitled to: the least data that serves it."""
    if actor.kind is ActorKind.LIBRARY:
        library = actor.library_number
        assert library is not None
        return library_view(library, borrower)
    if actor.kind is ActorKind.BORROWER:
        return BorrowerView.FULL if actor.id == borrower.card_number.value else BorrowerView.BASIC
    return BorrowerView.FULL


def library_view(library: LibraryNumber, borrower: Borrower) -> BorrowerView:
    """What a library sees of a borrower: the full view if affiliated with them, and, while the
    borrower has restricted processing (GDPR art. 18), only if it is their home library."""
    if not borrower.is_affiliated_with(library):
        return BorrowerView.BASIC
    if borrower.processing_restricted and library != borrower.home_library:
        return BorrowerView.BASIC
    return BorrowerView.FULL


def require_may_change(actor: Actor, borrower: Borrower) -> None:
    """Refuses an actor that may not change this borrower's record: a library not affiliated
    with them, or, while they have restricted processing, any library but their home library."""
    if actor.kind is ActorKind.LIBRARY:
        library = actor.library_number
        assert library is not None
        if not borrower.is_affiliated_with(library):
            raise PermissionDenied(
                "only a library affiliated with the borrower may change it",
                reason="NOT_AFFILIATED",
            )
        if borrower.processing_restricted and library != borrower.home_library:
            raise PermissionDenied(
                "the borrower has restricted the processing of their data: only their home "
                "library may change the record",
                reason="PROCESSING_RESTRICTED",
            )
    elif actor.kind is ActorKind.BORROWER and actor.id != borrower.card_number.value:
        raise PermissionDenied("a borrower changes only their own record", reason="NOT_OWN_RECORD")


def require_may_set_security_level(actor: Actor, old: SecurityLevel, new: SecurityLevel) -> None:
    """The borrower chose how strong a login their card needs: only they (or an operator)
    may lower it; anyone who may change the record may raise it."""
    if actor.kind in (ActorKind.BORROWER, ActorKind.OPERATOR) or new >= old:
        return
    raise PermissionDenied(
        "a library may raise a borrower's security level but not lower it",
        reason="SECURITY_LEVEL_LOWERING",
    )


def require_may_change_fields(actor: Actor, fields: frozenset[str]) -> None:
    """Refuses a change that names a field the actor does not own."""
    not_owned = sorted(fields - FIELD_OWNERS[actor.kind])
    if not_owned:
        raise PermissionDenied(
            f"not the {actor.kind.value}'s to change: {', '.join(not_owned)}",
            reason="FIELD_NOT_OWNED",
        )


def require_not_followed(actor: Actor, borrower: Borrower, fields: frozenset[str]) -> None:
    """Refuses a library's change of what the population register keeps true for a borrower
    found in it, naming the fields (ErrorInfo metadata ``fields``); and any address for a
    borrower whose address the population register keeps strictly confidential, from a library
    or the borrower (an operator may still act)."""
    addresses = sorted(fields & ADDRESS_FIELDS)
    if (
        addresses
        and borrower.address_protection is AddressProtection.STRICTLY_CONFIDENTIAL
        and actor.kind in (ActorKind.LIBRARY, ActorKind.BORROWER)
    ):
        raise PermissionDenied(
            "the population register keeps this borrower's address strictly confidential: no "
            f"address may be kept ({', '.join(addresses)})",
            reason="ADDRESS_STRICTLY_PROTECTED",
            metadata={"fields": ",".join(addresses)},
        )
    if actor.kind is not ActorKind.LIBRARY or not borrower.in_population_register:
        return
    followed = sorted(fields & FOLLOWED_FIELDS)
    if followed:
        raise PermissionDenied(
            f"kept by the population register for this borrower: {', '.join(followed)}",
            reason="OWNED_BY_POPULATION_REGISTER",
            metadata={"fields": ",".join(followed)},
        )


def require_may_link(actor: Actor, kind: IdentityKind) -> None:
    """Refuses a library's link of an identity only the borrower links (a Feide user id: what
    a Feide login finds the borrower by)."""
    if kind in LINKED_BY_BORROWER and actor.kind is ActorKind.LIBRARY:
        raise PermissionDenied(
            "only the borrower links this kind of identity (SelfService's LinkFeide)",
            reason="IDENTITY_LINKED_BY_BORROWER",
        )
