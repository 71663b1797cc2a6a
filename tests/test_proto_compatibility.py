"""`make lint` runs `buf breaking` against the last release, which rejects what breaks a client.

The commands are taken from `make -n lint` itself, so these tests check the gate CI runs, not a
copy of it. buf (PyPI `buf-bin`) is a dev dependency: without it these tests fail, never skip.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
AUTH_PROTO = "nlr/auth/v1/authenticate.proto"
REGISTRY_PROTO = "nlr/registry/v1/registry_service.proto"


def make_dry_run(target: str, *variables: str) -> list[str]:
    """The lines of the commands `make TARGET` would run, without running them."""
    # A parent make's flags (jobserver descriptors) mean nothing to this one.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", target, *variables],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()


def buf_commands(subcommand: str, *variables: str) -> list[list[str]]:
    """The `buf SUBCOMMAND ...` lines of `make lint`."""
    commands = [
        shlex.split(line)
        for line in make_dry_run("lint", *variables)
        if line.partition(" ")[0].endswith("/buf")
    ]
    return [command for command in commands if command[1:2] == [subcommand]]


def lint_breaking_command() -> list[str]:
    """The one `buf breaking proto --against proto/releases/vX.Y.Z.binpb` that `make lint` runs."""
    commands = buf_commands("breaking")
    assert len(commands) == 1, f"make lint should run buf breaking once, runs {commands}"
    command = commands[0]
    executable = ROOT / command[0]
    if not executable.is_file():
        pytest.fail(
            f"{command[0]} not found: buf is a dev dependency (buf-bin in pyproject.toml); "
            "install it with `.venv/bin/pip install -e '.[dev]'`"
        )
    assert command[2:4] == ["proto", "--against"], command
    return [str(executable), *command[1:]]


def run_breaking(proto_dir: Path) -> subprocess.CompletedProcess[str]:
    """make lint's breaking check, with proto_dir in place of proto/ and the same baseline."""
    command = lint_breaking_command()
    command[2] = str(proto_dir)
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def edited_copy(tmp_path: Path, edit: Callable[[Path], None]) -> Path:
    """A copy of proto/ (buf.yaml included, release snapshots not) with one edit applied."""
    copy = tmp_path / "proto"
    shutil.copytree(PROTO, copy, ignore=shutil.ignore_patterns("releases", "__pycache__"))
    edit(copy)
    return copy


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    # If the protos change so that an edit no longer applies, say so rather than test nothing.
    assert text.count(old) == 1, f"{old!r} is not in {path.name} exactly once"
    path.write_text(text.replace(old, new))


def change_field_number(root: Path) -> None:
    replace_once(root / AUTH_PROTO, "  string pin = 2;", "  string pin = 4;")


def remove_field(root: Path) -> None:
    replace_once(root / AUTH_PROTO, "  string password = 2;\n", "")


def change_field_type(root: Path) -> None:
    replace_once(
        root / AUTH_PROTO,
        "9 digits.\n  string card_number = 1;\n\n  // Age in whole years today.",
        "9 digits.\n  int64 card_number = 1;\n\n  // Age in whole years today.",
    )


def remove_rpc(root: Path) -> None:
    replace_once(
        root / REGISTRY_PROTO,
        "  rpc WatchChanges(WatchChangesRequest) returns (stream WatchChangesResponse);\n",
        "",
    )


def rename_field(root: Path) -> None:
    replace_once(root / AUTH_PROTO, "  string pin = 2;", "  string pin_code = 2;")


def move_enum_to_another_file(root: Path) -> None:
    """Same package, same wire: only the Python module a vendor imports it from changes."""
    path = root / AUTH_PROTO
    text = path.read_text()
    start = text.index("// How strongly a borrower was authenticated.\nenum AssuranceLevel {")
    end = text.index("}\n", start) + 2
    (path.parent / "assurance.proto").write_text(
        'syntax = "proto3";\n\npackage nlr.auth.v1;\n\n' + text[start:end]
    )
    path.write_text(text[:start] + text[end:])
    replace_once(
        path,
        "package nlr.auth.v1;\n",
        'package nlr.auth.v1;\n\nimport "nlr/auth/v1/assurance.proto";\n',
    )


