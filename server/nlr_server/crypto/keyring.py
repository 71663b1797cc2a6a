"""The keyring: versioned secret keys per purpose, in an owner-only file outside the database."""

from __future__ import annotations

import base64
import binascii
import enum
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlr_server.crypto.private_file import PrivateFileError, read_private_file, write_private_file

KEYRING_FORMAT = "nlr-keyring/1"
KEY_LENGTH = 32

_INIT_HINT = "create one with `nlr-admin keys init` or set NLR_KEYRING"


class KeyringError(Exception):
    """The keyring file or a key in it cannot be used; the message tells the operator what to do."""


class KeyPurpose(enum.StrEnum):
    """What a key is for; every purpose has its own keys so that one leak does not unlock all."""

    NATIONAL_ID_ENCRYPTION = "national_id_encryption"
    NATIONAL_ID_INDEX = "national_id_index"
    PIN_VERIFIER = "pin_verifier"


@dataclass
class _PurposeKeys:
    active: int
    versions: dict[int, bytes] = field(default_factory=dict)


class Keyring:
    """Versioned 32-byte keys for each ``KeyPurpose``, one version of each marked active.

    New data is protected with the active version; older versions stay so that existing data
    can still be read until it has been re-encrypted and the version is retired. Changes made
    with ``rotate`` and ``retire`` reach the file only on ``save``.
    """

    def __init__(self, path: Path, keys: dict[KeyPurpose, _PurposeKeys]) -> None:
        self._path = path
        self._keys = keys

    @property
    def path(self) -> Path:
        return self._path

    def reload(self) -> None:
        """Re-reads the file in place, so everything holding this keyring sees new versions.

        If the file cannot be loaded, the keys in memory stay as they were and KeyringError
        says why.
        """
        self._keys = Keyring.load(self._path)._keys

    @classmethod
    def create(cls, path: Path) -> Keyring:
        """Create a keyring at ``path`` with version 1 of every purpose; never overwrites."""
        keys = {purpose: _PurposeKeys(active=1, versions={1: _new_key()}) for purpose in KeyPurpose}
        keyring = cls(path, keys)
        try:
            write_private_file(path, keyring._serialize(), overwrite=False)
        except FileExistsError:
            raise KeyringError(
                f"keyring file {path} already exists: refusing to overwrite it, because data "
                "encrypted under its keys would become unreadable"
            ) from None
        except OSError as error:
            raise KeyringError(
                f"cannot create keyring file {path}: {error.strerror or error}"
            ) from None
        return keyring

    @classmethod
    def load(cls, path: Path) -> Keyring:
        """Read and check the keyring at ``path``."""
        try:
            content = read_private_file(path, "keyring")
        except PrivateFileError as error:
            hint = "" if "accessible to group" in str(error) else f": {_INIT_HINT}"
            raise KeyringError(f"{error}{hint}") from None
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            raise KeyringError(f"keyring file {path} is not UTF-8 text") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            # Only the position is reported: the message must not quote key material.
            raise KeyringError(
                f"keyring file {path} is not valid JSON (line {error.lineno}, column {error.colno})"
            ) from None
        return cls(path, _parse_document(path, document))

    def active_version(self, purpose: KeyPurpose) -> int:
        return self._keys[purpose].active

    def key(self, purpose: KeyPurpose, version: int) -> bytes:
        """The key of ``purpose`` at ``version``; ``KeyringError`` if the keyring lacks it."""
        try:
            return self._keys[purpose].versions[version]
        except KeyError:
            raise KeyringError(
                f"keyring file {self._path} has no version {version} of the {purpose} key"
            ) from None

    def active_key(self, purpose: KeyPurpose) -> tuple[int, bytes]:
        version = self.active_version(purpose)
        return version, self.key(purpose, version)

    def versions(self, purpose: KeyPurpose) -> list[int]:
        return sorted(self._keys[purpose].versions)

    def rotate(self, purpose: KeyPurpose) -> int:
        """Add a new key version for ``purpose``, make it active and return its number."""
        keys = self._keys[purpose]
        version = max(keys.versions) + 1
        keys.versions[version] = _new_key()
        keys.active = version
        return version

    def retire(self, purpose: KeyPurpose, version: int) -> None:
        """Remove an old version; only do so once no stored data still uses it."""
        keys = self._keys[purpose]
        if version == keys.active:
            raise KeyringError(
                f"version {version} of the {purpose} key is active: rotate to a new version "
                "before retiring it"
            )
        if version not in keys.versions:
            raise KeyringError(
                f"keyring file {self._path} has no version {version} of the {purpose} key"
            )
        del keys.versions[version]

    def save(self) -> None:
        """Write the keyring back to its file, atomically and owner-only."""
        try:
            write_private_file(self._path, self._serialize())
        except OSError as error:
            raise KeyringError(
                f"cannot write keyring file {self._path}: {error.strerror or error}"
            ) from None

    def __repr__(self) -> str:
        active = ", ".join(f"{purpose}={keys.active}" for purpose, keys in self._keys.items())
        return f"Keyring(path={str(self._path)!r}, active: {active})"

    def _serialize(self) -> bytes:
        document = {
            "format": KEYRING_FORMAT,
            "keys": {
                str(purpose): {
                    "active": keys.active,
                    "versions": {
                        str(version): base64.b64encode(key).decode("ascii")
                        for version, key in sorted(keys.versions.items())
                    },
                }
                for purpose, keys in self._keys.items()
            },
        }
        return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _new_key() -> bytes:
    return secrets.token_bytes(KEY_LENGTH)


