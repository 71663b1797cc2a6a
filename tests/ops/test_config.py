"""Config.from_env: defaults, and errors that name the variable and say what is wrong with it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nlr_server.ops.config import SETTINGS, Config, ConfigError, Setting
from nlr_server.ops.dev_pki import DevPkiPaths


@pytest.fixture
def required(pki: DevPkiPaths, keyring_path: Path) -> dict[str, str]:
    """The settings without a default, set to files that exist."""
    return {
        "NLR_TLS_CERT": str(pki.server_cert),
        "NLR_TLS_KEY": str(pki.server_key),
        "NLR_TLS_CLIENT_CA": str(pki.ca_cert),
        "NLR_KEYRING": str(keyring_path),
    }


def config_error(environment: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as failure:
        Config.from_env(environment)
    return str(failure.value)


def test_only_the_files_need_setting_and_everything_else_has_a_default(
    required: dict[str, str], pki: DevPkiPaths, keyring_path: Path
) -> None:
    config = Config.from_env(required)

    assert (config.tls_cert, config.tls_key, config.tls_client_ca, config.keyring) == (
        pki.server_cert,
        pki.server_key,
        pki.ca_cert,
        keyring_path,
    )
    assert config.listen_address == "127.0.0.1:50051"
    assert config.database_url == "sqlite:///nlr.db"
    assert config.grace_seconds == 10.0
    assert config.allow_synthetic_ids is False
    assert config.db_pool_size == 8
    assert config.health_interval_seconds == 2.0
    assert config.log_level == "INFO"


def field_of(setting: Setting) -> str:
    return setting.name.removeprefix("NLR_").lower()


def is_number(text: str | None) -> bool:
    try:
        float(text or "")
    except ValueError:
        return False
    return True


NUMERIC_SETTINGS = [s.name for s in SETTINGS if is_number(s.default)]


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.default is not None], ids=str)
def test_each_documented_default_is_the_value_the_server_uses(
    required: dict[str, str], setting: Setting
) -> None:
    value = getattr(Config.from_env(required), field_of(setting))
    assert setting.default is not None

    if setting.default == "0" and "0 means" in setting.description:
        assert value >= 1, "a documented 0 stands for a value the server works out"
    elif isinstance(value, bool):
        assert value is (setting.default == "true")
    elif isinstance(value, int | float):
        assert value == float(setting.default)
    else:
        assert value == setting.default


@pytest.mark.parametrize("variable", NUMERIC_SETTINGS)
def test_every_numeric_setting_refuses_text_and_names_itself(
    required: dict[str, str], variable: str
) -> None:
    message = config_error(required | {variable: "abc"})

    assert message.startswith(f"{variable} must be a")
    assert "got 'abc'" in message


@pytest.mark.parametrize("variable", NUMERIC_SETTINGS)
def test_every_numeric_setting_refuses_a_negative_number_and_names_itself(
    required: dict[str, str], variable: str
) -> None:
    message = config_error(required | {variable: "-1"})

    assert message.startswith(f"{variable} must be at least ")
    assert message.endswith(", got '-1'")


def test_every_setting_is_read_from_its_variable(required: dict[str, str]) -> None:
    config = Config.from_env(
        required
        | {
            "NLR_LISTEN_ADDRESS": "0.0.0.0:6000",
            "NLR_DATABASE_URL": "postgresql+psycopg://nlr@db.example/nlr",
            "NLR_GRACE_SECONDS": "2.5",
            "NLR_ALLOW_SYNTHETIC_IDS": "true",
            "NLR_DB_POOL_SIZE": "3",
            "NLR_HEALTH_INTERVAL_SECONDS": "0.5",
            "NLR_LOG_LEVEL": "debug",
        }
    )

    assert config.listen_address == "0.0.0.0:6000"
    assert config.database_url == "postgresql+psycopg://nlr@db.example/nlr"
    assert config.grace_seconds == 2.5
    assert config.allow_synthetic_ids is True
    assert config.db_pool_size == 3
    assert config.health_interval_seconds == 0.5
    assert config.log_level == "DEBUG"


def test_an_empty_variable_means_the_default(required: dict[str, str]) -> None:
    config = Config.from_env(required | {"NLR_GRACE_SECONDS": "  ", "NLR_LOG_LEVEL": ""})

    assert (config.grace_seconds, config.log_level) == (10.0, "INFO")


@pytest.mark.parametrize("variable", ["NLR_TLS_CERT", "NLR_TLS_KEY", "NLR_TLS_CLIENT_CA"])
def test_unset_tls_file_is_an_error_naming_the_variable(
    required: dict[str, str], variable: str
) -> None:
    del required[variable]

    assert config_error(required).startswith(f"{variable} is not set: PEM file")


@pytest.mark.parametrize("variable", ["NLR_TLS_CERT", "NLR_TLS_KEY", "NLR_TLS_CLIENT_CA"])
def test_missing_tls_file_is_an_error_naming_the_variable_and_the_path(
    required: dict[str, str], variable: str, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.pem"

    message = config_error(required | {variable: str(missing)})

    assert message == f"{variable}: no such file {str(missing)!r}"


def test_unset_keyring_is_an_error_naming_the_variable(required: dict[str, str]) -> None:
    del required["NLR_KEYRING"]

    assert config_error(required).startswith("NLR_KEYRING is not set: keyring file")


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("NLR_LISTEN_ADDRESS", "nonsense", "must be host:port"),
        ("NLR_LISTEN_ADDRESS", ":50051", "must be host:port"),
        ("NLR_LISTEN_ADDRESS", "127.0.0.1:65536", "must be host:port"),
        ("NLR_LISTEN_ADDRESS", "127.0.0.1:http", "must be host:port"),
        ("NLR_GRACE_SECONDS", "abc", "must be a number, got 'abc'"),
        ("NLR_GRACE_SECONDS", "-1", "must be at least 0, got '-1'"),
        ("NLR_ALLOW_SYNTHETIC_IDS", "maybe", "must be true or false, got 'maybe'"),
        ("NLR_DB_POOL_SIZE", "0", "must be at least 1, got '0'"),
        ("NLR_DB_POOL_SIZE", "2.5", "must be a whole number, got '2.5'"),
        ("NLR_HEALTH_INTERVAL_SECONDS", "0.01", "must be at least 0.1, got '0.01'"),
        ("NLR_LOG_LEVEL", "loud", "must be one of DEBUG, INFO, WARNING, ERROR, got 'LOUD'"),
        ("NLR_DATABASE_URL", "mysql://x", "must be a sqlite:// or postgresql+psycopg:// URL"),
        ("NLR_DATABASE_URL", "not a url", "is not a database URL"),
    ],
)
def test_bad_value_is_an_error_naming_the_variable_and_what_is_wrong(
    required: dict[str, str], variable: str, value: str, complaint: str
) -> None:
    message = config_error(required | {variable: value})

    assert message.startswith(variable)
    assert complaint in message


def test_database_url_error_does_not_repeat_the_password(required: dict[str, str]) -> None:
    message = config_error(required | {"NLR_DATABASE_URL": "mysql://nlr:s3cret-pw@db/nlr"})

    assert message.startswith("NLR_DATABASE_URL")
    assert "s3cret-pw" not in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("false", False), ("1", True), ("0", False), ("TRUE", True), ("Off", False)],
)
def test_flag_accepts_true_false_1_and_0(
    required: dict[str, str], value: str, expected: bool
) -> None:
    config = Config.from_env(required | {"NLR_ALLOW_SYNTHETIC_IDS": value})

    assert config.allow_synthetic_ids is expected


@pytest.mark.parametrize("value", ["nan", "inf"])
@pytest.mark.parametrize("variable", NUMERIC_SETTINGS)
def test_every_numeric_setting_must_be_finite(
    required: dict[str, str], variable: str, value: str
) -> None:
    message = config_error(required | {variable: value})

    assert message.startswith(variable)
    assert message.endswith(f"got {value!r}")


def test_workers_default_to_one_and_auto_means_one_per_usable_core(
    required: dict[str, str],
) -> None:
    assert Config.from_env(required).workers == 1
    assert Config.from_env(required | {"NLR_WORKERS": "3"}).workers == 3

    automatic = Config.from_env(required | {"NLR_WORKERS": "AUTO"}).workers

    assert automatic == len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("0", "NLR_WORKERS must be at least 1, got '0'"),
        ("1.5", "NLR_WORKERS must be a whole number, got '1.5'"),
        ("many", "NLR_WORKERS must be a whole number, got 'many'"),
    ],
)
def test_workers_must_be_a_positive_whole_number_or_auto(
    required: dict[str, str], value: str, complaint: str
) -> None:
    assert config_error(required | {"NLR_WORKERS": value}) == complaint


def test_several_workers_need_a_fixed_port(required: dict[str, str]) -> None:
    message = config_error(required | {"NLR_WORKERS": "2", "NLR_LISTEN_ADDRESS": "127.0.0.1:0"})

    assert message == "NLR_WORKERS: several workers need a fixed port in NLR_LISTEN_ADDRESS"
    assert Config.from_env(required | {"NLR_LISTEN_ADDRESS": "127.0.0.1:0"}).workers == 1


def test_redis_is_off_by_default_and_must_be_a_redis_url(required: dict[str, str]) -> None:
    assert (Config.from_env(required).redis_url, Config.from_env(required).redis_prefix) == (
        "",
        "nlr:",
    )
    config = Config.from_env(
        required | {"NLR_REDIS_URL": "redis://cache:6379/2", "NLR_REDIS_PREFIX": "nlr-prod:"}
    )
    assert (config.redis_url, config.redis_prefix) == ("redis://cache:6379/2", "nlr-prod:")

    message = config_error(required | {"NLR_REDIS_URL": "http://user:s3cret@cache"})

    assert message == "NLR_REDIS_URL must be a redis://, rediss:// or unix:// URL"
