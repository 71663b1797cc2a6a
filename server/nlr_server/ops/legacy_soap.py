"""The legacy register's SOAP answers as a stream of ``Laaner`` records.

The legacy register answered SOAP 1.1 RPC/encoded: a ``hentResponse`` or ``soekEndretResponse``
whose ``return`` (``ns1:Resultat``) holds ``respons_poster`` (``ns1:LaanerListe``), a list of
``item`` elements of type ``ns1:Laaner``, each field a child element with an ``xsi:type``, an
empty field an empty element. A file may hold one envelope or several, one after the other.

The work is split so that millions of records stream through in parallel:

- ``soap_items`` (the reading process) finds each ``<item ...>...</item>`` in the byte stream by
  its tags, in blocks of a MiB, never holding more than a block and one item: a few µs per
  item. It yields each item's number (1, 2, ... across all envelopes) and where it is: the byte
  offset of its start, and the offset after it, where a resumed import starts reading again.
- ``item_fields`` (a worker process, which reads the item from the file at its offset) parses
  one item with expat and returns its fields. Each item is parsed on its own, so one that is
  not well-formed rejects only itself. Prefixes are ignored (``ns1:lnr`` is ``lnr``), as the
  items are parsed without their envelope.

Parsing the whole envelope in the reading process (ElementTree's iterparse) costs some 40 µs per
item on one core, a third of a 5-million-record import's time budget; split, that parse runs in
every worker at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO
from xml.parsers import expat

_BLOCK = 1 << 20
_ITEM_START = re.compile(rb"<item[\s/>]")
_ITEM_END = re.compile(rb"</item\s*>")
_DECLARED_ENCODING = re.compile(rb"""<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_LAANER = "Laaner"


def declared_encoding(head: bytes) -> str | None:
    """The encoding an XML declaration at the start of ``head`` names, if any."""
    match = _DECLARED_ENCODING.match(head.lstrip(b"\xef\xbb\xbf \t\r\n"))
    return match.group(1).decode("ascii") if match else None


def soap_items(source: IO[bytes], offset: int, number: int) -> Iterator[tuple[int, int, int]]:
    """Each ``item`` element after byte ``offset`` of ``source``: (its number, counting on from
    ``number``, the offset of its first byte, the offset after it). An item the file ends
    inside runs to the end of the file (and fails to parse). Only offsets: a worker reads the
    item's bytes from the file itself, so they never pass through this process's pipes."""
    source.seek(offset)
    buffer = b""
    base = offset  # the file offset of buffer[0]
    position = 0
    at_end = False
    while True:
        start = _ITEM_START.search(buffer, position)
        end = _item_end(buffer, start.start()) if start is not None else None
        if start is not None and end is not None:
            number += 1
            yield number, base + start.start(), base + end
            position = end
            continue
        if at_end:
            if start is not None:
                number += 1
                yield number, base + start.start(), base + len(buffer)
            return
        # Keep what may still be (the start of) an item; drop what was read past.
        keep = start.start() if start is not None else max(position, len(buffer) - 16)
        base += keep
        buffer = buffer[keep:]
        position = 0
        block = source.read(_BLOCK)
        if not block:
            at_end = True
        buffer += block


def _item_end(buffer: bytes, start: int) -> int | None:
    """The offset after the item that starts at ``start``, or None if the buffer ends first."""
    tag_end = buffer.find(b">", start)
    if tag_end < 0:
        return None
    if buffer[tag_end - 1 : tag_end] == b"/":
        return tag_end + 1
    closing = _ITEM_END.search(buffer, tag_end)
    return closing.end() if closing is not None else None


class ItemError(ValueError):
    """An item that is no Laaner record; the message quotes nothing of it."""


def item_fields(item: bytes, encoding: str | None) -> dict[str, str]:
    """The fields of one ``item`` element: each child element's local name and its text (an
    empty element, or one with ``xsi:nil``, is empty)."""
    fields: dict[str, str] = {}
    texts: list[str] = []
    depth = 0
    problem: list[str] = []

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth == 1:
            kind = _local(attributes.get("xsi:type", _LAANER))
            if kind != _LAANER:
                problem.append("not a Laaner item")
        elif depth == 2:
            texts.clear()
        elif not problem:
            problem.append("a field holds elements")

    def end(name: str) -> None:
        nonlocal depth
        if depth == 2:
            field = _local(name)
            if field in fields and not problem:
                problem.append(f"{field}: appears twice")
            fields[field] = "".join(texts)
        depth -= 1

    def characters(data: str) -> None:
        if depth == 2:
            texts.append(data)

    parser = expat.ParserCreate(encoding)
    parser.buffer_text = True
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    try:
        parser.Parse(item, True)
    except expat.ExpatError:
        # Only the position: the message must not quote the record.
        raise ItemError(
            f"not well-formed XML (line {parser.ErrorLineNumber} of the item, "
            f"column {parser.ErrorColumnNumber})"
        ) from None
    if problem:
        raise ItemError(problem[0])
    return fields


def _local(name: str) -> str:
    return name.rpartition(":")[2]
