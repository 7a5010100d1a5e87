"""
The real server on 127.0.0.1 inside the test process, and a raw protocol
client, for the loopback tier of the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.application.service import MultiService
from twisted.internet import reactor as globalReactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mrs.config import loadConfig
from mrs.passwords import hashPassword
from mrs.server.service import buildServices
from mrs.tls.client import clientCreator
from mrs.wire import (
    PREAMBLE,
    Decoder,
    InvalidMessage,
    MediaFrame,
    encodeMessage,
    parseMessage,
)

reactor: Any = globalReactor


class LoopbackServer:
    """
    The whole service tree of C{twistd mrs}, listening on free ports of
    127.0.0.1, with a temporary data directory.
    """

    def __init__(self, dataDir: str, **overrides: Any) -> None:
        values = {
            "data_dir": dataDir,
            "client_port": "tcp:0:interface=127.0.0.1",
            "client_tls_port": "tcp:0:interface=127.0.0.1",
            "admin_port": "tcp:0:interface=127.0.0.1",
            "server_names": "localhost, 127.0.0.1",
            "login_failure_delay": "0.2",
        }
        values.update({k: str(v) for k, v in overrides.items()})
        self.config = loadConfig(None, values)
        self.root = MultiService()
        self.services = {}
        for service in buildServices(self.config, reactor):
            service.setServiceParent(self.root)
            self.services[service.name] = service
        self.store = self.services["store"].store
        self.tls = self.services["tls"]
        self.hub = self.services["hub"].hub

    @inlineCallbacks
    def start(self):  # type: ignore[no-untyped-def]
        self.root.startService()
        yield self.services["client listeners"].whenReady()
        yield self.services["admin web site"].whenReady()
        yield self.services["store"].firstAdmin.whenReady()
        ports = self.services["client listeners"].ports
        self.plainPort = ports[0].getHost().port
        self.tlsPort = ports[1].getHost().port
        self.adminPort = self.services["admin web site"].ports[0].getHost().port

    def stop(self) -> Deferred[Any]:
        return self.root.stopService()  # type: ignore[no-any-return]

    @property
    def certificatePath(self) -> Path:
        return Path(self.config.data_dir) / "tls" / "server.crt"

    @inlineCallbacks
    def addAccounts(self):  # type: ignore[no-untyped-def]
        """
        Create operator alice (password alice-pw) with every right on device
        cam-1 (secret cam-1-secret), and operator bob with location only.
        """
        store = self.store
        yield store.addUser("alice", "operator", hashPassword("alice-pw"), actor="test")
        yield store.addUser("bob", "operator", hashPassword("bob-pw"), actor="test")
        for name in ("cam-1", "cam-2"):
            yield store.addDevice(name, name, hashPassword(f"{name}-secret"), actor="test")
        yield store.addRule("user", "alice", "device", "cam-1",
                            ["video", "audio", "location", "control", "talk"], actor="test")
        yield store.addRule("user", "bob", "device", "cam-1", ["location"], actor="test")
        yield self.services["permissions"].refreshNow()


class RawClient(Protocol):
    """
    A minimal protocol client recording everything the server sends.
    """

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.decoder = Decoder(64 * 1024 * 1024, expectPreamble=False)
        self.closed: Deferred[None] = Deferred()
        self.waiters: list[tuple[Callable[[], bool], Deferred[None]]] = []
        self.receivedBytes = 0
        self.preambleSent = False
        self.lost = False
        #: Reply to the server's keepalive pings with pong, as real clients do.
        self.autoPong = True

    def connectionMade(self) -> None:
        pass

    def dataReceived(self, data: bytes) -> None:
        self.receivedBytes += len(data)
        for item in self.decoder.feed(data):
            if isinstance(item, InvalidMessage):
                raise AssertionError(f"invalid message from the server: {item.error}")
            if self.autoPong and not isinstance(item, MediaFrame) and item.TYPE == "ping":
                # Keepalive: reply like a real client and record nothing.
                self.send({"type": "pong"})
                continue
            self.items.append(item if isinstance(item, MediaFrame) else item.toDict())
        self._check()

    def connectionLost(self, reason: Any = None) -> None:
        self.lost = True
        self._check()
        self.closed.callback(None)

    def _check(self) -> None:
        for waiter in list(self.waiters):
            condition, d = waiter
            if condition():
                self.waiters.remove(waiter)
                d.callback(None)

    def waitFor(self, condition: Callable[[], bool], timeout: float = 10.0) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        if condition():
            d.callback(None)
            return d
        self.waiters.append((condition, d))
        d.addTimeout(timeout, reactor)
        return d

    def messages(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [i for i in self.items if isinstance(i, dict) and (kind is None
                                                                   or i["type"] == kind)]

    def frames(self) -> list[MediaFrame]:
        return [i for i in self.items if isinstance(i, MediaFrame)]

    def waitForMessage(self, kind: str, count: int = 1, timeout: float = 10.0
                       ) -> Deferred[dict[str, Any]]:
        d = self.waitFor(lambda: len(self.messages(kind)) >= count or self.lost, timeout)
        return d.addCallback(lambda _: self.messages(kind)[count - 1])

    def send(self, message: dict[str, Any]) -> None:
        data = encodeMessage(parseMessage(message))
        if not self.preambleSent:
            data = PREAMBLE + data
            self.preambleSent = True
        self.transport.write(data)  # type: ignore[union-attr]

    def sendMedia(self, track: int, codec: int, flags: int, timestamp: int, data: bytes,
                  source: int = 0) -> bytes:
        encoded = MediaFrame(track, codec, flags, source, timestamp, data).encode()
        self.transport.write(encoded)  # type: ignore[union-attr]
        return encoded


@inlineCallbacks
def connect(server: LoopbackServer, tls: bool = True, fingerprint: str | None = None,
            alpn: tuple[bytes, ...] = (b"mrs/1",), hostname: str = "127.0.0.1"):  # type: ignore[no-untyped-def]
    """
    Connect a L{RawClient} to the TLS port (verifying the server against its
    own certificate, or a pinned fingerprint) or to the plaintext port.
    """
    if tls:
        endpoint: Any = TCP4ClientEndpoint(reactor, "127.0.0.1", server.tlsPort)
        creator = clientCreator(hostname, caFile=None if fingerprint else server.certificatePath,
                                fingerprint=fingerprint, alpn=alpn)
        endpoint = wrapClientTLS(creator, endpoint)
    else:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", server.plainPort)
    client = yield connectProtocol(endpoint, RawClient())
    return client


@inlineCallbacks
def login(client: RawClient, role: str, name: str, secret: str):  # type: ignore[no-untyped-def]
    client.send({"type": "hello", "versions": [1], "role": role})
    yield client.waitForMessage("welcome")
    if role == "device":
        client.send({"type": "login", "device": name, "secret": secret})
    else:
        client.send({"type": "login", "user": name, "password": secret})
    yield client.waitFor(lambda: bool(client.messages("login_ok") or client.messages("error")))
    return (client.messages("login_ok") or client.messages("error"))[-1]


def sleep(seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds, lambda: None)


class LoopbackTestCase(TestCase):
    """
    A test with the real server running on loopback and the accounts of
    L{LoopbackServer.addAccounts}; C{overrides} are configuration values.
    """

    overrides: dict[str, object] = {}

    @inlineCallbacks
    def setUp(self):  # type: ignore[no-untyped-def]
        self.server = LoopbackServer(self.mktemp(), **self.overrides)
        yield self.server.start()
        yield self.server.addAccounts()
        self.clients: list[RawClient] = []

    @inlineCallbacks
    def tearDown(self):  # type: ignore[no-untyped-def]
        for client in self.clients:
            if not client.lost and client.transport is not None:
                client.transport.abortConnection()
                yield client.closed
        yield self.server.stop()

    @inlineCallbacks
    def client(self, **kwargs):  # type: ignore[no-untyped-def]
        client = yield connect(self.server, **kwargs)
        self.clients.append(client)
        return client
