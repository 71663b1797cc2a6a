"""Server start-up: credentials, interceptors, services, health, reflection, port, stop."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from nlr.auth.v1 import authenticate_pb2, authenticate_pb2_grpc
from nlr.registry.v1 import registry_service_pb2, registry_service_pb2_grpc
from nlr.selfservice.v1 import selfservice_pb2, selfservice_pb2_grpc
from nlr_server.api.access_control import AccessControl
from nlr_server.api.admission import AdmissionTable, PortalSession, VendorAndLibrary, VendorOnly
from nlr_server.api.audit_writer import AuditWriter
from nlr_server.api.authenticate_servicer import AuthenticateServicer
from nlr_server.api.borrower_codec import BorrowerDecoder
from nlr_server.api.feed_hub import FeedHub
from nlr_server.api.health import watch_database
from nlr_server.api.interceptor import RegisterInterceptor
from nlr_server.api.notice_delivery import deliver_notices
from nlr_server.api.password_pool import PasswordPool
from nlr_server.api.population_sync import follow_population_register
from nlr_server.api.rate_limit import LimitState, SharedCallRateLimiter, SharedFailureLimiter
from nlr_server.api.registry_servicer import BorrowerRegistryServicer
from nlr_server.api.selfservice_servicer import LOGIN_RPCS, WAITING_RPCS, SelfServiceServicer
from nlr_server.api.services import Services
from nlr_server.crypto.keyring import Keyring, KeyringError
from nlr_server.crypto.login_key_index import LoginKeyIndex
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.crypto.pin_verifier import PinVerifier
from nlr_server.crypto.totp import TotpSecretSealer
from nlr_server.domain.actor import Actor
from nlr_server.domain.audit import Acting
from nlr_server.domain.contact_change import ContactKind
from nlr_server.domain.credentials import LoginMethod
from nlr_server.domain.deletion_notice import DeliveryPolicy
from nlr_server.domain.lockout import LockoutPolicy
from nlr_server.domain.session import SessionPolicy
from nlr_server.mail.code_mail import CodeMailer
from nlr_server.mail.smtp_sender import SmtpSender
from nlr_server.oidc.id_token import (
    IDPORTEN_ACR,
    IdTokenValidator,
    JwksUnavailable,
    OidcProviderSettings,
)
from nlr_server.ops.config import Config
from nlr_server.ops.dev_idporten import DEV_ISSUER
from nlr_server.population.maskinporten import MaskinportenError
from nlr_server.population.source import folkeregisteret_source, missing_settings
from nlr_server.sms.gateway import SmsGateway
from nlr_server.store import migrate
from nlr_server.store.audit_repository import AuditLog
from nlr_server.store.database import create_store_engine, ping
from nlr_server.store.erasure import DeletionVacuum, WalTruncation, eraser_for
from nlr_server.store.errors import describe
from nlr_server.store.limit_state import SqlLimitState
from nlr_server.store.redis_limit_state import RedisLimitState
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory
from nlr_server.usecases.maintenance import run_maintenance
from nlr_server.usecases.ports import PopulationSource

log = logging.getLogger(__name__)

REGISTRY_SERVICE = registry_service_pb2.DESCRIPTOR.services_by_name["BorrowerRegistry"].full_name
AUTH_SERVICE = authenticate_pb2.DESCRIPTOR.services_by_name["Authenticate"].full_name
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
SELF_SERVICE = selfservice_pb2.DESCRIPTOR.services_by_name["SelfService"].full_name
SERVICES = (REGISTRY_SERVICE, AUTH_SERVICE, SELF_SERVICE)
# Answered for any client the TLS layer accepted: probes and grpcurl need no registration.
OPEN_SERVICES = frozenset({HEALTH_SERVICE, reflection.SERVICE_NAME})


AUDIT_FLUSH_ON_STOP_SECONDS = 5.0
# The server's own maintenance task, as the audit trail and the records name it.
MAINTENANCE = Acting(Actor.system("maintenance"), "maintenance")


class StartupError(Exception):
    """The server cannot start; the message tells the operator what to fix."""


class RegisterServer:
    """One running register: a grpc.aio server over mutual TLS on one database.

    ``worker``: its number among the worker processes of one deployment (ops/workers.py), or
    None for a server on its own. The jobs that need running once per deployment (maintenance,
    deletion notices) run in worker 0 alone; the others are each process's own.
    """

    def __init__(self, config: Config, *, worker: int | None = None) -> None:
        self.config = config
        self.worker = worker
        self.port = 0
        self._server: grpc.aio.Server | None = None
        self._worker_prefix = f"nlr-db-{id(self):x}"
        self._executor = ThreadPoolExecutor(
            config.db_pool_size, thread_name_prefix=self._worker_prefix
        )
        self._health = health.aio.HealthServicer()
        self._tasks: list[asyncio.Task[None]] = []
        self._passwords: PasswordPool | None = None
        self._loop_reads: SqlUnitOfWorkFactory | None = None
        self._loop_writes: SqlUnitOfWorkFactory | None = None
        self._greenlets: SqlUnitOfWorkFactory | None = None
        self._async_engine: AsyncEngine | None = None
        self._audit: AuditWriter | None = None
        self._audit_log: AuditLog | None = None
        self._loop_audit_log: AuditLog | None = None
        self._write_lock: threading.RLock | None = None
        self._feed_hub: FeedHub | None = None
        self._limit_state: LimitState | None = None
        self._engine = create_store_engine(config.database_url, pool_size=config.db_pool_size)
        self._eraser = eraser_for(self._engine, vacuum_seconds=config.deletion_vacuum_seconds)
        self._id_tokens: dict[LoginMethod, IdTokenValidator] = {}

    async def start(self) -> int:
        """Starts serving; returns the bound port (useful with port 0)."""
        config = self.config
        self._keyring = _load_keyring(config)
        # Checked before anything starts: settings that make no source stop the start-up.
        population = (
            _population_source(config) if config.freg_url and self.worker in (None, 0) else None
        )
        self._id_tokens = self._id_token_validators()
        await asyncio.to_thread(self._check_database)
        services = self._services(self._keyring)
        assert self._feed_hub is not None
        await self._feed_hub.start(services.read)
        # The group commit's connection is its own, outside the pool the units of work share,
        # which it would otherwise hold one connection of for good.
        self._audit_log = AuditLog(
            create_store_engine(config.database_url, pool_size=1), self._write_lock
        )
        # On an embedded store, batches are written on the loop when no other writer is at
        # work, on a connection of their own that never waits.
        self._loop_audit_log = (
            AuditLog(
                create_store_engine(config.database_url, pool_size=1, wait_for_writers=False),
                self._write_lock,
            )
            if self._loop_writes is not None
            else None
        )
        self._audit = AuditWriter(
            self._audit_log.append,
            self._executor,
            retry_seconds=config.audit_retry_seconds,
            append_on_loop=self._loop_audit_log.try_append if self._loop_audit_log else None,
        )
        self._audit.start()
        self._limit_state = await self._shared_limits()
        server = grpc.aio.server(
            interceptors=[self._interceptor(services, self._audit)],
            # grpc shares ports by default: a second server on a served address would start
            # silently and take part of its calls.
            options=[("grpc.so_reuseport", int(config.shared_port))],
        )
        self._add_services(server, services)
        try:
            self.port = server.add_secure_port(config.listen_address, _credentials(config))
        except RuntimeError:
            # grpc raises on a failed bind (and logs why); older versions returned port 0.
            self.port = 0
        if self.port == 0:
            await self.stop(0)
            raise StartupError(_cannot_listen(config))
        await server.start()
        self._server = server
        # The database answered the start-up check: serving from the first call on.
        for service in ("", *SERVICES):
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        self._tasks = [
            asyncio.create_task(
                watch_database(
                    self._engine, self._health, list(SERVICES), config.health_interval_seconds
                )
            ),
            asyncio.create_task(_watch_keyring(self._keyring, config.keyring_reload_seconds)),
        ]
        if self.worker in (None, 0):
            # Safe to run in several servers at once, but one per deployment is enough.
            self._tasks.append(
                asyncio.create_task(
                    _maintain(
                        services,
                        config.maintenance_interval_seconds,
                        dt.timedelta(days=config.feed_retention_days),
                    )
                )
            )
            self._tasks.append(asyncio.create_task(_deliver_notices(config, services)))
            if population is not None:
                self._tasks.append(
                    asyncio.create_task(
                        follow_population_register(
                            services.unit_of_work,
                            population,
                            config.freg_poll_seconds,
                            dt.timedelta(days=config.freg_death_grace_days),
                        )
                    )
                )
        # Each process erases after its own deletions (the eraser knows only of those).
        if isinstance(self._eraser, DeletionVacuum):
            self._tasks.append(
                asyncio.create_task(
                    _vacuum_after_deletions(self._eraser, config.deletion_vacuum_seconds)
                )
            )
        log.info("serving on %s", config.listen_address.rsplit(":", 1)[0] + f":{self.port}")
        return self.port

    def _add_services(self, server: grpc.aio.Server, services: Services) -> None:
        """The services this server answers: each guarded one needs its admission strategy in
        _interceptor, and a service served without one is refused (api/admission.py)."""
        registry_service_pb2_grpc.add_BorrowerRegistryServicer_to_server(
            BorrowerRegistryServicer(services), server
        )
        authenticate_pb2_grpc.add_AuthenticateServicer_to_server(
            AuthenticateServicer(services), server
        )
        selfservice_pb2_grpc.add_SelfServiceServicer_to_server(
            SelfServiceServicer(services), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection([*SERVICES, *OPEN_SERVICES], server)

    def _services(self, keyring: Keyring) -> Services:
        config = self.config
        self._passwords = PasswordPool(
            workers=config.password_workers, iterations=config.password_iterations
        )
        unit_of_work = SqlUnitOfWorkFactory(self._engine, NationalIdSealer(keyring))
        self._write_lock = unit_of_work.write_lock
        self._loop_reads = unit_of_work.for_loop_reads()
        self._loop_writes = unit_of_work.for_loop_writes()
        greenlets = unit_of_work.for_greenlets(config.db_pool_size)
        self._greenlets, self._async_engine = greenlets if greenlets else (None, None)
        self._feed_hub = FeedHub(
            poll_seconds=config.feed_poll_seconds, watcher_capacity=config.feed_stream_buffer
        )
        unit_of_work.on_feed = self._feed_hub.committed
        unit_of_work.on_erase = self._eraser.deleted
        if isinstance(self._eraser, WalTruncation):
            self._eraser.start()
        else:
            self._eraser.deleted()  # a first round at start: a previous run may have stopped early
        if self._greenlets is not None:
            self._greenlets.on_feed = self._feed_hub.committed
            self._greenlets.on_erase = self._eraser.deleted
        if self._loop_writes is not None:
            self._loop_writes.on_feed = self._feed_hub.committed
            if isinstance(self._eraser, WalTruncation):
                self._loop_writes.on_erase = self._eraser.request  # never waits, on the loop
        return Services(
            feed_hub=self._feed_hub,
            feed_heartbeat_seconds=config.feed_heartbeat_seconds,
            unit_of_work=unit_of_work,
            loop_reads=self._loop_reads,
            loop_writes=self._loop_writes,
            greenlets=self._greenlets,
            guardian_age=config.guardian_age,
            identity_lifetime=dt.timedelta(days=config.identity_lifetime_days),
            executor=self._executor,
            decode=BorrowerDecoder(allow_synthetic_ids=config.allow_synthetic_ids),
            pins=PinVerifier(keyring),
            login_keys=LoginKeyIndex(keyring),
            totp_sealer=TotpSecretSealer(keyring),
            id_tokens=self._id_tokens,
            code_senders=self._code_senders(),
            sessions=SessionPolicy(
                idle=dt.timedelta(minutes=config.session_minutes),
                longest=dt.timedelta(minutes=config.session_max_minutes),
            ),
            passwords=self._passwords,
            lockout=LockoutPolicy(
                failures_before_lock=config.lockout_failures,
                first_lock=dt.timedelta(seconds=config.lockout_seconds),
                longest_lock=dt.timedelta(seconds=config.lockout_max_seconds),
                forget_after=dt.timedelta(days=config.lockout_forget_days),
            ),
        )

    def _code_senders(self) -> dict[ContactKind, Callable[[str, str], None]]:
        """How one-time codes reach a new email (the SMTP server of the deletion notices) and
        a new mobile (the SMS gateway), where configured."""
        config = self.config
        senders: dict[ContactKind, Callable[[str, str], None]] = {}
        if config.smtp_host:
            senders[ContactKind.EMAIL] = CodeMailer(
                config.smtp_host,
                config.smtp_port,
                config.smtp_sender,
                starttls=config.smtp_starttls,
            ).send
        if config.sms_url:
            token = Path(config.sms_token_file) if config.sms_token_file else None
            senders[ContactKind.MOBILE_PHONE] = SmsGateway(config.sms_url, token).send
        return senders

    def _id_token_validators(self) -> dict[LoginMethod, IdTokenValidator]:
        """A validator of each login provider configured (issuer, audience and keys)."""
        config = self.config
        validators: dict[LoginMethod, IdTokenValidator] = {}
        for method, name, issuer, audience, jwks, acr in (
            (
                LoginMethod.IDPORTEN,
                "NLR_IDPORTEN",
                config.idporten_issuer,
                config.idporten_audience,
                config.idporten_jwks,
                IDPORTEN_ACR,
            ),
            (
                LoginMethod.FEIDE,
                "NLR_FEIDE",
                config.feide_issuer,
                config.feide_audience,
                config.feide_jwks,
                None,
            ),
        ):
            if not issuer:
                continue
            if not (audience and jwks):
                raise StartupError(f"{name}_ISSUER is set: set {name}_AUDIENCE and {name}_JWKS too")
            if issuer == DEV_ISSUER and not config.allow_synthetic_ids:
                raise StartupError(
                    f"{name}_ISSUER is the dev setup's stand-in for ID-porten: refused unless "
                    "NLR_ALLOW_SYNTHETIC_IDS is on"
                )
            settings = OidcProviderSettings(method.value, issuer, audience, jwks, acr)
            try:
                validators[method] = IdTokenValidator(settings)
            except (ValueError, JwksUnavailable) as error:
                raise StartupError(f"{name}_JWKS: {error}") from None
        return validators

    async def _shared_limits(self) -> LimitState:
        """Where the limits shared by every worker and server keep their state: Redis when
        NLR_REDIS_URL names one, else the register's database."""
        config = self.config
        if not config.redis_url:
            engine = create_store_engine(config.database_url, pool_size=2)
            # Its threads are counted with the store workers' when the server stops.
            return SqlLimitState(
                engine, self._write_lock, thread_name_prefix=f"{self._worker_prefix}-limits"
            )
        limits = RedisLimitState(config.redis_url, config.redis_prefix)
        try:
            await limits.ping()
        except Exception as error:
            await limits.close()
            await self.stop(0)
            raise StartupError(
                f"NLR_REDIS_URL: Redis does not answer ({type(error).__name__})"
            ) from error
        return limits

    def _interceptor(self, services: Services, audit: AuditWriter) -> RegisterInterceptor:
        config = self.config
        assert self._limit_state is not None
        access = AccessControl(
            services.unit_of_work,
            self._executor,
            cache_seconds=config.access_cache_seconds,
            code_failures=SharedFailureLimiter(
                self._limit_state, config.library_code_failures, config.library_code_window_seconds
            ),
        )
        vendor = VendorOnly(
            access,
            SharedCallRateLimiter(
                self._limit_state, config.vendor_rate_limit, config.vendor_rate_burst
            ),
        )
        admissions = AdmissionTable(
            strategies={
                REGISTRY_SERVICE: VendorAndLibrary(vendor),
                AUTH_SERVICE: vendor,
                SELF_SERVICE: PortalSession(vendor, services, LOGIN_RPCS, WAITING_RPCS),
            },
            open_services=OPEN_SERVICES,
        )
        return RegisterInterceptor(admissions, audit)

    async def wait(self) -> None:
        assert self._server is not None
        await self._server.wait_for_termination()

    async def stop(self, grace: float | None = None) -> None:
        """Refuses new calls, lets in-flight ones finish within the grace period, then stops."""
        grace = self.config.grace_seconds if grace is None else grace
        if self._feed_hub is not None:
            await self._feed_hub.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._health.enter_graceful_shutdown()
            await self._server.stop(grace)
        if self._audit is not None:
            try:
                await asyncio.wait_for(self._audit.stop(), timeout=AUDIT_FLUSH_ON_STOP_SECONDS)
            except TimeoutError:
                log.error("stopped without writing %d audit events", self._audit.backlog)
        if self._limit_state is not None:
            await self._limit_state.close()
            self._limit_state = None
        for audit_log in (self._audit_log, self._loop_audit_log):
            if audit_log is not None:
                audit_log.close()
                audit_log.engine.dispose()
        # Calls still stuck in the database after the grace period are abandoned, not awaited:
        # the process must be able to exit (see __main__).
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._passwords is not None:
            self._passwords.shutdown()
        for loop_store in (self._loop_reads, self._loop_writes):
            if loop_store is not None:
                loop_store.dispose()
        if self._async_engine is not None:
            if self._greenlets is not None:
                await greenlet_spawn(self._greenlets.close_kept)
            await self._async_engine.dispose()
        if isinstance(self._eraser, WalTruncation):
            self._eraser.stop()
        self._engine.dispose()

    @property
    def busy_workers(self) -> int:
        """Database calls still running (after stop: abandoned at the end of the grace period).

        Idle workers end as soon as the pool is shut down; a moment's wait tells them apart.
        """
        deadline = time.monotonic() + 0.5
        workers = [t for t in threading.enumerate() if t.name.startswith(self._worker_prefix)]
        for worker in workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        return sum(1 for worker in workers if worker.is_alive())

    def _check_database(self) -> None:
        url = make_url(self.config.database_url)
        named = url.render_as_string(hide_password=True)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            path = Path(str(url.database)).expanduser().resolve()
            if not path.exists():
                # Opening it would create an empty file, which a later `nlr-admin migrate`
                # with another URL would leave empty.
                raise StartupError(
                    f"NLR_DATABASE_URL: the SQLite database {path} does not exist: "
                    f"create it with NLR_DATABASE_URL={named} nlr-admin migrate"
                )
        try:
            ping(self._engine)
        except Exception as error:
            raise StartupError(
                f"NLR_DATABASE_URL: the database does not answer ({type(error).__name__})"
            ) from error
        if not migrate.is_at_head(self._engine):
            raise StartupError(
                f"the schema of the database {named} is at "
                f"{migrate.current_revision(self._engine)!r}, the server needs "
                f"{migrate.head_revision()!r}: run NLR_DATABASE_URL={named} nlr-admin migrate"
            )


