"""The server's configuration, read from NLR_* environment variables and checked at start-up."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from nlr_server.domain.contact import EmailAddress
from nlr_server.domain.errors import InvalidValue


class ConfigError(Exception):
    """A configuration value is missing or wrong; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: str | None
    description: str


# The single list of settings: the README's configuration table is checked against it.
SETTINGS: tuple[Setting, ...] = (
    Setting("NLR_LISTEN_ADDRESS", "127.0.0.1:50051", "host:port the gRPC server listens on"),
    Setting(
        "NLR_SHARED_PORT",
        "false",
        "let several server processes listen on the same address (SO_REUSEPORT), for worker "
        "processes of one deployment; otherwise a server refuses an address already served",
    ),
    Setting(
        "NLR_WORKERS",
        "1",
        "server processes on the one address (sharing it with SO_REUSEPORT) under a parent that "
        "restarts a worker that dies and drains them all on SIGTERM; `auto`: one per CPU core "
        "(see [Running on every core](#running-on-every-core))",
    ),
    Setting(
        "NLR_DATABASE_URL",
        "sqlite:///nlr.db",
        "SQLAlchemy URL: `sqlite:///path.db` or `postgresql+psycopg://user@host/db`",
    ),
    Setting("NLR_TLS_CERT", None, "PEM file: the server's certificate (chain)"),
    Setting("NLR_TLS_KEY", None, "PEM file: the server's private key"),
    Setting("NLR_TLS_CLIENT_CA", None, "PEM file: the CA that signs client certificates"),
    Setting("NLR_KEYRING", None, "keyring file (owner-only) with the field encryption keys"),
    Setting("NLR_GRACE_SECONDS", "10", "on SIGTERM/SIGINT, how long in-flight calls may finish"),
    Setting(
        "NLR_ALLOW_SYNTHETIC_IDS",
        "false",
        "accept synthetic test national ids (month + 80); for dev and test only",
    ),
    Setting(
        "NLR_DB_POOL_SIZE",
        "8",
        "database connections (and worker threads) per server process; on SQLite two more, for "
        "the reads and PIN logins run on the event loop itself; on PostgreSQL as many more "
        "again, on its asyncio driver, for the reads, PIN logins and changes run on the event "
        "loop",
    ),
    Setting(
        "NLR_HEALTH_INTERVAL_SECONDS",
        "2",
        "how often the health check pings the database (a ping that takes more than twice this, "
        "and at least 5 s, counts as the database unreachable)",
    ),
    Setting(
        "NLR_ACCESS_CACHE_SECONDS",
        "5",
        "how long a certificate's vendor and a library's standing are remembered; revoking or "
        "disabling takes effect within this time",
    ),
    Setting("NLR_VENDOR_RATE_LIMIT", "1000", "calls per second one vendor may make on average"),
    Setting("NLR_VENDOR_RATE_BURST", "2000", "calls one vendor may make in a burst"),
    Setting(
        "NLR_LIBRARY_CODE_FAILURES",
        "5",
        "wrong library codes per vendor and library before further attempts are refused",
    ),
    Setting(
        "NLR_LIBRARY_CODE_WINDOW_SECONDS", "900", "the window the failed library codes count in"
    ),
    Setting(
        "NLR_REDIS_URL",
        "",
        "Redis that keeps the limits every worker and server shares (vendor call rate, wrong "
        "library codes), e.g. `redis://127.0.0.1:6379/0`; empty: they are kept in the database",
    ),
    Setting(
        "NLR_REDIS_PREFIX",
        "nlr:",
        "what the register's keys in Redis begin with, so that several registers can share one",
    ),
    Setting(
        "NLR_AUDIT_RETRY_SECONDS",
        "0.2",
        "pause before the audit trail is written again after a failed write (at most 1)",
    ),
    Setting(
        "NLR_PASSWORD_ITERATIONS",
        "210000",
        "PBKDF2-HMAC-SHA512 iterations for new passwords (at least 210000); older ones are "
        "re-hashed at their next successful login",
    ),
    Setting("NLR_PASSWORD_WORKERS", "0", "threads hashing passwords; 0 means one per CPU core"),
    Setting("NLR_LOCKOUT_FAILURES", "5", "wrong PINs (or passwords) in a row that lock logins"),
    Setting("NLR_LOCKOUT_SECONDS", "900", "how long the first lockout lasts; each next doubles"),
    Setting("NLR_LOCKOUT_MAX_SECONDS", "86400", "the longest a lockout lasts"),
    Setting(
        "NLR_LOCKOUT_FORGET_DAYS",
        "7",
        "after this many days without a failure and past any lockout, the failed logins and "
        "lockouts of a card or identity (registered or not) are forgotten and removed",
    ),
    Setting("NLR_GUARDIAN_AGE", "15", "a borrower younger than this needs a guardian at creation"),
    Setting(
        "NLR_KEYRING_RELOAD_SECONDS",
        "10",
        "how often the server looks for a changed keyring file (after `nlr-admin keys rotate`)",
    ),
    Setting(
        "NLR_IDENTITY_LIFETIME_DAYS",
        "1095",
        "how long an added identity (Feide, Pocket, school card) is kept when the library names "
        "no deletion time (at most 3650)",
    ),
    Setting(
        "NLR_MAINTENANCE_INTERVAL_SECONDS",
        "3600",
        "how often the server removes what has reached its deletion time (expired identities "
        "and temporary addresses)",
    ),
    Setting(
        "NLR_FREG_URL",
        "",
        "base URL of Folkeregisteret's API (the part before `/folkeregisteret/...`); empty: "
        "the register does not follow the population register",
    ),
    Setting(
        "NLR_FREG_POLL_SECONDS",
        "60",
        "how long the population register sync waits for new events once it has read them all",
    ),
    Setting(
        "NLR_FREG_DEATH_GRACE_DAYS",
        "7",
        "how long after the population register notifies a death the borrower is deleted as "
        "DECEASED (a reactivation before then cancels it)",
    ),
    Setting(
        "NLR_MASKINPORTEN_URL",
        "",
        "Maskinporten's issuer, e.g. `https://maskinporten.no/` (tokens from `{issuer}token`)",
    ),
    Setting("NLR_MASKINPORTEN_CLIENT_ID", "", "the register's client id at Maskinporten"),
    Setting(
        "NLR_MASKINPORTEN_KEY",
        "",
        "PEM file of the client's RSA key (owner-only), which signs the token grants (RS256)",
    ),
    Setting("NLR_MASKINPORTEN_KID", "", "the id (`kid`) under which Maskinporten has that key"),
    Setting(
        "NLR_MASKINPORTEN_SCOPE",
        "folkeregister:deling/offentligmedhjemmel",
        "the scope asked for",
    ),
    Setting(
        "NLR_IDPORTEN_ISSUER",
        "",
        "ID-porten's issuer, e.g. `https://idporten.no`; empty: no ID-porten logins",
    ),
    Setting(
        "NLR_IDPORTEN_AUDIENCE",
        "",
        "the portal's client id at ID-porten (the ID tokens' audience); needed with the issuer",
    ),
    Setting(
        "NLR_IDPORTEN_JWKS",
        "",
        "ID-porten's signing keys: its JWKS URL, or a JWKS file; needed with the issuer",
    ),
    Setting(
        "NLR_FEIDE_ISSUER",
        "",
        "Feide's issuer, e.g. `https://auth.dataporten.no`; empty: no Feide logins",
    ),
    Setting(
        "NLR_FEIDE_AUDIENCE",
        "",
        "the portal's client id at Feide (the ID tokens' audience); needed with the issuer",
    ),
    Setting(
        "NLR_FEIDE_JWKS",
        "",
        "Feide's signing keys: its JWKS URL, or a JWKS file; needed with the issuer",
    ),
    Setting(
        "NLR_SMS_URL",
        "",
        "SMS gateway for SelfService's codes to a new mobile number (POST JSON `to`, "
        "`message`); empty: no codes by SMS",
    ),
    Setting(
        "NLR_SMS_TOKEN_FILE",
        "",
        "owner-only file with the SMS gateway's bearer token; empty: none sent",
    ),
    Setting(
        "NLR_SESSION_MINUTES",
        "15",
        "how long a borrower's SelfService session lasts after its last use",
    ),
    Setting(
        "NLR_SESSION_MAX_MINUTES",
        "480",
        "however busy, a SelfService session ends this long after its login",
    ),
    Setting(
        "NLR_SMTP_HOST",
        "",
        "mail server for deletion notices to borrowers; empty: notices are queued but not sent",
    ),
    Setting("NLR_SMTP_PORT", "25", "the mail server's port"),
    Setting(
        "NLR_SMTP_SENDER",
        "",
        "From address of deletion notices, e.g. `ikke-svar@example.no`; needed with NLR_SMTP_HOST",
    ),
    Setting(
        "NLR_SMTP_STARTTLS",
        "false",
        "STARTTLS before sending, verifying the mail server's certificate against the system CAs",
    ),
    Setting(
        "NLR_NOTICE_RETRY_SECONDS",
        "60",
        "wait before retrying an undelivered notice; doubles with each failure, up to an hour",
    ),
    Setting(
        "NLR_NOTICE_GIVE_UP_HOURS",
        "72",
        "a notice still undelivered this long after the deletion is given up and purged",
    ),
    Setting("NLR_NOTICE_POLL_SECONDS", "10", "how often the server looks for notices to send"),
    Setting(
        "NLR_DELETION_VACUUM_SECONDS",
        "300",
        "PostgreSQL: within this time of a deletion the server VACUUMs the tables that held the "
        "data, so no dead row keeps it (see [Deletion on disk](#deletion-on-disk))",
    ),
    Setting(
        "NLR_FEED_RETENTION_DAYS",
        "30",
        "how long change-feed entries are kept; a reader further behind must sync again",
    ),
    Setting(
        "NLR_FEED_POLL_SECONDS",
        "0.5",
        "how often WatchChanges looks for changes committed by other servers on the database",
    ),
    Setting(
        "NLR_FEED_HEARTBEAT_SECONDS",
        "15",
        "an idle WatchChanges stream gets a heartbeat this often",
    ),
    Setting(
        "NLR_FEED_STREAM_BUFFER",
        "10000",
        "changes held for one WatchChanges stream; a stream further behind catches up from the "
        "database",
    ),
    Setting("NLR_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR"),
)


