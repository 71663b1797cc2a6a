"""The SOAP reader's edges: items across read blocks, empty and cut-off items, resuming."""

from __future__ import annotations

import io

import pytest

from legacy_soap_fixture import envelope, item_xml, laaner
from nlr_server.ops import legacy_soap
from nlr_server.ops.legacy_soap import ItemError, item_fields, soap_items


def _file(count: int) -> bytes:
    items = [item_xml(laaner(lnr=f"N{i:09d}", navn=f"Navn{i}, Æse & Ø")) for i in range(count)]
    return envelope(items[: count // 2]).encode() + envelope(items[count // 2 :]).encode()


def test_every_item_of_every_envelope_is_found_across_read_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(legacy_soap, "_BLOCK", 97)  # items straddle every block
    data = _file(40)

    found = [(n, data[start:end], end) for n, start, end in soap_items(io.BytesIO(data), 0, 0)]

    assert [number for number, _, _ in found] == list(range(1, 41))
    assert [item_fields(item, None)["lnr"] for _, item, _ in found] == [
        f"N{i:09d}" for i in range(40)
    ]
    assert item_fields(found[3][1], "UTF-8")["navn"] == "Navn3, Æse & Ø"
    # Each offset is just after its item: reading on from one gives the rest, numbered on.
    _, _, after_ten = found[9]
    assert data[:after_ten].endswith(b"</item>")
    resumed = [
        (n, data[start:end]) for n, start, end in soap_items(io.BytesIO(data), after_ten, 10)
    ]
    assert resumed == [(n, item) for n, item, _ in found[10:]]


def test_an_empty_item_is_a_record_without_fields_and_a_cut_off_one_fails_alone() -> None:
    data = (
        envelope(['<item xsi:type="ns1:Laaner"/>', item_xml(laaner(lnr="N000000001"))]).encode()
        + b'<item xsi:type="ns1:Laaner"><lnr xsi:type="xsd:string">N0000'
    )

    found = [(n, data[start:end], end) for n, start, end in soap_items(io.BytesIO(data), 0, 0)]

    assert [number for number, _, _ in found] == [1, 2, 3]
    assert item_fields(found[0][1], None) == {}
    assert item_fields(found[1][1], None)["lnr"] == "N000000001"
    with pytest.raises(ItemError, match="not well-formed XML"):
        item_fields(found[2][1], None)
    assert found[2][2] == len(data)


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        (b'<item xsi:type="ns1:Svar"><lnr>N000000001</lnr></item>', "not a Laaner item"),
        (b"<item><lnr>N000000001</lnr><lnr>N000000002</lnr></item>", "lnr: appears twice"),
        (b"<item><navn><b>Berg</b></navn></item>", "a field holds elements"),
    ],
)
def test_an_item_that_is_no_laaner_record_is_refused_without_quoting_it(
    item: bytes, problem: str
) -> None:
    with pytest.raises(ItemError) as refused:
        item_fields(item, None)
    assert str(refused.value) == problem
