"""
The services of a running server, built from a L{Config}.

L{buildServices} returns them in start order: the store, the TLS material,
the permission service, the hub, the client listeners, the admin site and
the metrics updater.  Services that need another one to be ready (the
store open, the key and certificate loaded) wait for its C{whenReady}
Deferred before they listen, so nothing is exposed half-configured.  A
failure while starting is logged and stops the reactor.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Any

from twisted.application.service import IService, Service
from twisted.internet.defer import (
    Deferred,
    DeferredList,
    FirstError,
    gatherResults,
    inlineCallbacks,
)
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure

from mrs.config import Config
from mrs.permissions import PermissionService
from mrs.ready import Readiness
from mrs.relay.hub import Hub
from mrs.server.auth import Authenticator
from mrs.server.closelog import EarlyCloseLog
from mrs.server.factory import ClientFactory, SessionSettings, portNumber
from mrs.server.transport import RelayTLSFactory, sendDirectly
from mrs.store.errors import StoreError

#: ALPN protocol ids: our client ports, and HTTP/1.1 on the admin port.
CLIENT_ALPN = [b"mrs/1"]
ADMIN_ALPN = [b"http/1.1"]

log = Logger("mrs")


def prepareDataDir(path: Path) -> None:
    """
    Create the data directory with mode 0700 if it does not exist.
    """
    if not path.exists():
        path.mkdir(mode=0o700, parents=True)
        log.info("created data directory {path}", path=str(path))
    elif path.stat().st_mode & 0o077:
        log.warn("data directory {path} is readable by other users; "
                 "run chmod 700 on it", path=str(path))


#: Start-up failures that come from the machine or the data, not from a
#: bug: they are logged as one line, without a traceback.
EXPECTED_STARTUP_ERRORS = (CannotListenError, StoreError, OSError, ValueError)


def _failStartup(reactor: Any, what: str):  # type: ignore[no-untyped-def]
    """
    Return an errback that logs why C{what} could not start, stops the
    reactor and makes the process exit with status 1.
    """

    def failed(failure):  # type: ignore[no-untyped-def]
        if failure.check(*EXPECTED_STARTUP_ERRORS):
            log.critical("{what} failed to start: {error}; stopping the server", what=what,
                         error=failure.getErrorMessage())
        else:
            log.failure("{what} failed to start; stopping the server", failure, what=what)
        if reactor.running and not getattr(reactor, "_mrsStopping", False):
            reactor._mrsStopping = True
            reactor.addSystemEventTrigger("after", "shutdown", _exitWithFailure)
            reactor.stop()
        return None

    return failed


def _exitWithFailure() -> None:
    """
    End the process with status 1 once the reactor has shut down, so that
    systemd (Restart=on-failure) and scripts see the failure; twistd itself
    always exits with 0.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


class StoreService(Service):
    """
    Opens the store and, on the first start, creates the admin account.
    """

    name = "store"
    log = Logger()

    def __init__(self, store: Any, dataDir: Path, reactor: Any) -> None:
        self.store = store
        self.dataDir = dataDir
        self.reactor = reactor
        self.ready = Readiness()
        #: Fires once the first admin account exists (or existed already).
        self.firstAdmin = Readiness()

    def whenReady(self) -> Deferred[None]:
        return self.ready.whenReady()

    def startService(self) -> None:
        super().startService()
        d = self._open()
        d.addCallbacks(lambda _: self.ready.fire(), self._failed)

    def _failed(self, failure: Failure) -> None:
        self.ready.fire(failure)
        _failStartup(self.reactor, "the store")(failure)

    @inlineCallbacks
    def _open(self):  # type: ignore[no-untyped-def]
        prepareDataDir(self.dataDir)
        yield self.store.open()
        self.log.info("store opened: {path}", path=str(self.store.path))

    @inlineCallbacks
    def createFirstAdmin(self):  # type: ignore[no-untyped-def]
        """
        Create the admin account with a one-time password when the store
        has no user.  The server calls this once it listens on every port,
        so that a first start that fails does not use up the one time the
        password is shown.
        """
        users = yield self.store.listUsers()
        if not users:
            yield self._createFirstAdmin()
        self.firstAdmin.fire()

    @inlineCallbacks
    def _createFirstAdmin(self):  # type: ignore[no-untyped-def]
        from mrs.passwords import generatePassword, hashPasswordInThread

        password = generatePassword()
        hashed = yield hashPasswordInThread(password)
        yield self.store.addUser("admin", "admin", hashed, actor="system",
                                 mustChangePassword=True)
        # The one place a password is logged, on purpose: the operator needs
        # it to log in once, and must change it at that first login.
        self.log.warn(
            "created the admin account with the one-time password {password} ; "
            "log in at the admin web UI and change it now (it is shown only this once)",
            password=password,
        )

    def stopService(self) -> Deferred[None] | None:  # type: ignore[override]
        super().stopService()
        self.log.info("store closing")
        return self.store.close()


