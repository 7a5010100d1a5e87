"""
Shared test fixtures: a server core on a fake clock, and a client that
speaks the wire protocol over a L{StringTransport}.
"""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher
from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.testing import MemoryReactorClock, StringTransport

from mrs.passwords import verifyPassword
from mrs.permissions import PermissionService
from mrs.relay.hub import Hub
from mrs.server.auth import Authenticator
from mrs.server.factory import ClientFactory, SessionSettings
from mrs.server.locations import LocationPolicy
from mrs.store.memory import MemoryStore
from mrs.wire import (
    PREAMBLE,
    Decoder,
    InvalidMessage,
    MediaFrame,
    encodeMessage,
    parseMessage,
)

#: Cheap argon2 parameters: tests hash many passwords.
_FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def fastHash(password: str) -> str:
    return _FAST.hash(password)


def syncVerify(passwordHash: str, password: str) -> Any:
    return succeed(verifyPassword(passwordHash, password))


def populate(store: MemoryStore) -> None:
    """
    Add the accounts most tests use: admin C{root}, operators C{alice} and
    C{bob}, devices C{cam-1} and C{cam-2}; alice may see everything of
    cam-1 and control it, bob only its location.
    """
    store.addUser("root", "admin", fastHash("root-pw"), actor="test")
    store.addUser("alice", "operator", fastHash("alice-pw"), actor="test")
    store.addUser("bob", "operator", fastHash("bob-pw"), actor="test")
    store.addDevice("cam-1", "Camera 1", fastHash("cam-1-secret"), actor="test")
    store.addDevice("cam-2", "Camera 2", fastHash("cam-2-secret"), actor="test")
    store.addRule("user", "alice", "device", "cam-1",
                  ["video", "audio", "location", "control", "talk"], actor="test")
    store.addRule("user", "bob", "device", "cam-1", ["location"], actor="test")


class ServerCore:
    """
    The session layer, hub and permission service on a fake clock, with
    no sockets.
    """

    def __init__(self, allowPlaintext: bool = True, tlsCreator: Any = None,
                 **settings: Any) -> None:
        self.clock = MemoryReactorClock()
        self.store = MemoryStore(clock=self.clock.seconds)
        populate(self.store)
        self.permissions = PermissionService(self.store, self.clock)
        self.permissions.startService()
        self.hub = Hub(self.clock, self.permissions, reconnectGrace=settings.pop("grace", 30.0),
                       onDemandLinger=settings.pop("linger", 5.0),
                       locationAlwaysOn=settings.pop("locationAlwaysOn", True),
                       validateLocation=LocationPolicy())
        self.permissions.addListener(self.hub.applyPermissions)
        # Pings would interleave with what the tests expect; the keepalive
        # tests set their own intervals.
        settings.setdefault("keepaliveInterval", 3600.0)
        settings.setdefault("idleTimeout", 7200.0)
        self.settings = SessionSettings(**settings)
        self.authenticator = Authenticator(
            self.store, self.clock, allowPlaintext=allowPlaintext, failureDelay=1.0,
            failuresPerMinute=5, tokenLifetime=3600, tlsPortNumber=12651, verify=syncVerify)
        self.factory = ClientFactory(self.clock, self.hub, self.authenticator, self.settings,
                                     tlsCreator, tlsPort=False)

    def connect(self, host: str = "10.0.0.7", port: int = 40000) -> WireClient:
        transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
        session = self.factory.buildProtocol(None)
        session.makeConnection(transport)
        return WireClient(session, transport)

    def device(self, deviceId: str = "cam-1", secret: str | None = None,
               tracks: tuple[str, ...] = ("video", "audio", "location")) -> WireClient:
        client = self.connect()
        client.hello("device")
        client.send({"type": "login", "device": deviceId,
                     "secret": secret or f"{deviceId}-secret"})
        reply = client.receive()
        assert reply[0]["type"] == "login_ok", reply
        client.startup = []
        if tracks:
            codecs = {"video": "h264", "audio": "aac"}
            client.send({"type": "announce", "tracks": [
                {"track": t, "codec": codecs[t]} if t in codecs else {"track": t}
                for t in tracks]})
            client.startup = client.receive()
        return client

    def monitor(self, user: str = "alice", password: str | None = None) -> WireClient:
        client = self.connect()
        client.hello("monitor")
        client.send({"type": "login", "user": user, "password": password or f"{user}-pw"})
        reply = client.receive()
        assert reply[-1]["type"] == "login_ok", reply
        return client


class WireClient:
    """
    The client end of one L{StringTransport}: encodes what it sends and
    decodes what the server wrote.
    """

    def __init__(self, session: Any, transport: StringTransport) -> None:
        self.session = session
        self.transport = transport
        self.decoder = Decoder(64 * 1024 * 1024, expectPreamble=False)
        self.preambleSent = False
        #: What the server sent right after the device's announce.
        self.startup: list[Any] = []

    def sendRaw(self, data: bytes) -> None:
        self.session.dataReceived(data)

    def send(self, message: dict[str, Any]) -> None:
        data = encodeMessage(parseMessage(message))
        if not self.preambleSent:
            data = PREAMBLE + data
            self.preambleSent = True
        self.session.dataReceived(data)

    def sendMedia(self, track: int, codec: int, flags: int, timestamp: int, data: bytes,
                  source: int = 0) -> bytes:
        frame = MediaFrame(track, codec, flags, source, timestamp, data).encode()
        self.session.dataReceived(frame)
        return frame

    def hello(self, role: str) -> dict[str, Any]:
        self.send({"type": "hello", "versions": [1], "role": role})
        items = self.receive()
        assert items[-1]["type"] == "welcome", items
        return items[-1]

    def receive(self) -> list[Any]:
        """
        Return what the server wrote since the last call: control messages
        as dicts and media frames as L{MediaFrame}s.
        """
        data = self.transport.value()
        self.transport.clear()
        result: list[Any] = []
        for item in self.decoder.feed(data):
            if isinstance(item, InvalidMessage):
                raise AssertionError(f"the server sent an invalid message: {item.error}")
            result.append(item if isinstance(item, MediaFrame) else item.toDict())
        return result

    def messages(self) -> list[dict[str, Any]]:
        return [m for m in self.receive() if isinstance(m, dict)]

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting or self.transport.disconnected)
