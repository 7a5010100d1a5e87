"""
Collaborators for the admin site tests: a hub with canned status entries,
a permission service computed straight from the store, fast password
hashing, the real TLS material running its work synchronously, and a
small browser on top of L{treq.testing.StubTreq} that keeps cookies and
finds CSRF tokens.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from treq.testing import StubTreq
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from mrs.admin import AdminApp
from mrs.admin.sessions import digest
from mrs.config import loadConfig
from mrs.metrics import Metrics
from mrs.passwords import generatePassword, verifyPassword
from mrs.permissions import PermissionService, PermissionSnapshot
from mrs.store.memory import MemoryStore
from mrs.tls import TLSMaterial
from tests.support import fastHash

ORIGIN = "https://mrs.example.test"
ADMIN_PASSWORD = "root-password-1234"  # noqa: S105
OPERATOR_PASSWORD = "alice-password-1234"  # noqa: S105


class FakeHub:
    """
    A hub whose C{statusSnapshot()} returns the entries the test set.
    """

    def __init__(self, entries: list[Any] | None = None) -> None:
        self.entries: list[Any] = list(entries or [])
        self.loggedOut: list[tuple[str, str]] = []

    def statusSnapshot(self) -> list[Any]:
        return list(self.entries)

    def disconnectUser(self, user: str, reason: str) -> int:
        """
        Record the logout and report as many sessions as entries of that
        monitor.
        """
        self.loggedOut.append((user, reason))
        return len([e for e in self.entries
                    if e.get("role") == "monitor" and e.get("name") == user])


class StorePermissions:
    """
    C{explain} computed from the store's current snapshot, and a count of
    C{refreshNow} calls.
    """

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.refreshes = 0

    def explain(self, user: str, device: str) -> list[Any]:
        snapshot: list[Any] = []
        self.store.snapshot().addCallback(snapshot.append)
        return PermissionSnapshot.fromStore(snapshot[0]).explain(user, device)

    def refreshNow(self) -> Deferred[None]:
        self.refreshes += 1
        return succeed(None)


class FastPasswords:
    """
    Argon2 with cheap parameters, run synchronously.
    """

    def hash(self, password: str) -> Deferred[str]:
        return succeed(fastHash(password))

    def verify(self, passwordHash: str, password: str) -> Deferred[bool]:
        return succeed(verifyPassword(passwordHash, password))

    def generate(self) -> str:
        return generatePassword()


def synchronously(f: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
    return maybeDeferred(f, *args, **kwargs)


class AdminFixture:
    """
    An L{AdminApp} on a memory store, a fake clock and the real TLS
    material in a temporary directory, with an admin C{root}, an operator
    C{alice} and a device C{cam-1}.
    """

    def __init__(self, testCase: SynchronousTestCase, **overrides: str) -> None:
        self.testCase = testCase
        self.clock = MemoryReactorClock()
        self.clock.advance(time.time())
        self.store = MemoryStore(clock=self.clock.seconds)
        self.store.open()
        self.store.addUser("root", "admin", fastHash(ADMIN_PASSWORD), "test")
        self.store.addUser("alice", "operator", fastHash(OPERATOR_PASSWORD), "test")
        self.store.addDevice("cam-1", "Camera 1", fastHash("cam-1-secret"), "test")
        dataDir = Path(testCase.mktemp())
        dataDir.mkdir()
        settings = {"server_names": "mrs.example.test, 127.0.0.1", "data_dir": str(dataDir)}
        settings.update(overrides)
        self.config = loadConfig(None, settings)
        self.tls = TLSMaterial(
            dataDir, self.config.server_names, self.config.min_tls_version, "ec-p256",
            self.store, self.clock, runInThread=synchronously,
        )
        self.tls.startService()
        testCase.addCleanup(self.tls.stopService)
        testCase.successResultOf(self.tls.whenReady())
        self.hub = FakeHub()
        self.permissions = StorePermissions(self.store)
        self.metrics = Metrics()
        self.app = AdminApp(
            self.store, self.tls, self.hub, self.permissions, self.config, self.clock,
            self.metrics, passwords=FastPasswords(),
        )
        self.resource = self.app.resource()

    def browser(self) -> Browser:
        return Browser(self.testCase, self.resource)

    def signedIn(self, name: str = "root", password: str = ADMIN_PASSWORD) -> Browser:
        browser = self.browser()
        response = browser.login(name, password)
        self.testCase.assertEqual(response.code, 303, browser.lastBody)
        return browser

    def apiToken(self, user: str = "root") -> str:
        token = "mrs_test_" + user
        self.store.addApiToken(user, "tests", digest(token), "test")
        return token

    def audit(self) -> list[Any]:
        return self.testCase.successResultOf(self.store.listAudit())  # type: ignore[no-any-return]


class Browser:
    """
    A cookie-keeping client of the admin site with no sockets.
    """

    def __init__(self, testCase: SynchronousTestCase, resource: Any) -> None:
        self.testCase = testCase
        self.stub = StubTreq(resource)
        self.lastBody = ""
        self.csrf = ""

    def request(self, method: str, path: str, data: dict[str, Any] | None = None,
                headers: dict[str, Any] | None = None, body: bytes | None = None) -> Any:
        kwargs: dict[str, Any] = {"allow_redirects": False, "headers": headers or {}}
        if data is not None:
            kwargs["data"] = urlencode(data, doseq=True).encode("ascii")
            kwargs["headers"] = {**kwargs["headers"],
                                 "Content-Type": "application/x-www-form-urlencoded"}
        elif body is not None:
            kwargs["data"] = body
        d = self.stub.request(method, ORIGIN + path, **kwargs)
        self.stub.flush()
        response = self.testCase.successResultOf(d)
        content = self.testCase.successResultOf(self.stub.content(response))
        self.lastBody = content.decode("utf-8", "replace")
        match = re.search(r'name="csrf" value="([^"]+)"', self.lastBody)
        if match:
            self.csrf = match.group(1)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, csrf: bool = True,
             **kwargs: Any) -> Any:
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf", self.csrf)
        return self.request("POST", path, data=data, **kwargs)

    def login(self, name: str, password: str) -> Any:
        self.get("/admin/login")
        return self.post("/admin/login", {"username": name, "password": password})

    def setCookies(self, response: Any) -> list[str]:
        return list(response.headers.getRawHeaders("set-cookie", []))


class ListeningAdmin:
    """
    The admin site on a real HTTPS listener on 127.0.0.1, with the real
    TLS material (threads and all) in a temporary directory, the real
    permission service (reloaded by the site after each change, not
    polling) and a memory or SQLite store.

    Call L{start} from a test and wait for its L{Deferred}; the listener
    and the TLS material stop at cleanup.
    """

    def __init__(self, testCase: Any, reactor: Any, hubEntries: list[Any] | None = None,
                 sqlite: bool = False, **overrides: str) -> None:
        self.testCase = testCase
        self.reactor = reactor
        self.dataDir = Path(testCase.mktemp()).resolve()
        self.dataDir.mkdir()
        self.store: Any
        if sqlite:
            from mrs.store.sqlite import SQLiteStore

            self.store = SQLiteStore(self.dataDir / "mrs.sqlite3", reactor)
        else:
            self.store = MemoryStore(clock=reactor.seconds)
        settings = {"server_names": "localhost, 127.0.0.1", "data_dir": str(self.dataDir)}
        settings.update(overrides)
        self.config = loadConfig(None, settings)
        self.tls = TLSMaterial(self.dataDir, self.config.server_names,
                               self.config.min_tls_version, "ec-p256", self.store, reactor)
        self.hub = FakeHub(hubEntries)
        self.metrics = Metrics()
        # With SQLite, the real password hashing runs in threads as in the server.
        self.permissions = PermissionService(self.store, reactor, "UTC")
        self.app = AdminApp(self.store, self.tls, self.hub, self.permissions,
                            self.config, reactor, self.metrics,
                            passwords=None if sqlite else FastPasswords())
        self.port: Any = None

    async def start(self) -> str:
        """
        Start the TLS material and the listener; return the site's origin.
        """
        from twisted.protocols.tls import TLSMemoryBIOFactory

        await self.store.open()
        self.testCase.addCleanup(self.store.close)
        await self.permissions.refreshNow()
        self.tls.startService()
        self.testCase.addCleanup(self.tls.stopService)
        await self.tls.whenReady()
        factory = TLSMemoryBIOFactory(self.tls.serverCreator([b"http/1.1"]), False,
                                      self.app.site())
        self.port = self.reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.testCase.addCleanup(self.port.stopListening)
        return f"https://127.0.0.1:{self.port.getHost().port}"

    def certificateFile(self) -> str:
        """
        Write the served certificate to a file for clients to trust.
        """
        path = self.dataDir / "trust.pem"
        path.write_bytes(self.tls.current.certificatePem)
        return str(path)