@dataclass(frozen=True, slots=True)
class Config:
    listen_address: str
    database_url: str
    tls_cert: Path
    tls_key: Path
    tls_client_ca: Path
    keyring: Path
    grace_seconds: float
    allow_synthetic_ids: bool
    db_pool_size: int
    health_interval_seconds: float
    access_cache_seconds: float
    vendor_rate_limit: float
    vendor_rate_burst: float
    library_code_failures: int
    library_code_window_seconds: float
    audit_retry_seconds: float
    password_iterations: int
    password_workers: int
    lockout_failures: int
    lockout_seconds: float
    lockout_max_seconds: float
    lockout_forget_days: float
    keyring_reload_seconds: float
    guardian_age: int
    identity_lifetime_days: int
    maintenance_interval_seconds: float
    smtp_host: str
    smtp_port: int
    smtp_sender: str
    smtp_starttls: bool
    notice_retry_seconds: float
    notice_give_up_hours: float
    notice_poll_seconds: float
    deletion_vacuum_seconds: float
    feed_retention_days: float
    feed_poll_seconds: float
    feed_heartbeat_seconds: float
    feed_stream_buffer: int
    log_level: str
    # Defaults, so that a Config built by hand (the tests' harness) may leave them out.
    shared_port: bool = False
    workers: int = 1
    redis_url: str = ""
    redis_prefix: str = "nlr:"
    freg_url: str = ""
    freg_poll_seconds: float = 60.0
    freg_death_grace_days: float = 7.0
    maskinporten_url: str = ""
    maskinporten_client_id: str = ""
    maskinporten_key: str = ""
    maskinporten_kid: str = ""
    maskinporten_scope: str = "folkeregister:deling/offentligmedhjemmel"
    session_minutes: float = 15.0
    sms_url: str = ""
    sms_token_file: str = ""
    idporten_issuer: str = ""
    idporten_audience: str = ""
    idporten_jwks: str = ""
    feide_issuer: str = ""
    feide_audience: str = ""
    feide_jwks: str = ""
    session_max_minutes: float = 480.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = Environment(os.environ if environ is None else environ)
        return cls(
            listen_address=env.listen_address("NLR_LISTEN_ADDRESS"),
            database_url=env.database_url("NLR_DATABASE_URL"),
            tls_cert=env.existing_file("NLR_TLS_CERT"),
            tls_key=env.existing_file("NLR_TLS_KEY"),
            tls_client_ca=env.existing_file("NLR_TLS_CLIENT_CA"),
            keyring=env.path("NLR_KEYRING"),
            grace_seconds=env.number("NLR_GRACE_SECONDS", minimum=0),
            allow_synthetic_ids=env.flag("NLR_ALLOW_SYNTHETIC_IDS"),
            db_pool_size=int(env.number("NLR_DB_POOL_SIZE", minimum=1, whole=True)),
            health_interval_seconds=env.number("NLR_HEALTH_INTERVAL_SECONDS", minimum=0.1),
            access_cache_seconds=env.number("NLR_ACCESS_CACHE_SECONDS", minimum=0),
            vendor_rate_limit=env.number("NLR_VENDOR_RATE_LIMIT", minimum=0.001),
            vendor_rate_burst=env.number("NLR_VENDOR_RATE_BURST", minimum=1),
            library_code_failures=int(
                env.number("NLR_LIBRARY_CODE_FAILURES", minimum=1, whole=True)
            ),
            library_code_window_seconds=env.number("NLR_LIBRARY_CODE_WINDOW_SECONDS", minimum=1),
            audit_retry_seconds=env.number("NLR_AUDIT_RETRY_SECONDS", minimum=0.01, maximum=1),
            password_iterations=env.whole("NLR_PASSWORD_ITERATIONS", minimum=210_000),
            password_workers=env.whole("NLR_PASSWORD_WORKERS", minimum=0) or (os.cpu_count() or 1),
            lockout_failures=env.whole("NLR_LOCKOUT_FAILURES", minimum=1),
            lockout_seconds=env.number("NLR_LOCKOUT_SECONDS", minimum=0.001),
            lockout_max_seconds=env.number("NLR_LOCKOUT_MAX_SECONDS", minimum=0.001),
            lockout_forget_days=env.number("NLR_LOCKOUT_FORGET_DAYS", minimum=0.0001),
            keyring_reload_seconds=env.number("NLR_KEYRING_RELOAD_SECONDS", minimum=0.1),
            guardian_age=env.whole("NLR_GUARDIAN_AGE", minimum=0),
            identity_lifetime_days=int(
                env.number("NLR_IDENTITY_LIFETIME_DAYS", minimum=1, maximum=3650, whole=True)
            ),
            maintenance_interval_seconds=env.number(
                "NLR_MAINTENANCE_INTERVAL_SECONDS", minimum=0.1
            ),
            smtp_host=env.raw("NLR_SMTP_HOST"),
            smtp_port=int(env.number("NLR_SMTP_PORT", minimum=1, maximum=65535, whole=True)),
            smtp_sender=env.smtp_sender("NLR_SMTP_SENDER", needed=bool(env.raw("NLR_SMTP_HOST"))),
            smtp_starttls=env.flag("NLR_SMTP_STARTTLS"),
            notice_retry_seconds=env.number("NLR_NOTICE_RETRY_SECONDS", minimum=0.01),
            notice_give_up_hours=env.number("NLR_NOTICE_GIVE_UP_HOURS", minimum=0.0001),
            notice_poll_seconds=env.number("NLR_NOTICE_POLL_SECONDS", minimum=0.01),
            deletion_vacuum_seconds=env.number("NLR_DELETION_VACUUM_SECONDS", minimum=1),
            feed_retention_days=env.number("NLR_FEED_RETENTION_DAYS", minimum=0.0001),
            feed_poll_seconds=env.number("NLR_FEED_POLL_SECONDS", minimum=0.01, maximum=60),
            feed_heartbeat_seconds=env.number("NLR_FEED_HEARTBEAT_SECONDS", minimum=0.05),
            feed_stream_buffer=env.whole("NLR_FEED_STREAM_BUFFER", minimum=1),
            log_level=env.choice("NLR_LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR")),
            shared_port=env.flag("NLR_SHARED_PORT"),
            workers=env.workers("NLR_WORKERS", listen_address=env.raw("NLR_LISTEN_ADDRESS")),
            redis_url=env.redis_url("NLR_REDIS_URL"),
            redis_prefix=env.raw("NLR_REDIS_PREFIX"),
            freg_url=env.raw("NLR_FREG_URL"),
            freg_poll_seconds=env.number("NLR_FREG_POLL_SECONDS", minimum=0.1),
            freg_death_grace_days=env.number("NLR_FREG_DEATH_GRACE_DAYS", minimum=0),
            maskinporten_url=env.raw("NLR_MASKINPORTEN_URL"),
            maskinporten_client_id=env.raw("NLR_MASKINPORTEN_CLIENT_ID"),
            maskinporten_key=env.raw("NLR_MASKINPORTEN_KEY"),
            maskinporten_kid=env.raw("NLR_MASKINPORTEN_KID"),
            maskinporten_scope=env.raw("NLR_MASKINPORTEN_SCOPE"),
            session_minutes=env.number("NLR_SESSION_MINUTES", minimum=0.1, maximum=1440),
            sms_url=env.raw("NLR_SMS_URL"),
            sms_token_file=env.raw("NLR_SMS_TOKEN_FILE"),
            idporten_issuer=env.raw("NLR_IDPORTEN_ISSUER"),
            idporten_audience=env.raw("NLR_IDPORTEN_AUDIENCE"),
            idporten_jwks=env.raw("NLR_IDPORTEN_JWKS"),
            feide_issuer=env.raw("NLR_FEIDE_ISSUER"),
            feide_audience=env.raw("NLR_FEIDE_AUDIENCE"),
            feide_jwks=env.raw("NLR_FEIDE_JWKS"),
            session_max_minutes=env.number("NLR_SESSION_MAX_MINUTES", minimum=0.1, maximum=10080),
        )