def _parse_document(path: Path, document: Any) -> dict[KeyPurpose, _PurposeKeys]:
    def malformed(detail: str) -> KeyringError:
        return KeyringError(f"keyring file {path} is malformed: {detail}")

    if not isinstance(document, dict):
        raise malformed("the top level is not a JSON object")
    if document.get("format") != KEYRING_FORMAT:
        raise KeyringError(
            f"keyring file {path} is not in the {KEYRING_FORMAT} format "
            '(its "format" field is missing or different)'
        )
    sections = document.get("keys")
    if not isinstance(sections, dict):
        raise malformed('"keys" is missing or not an object')
    known = {str(purpose) for purpose in KeyPurpose}
    unknown = sorted(str(name) for name in sections if name not in known)
    if unknown:
        # Refused rather than ignored: a later save would silently drop those keys.
        raise malformed(f"unknown key purposes {', '.join(unknown)}")
    return {
        purpose: _parse_purpose(path, purpose, sections.get(str(purpose))) for purpose in KeyPurpose
    }


def _parse_purpose(path: Path, purpose: KeyPurpose, section: Any) -> _PurposeKeys:
    def malformed(detail: str) -> KeyringError:
        return KeyringError(f"keyring file {path} is malformed: the {purpose} key {detail}")

    if section is None:
        raise KeyringError(f"keyring file {path} has no {purpose} key: {_INIT_HINT}")
    if not isinstance(section, dict):
        raise malformed("entry is not an object")
    active = section.get("active")
    if not isinstance(active, int) or isinstance(active, bool):
        raise malformed('has no integer "active" version')
    raw_versions = section.get("versions")
    if not isinstance(raw_versions, dict) or not raw_versions:
        raise malformed('has no "versions"')
    versions: dict[int, bytes] = {}
    for name, encoded in raw_versions.items():
        if not (name.isascii() and name.isdigit() and str(int(name)) == name and int(name) > 0):
            raise malformed(f"has a version named {name!r}, which is not a positive integer")
        version = int(name)
        if not isinstance(encoded, str):
            raise malformed(f"version {version} is not a base64 string")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise malformed(f"version {version} is not valid base64") from None
        if len(key) != KEY_LENGTH:
            raise malformed(f"version {version} is {len(key)} bytes long, not {KEY_LENGTH}")
        versions[version] = key
    if active not in versions:
        raise malformed(f"names version {active} as active, but has no such version")
    return _PurposeKeys(active=active, versions=versions)
