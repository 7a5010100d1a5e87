"""
Client library tests without sockets: the handshake, STARTTLS, login
failures, keepalive, on-demand streaming with keyframe restarts, flow
control, commands, monitor requests and reconnect backoff.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import error as netError
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from mrs.client import (
    SECURITY_PLAINTEXT,
    SECURITY_STARTTLS,
    ClientError,
    ConnectOptions,
    DeviceClient,
    MonitorClient,
    ServerAddress,
    identify,
    parseServer,
)
from mrs.client.connection import BaseClient, ClientSession
from mrs.client.monitor import RequestFailed
from mrs.client.sources import ItemReader
from mrs.media.h264 import H264Reader
from mrs.wire import (
    PREAMBLE,
    CommandResult,
    Decoder,
    ErrorMessage,
    Event,
    Hello,
    InvalidMessage,
    Limits,
    Login,
    MediaFrame,
    Message,
    Ping,
    Start,
    StartTLSOk,
    Stop,
    Subscribed,
    Welcome,
    encodeMessage,
    parseMessage,
)

DATA = Path(__file__).parent / "data"
H264 = DATA / "media" / "testsrc_160x90_25fps_slices3_aud.h264"
SERVER = ServerAddress("127.0.0.1", 12651)


def welcome(starttls: bool = False, encrypted: bool = True, keepalive: float = 10.0,
            idle: float = 30.0) -> bytes:
    return encodeMessage(Welcome(version=1, server="mrs/0.1.0", starttls=starttls,
                                 encrypted=encrypted,
                                 limits=Limits(maxFrameSize=8388608, keepaliveInterval=keepalive,
                                               idleTimeout=idle, loginTimeout=15.0)))


def send(session: ClientSession, message: dict[str, Any] | Message) -> None:
    if isinstance(message, dict):
        message = parseMessage(message)
    session.dataReceived(encodeMessage(message))


def synchronous(f: Any, *args: Any) -> Deferred[Any]:
    return maybeDeferred(f, *args)


class TLSStringTransport(StringTransport):
    """
    A L{StringTransport} that records STARTTLS.
    """

    tlsStarted: Any = None

    def startTLS(self, contextFactory: Any) -> None:
        self.tlsStarted = contextFactory


class Wire:
    """
    Reads what a client wrote to its transport.
    """

    def __init__(self, transport: StringTransport) -> None:
        self.transport = transport
        self.decoder = Decoder(64 * 1024 * 1024, expectPreamble=True)

    def read(self) -> list[Any]:
        data = self.transport.value()
        self.transport.clear()
        items = self.decoder.feed(data)
        for item in items:
            assert not isinstance(item, InvalidMessage), item
        return items

    def messages(self) -> list[Message]:
        return [i for i in self.read() if not isinstance(i, MediaFrame)]

    def frames(self) -> list[MediaFrame]:
        return [i for i in self.read() if isinstance(i, MediaFrame)]


class NeverEndpoint:
    def connect(self, factory: Any) -> Deferred[Any]:
        return Deferred()


def connect(client: BaseClient, transport: StringTransport | None = None
            ) -> tuple[ClientSession, Wire]:
    transport = transport or StringTransport()
    session = ClientSession(client)
    session.makeConnection(transport)
    return session, Wire(transport)


def login(client: BaseClient, name: str = "cam-1") -> tuple[ClientSession, Wire]:
    session, wire = connect(client)
    session.dataReceived(welcome())
    send(session, {"type": "login_ok", "role": client.role, "name": name, "session": "s1"})
    wire.read()
    return session, wire


def makeDevice(reactor: MemoryReactorClock, paths: list[Path] | None = None, pace: bool = True,
               loop: bool = False, reports: list[str] | None = None,
               security: str = "tls") -> DeviceClient:
    readers = [ItemReader(identify(p), clock=reactor.seconds) for p in (paths or [H264])]
    options = ConnectOptions(server=SERVER, security=security)
    report = (reports if reports is not None else []).append
    return DeviceClient(reactor, options, "cam-1", "cam-1-secret", readers, pace=pace,
                        loop=loop, runInThread=synchronous, endpoint=NeverEndpoint(),
                        report=report)


class ParseServerTests(SynchronousTestCase):
    def test_defaultPorts(self) -> None:
        """
        Without a port, TLS uses 12651 and STARTTLS or plaintext 12650.
        """
        self.assertEqual(parseServer("example.org", "tls"), ServerAddress("example.org", 12651))
        self.assertEqual(parseServer("example.org", SECURITY_STARTTLS),
                         ServerAddress("example.org", 12650))
        self.assertEqual(parseServer("[::1]", SECURITY_PLAINTEXT), ServerAddress("::1", 12650))

    def test_explicitPort(self) -> None:
        self.assertEqual(parseServer("10.0.0.1:4000", "tls"), ServerAddress("10.0.0.1", 4000))
        self.assertEqual(str(parseServer("[::1]:4000", "tls")), "[::1]:4000")

    def test_invalid(self) -> None:
        with self.assertRaises(ValueError) as caught:
            parseServer("host:99999", "tls")
        self.assertEqual(str(caught.exception),
                         "invalid port '99999' in server 'host:99999'; use a number from 1 to "
                         "65535")
        with self.assertRaises(ValueError):
            parseServer(":12", "tls")


class HandshakeTests(SynchronousTestCase):
    def test_helloLoginAnnounce(self) -> None:
        """
        A device sends the preamble and hello, logs in after the welcome
        and announces its track after login_ok.
        """
        reactor = MemoryReactorClock()
        device = makeDevice(reactor)
        transport = StringTransport()
        session = ClientSession(device)
        session.makeConnection(transport)
        hello = Hello(versions=(1,), role="device", client=device.options.clientName)
        self.assertEqual(transport.value(), PREAMBLE + encodeMessage(hello))
        transport.clear()

        session.dataReceived(welcome())
        self.assertEqual(transport.value(),
                         encodeMessage(Login(device="cam-1", secret="cam-1-secret")))
        transport.clear()

        send(session, {"type": "login_ok", "role": "device", "name": "cam-1", "session": "s1"})
        self.assertEqual(self.successResultOf(device.loggedIn).name, "cam-1")
        wire = Wire(transport)
        wire.decoder = Decoder(1 << 20, expectPreamble=False)
        [announce] = wire.messages()
        self.assertEqual(announce.toDict(), {"type": "announce",
                                             "tracks": [{"track": "video", "codec": "h264"}]})
        self.assertIs(transport.producer, device)

    def test_startTLS(self) -> None:
        """
        With STARTTLS, the client asks for the upgrade after the welcome,
        starts TLS on starttls_ok and sends the login right behind it.
        """
        reactor = MemoryReactorClock()
        device = makeDevice(reactor, security=SECURITY_STARTTLS)
        creator = object()
        device.tlsCreator = lambda: creator  # type: ignore[method-assign]
        transport = TLSStringTransport()
        session = ClientSession(device)
        session.makeConnection(transport)
        transport.clear()
        session.dataReceived(welcome(starttls=True, encrypted=False))
        self.assertEqual(transport.value(), encodeMessage(parseMessage({"type": "starttls"})))
        transport.clear()
        self.assertIsNone(transport.tlsStarted)
        send(session, StartTLSOk())
        self.assertIs(transport.tlsStarted, creator)
        self.assertTrue(session.encrypted)
        self.assertEqual(transport.value(),
                         encodeMessage(Login(device="cam-1", secret="cam-1-secret")))

    def test_startTLSNotOffered(self) -> None:
        """
        A server that offers no STARTTLS ends the client with a message
        that names the TLS port.
        """
        reactor = MemoryReactorClock()
        device = makeDevice(reactor, security=SECURITY_STARTTLS)
        device.start()
        session, wire = connect(device)
        session.dataReceived(welcome(starttls=False, encrypted=False))
        self.assertTrue(wire.transport.disconnecting)
        session.connectionLost(Failure(netError.ConnectionDone()))
        failure = self.failureResultOf(device.closed, ClientError)
        self.assertEqual(str(failure.value),
                         "server 127.0.0.1:12651 does not offer STARTTLS; connect to its TLS "
                         "port (12651 by default) without --starttls")
        self.failureResultOf(device.loggedIn, ClientError)

    def test_wrongPassword(self) -> None:
        """
        auth_failed stops the client for good with "login failed: ...".
        """
        reactor = MemoryReactorClock()
        monitor = MonitorClient(reactor, ConnectOptions(server=SERVER), "alice", "wrong",
                                endpoint=NeverEndpoint())
        monitor.start()
        session, wire = connect(monitor)
        session.dataReceived(welcome())
        send(session, ErrorMessage(code="auth_failed", message="invalid credentials",
                                   ref="login"))
        self.assertTrue(wire.transport.disconnecting)
        session.connectionLost(Failure(netError.ConnectionDone()))
        failure = self.failureResultOf(monitor.loggedIn, ClientError)
        self.assertEqual(str(failure.value), "login failed: invalid credentials")
        self.failureResultOf(monitor.closed, ClientError)

    def test_throttledIsRetried(self) -> None:
        """
        A throttled login closes the connection but does not stop the
        client; the next attempt waits for the backoff delay.
        """
        reactor = MemoryReactorClock()
        monitor = MonitorClient(reactor, ConnectOptions(server=SERVER), "alice", "pw",
                                endpoint=NeverEndpoint())
        session, wire = connect(monitor)
        session.dataReceived(welcome())
        send(session, ErrorMessage(code="throttled", message="too many failed logins"))
        self.assertTrue(wire.transport.disconnecting)
        self.assertNoResult(monitor.closed)


class KeepaliveTests(SynchronousTestCase):
    def test_answersPing(self) -> None:
        reactor = MemoryReactorClock()
        device = makeDevice(reactor)
        session, wire = login(device)
        send(session, Ping(id=7))
        self.assertEqual([m.toDict() for m in wire.messages()], [{"type": "pong", "id": 7}])

    def test_pingsWhenQuiet(self) -> None:
        """
        After a keepalive interval without sending, the client pings; when
        the server stays silent past the idle timeout, the client aborts.
        """
        reactor = MemoryReactorClock()
        device = makeDevice(reactor)
        session, wire = connect(device)
        session.dataReceived(welcome(keepalive=10.0, idle=30.0))
        send(session, {"type": "login_ok", "role": "device", "name": "cam-1", "session": "s"})
        wire.read()
        reactor.advance(10)
        self.assertEqual([m.toDict() for m in wire.messages()], [{"type": "ping", "id": "k1"}])
        reactor.advance(10)
        reactor.advance(10)
        self.assertTrue(wire.transport.disconnected)
        self.assertEqual(session.lostReason, "the server sent nothing for 30 s")


class OnDemandTests(SynchronousTestCase):
    def setUp(self) -> None:
        with H264.open("rb") as f:
            self.samples = list(H264Reader(f))

    def test_startsOnlyWhenAsked(self) -> None:
        """
        Nothing is sent before start; after start, the frames go out as
        their timestamps come due, byte for byte with keyframe flags.
        """
        reactor = MemoryReactorClock()
        device = makeDevice(reactor)
        session, wire = login(device)
        reactor.advance(5)
        self.assertEqual(wire.frames(), [])
        send(session, Start(track="video"))
        reactor.advance(0)
        [first] = wire.frames()
        self.assertEqual((first.track, first.codec, first.flags, first.source, first.timestamp,
                          first.data),
                         (1, 1, 1, 0, 0, self.samples[0].data))
        reactor.advance(0.5)
        sent = wire.frames()
        self.assertEqual([f.data for f in sent], [s.data for s in self.samples[1:13]])
        self.assertEqual([f.timestamp for f in sent], [s.timestamp for s in self.samples[1:13]])

    def test_restartAtKeyframe(self) -> None:
        """
        After a stop, a new start skips to the next keyframe.
        """
        reactor = MemoryReactorClock()
        device = makeDevice(reactor)
        session, wire = login(device)
        send(session, Start(track="video"))
        reactor.advance(0)
        reactor.advance(0.2)
        self.assertEqual(len(wire.frames()), 6)
        send(session, Stop(track="video"))
        reactor.advance(2)
        self.assertEqual(wire.frames(), [])
        send(session, Start(track="video"))
        reactor.advance(0)
        [restart] = wire.frames()
        self.assertTrue(restart.keyframe)
        self.assertEqual(restart.data, self.samples[25].data)
        self.assertEqual(device.streamers["video"].skipped, 19)

    def test_finishesAndSaysBye(self) -> None:
        """
        Without --loop, the device sends bye once every track reached the
        end of its file.
        """
        reactor = MemoryReactorClock()
        device = makeDevice(reactor, pace=False)
        device.start()
        session, wire = login(device)
        device.session = session
        send(session, Start(track="video"))
        for _ in range(10):
            reactor.advance(0)
        items = wire.read()
        frames = [i for i in items if isinstance(i, MediaFrame)]
        self.assertEqual(b"".join(f.data for f in frames), H264.read_bytes())
        self.assertEqual(items[-1].toDict(), {"type": "bye", "reason": "all files sent"})
        self.assertTrue(wire.transport.disconnecting)

    def test_loopContinuesTimestamps(self) -> None:
        """
        With --loop, the second pass starts at a keyframe with timestamps
        that continue after the first pass.
        """
        reactor = MemoryReactorClock()
        device = makeDevice(reactor, loop=True)
        session, wire = login(device)
        send(session, Start(track="video"))
        reactor.advance(0)
        for _ in range(25):
            reactor.advance(0.1)
        frames = wire.frames()
        self.assertGreater(len(frames), 50)
        self.assertEqual(frames[50].data, self.samples[0].data)
        self.assertEqual(frames[50].timestamp, 2_000_000)

    def test_flowControl(self) -> None:
        """
        While the transport has paused its producer, nothing is sent; once
        it resumes, the rest of the file follows.
        """
        reactor = MemoryReactorClock()
        device = makeDevice(reactor, pace=False)
        session, wire = login(device)
        device.pauseProducing()
        send(session, Start(track="video"))
        reactor.advance(0)
        self.assertEqual(wire.frames(), [])
        device.resumeProducing()
        reactor.advance(0)
        self.assertEqual([f.data for f in wire.frames()], [s.data for s in self.samples])

    def test_unknownTrack(self) -> None:
        """
        A start for a track the device lacks is ignored.
        """
        reactor = MemoryReactorClock()
        reports: list[str] = []
        device = makeDevice(reactor, reports=reports)
        session, wire = login(device)
        send(session, Start(track="audio"))
        reactor.advance(1)
        self.assertEqual(wire.read(), [])


class CommandTests(SynchronousTestCase):
    def command(self, name: str) -> CommandResult:
        reactor = MemoryReactorClock()
        reports: list[str] = []
        device = makeDevice(reactor, reports=reports)
        session, wire = login(device)
        send(session, {"type": "command", "id": "c1", "name": name, "args": {"a": 1},
                       "from": "alice"})
        [result] = wire.messages()
        assert isinstance(result, CommandResult)
        self.assertEqual(reports[-1], f'command {name} {{"a": 1}} from alice (id c1)')
        self.assertEqual(device.commands, [(name, {"a": 1}, "alice")])
        return result

    def test_ping(self) -> None:
        result = self.command("ping")
        self.assertEqual(result.toDict(), {"type": "command_result", "id": "c1", "ok": True,
                                           "result": "pong"})

    def test_unknown(self) -> None:
        result = self.command("reboot")
        self.assertEqual(result.toDict(), {
            "type": "command_result", "id": "c1", "ok": False,
            "error": "unknown command 'reboot'; this device answers ping, status"})


class MonitorTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.reports: list[str] = []
        self.monitor = MonitorClient(self.reactor, ConnectOptions(server=SERVER), "alice", "pw",
                                     endpoint=NeverEndpoint(), report=self.reports.append)
        self.session, self.wire = login(self.monitor, "alice")

    def test_subscribeMatchesReply(self) -> None:
        d = self.monitor.subscribe("cam-1", ["video"])
        [request] = self.wire.messages()
        self.assertEqual(request.toDict(), {"type": "subscribe", "device": "cam-1",
                                            "tracks": ["video"], "id": "r1"})
        send(self.session, Subscribed(device="cam-1", source=4, tracks=("video",), id="r1"))
        self.assertEqual(self.successResultOf(d).source, 4)
        self.assertEqual(self.monitor.sources, {4: "cam-1"})

    def test_requestError(self) -> None:
        d = self.monitor.command("cam-1", "ping", {})
        send(self.session, ErrorMessage(code="permission_denied",
                                        message="no control right on device 'cam-1'",
                                        id="r1", ref="command"))
        failure = self.failureResultOf(d, RequestFailed)
        self.assertEqual((failure.value.code, failure.value.message),
                         ("permission_denied", "no control right on device 'cam-1'"))

    def test_eventsReported(self) -> None:
        events: list[Any] = []
        self.monitor.observe("event", events.append)
        send(self.session, Event(event="device_reconnecting", device="cam-1", source=1,
                                 reason="connection lost"))
        send(self.session, {"type": "revoked", "device": "cam-1", "tracks": ["video"],
                            "reason": "permission revoked"})
        self.assertEqual(self.reports[-2:], [
            "event: device cam-1 reconnecting: connection lost",
            "revoked: video of device cam-1: permission revoked"])
        self.assertEqual(len(events), 2)

    def test_resubscribeSkipsReplay(self) -> None:
        """
        After a reconnect the monitor subscribes again and drops the
        frames the server replays from its cache.
        """
        frames: list[MediaFrame] = []
        self.monitor.observe("frame", frames.append)
        d = self.monitor.subscribe("cam-1", ["video"])
        send(self.session, Subscribed(device="cam-1", source=1, tracks=("video",), id="r1"))
        self.successResultOf(d)
        for timestamp in (0, 40, 80):
            self.session.dataReceived(MediaFrame(1, 1, 1 if timestamp == 0 else 0, 1,
                                                 timestamp, b"x").encode())
        self.session.connectionLost(Failure(netError.ConnectionLost()))
        session, wire = connect(self.monitor)
        session.dataReceived(welcome())
        send(session, {"type": "login_ok", "role": "monitor", "name": "alice", "session": "2"})
        [request] = [m for m in wire.messages() if m.TYPE == "subscribe"]
        self.assertEqual(request.toDict()["tracks"], ["video"])
        for timestamp in (0, 40, 80, 120):
            session.dataReceived(MediaFrame(1, 1, 1 if timestamp == 0 else 0, 1, timestamp,
                                            b"x").encode())
        self.assertEqual([f.timestamp for f in frames], [0, 40, 80, 120])

    def test_resubscribeWhenOnline(self) -> None:
        """
        A subscription renewed while its device is offline is made again
        when the server reports the device online.
        """
        d = self.monitor.subscribe("cam-1", ["video"])
        send(self.session, Subscribed(device="cam-1", source=1, tracks=("video",), id="r1"))
        self.successResultOf(d)
        self.session.connectionLost(Failure(netError.ConnectionLost()))
        session, wire = connect(self.monitor)
        session.dataReceived(welcome())
        send(session, {"type": "login_ok", "role": "monitor", "name": "alice", "session": "2"})
        [request] = [m for m in wire.messages() if m.TYPE == "subscribe"]
        send(session, ErrorMessage(code="device_offline", message="device 'cam-1' is offline",
                                   id=request.id, ref="subscribe"))
        self.assertEqual(self.reports[-1], "device cam-1 is offline; subscribing again when it "
                                           "comes online")
        send(session, Event(event="device_online", device="cam-1", source=1))
        [again] = [m for m in wire.messages() if m.TYPE == "subscribe"]
        self.assertEqual(again.toDict(), {"type": "subscribe", "device": "cam-1",
                                          "tracks": ["video"], "id": "r3"})

    def test_connectionLostFailsRequests(self) -> None:
        d = self.monitor.listDevices()
        self.session.connectionLost(Failure(netError.ConnectionLost()))
        self.assertEqual(self.failureResultOf(d, RequestFailed).value.code, "connection_lost")


class RefusingEndpoint:
    def __init__(self) -> None:
        self.attempts = 0

    def connect(self, factory: Any) -> Deferred[Any]:
        self.attempts += 1
        return fail(netError.ConnectionRefusedError("Connection refused"))


class ReconnectTests(SynchronousTestCase):
    def test_backoffAndGiveUp(self) -> None:
        """
        Each failed attempt prints one line with the reason and the delay,
        which doubles plus jitter.  After the set retries the client fails
        with the last reason.
        """
        reactor = MemoryReactorClock()
        reports: list[str] = []
        endpoint = RefusingEndpoint()
        options = ConnectOptions(server=SERVER, retries=3)
        monitor = MonitorClient(reactor, options, "alice", "pw", endpoint=endpoint,
                                report=reports.append, jitter=lambda: 0.25)
        monitor.start()
        for delay in (1.25, 2.25, 4.25):
            reactor.advance(delay)
        reactor.advance(0)
        problem = "server 127.0.0.1:12651 is not reachable (connection refused)"
        self.assertEqual(reports, [f"{problem}; retrying in 1.2 s",
                                   f"{problem}; retrying in 2.2 s",
                                   f"{problem}; retrying in 4.2 s"])
        self.assertEqual(endpoint.attempts, 4)
        failure = self.failureResultOf(monitor.closed, ClientError)
        self.assertEqual(str(failure.value), f"{problem}; gave up after 4 attempts")
        self.failureResultOf(monitor.loggedIn, ClientError)

    def test_reconnectAfterLoss(self) -> None:
        """
        A session that drops is replaced after the first backoff delay,
        and a login resets the count.
        """
        reactor = MemoryReactorClock()
        reports: list[str] = []
        proxies: list[Any] = []

        class Endpoint:
            def connect(self, factory: Any) -> Deferred[Any]:
                # ClientService wraps the session in a proxy that reports
                # the disconnect.
                proxy = factory.buildProtocol(None)
                proxy.makeConnection(StringTransport())
                proxies.append(proxy)
                return succeed(proxy)

        monitor = MonitorClient(reactor, ConnectOptions(server=SERVER), "alice", "pw",
                                endpoint=Endpoint(), report=reports.append, jitter=lambda: 0)
        monitor.start()
        [proxy] = proxies
        first = proxy._protocol
        first.dataReceived(welcome())
        send(first, {"type": "login_ok", "role": "monitor", "name": "alice", "session": "1"})
        self.assertEqual(monitor.logins, 1)
        proxy.connectionLost(Failure(netError.ConnectionLost("gone")))
        self.assertEqual(reports[-1],
                         "the connection to server 127.0.0.1:12651 was lost (Connection to the "
                         "other side was lost in a non-clean fashion: gone.); retrying in 1.0 s")
        reactor.advance(1.0)
        self.assertEqual(len(proxies), 2)


class GivenUpOnVerificationTests(SynchronousTestCase):
    def test_untrustedCertificate(self) -> None:
        """
        A certificate that fails verification stops the client with the
        verifier's message, without retrying.
        """
        from mrs.tls.client import ServerVerificationError

        reactor = MemoryReactorClock()
        reports: list[str] = []
        monitor = MonitorClient(reactor, ConnectOptions(server=SERVER), "alice", "pw",
                                endpoint=NeverEndpoint(), report=reports.append)
        monitor.start()
        session, wire = connect(monitor)
        session.connectionLost(Failure(ServerVerificationError("not trusted; pass --ca-file")))
        failure = self.failureResultOf(monitor.closed, ClientError)
        self.assertEqual(str(failure.value), "TLS verification failed: not trusted; pass "
                                             "--ca-file")
        self.failureResultOf(monitor.loggedIn, ClientError)
        self.assertEqual(reports, [])
