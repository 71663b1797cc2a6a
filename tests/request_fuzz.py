"""Malformed and extreme requests for any RPC, made from its request type with a fixed seed."""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

FD = descriptor.FieldDescriptor
_MARKER = "\u2603MARK\u2603"  # replaced by bytes that are not UTF-8 after serialising
_NOT_UTF8 = b"\xff\xfe\xc0\xaf"
_HOSTILE_TEXT = "\x00\x07\x1b[2J\u202e\u2066evil\u2069\u200b\ufeff\r\n\t"
_INT_EXTREMES = {
    FD.TYPE_INT32: (2**31 - 1, -(2**31)),
    FD.TYPE_SINT32: (2**31 - 1, -(2**31)),
    FD.TYPE_INT64: (2**63 - 1, -(2**63)),
    FD.TYPE_SINT64: (2**63 - 1, -(2**63)),
    FD.TYPE_UINT32: (2**32 - 1, 0),
    FD.TYPE_UINT64: (2**64 - 1, 0),
}
FORGED_PAGE_TOKENS = (
    base64.urlsafe_b64encode(b"1:0:" + b"9" * 30).decode().rstrip("="),
    base64.urlsafe_b64encode(b"1:0:-" + b"9" * 20).decode().rstrip("="),
    base64.urlsafe_b64encode(b"1:-1:5").decode().rstrip("="),
    base64.urlsafe_b64encode(b"1:99999999999999999999:5").decode().rstrip("="),
    base64.urlsafe_b64encode(b"1:\xff:1").decode().rstrip("="),
    base64.urlsafe_b64encode("1:١٢:3".encode()).decode().rstrip("="),
    "not base64 !!",
    "A" * 10_000,
)


@dataclass(frozen=True)
class FuzzCase:
    """One request's bytes, and what was done to make them."""

    name: str
    payload: bytes


def fuzz_cases(message_type: Any, seed: int, *, large_fields: int = 2) -> Iterator[FuzzCase]:
    """Cases for one request type: undecodable bytes, invalid UTF-8, huge strings, control and
    bidi characters, extreme numbers, unknown enum values, thousands of mask paths, forged
    page tokens. ``large_fields`` string fields (chosen by the seed) get 1 MB values."""
    rng = random.Random(seed)
    cls = GetMessageClass(message_type)
    yield FuzzCase("empty", b"")
    for size in (1, 7, 64):
        yield FuzzCase(f"random-{size}", rng.randbytes(size))
    yield FuzzCase("truncated-length", b"\x0a\xff\xff\xff\x0f")
    yield FuzzCase("bad-wire-type", b"\x0f\x01")
    strings = list(_fields(message_type, lambda f: f.type == FD.TYPE_STRING))
    for path in strings:
        yield FuzzCase(f"not-utf8:{_name(path)}", _with_not_utf8(cls, path))
        yield FuzzCase(f"hostile:{_name(path)}", _set(cls, path, _HOSTILE_TEXT))
    for path in rng.sample(strings, min(large_fields, len(strings))):
        yield FuzzCase(f"1MB:{_name(path)}", _set(cls, path, "x" * 1_000_000))
    if strings:
        yield FuzzCase(f"5MB:{_name(strings[0])}", _set(cls, strings[0], "y" * 5_000_000))
    for path in _fields(message_type, lambda f: f.type in _INT_EXTREMES):
        for value in _INT_EXTREMES[path[-1].type]:
            yield FuzzCase(f"int {value}:{_name(path)}", _set(cls, path, value))
        if path[-1].type not in (FD.TYPE_UINT32, FD.TYPE_UINT64):
            yield FuzzCase(f"int -1:{_name(path)}", _set(cls, path, -1))
    for path in _fields(message_type, lambda f: f.type == FD.TYPE_ENUM):
        for value in (999, -7):
            yield FuzzCase(f"enum {value}:{_name(path)}", _set(cls, path, value))
    for path in _fields(
        message_type,
        lambda f: f.type == FD.TYPE_MESSAGE and f.message_type.full_name.endswith("FieldMask"),
    ):
        for count in (100, 5_000):
            paths = [f"no_such_field_{i}" for i in range(count)]
            yield FuzzCase(f"mask {count}:{_name(path)}", _set_mask(cls, path, paths))
        yield FuzzCase(f"mask long:{_name(path)}", _set_mask(cls, path, ["z" * 100_000]))
    for path in _fields(
        message_type,
        lambda f: f.type == FD.TYPE_MESSAGE and f.message_type.full_name.endswith("Timestamp"),
    ):
        for seconds, nanos in ((2**62, 0), (-(2**62), 0), (0, -5), (0, 2_000_000_000)):
            yield FuzzCase(
                f"time {seconds}/{nanos}:{_name(path)}",
                _set_time(cls, path, seconds, nanos),
            )
    for path in _fields(message_type, lambda f: f.name == "page_token"):
        for token in FORGED_PAGE_TOKENS:
            yield FuzzCase(f"token {token[:12]}:{_name(path)}", _set(cls, path, token))


Path = tuple[descriptor.FieldDescriptor, ...]


def _fields(message_type: Any, wanted: Any, depth: int = 0) -> Iterator[Path]:
    """Paths to the fields of a message (nested up to three levels) that ``wanted`` picks."""
    for field in message_type.fields:
        if wanted(field):
            yield (field,)
        if (
            field.type == FD.TYPE_MESSAGE
            and depth < 2
            and not _well_known(field)
            and not field.message_type.GetOptions().map_entry
        ):
            for inner in _fields(field.message_type, wanted, depth + 1):
                yield (field, *inner)


def _well_known(field: Any) -> bool:
    return bool(field.message_type.full_name.startswith("google.protobuf."))


def _name(path: Path) -> str:
    return ".".join(field.name for field in path)


def _leaf_parent(cls: Any, path: Path) -> tuple[Message, Message]:
    root = cls()
    message = root
    for field in path[:-1]:
        if field.is_repeated:
            message = getattr(message, field.name).add()
        else:
            message = getattr(message, field.name)
    return root, message


def _set(cls: Any, path: Path, value: Any) -> bytes:
    root, parent = _leaf_parent(cls, path)
    field = path[-1]
    if field.is_repeated:
        getattr(parent, field.name).append(value)
    else:
        setattr(parent, field.name, value)
    return bytes(root.SerializeToString())


def _with_not_utf8(cls: Any, path: Path) -> bytes:
    data = _set(cls, path, _MARKER)
    marker = _MARKER.encode()
    # The same length, so every enclosing length prefix stays right.
    return data.replace(marker, (_NOT_UTF8 * len(marker))[: len(marker)])


def _set_mask(cls: Any, path: Path, paths: list[str]) -> bytes:
    root, parent = _leaf_parent(cls, path)
    getattr(parent, path[-1].name).paths.extend(paths)
    return bytes(root.SerializeToString())


def _set_time(cls: Any, path: Path, seconds: int, nanos: int) -> bytes:
    root, parent = _leaf_parent(cls, path)
    stamp = getattr(parent, path[-1].name)
    stamp.seconds = seconds
    stamp.nanos = nanos
    return bytes(root.SerializeToString())
