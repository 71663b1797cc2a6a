"""`nlr-admin import` of the legacy register's own records: its SOAP XML and JSON Lines with its
field names and values, and every borrower's PIN carried over under the legacy shared key."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import inspect, text

from admin_runner import Admin, admin_environment
from legacy_export_fixture import national_id
from legacy_soap_fixture import envelope, item_xml, laaner, write_json_lines, write_soap
from nlr.auth.v1 import authenticate_pb2, authenticate_pb2_grpc
from nlr.registry.v1 import borrower_pb2
from nlr_server.crypto.legacy_pin import LegacyPins
from nlr_server.store.database import create_store_engine
from register_harness import (
    BERGEN,
    OSLO,
    Registry,
    ServerThread,
    client_channel,
    get,
)

FUTURE = (dt.date.today() + dt.timedelta(days=200)).isoformat()
UNKNOWN_LIBRARY = "2999900"
PINS = {1: "4711", 2: "12345678"}
# The captured answer's own pin: not hex, so it decrypts under no key.
CAPTURED_BAD_PIN = "g345abc123dab567abc78900abc123ab"


def _card(serial: int) -> str:
    return f"N{200_000_000 + serial:09d}"


def _birth(serial: int) -> str:
    return (dt.date(1940, 1, 1) + dt.timedelta(days=serial)).isoformat()


def _records(key: LegacyPins, other_key: LegacyPins) -> list[dict[str, str] | None]:
    """Eight records shaped as the captured answers; None is one broken in transit."""
    common = {"hjemmebibliotek": OSLO, "opprettet_av": OSLO, "sist_endret_av": OSLO}
    return [
        # 1: every field filled, as a library that kept its records well would have them.
        laaner(
            lnr=_card(1),
            navn="Hansen, Hanne",
            p_adresse1="Storgata 1",
            p_adresse2="H0101",
            p_postnr="8015",
            p_sted="BODØ",
            p_land="no",
            p_sjekk="1",
            m_adresse1="Hybelveien 2",
            m_postnr="7030",
            m_sted="TRONDHEIM",
            m_land="NO",
            m_sjekk="0",
            m_gyldig_til=FUTURE,
            tlf_hjemme="22334455",
            tlf_jobb="73509900",
            tlf_mobil="91234567",
            epost="hanne@example.no",
            epost_sjekk="1",
            prim_kontakt="41234567",
            fdato=_birth(1),
            fnr_hash=national_id(1),
            kjonn="F",
            pin=key.encrypt(PINS[1]),
            feide="1",
            opprettet="2014-04-28T15:20:38",
            sist_endret="2014-05-13T11:01:33",
            gyldig_til="2030-12-31",
            folkeregsjekk_dato="2024-02-29",
            **common | {"sist_endret_av": BERGEN},
        ),
        # 2: as the captured Enger record: a country alone on the temporary address, empty
        # dates as 0000-00-00, a creation date without a time, an 8-digit PIN, a password.
        laaner(
            lnr=_card(2),
            navn="Enger, Magnus",
            p_adresse1="Svarthammarveien 6",
            p_postnr="8015",
            p_sted="Bodø",
            p_land="no",
            p_sjekk="0",
            m_land="no",
            m_sjekk="0",
            m_gyldig_til="0000-00-00",
            tlf_hjemme="95158548",
            epost="magnus@example.no",
            fdato=_birth(2),
            fnr_hash=national_id(2),
            kjonn="M",
            pin=key.encrypt(PINS[2]).upper(),
            passord="legacy-secret",
            feide="0",
            opprettet="2005-10-20",
            folkeregsjekk_dato="0000-00-00",
            **common,
        ),
        # 3: as the captured Hansen record: a registered address of a town alone, and the
        # captured answer's pin, which is not hex.
        laaner(
            lnr=_card(3),
            navn="Berg, Siri",
            p_sted="BØDØ",
            p_land="no",
            p_sjekk="0",
            fdato="0000-00-00",
            fnr_hash=national_id(3),
            pin=CAPTURED_BAD_PIN,
            **common,
        ),
        # 4: kvinne as K, a card past its last day, a temporary address to check, a PIN too
        # short to be one.
        laaner(
            lnr=_card(4),
            navn="Dahl, Åse",
            m_adresse1="Hytteveien 3",
            m_postnr="3580",
            m_sted="Geilo",
            m_sjekk="1",
            m_gyldig_til=FUTURE,
            fnr_hash=national_id(4),
            kjonn="K",
            pin=key.encrypt("12"),
            gyldig_til="2020-01-31",
            **common,
        ),
        # 5: a national id with a wrong check digit: rejected.
        laaner(
            lnr=_card(5),
            navn="Lie, Ola",
            fnr_hash=national_id(5)[:-1] + str((int(national_id(5)[-1]) + 1) % 10),
            **common,
        ),
        # 6: broken in transit.
        None,
        # 7: a PIN under another key.
        laaner(
            lnr=_card(7),
            navn="Moe, Per",
            fnr_hash=national_id(7),
            pin=other_key.encrypt("4711"),
            **common,
        ),
        # 8: a home library the register does not have: rejected.
        laaner(
            lnr=_card(8),
            navn="Nilsen, Kari",
            fnr_hash=national_id(8),
            **common | {"hjemmebibliotek": UNKNOWN_LIBRARY},
        ),
    ]


def _soap_file(path: Path, records: list[dict[str, str] | None]) -> Path:
    items = [
        item_xml(record)
        if record is not None
        else '          <item xsi:type="ns1:Laaner"><lnr>N2</lnr><navn>Berg, Per</nav></item>\n'
        for record in records
    ]
    # Two answers in one file, as two calls to the legacy register give them.
    return write_soap(path, [envelope(items[:3]), envelope(items[3:], method="hent")])


def _json_file(path: Path, records: list[dict[str, str] | None]) -> Path:
    return write_json_lines(path, [r if r is not None else '{"lnr": "N2' for r in records])


def _key_file(path: Path, key: bytes, *, as_hex: bool) -> Path:
    path.write_bytes(key.hex().encode() + b"\n" if as_hex else key)
    path.chmod(0o600)
    return path


def _admin(url: str, keyring_path: Path) -> Admin:
    return Admin(
        admin_environment(
            NLR_DATABASE_URL=url, NLR_KEYRING=str(keyring_path), NLR_OPERATOR="kari.drift"
        )
    )


def _entries(path: Path, key: str) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [entry[key] for entry in entries] == sorted(entry[key] for entry in entries)
    return entries


def _expected_entries(key: str, broken: str) -> list[dict[str, Any]]:
    left_out = "(the registered address is left out)"
    return [
        {key: 3, "reason": f"p_adresse1: must have 1 to 3 address lines {left_out}"}
        | {"imported": True},
        {key: 3, "reason": f"p_postnr: is required {left_out}", "imported": True},
        {
            key: 3,
            "reason": "pin: is not a legacy encrypted PIN (32 hex digits) (imported without a PIN)",
            "imported": True,
        },
        {
            key: 4,
            "reason": "pin: does not decrypt to a PIN of 4 to 8 digits (imported without a PIN)",
            "imported": True,
        },
        {key: 5, "reason": "fnr_hash: must be 11 digits with valid check digits"},
        {key: 6, "reason": broken},
        {
            key: 7,
            "reason": "pin: does not decrypt under the legacy key (bad padding) (imported "
            "without a PIN)",
            "imported": True,
        },
        {key: 8, "reason": "hjemmebibliotek: no such library in the register"},
    ]


@pytest.fixture
def keys() -> tuple[bytes, bytes]:
    """The legacy shared key, made here, and another one."""
    return secrets.token_bytes(16), secrets.token_bytes(16)


@pytest.fixture
def authenticate(server: ServerThread, pki: Any) -> Any:
    with client_channel(server.target, pki, cert=pki.auth_cert, key=pki.auth_key) as channel:
        yield authenticate_pb2_grpc.AuthenticateStub(channel)


@pytest.mark.parametrize("file_format", ["soap", "jsonl"])
def test_legacy_records_come_in_whole_and_every_borrower_keeps_their_pin(
    file_format: str,
    registry: Registry,
    authenticate: Any,
    prepared_database: str,
    keyring_path: Path,
    tmp_path: Path,
    keys: tuple[bytes, bytes],
) -> None:
    key, other = keys
    records = _records(LegacyPins(key), LegacyPins(other))
    if file_format == "soap":
        export = _soap_file(tmp_path / "laaner.xml", records)
        number, broken = "item", "not well-formed XML (line 1 of the item, column 58)"
    else:
        export = _json_file(tmp_path / "laaner.jsonl", records)
        number, broken = "line", "not valid JSON"
    key_file = _key_file(tmp_path / "legacy.key", key, as_hex=file_format == "soap")
    admin = _admin(prepared_database, keyring_path)
    options = ["--legacy-pin-key-file", str(key_file), "--no-progress"]

    summary = admin.json("import", str(export), "--allow-synthetic-ids", "--workers", "2", *options)

    assert {k: summary[k] for k in ("format", "imported", "rejected", "imported_with_notices")} == {
        "format": file_format,
        "imported": 5,
        "rejected": 3,
        "imported_with_notices": 3,
    }
    assert (summary["pins_carried_over"], summary["pins_not_decrypted"]) == (2, 3)
    assert summary["pins_skipped_without_key"] == 0
    assert (summary["feide_flagged"], summary["passwords_not_carried_over"]) == (1, 1)
    rejects = Path(summary["rejects_file"])
    assert _entries(rejects, number) == _expected_entries(number, broken)

    first = get(registry, card_number=_card(1))
    assert first.view == borrower_pb2.BORROWER_VIEW_FULL
    assert (first.family_name, first.given_name, first.sex) == (
        "Hansen",
        "Hanne",
        borrower_pb2.SEX_FEMALE,
    )
    assert first.birth_date == _birth(1)
    address = first.registered_address
    assert (list(address.lines), address.postal_code, address.city, address.country_code) == (
        ["Storgata 1", "H0101"],
        "8015",
        "BODØ",
        "NO",
    )
    assert first.registered_address_should_be_checked
    temporary = first.temporary_address
    assert (list(temporary.address.lines), temporary.address.city, temporary.valid_until) == (
        ["Hybelveien 2"],
        "TRONDHEIM",
        FUTURE,
    )
    assert not first.temporary_address_should_be_checked
    assert (first.home_phone, first.work_phone, first.mobile_phone) == (
        "+4722334455",
        "+4773509900",
        "+4791234567",
    )
    assert first.primary_contact_phone == "+4741234567"
    assert (first.email, first.email_should_be_checked) == ("hanne@example.no", True)
    assert (first.card_expiry_date, first.card_valid) == ("2030-12-31", True)
    # Norwegian time: midnight of the check day in winter, the creation in summer time.
    assert first.population_register_check_time.ToDatetime() == dt.datetime(2024, 2, 28, 23)
    assert first.create_time.ToDatetime() == dt.datetime(2014, 4, 28, 13, 20, 38)
    assert first.update_time.ToDatetime() == dt.datetime(2014, 5, 13, 9, 1, 33)
    assert (first.created_by, first.last_changed_by, first.home_library) == (OSLO, BERGEN, OSLO)
    assert first.has_pin and not first.has_password
    assert [a.library_number for a in first.affiliations] == [OSLO]

    second = get(registry, card_number=_card(2))
    assert second.sex == borrower_pb2.SEX_MALE
    assert not second.HasField("temporary_address")
    assert not second.HasField("population_register_check_time")
    assert (second.card_expiry_date, second.card_valid) == ("", True)
    assert second.create_time.ToDatetime() == dt.datetime(2005, 10, 19, 22)
    assert second.registered_address.country_code == "NO"
    assert not second.registered_address_should_be_checked
    assert not second.email_should_be_checked
    assert second.home_phone == "+4795158548"
    assert second.has_pin and not second.has_password

    third = get(registry, card_number=_card(3))
    assert not third.HasField("registered_address")
    # Left out, so to be checked with the borrower.
    assert third.registered_address_should_be_checked
    assert third.sex == borrower_pb2.SEX_UNSPECIFIED
    assert third.birth_date == _birth(3)
    assert not third.has_pin

    fourth = get(registry, card_number=_card(4))
    assert fourth.sex == borrower_pb2.SEX_FEMALE
    assert (fourth.card_expiry_date, fourth.card_valid) == ("2020-01-31", False)
    assert fourth.temporary_address.address.city == "Geilo"
    assert fourth.temporary_address_should_be_checked
    assert not fourth.has_pin

    for serial in (1, 2):
        answer = authenticate.VerifyPin(
            authenticate_pb2.VerifyPinRequest(card_number=_card(serial), pin=PINS[serial])
        )
        assert answer.borrower.card_number == _card(serial)
    with pytest.raises(grpc.RpcError) as wrong:
        authenticate.VerifyPin(authenticate_pb2.VerifyPinRequest(card_number=_card(1), pin=PINS[2]))
    assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
    for serial in (5, 6, 8):
        with pytest.raises(grpc.RpcError) as missing:
            get(registry, card_number=_card(serial))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    again = admin.json("import", str(export), "--allow-synthetic-ids", *options)
    assert (again["imported"], again["rejected"], again["skipped"]) == (0, 0, 8)
    assert (again["total_imported"], again["total_rejected"]) == (5, 3)
    assert _entries(rejects, number) == _expected_entries(number, broken)


def test_without_the_legacy_key_pins_are_skipped_and_counted(
    prepared_database: str, keyring_path: Path, tmp_path: Path, keys: tuple[bytes, bytes]
) -> None:
    key, other = keys
    export = _soap_file(tmp_path / "laaner.xml", _records(LegacyPins(key), LegacyPins(other)))
    admin = _admin(prepared_database, keyring_path)

    result = admin(
        "import", str(export), "--allow-synthetic-ids", "--workers", "1", "--no-progress"
    )

    assert "imported 5, rejected 3" in result.stdout
    assert (
        "PINs: 0 carried over, 0 not decrypted (in the reject file), 5 skipped: no "
        "--legacy-pin-key-file (those borrowers must set a new PIN)"
    ) in result.stdout
    assert "not carried over: 1 Feide flags" in result.stdout
    assert "1 legacy passwords" in result.stdout
    engine = create_store_engine(prepared_database)
    try:
        with engine.connect() as connection:
            pins = connection.execute(
                text("SELECT count(*) FROM borrowers WHERE pin_verifier IS NOT NULL")
            ).scalar_one()
    finally:
        engine.dispose()
    assert pins == 0


def _database_text(url: str) -> bytes:
    """Everything the database holds, as bytes to search: SQLite's files, every PostgreSQL
    table's rows as text."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(
            Path(f"{path}{suffix}").read_bytes()
            for suffix in ("", "-wal")
            if Path(f"{path}{suffix}").exists()
        )
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            names = inspect(connection).get_table_names()
            return b"\n".join(
                str(row[0]).encode()
                for name in names
                for row in connection.execute(text(f'SELECT t::text FROM "{name}" AS t'))
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize("as_hex", [True, False], ids=["hex", "raw"])
def test_the_legacy_key_and_pins_are_kept_nowhere(
    as_hex: bool,
    prepared_database: str,
    keyring_path: Path,
    tmp_path: Path,
    keys: tuple[bytes, bytes],
) -> None:
    key, other = keys
    records = _records(LegacyPins(key), LegacyPins(other))
    export = _soap_file(tmp_path / "laaner.xml", records)
    key_file = _key_file(tmp_path / "legacy.key", key, as_hex=as_hex)
    admin = _admin(prepared_database, keyring_path)

    result = admin(
        "import",
        str(export),
        "--allow-synthetic-ids",
        "--workers",
        "2",
        "--legacy-pin-key-file",
        str(key_file),
    )

    assert "PINs: 2 carried over, 3 not decrypted" in result.stdout
    stored = _database_text(prepared_database)
    rejects = (tmp_path / "laaner.xml.rejects.jsonl").read_bytes()
    printed = (result.stdout + result.stderr).encode()
    spellings = [key, key.hex().encode(), key.hex().upper().encode(), base64.b64encode(key)]
    ciphertexts = [r["pin"].encode() for r in records if r is not None and r["pin"]]
    for haystack in (stored, rejects, printed):
        for secret in [
            *spellings,
            *ciphertexts,
            *(p.encode() for p in PINS.values() if len(p) > 4),
        ]:
            assert secret.lower() not in haystack.lower()


def test_a_legacy_key_file_others_can_read_or_of_the_wrong_size_is_refused(
    prepared_database: str, keyring_path: Path, tmp_path: Path, keys: tuple[bytes, bytes]
) -> None:
    key, other = keys
    export = _soap_file(tmp_path / "laaner.xml", _records(LegacyPins(key), LegacyPins(other)))
    admin = _admin(prepared_database, keyring_path)
    readable = _key_file(tmp_path / "readable.key", key, as_hex=True)
    os.chmod(readable, 0o644)
    short = _key_file(tmp_path / "short.key", key[:15], as_hex=False)

    for path, says in (
        (readable, "accessible to group or others (mode 0644)"),
        (short, "must hold 16 bytes, or 32 hex digits as text"),
        (tmp_path / "missing.key", "not found"),
    ):
        result = admin(
            "import",
            str(export),
            "--allow-synthetic-ids",
            "--legacy-pin-key-file",
            str(path),
            expect=2,
        )
        assert says in result.stderr
        assert key.hex() not in result.stderr.lower()
    engine = create_store_engine(prepared_database)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM imports")).scalar_one() == 0
            borrowers = connection.execute(text("SELECT count(*) FROM borrowers")).scalar_one()
    finally:
        engine.dispose()
    assert borrowers == 0