def add_optional_field(root: Path) -> None:
    replace_once(
        root / AUTH_PROTO,
        "  AssuranceLevel assurance_level = 5;\n",
        "  AssuranceLevel assurance_level = 5;\n\n"
        "  // When the card expires, if it does.\n"
        "  optional string card_expiry_date = 6;\n",
    )


def add_rpc(root: Path) -> None:
    replace_once(
        root / REGISTRY_PROTO,
        "  rpc WatchChanges(WatchChangesRequest) returns (stream WatchChangesResponse);\n",
        "  rpc WatchChanges(WatchChangesRequest) returns (stream WatchChangesResponse);\n\n"
        "  // Counts the acting library's borrowers.\n"
        "  rpc CountBorrowers(CountBorrowersRequest) returns (CountBorrowersResponse);\n",
    )
    path = root / REGISTRY_PROTO
    path.write_text(
        path.read_text()
        + "\n// Request of CountBorrowers.\nmessage CountBorrowersRequest {}\n"
        + "\n// Response of CountBorrowers.\nmessage CountBorrowersResponse {\n"
        + "  // How many borrowers are affiliated with the acting library.\n"
        + "  int64 count = 1;\n}\n"
    )


def test_make_lint_runs_buf_lint_and_buf_breaking_against_the_newest_release() -> None:
    assert buf_commands("lint") == [[".venv/bin/buf", "lint", "proto"]]
    command = lint_breaking_command()
    baseline = Path(command[4])
    releases = sorted(
        (ROOT / "proto/releases").glob("v*.binpb"),
        key=lambda path: tuple(int(part) for part in path.stem[1:].split(".")),
    )

    assert (ROOT / "proto/releases/v1.0.0.binpb") in releases, "the API v1 release is missing"
    assert ROOT / baseline == releases[-1]


def test_the_newest_release_is_found_by_version_not_by_name(tmp_path: Path) -> None:
    for version in ["0.9.9", "1.2.3", "1.9.0", "1.10.0"]:
        (tmp_path / f"v{version}.binpb").touch()

    (command,) = buf_commands("breaking", f"PROTO_RELEASES={tmp_path}")

    assert command[-2:] == ["--against", f"{tmp_path}/v1.10.0.binpb"]


def test_the_current_protos_are_compatible_with_the_last_release() -> None:
    result = subprocess.run(
        lint_breaking_command(), cwd=ROOT, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(
            change_field_number,
            'Previously present field "2" with name "pin" on message "VerifyPinRequest" '
            "was deleted.",
            id="field number changed",
        ),
        pytest.param(
            remove_field,
            'Previously present field "2" with name "password" on message '
            '"VerifyPasswordRequest" was deleted.',
            id="field removed",
        ),
        pytest.param(
            change_field_type,
            'Field "1" with name "card_number" on message "AuthenticatedBorrower" changed type '
            'from "string" to "int64".',
            id="field type changed",
        ),
        pytest.param(
            remove_rpc,
            'Previously present RPC "WatchChanges" on service "BorrowerRegistry" was deleted.',
            id="rpc removed",
        ),
        pytest.param(
            rename_field,
            'Field "2" on message "VerifyPinRequest" changed name from "pin" to "pin_code".',
            id="field renamed",
        ),
        pytest.param(
            move_enum_to_another_file,
            'Previously present enum "AssuranceLevel" was deleted from file.',
            id="enum moved to another file",
        ),
    ],
)
def test_a_breaking_change_is_rejected(
    tmp_path: Path, edit: Callable[[Path], None], message: str
) -> None:
    result = run_breaking(edited_copy(tmp_path, edit))

    assert result.returncode != 0, "buf breaking accepted a breaking change"
    assert message in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(add_optional_field, id="new optional field"),
        pytest.param(add_rpc, id="new rpc"),
    ],
)
def test_an_additive_change_is_accepted(tmp_path: Path, edit: Callable[[Path], None]) -> None:
    result = run_breaking(edited_copy(tmp_path, edit))

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
