"""The published client packages, as a vendor gets them: both wheels are built, each installed
into a fresh virtual environment with nothing else, and the examples run against a live server
over mTLS; mypy checks the examples against the installed packages alone."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import (
    LIBRARY_CODES,
    OSLO,
    Registry,
    ServerThread,
    create,
    national_id,
    new_borrower,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# What a wheel may pull in: gRPC, its status details, protobuf (and what those need).
RUNTIME = {"grpcio", "grpcio-status", "protobuf", "googleapis-common-protos", "typing-extensions"}


@dataclass(frozen=True)
class Wheels:
    auth: Path
    client: Path


@dataclass(frozen=True)
class Environment:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def pip(self, *args: str) -> None:
        subprocess.run(
            [
                str(self.python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *args,
            ],
            check=True,
            timeout=600,
        )

    def distributions(self) -> set[str]:
        listed = subprocess.run(
            [str(self.python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        # Names normalised as PEP 503 does: "typing_extensions" is "typing-extensions".
        names = {re.sub(r"[-_.]+", "-", item["name"]).lower() for item in json.loads(listed)}
        return names - {"pip", "setuptools"}

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        # A clean environment: nothing from the repository's own virtualenv or PYTHONPATH.
        env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
        return subprocess.run(
            [str(self.python), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=cwd,
            env=env,
        )


def _build(package: str, outdir: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(outdir),
            str(ROOT / "clients" / package),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = outdir.glob(package.replace("-", "_") + "-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Wheels:
    outdir = tmp_path_factory.mktemp("dist")
    return Wheels(auth=_build("nlr-auth-client", outdir), client=_build("nlr-client", outdir))


def _environment(root: Path, *wheels: Path) -> Environment:
    venv.EnvBuilder(with_pip=True, clear=True).create(root)
    environment = Environment(root)
    environment.pip(*(str(wheel) for wheel in wheels))
    return environment


@pytest.fixture(scope="module")
def auth_environment(wheels: Wheels, tmp_path_factory: pytest.TempPathFactory) -> Environment:
    return _environment(tmp_path_factory.mktemp("auth-venv") / "venv", wheels.auth)


@pytest.fixture(scope="module")
def client_environment(wheels: Wheels, tmp_path_factory: pytest.TempPathFactory) -> Environment:
    return _environment(tmp_path_factory.mktemp("client-venv") / "venv", wheels.client, wheels.auth)


def test_the_auth_wheel_holds_no_registry_code(wheels: Wheels) -> None:
    names = zipfile.ZipFile(wheels.auth).namelist()

    assert [name for name in names if "registry" in name] == []
    assert "nlr/auth/v1/authenticate_pb2.py" in names
    assert "nlr/auth/client.py" in names
    assert any(name.endswith("py.typed") for name in names)
    # A control: the ILS vendors' wheel does hold it.
    assert "nlr/registry/v1/registry_service_pb2.py" in zipfile.ZipFile(wheels.client).namelist()


def test_each_wheel_installs_with_only_grpc_and_protobuf(
    auth_environment: Environment, client_environment: Environment
) -> None:
    assert auth_environment.distributions() == RUNTIME | {"nlr-auth-client"}
    assert client_environment.distributions() == RUNTIME | {"nlr-auth-client", "nlr-client"}
    missing = auth_environment.run("-c", "import nlr.registry.v1")
    assert "ModuleNotFoundError" in missing.stderr


def test_the_ebook_login_example_runs_from_the_auth_wheel(
    auth_environment: Environment,
    sqlite_server: ServerThread,
    sqlite_registry: Registry,
    pki: DevPkiPaths,
) -> None:
    create(sqlite_registry, new_borrower("N000003001", national_id=national_id()))
    sqlite_registry.stub.SetPin(
        pb.SetPinRequest(card_number="N000003001", pin="2468"), metadata=sqlite_registry.metadata
    )
    login = [
        str(EXAMPLES / "ebook_login.py"),
        "--target",
        sqlite_server.target,
        "--pki",
        str(pki.ca_cert.parent),
        "--card",
        "N000003001",
    ]

    right = auth_environment.run(*login, "--pin", "2468")
    wrong = auth_environment.run(*login, "--pin", "1357")

    assert right.returncode == 0, right.stderr
    answer = json.loads(right.stdout)
    assert (answer["card_number"], answer["home_library"], answer["affiliated_libraries"]) == (
        "N000003001",
        OSLO,
        [OSLO],
    )
    assert answer["assurance_level"] == "PIN"
    assert set(answer) == {
        "card_number",
        "age",
        "home_library",
        "affiliated_libraries",
        "assurance_level",
    }
    assert wrong.returncode == 1
    assert json.loads(wrong.stdout)["refused"] == "CREDENTIALS_INVALID"


def test_the_ils_sync_example_syncs_then_follows_the_feed_across_restarts(
    client_environment: Environment,
    sqlite_server: ServerThread,
    sqlite_registry: Registry,
    pki: DevPkiPaths,
    tmp_path: Path,
) -> None:
    for card in ("N000003011", "N000003012"):
        create(sqlite_registry, new_borrower(card))
    state = tmp_path / "oslo.json"
    sync = [
        str(EXAMPLES / "ils_sync.py"),
        "--target",
        sqlite_server.target,
        "--pki",
        str(pki.ca_cert.parent),
        "--library",
        OSLO,
        "--code",
        LIBRARY_CODES[OSLO],
        "--state",
        str(state),
    ]

    first = client_environment.run(*sync, "--max-changes", "0")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0].startswith("full sync: 2 borrowers, cursor ")
    assert set(json.loads(state.read_text())["borrowers"]) == {"N000003011", "N000003012"}

    # While the ILS is stopped: a change, a new borrower, a deletion.
    current = sqlite_registry.stub.GetBorrower(
        pb.GetBorrowerRequest(card_number="N000003011"), metadata=sqlite_registry.metadata
    ).borrower
    sqlite_registry.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(
                card_number="N000003011", etag=current.etag, email="ny@example.org"
            ),
            update_mask=FieldMask(paths=["email"]),
        ),
        metadata=sqlite_registry.metadata,
    )
    create(sqlite_registry, new_borrower("N000003013"))
    sqlite_registry.stub.DeleteBorrower(
        pb.DeleteBorrowerRequest(
            card_number="N000003012", reason=borrower_pb2.DELETION_REASON_DECEASED
        ),
        metadata=sqlite_registry.metadata,
    )

    second = client_environment.run(*sync, "--max-changes", "3")

    assert second.returncode == 0, second.stderr
    assert [line.split(": ", 1)[1] for line in second.stdout.splitlines()] == [
        "CHANGE_KIND_UPDATED N000003011",
        "CHANGE_KIND_CREATED N000003013",
        "CHANGE_KIND_DELETED N000003012",
    ]
    saved = json.loads(state.read_text())
    assert set(saved["borrowers"]) == {"N000003011", "N000003013"}
    assert saved["borrowers"]["N000003011"]["email"] == "ny@example.org"
    assert saved["cursor"] == int(second.stdout.splitlines()[-1].split()[1].rstrip(":"))


def test_mypy_accepts_the_examples_with_only_the_installed_packages(
    wheels: Wheels, tmp_path: Path
) -> None:
    # Its own environment: the wheels, and the type checker with the stubs of grpc and protobuf.
    checker = _environment(tmp_path / "venv", wheels.client, wheels.auth)
    checker.pip("mypy", "types-protobuf", "types-grpcio")
    tmp_path = tmp_path / "examples"
    tmp_path.mkdir()
    for example in EXAMPLES.glob("*.py"):
        shutil.copy(example, tmp_path / example.name)  # away from the repository's mypy config

    checked = checker.run(
        "-m",
        "mypy",
        "--strict",
        "--no-incremental",
        *sorted(p.name for p in tmp_path.glob("*.py")),
        cwd=tmp_path,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Success: no issues found in 2 source files" in checked.stdout
