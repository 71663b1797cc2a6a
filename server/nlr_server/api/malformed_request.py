"""Requests whose bytes do not parse: which field is at fault, without quoting what it holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor, empty_pb2
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from nlr_server.domain.errors import FieldViolation

_LENGTH_DELIMITED = 2
# A request nests a few levels at most; deeper bytes are judged as a whole.
_MAX_DEPTH = 8


@dataclass(frozen=True)
class MalformedRequest:
    """Stands in for a request that did not parse, so the call is still admitted and audited
    and then answered INVALID_ARGUMENT with the fields at fault."""

    message_name: str
    violations: list[FieldViolation]


def tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A request deserializer that answers MalformedRequest instead of raising."""
    if deserializer is None:
        return None
    message_type: type[Message] | None = getattr(deserializer, "__self__", None)

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:
            if message_type is None:
                return MalformedRequest("request", [_whole("request")])
            name = message_type.DESCRIPTOR.name
            return MalformedRequest(name, find_violations(message_type.DESCRIPTOR, data))

    return deserialize


def find_violations(message: Any, data: bytes) -> list[FieldViolation]:
    """The fields of ``data`` that make it fail to parse as ``message``: strings that are not
    UTF-8, and nested messages whose bytes do not parse; the whole request if that is all
    that can be said."""
    found = _walk(message, data, "", 0)
    return found or [_whole("request")]


def _walk(message: Any, data: bytes, prefix: str, depth: int) -> list[FieldViolation] | None:
    """None when the bytes are not even a well-formed message."""
    try:
        fields = UnknownFieldSet(empty_pb2.Empty.FromString(data))
    except Exception:
        return None
    found: list[FieldViolation] = []
    seen: dict[int, int] = {}
    for item in iter(fields):  # by __getitem__: its stubs declare no __iter__
        field = message.fields_by_number.get(item.field_number)
        if field is None or item.wire_type != _LENGTH_DELIMITED:
            continue
        index = seen.get(item.field_number, 0)
        seen[item.field_number] = index + 1
        path = prefix + field.name
        if _is_repeated(field):
            path += f"[{index}]"
        if field.type == descriptor.FieldDescriptor.TYPE_STRING:
            try:
                bytes(item.data).decode("utf-8")
            except UnicodeDecodeError:
                found.append(FieldViolation(path, "is not valid UTF-8"))
        elif field.type == descriptor.FieldDescriptor.TYPE_MESSAGE and field.message_type:
            inner = (
                _walk(field.message_type, bytes(item.data), path + ".", depth + 1)
                if depth < _MAX_DEPTH
                else None
            )
            if inner is None:
                found.append(_whole(path))
            else:
                found.extend(inner)
    return found


def _is_repeated(field: descriptor.FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _whole(path: str) -> FieldViolation:
    return FieldViolation(path, "does not parse as a protocol buffer message of its type")
