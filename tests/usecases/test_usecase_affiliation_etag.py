"""A new affiliation changes the record (its affiliated libraries, and every affiliated
library is fed an UPDATED entry), so it must change the etag: found failing, not committed."""

from __future__ import annotations

from nlr_server.usecases.borrowers import affiliate_borrower
from usecases.usecase_harness import BERGEN, NOW, Store


def test_a_new_affiliation_changes_the_etag(store: Store) -> None:
    kari = store.enrol("N000000751")
    affiliated = affiliate_borrower(
        store.unit_of_work,
        store.library(BERGEN, "AffiliateBorrower"),
        kari.card_number,
        kari.national_id,
        NOW,
        store.pins.matches,
        store.lockout,
    )
    assert len(affiliated.affiliations) == 2
    assert affiliated.etag != kari.borrower.etag