def _cannot_listen(config: Config) -> str:
    address = config.listen_address
    if config.shared_port:
        return (
            f"NLR_LISTEN_ADDRESS: cannot listen on {address}: it is in use by a process that "
            "does not share it, or not an address of this host"
        )
    return (
        f"NLR_LISTEN_ADDRESS: cannot listen on {address}: it is in use (another nlr-server?) "
        "or not an address of this host; several worker processes of one deployment share an "
        "address with NLR_SHARED_PORT=true"
    )


def _load_keyring(config: Config) -> Keyring:
    try:
        return Keyring.load(config.keyring)
    except KeyringError as error:
        raise StartupError(f"NLR_KEYRING: {error}") from error


def _population_source(config: Config) -> PopulationSource:
    """Folkeregisteret as NLR_FREG_URL and NLR_MASKINPORTEN_* name it; StartupError if they
    do not make one."""
    settings = {
        "NLR_FREG_URL": config.freg_url,
        "NLR_MASKINPORTEN_URL": config.maskinporten_url,
        "NLR_MASKINPORTEN_CLIENT_ID": config.maskinporten_client_id,
        "NLR_MASKINPORTEN_KEY": config.maskinporten_key,
        "NLR_MASKINPORTEN_KID": config.maskinporten_kid,
        "NLR_MASKINPORTEN_SCOPE": config.maskinporten_scope,
    }
    missing = missing_settings(settings)
    if missing:
        raise StartupError(f"{', '.join(missing)} not set: needed with NLR_FREG_URL")
    try:
        return folkeregisteret_source(settings)
    except MaskinportenError as error:
        raise StartupError(str(error)) from None


