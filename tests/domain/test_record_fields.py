"""The record's fields are PersonalData's, and what follows them follows them: the patch of an
update, the update_mask paths, the policy's field owners."""

from __future__ import annotations

import dataclasses

from nlr_server.domain.borrower import (
    RECORD_FIELDS,
    UPDATABLE_FIELDS,
    PersonalData,
    PersonalDataPatch,
)
from nlr_server.domain.policy import FIELD_OWNERS


def test_a_patch_has_a_value_for_every_field_of_the_record_and_the_name_in_parts() -> None:
    patch_fields = {f.name for f in dataclasses.fields(PersonalDataPatch)} - {"fields"}
    record = set(RECORD_FIELDS) - {"name"}
    assert patch_fields == record | {"given_name", "family_name"}
    assert tuple(f.name for f in dataclasses.fields(PersonalData)) == RECORD_FIELDS


def test_every_field_of_the_record_may_be_named_in_an_update() -> None:
    assert (set(RECORD_FIELDS) - {"name"}) | {
        "given_name",
        "family_name",
        "national_id",
    } == UPDATABLE_FIELDS


def test_every_owner_owns_only_fields_of_the_record() -> None:
    for kind, owned in FIELD_OWNERS.items():
        assert owned <= UPDATABLE_FIELDS, kind