class HubService(Service):
    """
    Owns the hub and feeds it permission changes and settings changed at
    run time.
    """

    name = "hub"
    log = Logger()

    def __init__(self, hub: Hub, permissions: PermissionService,
                 settings: SessionSettings, sessions: set[Any]) -> None:
        self.hub = hub
        self.permissions = permissions
        self.settings = settings
        self.sessions = sessions

    def startService(self) -> None:
        super().startService()
        self.permissions.addListener(self.hub.applyPermissions)
        self.permissions.addListener(self._applySettings)
        self.log.info("relay hub started: reconnect grace {grace:g} s, on-demand linger "
                      "{linger:g} s, queue limit {limit} bytes per monitor",
                      grace=self.hub.reconnectGrace, linger=self.hub.onDemandLinger,
                      limit=self.settings.queueLimit)

    def _applySettings(self, snapshot: Any) -> None:
        timeout = self.permissions.liveSettings.get("congestion_timeout")
        if timeout is None or timeout == self.settings.congestionTimeout:
            return
        self.settings.congestionTimeout = float(timeout)  # type: ignore[arg-type]
        for session in self.sessions:
            if session.queue is not None:
                session.queue.congestionTimeout = self.settings.congestionTimeout

    def stopService(self) -> None:
        super().stopService()
        self.hub.stop()
        self.log.info("relay hub stopped")


class ListenerService(Service):
    """
    Listens on a set of endpoints once its dependencies are ready, and
    stops listening when stopped.
    """

    log = Logger()

    def __init__(self, name: str, reactor: Any, listeners: list[tuple[str, str, Any]],
                 dependencies: list[Any]) -> None:
        self.name = name
        self.reactor = reactor
        self.listeners = listeners
        self.dependencies = dependencies
        self.ports: list[Any] = []
        self.ready = Readiness()
        #: The open client sessions, for the client listeners.
        self.sessions: set[Any] = set()

    def whenReady(self) -> Deferred[None]:
        return self.ready.whenReady()

    def startService(self) -> None:
        super().startService()
        d = gatherResults([dep.whenReady() for dep in self.dependencies], consumeErrors=True)
        d.addCallback(lambda _: self._listen())
        d.addCallbacks(lambda _: self.ready.fire(), self._failed)

    def _failed(self, failure: Failure) -> None:
        self.ready.fire(failure)
        if failure.check(FirstError):
            # A dependency failed to start and has logged why already.
            return
        _failStartup(self.reactor, str(self.name))(failure)

    @inlineCallbacks
    def _listen(self):  # type: ignore[no-untyped-def]
        for label, description, factoryMaker in self.listeners:
            endpoint = serverFromString(self.reactor, description)
            port = yield endpoint.listen(factoryMaker())
            sendDirectly(port)
            self.ports.append(port)
            address = port.getHost()
            self.log.info("{label} listening on {host} port {port}", label=label,
                          host=address.host, port=address.port)

    def stopService(self) -> Deferred[Any]:  # type: ignore[override]
        super().stopService()
        ports, self.ports = self.ports, []
        self.log.info("{name} stopping", name=self.name)
        stopped = [Deferred.fromCoroutine(_stop(p)) for p in ports]
        for session in list(self.sessions):
            stopped.append(session.closed)
            session.fatal("server_shutdown", "the server is shutting down")
        return DeferredList(stopped)


