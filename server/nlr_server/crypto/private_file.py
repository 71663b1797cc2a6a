"""Atomic file writes whose permissions are fixed at creation, so a secret is never exposed."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

PRIVATE_FILE_MODE = 0o600


class PrivateFileError(Exception):
    """A secret's file cannot be used: missing, not a regular file, readable by others or
    unreadable. The message names the file and what to do, never its content."""


def read_private_file(path: Path, what: str) -> bytes:
    """The content of ``path``, a file holding ``what`` (e.g. "keyring"), refused when its group
    or others have any access to it."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise PrivateFileError(f"{what} file {path} not found") from None
    except OSError as error:
        raise PrivateFileError(
            f"cannot read {what} file {path}: {error.strerror or error}"
        ) from None
    if not stat.S_ISREG(status.st_mode):
        raise PrivateFileError(f"{what} path {path} is not a regular file")
    if status.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PrivateFileError(
            f"{what} file {path} is accessible to group or others "
            f"(mode {stat.S_IMODE(status.st_mode):04o}): run `chmod 600 {path}`"
        )
    try:
        return path.read_bytes()
    except OSError as error:
        raise PrivateFileError(
            f"cannot read {what} file {path}: {error.strerror or error}"
        ) from None


def write_file_atomically(path: Path, data: bytes, *, mode: int, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one.

    The file is written to a temporary name in the same directory (so the final rename stays on
    one file system) and created with ``mode`` from the start: the process umask can only narrow
    it. With ``overwrite=False`` an existing ``path`` is left alone and ``FileExistsError`` is
    raised; the check and the publish are one atomic ``link``, so two writers cannot both win.
    """
    directory = path.parent
    temporary = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            # Without fsync a crash right after the rename can leave an empty file behind.
            os.fsync(stream.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    _fsync_directory(directory)


def write_private_file(path: Path, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` atomically to ``path``, readable and writable by its owner only (0600)."""
    write_file_atomically(path, data, mode=PRIVATE_FILE_MODE, overwrite=overwrite)


def _fsync_directory(directory: Path) -> None:
    # The rename itself is only durable once the directory entry has reached the disk.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
