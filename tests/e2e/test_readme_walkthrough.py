"""The README stays true: its grpcurl walkthrough works as pasted, its settings table is whole."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.ops import demo_data, walkthrough
from nlr_server.ops.admin.dev_setup import seed_demo_access
from nlr_server.ops.config import SETTINGS
from nlr_server.ops.dev_idporten import DEV_AUDIENCE, DEV_ISSUER, ensure_dev_idporten
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store import migrate
from nlr_server.store.database import create_store_engine
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory
from register_harness import ServerThread, make_config

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
GRPCURL = Path(sys.executable).parent / "grpcurl"


def _block(name: str) -> str:
    match = re.search(f"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", README, re.DOTALL)
    assert match, f"README has no {name} block"
    return match.group(1)


def test_readme_walkthrough_is_what_make_run_prints() -> None:
    commands = [line for line in _block("walkthrough").splitlines() if line.startswith(".venv")]

    assert commands == walkthrough.grpcurl_commands()


def test_readme_settings_table_lists_every_setting_with_its_default() -> None:
    rows = re.findall(r"^\| `(NLR_\w+)` \| (.*?) \| (.*?) \|$", _block("settings"), re.MULTILINE)

    assert [name for name, _, _ in rows] == [s.name for s in SETTINGS]
    for (_, default, description), setting in zip(rows, SETTINGS, strict=True):
        assert default == (
            f"`{setting.default}`"
            if setting.default
            else "(required)"
            if setting.default is None
            else "(empty)"
        )
        assert description == setting.description


def demo_database(
    directory: Path, pki: DevPkiPaths, keyring: Keyring, *, passwords: bool = False
) -> str:
    """A SQLite database with what `make run` puts there: demo data and access."""
    url = f"sqlite:///{directory / 'nlr.db'}"
    engine = create_store_engine(url)
    migrate.upgrade(engine)
    factory = SqlUnitOfWorkFactory(engine, NationalIdSealer(keyring))
    now = dt.datetime.now(dt.UTC)
    demo_data.seed(factory, now, password_iterations=210_000 if passwords else None)
    seed_demo_access(factory, pki, now)
    engine.dispose()
    return url


@pytest.fixture
def demo_server(
    tmp_path: Path, pki: DevPkiPaths, keyring_path: Path, keyring: Keyring
) -> Iterator[ServerThread]:
    url = demo_database(tmp_path, pki, keyring)
    running = ServerThread(make_config(pki, keyring_path, url)).start()
    yield running
    running.stop()


def test_readme_grpcurl_commands_work_as_pasted(
    demo_server: ServerThread, pki: DevPkiPaths
) -> None:
    if not GRPCURL.exists():
        pytest.fail(f"grpcurl is missing from {GRPCURL.parent}: the dev extras install it")
    outputs = []
    for command in walkthrough.grpcurl_commands():
        # Only the address and where the dev PKI lives differ from `make run`.
        pasted = command.replace(walkthrough.ADDRESS, demo_server.target)
        pasted = pasted.replace(".nlr-dev/pki", str(pki.ca_cert.parent))
        pasted = pasted.replace(".venv/bin/grpcurl", str(GRPCURL))
        result = subprocess.run(
            shlex.split(pasted), capture_output=True, text=True, timeout=30, check=False
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    services, health, own_library, other_library, changes = outputs

    assert set(services.split()) >= {
        "nlr.registry.v1.BorrowerRegistry",
        "nlr.auth.v1.Authenticate",
        "grpc.health.v1.Health",
    }
    assert json.loads(health) == {"status": "SERVING"}
    full = json.loads(own_library)["borrower"]
    assert (full["view"], full["given_name"], full["email"]) == (
        "BORROWER_VIEW_FULL",
        "Kari",
        "kari.nordmann@example.org",
    )
    feed = json.loads(changes)
    assert [c["kind"] for c in feed["changes"]] == ["CHANGE_KIND_CREATED"] * 2
    assert feed["changes"][0]["borrower"]["card_number"] == "N000000001"
    assert feed["more"] is True
    basic = json.loads(other_library)["borrower"]
    assert basic["view"] == "BORROWER_VIEW_BASIC"
    assert set(basic) == {
        "card_number",
        "given_name",
        "family_name",
        "birth_year",
        "view",
        "card_valid",
    }


@pytest.fixture
def demo_server_with_passwords(
    tmp_path: Path, pki: DevPkiPaths, keyring_path: Path, keyring: Keyring
) -> Iterator[ServerThread]:
    url = demo_database(tmp_path, pki, keyring, passwords=True)
    running = ServerThread(make_config(pki, keyring_path, url)).start()
    yield running
    running.stop()


def test_readme_selfservice_flow_works_as_pasted(
    demo_server_with_passwords: ServerThread, pki: DevPkiPaths
) -> None:
    block = _block("selfservice")
    script = "\n".join(line for line in block.splitlines() if not line.startswith("```"))
    script = script.replace("127.0.0.1:50051", demo_server_with_passwords.target)
    script = script.replace(".nlr-dev/pki", str(pki.ca_cert.parent))
    script = script.replace(".venv/bin/grpcurl", str(GRPCURL))
    script = script.replace(".venv/bin/python", sys.executable)

    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    decoder = json.JSONDecoder()
    answers, text = [], result.stdout.strip()
    while text:
        answer, end = decoder.raw_decode(text)
        answers.append(answer)
        text = text[end:].strip()
    confirmed, record, logged_out = answers
    assert len(confirmed["recovery_codes"]) == 10
    assert record["borrower"]["card_number"] == "N000000001"
    assert record["borrower"]["given_name"] == "Kari"
    assert record["totp_enabled"] is True
    assert record["libraries"] == [{"library_number": "2030100", "name": "Demo Oslo bibliotek"}]
    assert logged_out == {}


def test_readme_idporten_flow_works_as_pasted(
    tmp_path: Path, pki: DevPkiPaths, keyring_path: Path, keyring: Keyring
) -> None:
    url = demo_database(tmp_path, pki, keyring)
    dev = tmp_path / "dev"
    dev.mkdir()
    paths, _ = ensure_dev_idporten(dev)
    config = make_config(
        pki,
        keyring_path,
        url,
        idporten_issuer=DEV_ISSUER,
        idporten_audience=DEV_AUDIENCE,
        idporten_jwks=str(paths.jwks),
    )
    server = ServerThread(config).start()
    try:
        first = _block("selfservice").splitlines()[1:3]  # PORTAL and FIELD
        lines = [line for line in _block("selfservice-idporten").splitlines() if line[:3] != "```"]
        script = "\n".join([*first, *lines])
        script = script.replace("127.0.0.1:50051", server.target)
        script = script.replace(".nlr-dev/pki", str(pki.ca_cert.parent))
        script = script.replace(".venv/bin/grpcurl", str(GRPCURL))
        script = script.replace(".venv/bin/python", sys.executable)
        script = script.replace(
            "make -s idporten-token",
            f"{sys.executable} -m nlr_server.ops.admin dev-idporten-token --directory {dev}",
        )
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "NLR_ALLOW_SYNTHETIC_IDS": "true"},
        )
    finally:
        server.stop()

    assert result.returncode == 0, result.stderr
    log = json.loads(result.stdout)
    # Kari's newest entry: the ID-porten login itself (before a session named her).
    assert [(e["action"], e["outcome"]) for e in log["entries"]][:1] == [
        ("LogInWithIdPorten", "OK")
    ]


def test_dev_idporten_tokens_are_refused_without_synthetic_ids(tmp_path: Path) -> None:
    ensure_dev_idporten(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NLR_")}

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nlr_server.ops.admin",
            "dev-idporten-token",
            "--directory",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )

    assert done.returncode == 2
    assert "NLR_ALLOW_SYNTHETIC_IDS" in done.stderr
    assert done.stdout == ""