def _deliver_notices(config: Config, services: Services) -> Coroutine[Any, Any, None]:
    sender = None
    if config.smtp_host:
        sender = SmtpSender(
            config.smtp_host, config.smtp_port, config.smtp_sender, starttls=config.smtp_starttls
        )
    else:
        log.warning(
            "NLR_SMTP_HOST is not set: deletion notices are queued but not sent, and given up "
            "after NLR_NOTICE_GIVE_UP_HOURS"
        )
    policy = DeliveryPolicy(
        first_retry=dt.timedelta(seconds=config.notice_retry_seconds),
        give_up_after=dt.timedelta(hours=config.notice_give_up_hours),
    )
    return deliver_notices(services.unit_of_work, sender, policy, config.notice_poll_seconds)


def _credentials(config: Config) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())],
        root_certificates=config.tls_client_ca.read_bytes(),
        require_client_auth=True,
    )


async def _vacuum_after_deletions(vacuum: DeletionVacuum, bound_seconds: float) -> None:
    """Vacuums after deletions, checking every quarter of the bound: a round that starts then,
    waits at most a quarter for older transactions and takes less than half ends within it."""
    while True:
        await asyncio.sleep(bound_seconds / 4)
        if not vacuum.pending:
            continue
        try:
            await asyncio.to_thread(vacuum.vacuum_if_pending)
        except Exception as error:
            # Still pending: the next round tries again.
            log.error("deletion vacuum failed: %s", type(error).__name__)