_DEFAULTS = {s.name: s.default for s in SETTINGS}


class Environment:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def raw(self, name: str) -> str:
        value = self._environ.get(name, "").strip() or _DEFAULTS[name]
        if value is None:
            raise ConfigError(f"{name} is not set: {_describe(name)}")
        return value

    def path(self, name: str) -> Path:
        return Path(self.raw(name)).expanduser()

    def existing_file(self, name: str) -> Path:
        path = self.path(name)
        if not path.is_file():
            raise ConfigError(f"{name}: no such file {str(path)!r}")
        return path

    def number(
        self, name: str, *, minimum: float, maximum: float | None = None, whole: bool = False
    ) -> float:
        value = self.raw(name)
        try:
            number = int(value) if whole else float(value)
        except ValueError:
            kind = "a whole number" if whole else "a number"
            raise ConfigError(f"{name} must be {kind}, got {value!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
        if number < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value!r}")
        if maximum is not None and number > maximum:
            raise ConfigError(f"{name} must be at most {maximum}, got {value!r}")
        return number

    def whole(self, name: str, *, minimum: int) -> int:
        return int(self.number(name, minimum=minimum, whole=True))

    def flag(self, name: str) -> bool:
        value = self.raw(name).lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {value!r}")

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self.raw(name).upper()
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def smtp_sender(self, name: str, *, needed: bool) -> str:
        value = self.raw(name)
        if not value:
            if needed:
                raise ConfigError(f"{name} is not set: {_describe(name)}")
            return value
        try:
            return EmailAddress.parse(value).value
        except InvalidValue:
            raise ConfigError(f"{name} must be an email address, got {value!r}") from None

    def listen_address(self, name: str) -> str:
        value = self.raw(name)
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(f"{name} must be host:port, e.g. 127.0.0.1:50051, got {value!r}")
        return value

    def workers(self, name: str, *, listen_address: str) -> int:
        """A number of processes, or `auto`: one per CPU core this process may run on."""
        if self.raw(name).lower() == "auto":
            count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
            workers = count or os.cpu_count() or 1
        else:
            workers = self.whole(name, minimum=1)
        if workers > 1 and listen_address.endswith(":0"):
            # Each worker would be given a port of its own.
            raise ConfigError(f"{name}: several workers need a fixed port in NLR_LISTEN_ADDRESS")
        return workers

    def redis_url(self, name: str) -> str:
        value = self.raw(name)
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"{name} must be a redis://, rediss:// or unix:// URL")
        return value

    def database_url(self, name: str) -> str:
        value = self.raw(name)
        try:
            backend = make_url(value).get_backend_name()
        except ArgumentError:
            raise ConfigError(f"{name} is not a database URL") from None
        if backend not in ("sqlite", "postgresql"):
            raise ConfigError(f"{name} must be a sqlite:// or postgresql+psycopg:// URL")
        return value


def _describe(name: str) -> str:
    return next(s.description for s in SETTINGS if s.name == name)
