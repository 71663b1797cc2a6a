"""Legacy ``Laaner`` records written exactly as the legacy register answered them.

The SOAP envelopes copy the answers captured from the legacy register's test endpoint (Koha's
t/NorwegianPatronDB.t): SOAP 1.1 RPC/encoded, the ``ns1`` namespace ``http://lanekortet.no``,
every field an element with ``xsi:type="xsd:string"``, an empty field an empty element, and
every field present in the Laaner's order. The same records as JSON Lines keep the legacy
field names and values as they are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from nlr_server.ops.legacy_export import LEGACY_FIELDS

_ENVELOPE_START = """<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope
    xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:ns1="http://lanekortet.no"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/"
    SOAP-ENV:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">
  <SOAP-ENV:Body>
    <ns1:{method}Response>
      <return xsi:type="ns1:Resultat">
        <status xsi:type="xsd:boolean">true</status>
        <melding xsi:type="xsd:string">OK</melding>
        <antall_treff xsi:type="xsd:int">{count}</antall_treff>
        <antall_poster_returnert xsi:type="xsd:int">{count}</antall_poster_returnert>
        <neste_indeks xsi:type="xsd:int">0</neste_indeks>
        <respons_poster SOAP-ENC:arrayType="ns1:Laaner[{count}]" xsi:type="ns1:LaanerListe">
"""
_ENVELOPE_END = """        </respons_poster>
        <server_tid xsi:type="xsd:string">2014-05-16T14:44:44</server_tid>
      </return>
    </ns1:{method}Response>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>
"""


def laaner(**values: str) -> dict[str, str]:
    """A Laaner with every field, empty unless given."""
    unknown = set(values) - set(LEGACY_FIELDS)
    assert not unknown, f"not Laaner fields: {unknown}"
    return {field: values.get(field, "") for field in LEGACY_FIELDS}


def item_xml(record: Mapping[str, str]) -> str:
    lines = ['          <item xsi:type="ns1:Laaner">\n']
    for field, value in record.items():
        if value:
            lines.append(f'            <{field} xsi:type="xsd:string">{escape(value)}</{field}>\n')
        else:
            lines.append(f'            <{field} xsi:type="xsd:string"/>\n')
    lines.append("          </item>\n")
    return "".join(lines)


def envelope(items: Sequence[str], method: str = "soekEndret") -> str:
    """One SOAP answer holding ``items`` (each an item's XML, see item_xml)."""
    return (
        _ENVELOPE_START.format(method=method, count=len(items))
        + "".join(items)
        + _ENVELOPE_END.format(method=method)
    )


def write_soap(path: Path, envelopes: Sequence[str]) -> Path:
    """A file of one or more SOAP answers, one after the other."""
    path.write_text("".join(envelopes), encoding="utf-8")
    return path


def write_json_lines(path: Path, records: Sequence[Mapping[str, str] | str]) -> Path:
    """One JSON object per line (a string is written as it is, e.g. a broken line)."""
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            text = record if isinstance(record, str) else json.dumps(record, ensure_ascii=False)
            out.write(text + "\n")
    return path