async def _maintain(
    services: Services, interval_seconds: float, feed_retention: dt.timedelta
) -> None:
    """Runs the maintenance jobs (expired identities, ...) every interval, on a store worker.
    Several servers may do it at once: each job only removes what is due, so they agree."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            report = await services.run(
                run_maintenance,
                MAINTENANCE,
                dt.datetime.now(dt.UTC),
                feed_retention,
                services.lockout.forget_after,
            )
        except Exception as error:
            # The next round tries again; the server keeps serving meanwhile. By class only:
            # an exception's text may quote personal data.
            log.error("maintenance failed (%s)", describe(error))
            continue
        if report.total:
            log.info("maintenance: %s", report.counts())


async def _watch_keyring(keyring: Keyring, interval_seconds: float) -> None:
    """Re-reads the keyring when its file changes, so a rotation needs no restart."""

    def modified() -> float | None:
        try:
            return keyring.path.stat().st_mtime_ns
        except OSError:
            return None

    seen = modified()
    while True:
        await asyncio.sleep(interval_seconds)
        now = modified()
        if now == seen:
            continue
        try:
            await asyncio.to_thread(keyring.reload)
        except KeyringError as error:
            log.error("keyring changed but cannot be loaded; keeping the keys in use: %s", error)
        else:
            log.info("keyring reloaded")
        seen = now