async def _stop(port: Any) -> None:
    await port.stopListening()


def buildServices(config: Config, reactor: Any) -> list[IService]:
    """
    Build the server's services, in start order, from C{config}.
    """
    from mrs.metrics import Metrics
    from mrs.store.sqlite import SQLiteStore
    from mrs.tls import TLSMaterial

    dataDir = Path(config.data_dir).absolute()
    metrics = Metrics()
    if config.database != "sqlite":
        from mrs.store.postgres import PostgresStore

        store: Any = PostgresStore(config.database, reactor=reactor)
    else:
        store = SQLiteStore(dataDir / "mrs.sqlite3", reactor=reactor)
    storeService = StoreService(store, dataDir, reactor)

    tls = TLSMaterial(dataDir, config.server_names, config.min_tls_version, config.key_type,
                      store, reactor)
    tls.setName("tls")

    permissions = PermissionService(store, reactor, config.time_zone, metrics=metrics,
                                    after=storeService.whenReady)
    permissions.setName("permissions")

    from mrs.server.locations import LocationPolicy

    hub = Hub(reactor, permissions, reconnectGrace=config.reconnect_grace,
              onDemandLinger=config.on_demand_linger,
              locationAlwaysOn=config.location_always_on, metrics=metrics,
              validateLocation=LocationPolicy())
    settings = SessionSettings.fromConfig(config)
    registry: set[Any] = set()
    hubService = HubService(hub, permissions, settings, registry)

    authenticator = Authenticator(
        store, reactor, allowPlaintext=config.allow_plaintext,
        failureDelay=config.login_failure_delay,
        failuresPerMinute=config.login_failures_per_minute,
        tokenLifetime=config.token_lifetime,
        tlsPortNumber=portNumber(config.client_tls_port), metrics=metrics,
    )

    earlyCloses = EarlyCloseLog(reactor, metrics=metrics)

    def plaintextFactory() -> ClientFactory:
        return ClientFactory(reactor, hub, authenticator, settings,
                             tls.serverCreator(CLIENT_ALPN), tlsPort=False,
                             registry=registry, metrics=metrics, earlyCloses=earlyCloses)

    def tlsFactory() -> RelayTLSFactory:
        inner = ClientFactory(reactor, hub, authenticator, settings,
                              tls.serverCreator(CLIENT_ALPN), tlsPort=True,
                              registry=registry, metrics=metrics, earlyCloses=earlyCloses)
        return RelayTLSFactory(tls.serverCreator(CLIENT_ALPN), False, inner)

    clients = ListenerService(
        "client listeners", reactor,
        [("client port (plaintext, STARTTLS)", config.client_port, plaintextFactory),
         ("client port (TLS)", config.client_tls_port, tlsFactory)],
        [storeService, tls, permissions],
    )
    clients.sessions = registry

    def adminFactory() -> TLSMemoryBIOFactory:
        from mrs.admin.app import AdminApp

        app = AdminApp(store=store, tls=tls, hub=hub, permissions=permissions,
                       config=config, reactor=reactor, metrics=metrics)
        return TLSMemoryBIOFactory(tls.serverCreator(ADMIN_ALPN), False, app.site())

    admin = ListenerService("admin web site", reactor,
                            [("admin web UI (HTTPS)", config.admin_port, adminFactory)],
                            [storeService, tls, permissions])

    # The one-time admin password is shown only once the server is up.
    gatherResults([clients.whenReady(), admin.whenReady()], consumeErrors=True).addCallback(
        lambda _: storeService.createFirstAdmin()).addErrback(
        lambda f: None if f.check(FirstError) else log.failure(
            "creating the first admin account failed", f))

    from mrs.server.metricsservice import MetricsService

    metricsService = MetricsService(metrics, tls)

    log.info("MRS server starting: configuration from {source}, data directory {dataDir}, "
             "run by {user} (pid {pid})", source=config.source, dataDir=str(dataDir),
             user=getpass.getuser(), pid=os.getpid())
    return [storeService, tls, permissions, hubService, clients, admin, metricsService]
