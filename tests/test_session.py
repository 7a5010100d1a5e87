"""
Conformance tests of the client session, in the order of the "Session"
sections of docs/protocol.rst: preamble, hello, STARTTLS, login, the
states after login, keepalive and timeouts.  No sockets: the session runs
on a L{StringTransport} and a fake clock.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from mrs.wire import FRAME_HEADER_SIZE, PREAMBLE
from mrs.wire.constants import FRAME_HEADER, FRAME_MEDIA
from tests.support import ServerCore


class PreambleTests(SynchronousTestCase):
    def test_tlsClientHelloClosed(self) -> None:
        """
        A TLS ClientHello on the plaintext port closes the connection and
        writes nothing a TLS client would misread.
        """
        core = ServerCore()
        client = core.connect()
        client.sendRaw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        self.assertEqual(client.transport.value(), b"")
        self.assertTrue(client.closed)

    def test_httpRequestAnswered(self) -> None:
        """
        An HTTP request gets a 400 response naming the admin URL, then a
        close.
        """
        core = ServerCore()
        client = core.connect()
        client.sendRaw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = client.transport.value()
        self.assertTrue(response.startswith(b"HTTP/1.0 400 Bad Request\r\n"))
        self.assertIn(b"https://<server>:12654/admin", response)
        self.assertTrue(client.closed)

    def test_garbageClosedWithBadMagic(self) -> None:
        """
        Bytes that are neither the preamble, TLS nor HTTP get a bad_magic
        error and a close.
        """
        core = ServerCore()
        client = core.connect()
        client.sendRaw(b"\x00\x01\x02\x03\x04\x05")
        [error] = client.receive()
        self.assertEqual(error["code"], "bad_magic")
        self.assertTrue(client.closed)

    def test_preambleInPieces(self) -> None:
        """
        The preamble and the hello may arrive one byte at a time.
        """
        core = ServerCore()
        client = core.connect()
        client.preambleSent = True
        from mrs.wire import encodeMessage, parseMessage

        data = PREAMBLE + encodeMessage(parseMessage(
            {"type": "hello", "versions": [1], "role": "device"}))
        for byte in data:
            client.sendRaw(bytes([byte]))
        [welcome] = client.receive()
        self.assertEqual(welcome["type"], "welcome")


class HelloTests(SynchronousTestCase):
    def test_welcome(self) -> None:
        """
        The welcome names version 1, the limits, and that the link is not
        encrypted; STARTTLS is offered only when the server has TLS.
        """
        core = ServerCore(maxFrameSize=1000, keepaliveInterval=7.0, idleTimeout=21.0,
                          loginTimeout=9.0)
        welcome = core.connect().hello("device")
        self.assertEqual(welcome["version"], 1)
        self.assertEqual(welcome["encrypted"], False)
        self.assertEqual(welcome["starttls"], False)
        self.assertEqual(welcome["limits"], {"max_frame_size": 1000, "keepalive_interval": 7.0,
                                             "idle_timeout": 21.0, "login_timeout": 9.0})

    def test_unsupportedVersion(self) -> None:
        """
        A hello without version 1 gets unsupported_version and a close.
        """
        core = ServerCore()
        client = core.connect()
        client.send({"type": "hello", "versions": [7, 9], "role": "device"})
        [error] = client.receive()
        self.assertEqual(error["code"], "unsupported_version")
        self.assertTrue(client.closed)

    def test_firstMessageMustBeHello(self) -> None:
        """
        Any other first message closes the connection with not_allowed_now.
        """
        core = ServerCore()
        client = core.connect()
        client.send({"type": "ping"})
        [error] = client.receive()
        self.assertEqual(error["code"], "not_allowed_now")
        self.assertEqual(error["message"], "the first message must be hello, not ping")
        self.assertTrue(client.closed)

    def test_secondHelloRejected(self) -> None:
        """
        A second hello gets not_allowed_now and the connection stays.
        """
        core = ServerCore()
        client = core.connect()
        client.hello("device")
        client.send({"type": "hello", "versions": [1], "role": "device"})
        [error] = client.receive()
        self.assertEqual(error["code"], "not_allowed_now")
        self.assertEqual(error["ref"], "hello")
        self.assertFalse(client.closed)


class FramingTests(SynchronousTestCase):
    def test_oversizedFrame(self) -> None:
        """
        A header announcing more than the limit closes the connection with
        frame_too_large, before any payload arrives.
        """
        core = ServerCore(maxFrameSize=1024)
        client = core.connect()
        client.hello("device")
        client.sendRaw(FRAME_HEADER.pack(FRAME_MEDIA, 0, 0, 4 * 1024 ** 3 - 1))
        [error] = client.receive()
        self.assertEqual(error["code"], "frame_too_large")
        self.assertTrue(client.closed)

    def test_invalidMessageKeepsSession(self) -> None:
        """
        A well-framed but invalid message gets an error; the session stays.
        """
        core = ServerCore()
        client = core.connect()
        client.hello("monitor")
        payload = b'{"type":"login","user":5}'
        client.sendRaw(FRAME_HEADER.pack(1, 0, 0, len(payload)) + payload)
        [error] = client.receive()
        self.assertEqual(error["code"], "bad_message")
        self.assertFalse(client.closed)

    def test_mediaBeforeLoginCloses(self) -> None:
        """
        A media frame before login closes the connection.
        """
        core = ServerCore()
        client = core.connect()
        client.hello("device")
        client.sendMedia(1, 1, 1, 0, b"\x00\x00\x00\x01\x65")
        [error] = client.receive()
        self.assertEqual(error["code"], "not_allowed_now")
        self.assertTrue(client.closed)

    def test_headerSize(self) -> None:
        self.assertEqual(FRAME_HEADER_SIZE, 8)


class LoginTests(SynchronousTestCase):
    def test_deviceLogin(self) -> None:
        """
        A device with the right secret gets login_ok with its name.
        """
        core = ServerCore()
        client = core.connect()
        client.hello("device")
        client.send({"type": "login", "device": "cam-1", "secret": "cam-1-secret"})
        [ok] = client.receive()
        self.assertEqual((ok["type"], ok["role"], ok["name"]), ("login_ok", "device", "cam-1"))
        self.assertEqual(ok["session"], client.session.sessionId)

    def test_failuresAreGenericAndDelayed(self) -> None:
        """
        A wrong password and an unknown user get the same error, only after
        the failure delay.
        """
        core = ServerCore()
        replies = []
        for user, password in (("alice", "wrong"), ("nobody", "alice-pw")):
            client = core.connect()
            client.hello("monitor")
            client.send({"type": "login", "user": user, "password": password})
            self.assertEqual(client.receive(), [])
            core.clock.advance(1.0)
            replies.append(client.receive())
        self.assertEqual(replies[0], replies[1])
        self.assertEqual(replies[0], [{"type": "error", "code": "auth_failed",
                                       "message": "invalid credentials", "ref": "login"}])

    def test_throttledAfterRepeatedFailures(self) -> None:
        """
        After the per-address budget of failures, the address is throttled
        even with the right password; another address is not.
        """
        core = ServerCore()
        client = core.connect(host="10.9.9.9")
        client.hello("monitor")
        for _ in range(5):
            client.send({"type": "login", "user": "alice", "password": "nope"})
            core.clock.advance(1.0)
        client.receive()
        client.send({"type": "login", "user": "alice", "password": "alice-pw"})
        core.clock.advance(1.0)
        [error] = client.receive()
        self.assertEqual(error["code"], "throttled")
        other = core.connect(host="10.9.9.10")
        other.hello("monitor")
        other.send({"type": "login", "user": "alice", "password": "alice-pw"})
        self.assertEqual(other.receive()[-1]["type"], "login_ok")
        core.clock.advance(61)
        later = core.connect(host="10.9.9.9")
        later.hello("monitor")
        later.send({"type": "login", "user": "alice", "password": "alice-pw"})
        self.assertEqual(later.receive()[-1]["type"], "login_ok")

    def test_plaintextRejectedWithoutChecking(self) -> None:
        """
        With plaintext not allowed, a login on a plaintext link gets
        tls_required naming STARTTLS and the TLS port, and counts no
        failure.
        """
        core = ServerCore(allowPlaintext=False)
        client = core.connect()
        client.hello("monitor")
        client.send({"type": "login", "user": "alice", "password": "alice-pw"})
        core.clock.advance(1.0)
        [error] = client.receive()
        self.assertEqual(error["code"], "tls_required")
        self.assertEqual(error["message"],
                         "this server does not accept logins on an unencrypted link; "
                         "send starttls first or connect to the TLS port 12651")
        self.assertFalse(core.authenticator.throttle.blocked("10.0.0.7"))

    def test_deviceWithPlaintextException(self) -> None:
        """
        A device allowed plaintext may log in unencrypted while the server
        otherwise requires TLS.
        """
        core = ServerCore(allowPlaintext=False)
        core.store.addDevice("legacy-1", "Old unit", _hash("old"), actor="test",
                             allowPlaintext=True)
        client = core.connect()
        client.hello("device")
        client.send({"type": "login", "device": "legacy-1", "secret": "old"})
        self.assertEqual(client.receive()[-1]["type"], "login_ok")

    def test_tokenLogin(self) -> None:
        """
        The token from login_ok logs the monitor in again until it expires.
        """
        core = ServerCore()
        first = core.connect()
        first.hello("monitor")
        first.send({"type": "login", "user": "alice", "password": "alice-pw"})
        token = first.receive()[-1]["token"]
        second = core.connect()
        second.hello("monitor")
        second.send({"type": "login", "token": token})
        self.assertEqual(second.receive()[-1]["name"], "alice")
        core.clock.advance(3601)
        third = core.connect(host="10.0.0.8")
        third.hello("monitor")
        third.send({"type": "login", "token": token})
        core.clock.advance(1.0)
        self.assertEqual(third.receive()[-1]["code"], "auth_failed")

    def test_roleMismatch(self) -> None:
        """
        A connection that said hello as a device cannot log in as a user.
        """
        core = ServerCore()
        client = core.connect()
        client.hello("device")
        client.send({"type": "login", "user": "alice", "password": "alice-pw"})
        [error] = client.receive()
        self.assertEqual(error["code"], "bad_message")

    def test_requestsBeforeLoginRejected(self) -> None:
        """
        A subscribe before login is not allowed and sends nothing else.
        """
        core = ServerCore()
        client = core.connect()
        client.hello("monitor")
        client.send({"type": "subscribe", "device": "cam-1", "tracks": ["video"]})
        [error] = client.receive()
        self.assertEqual((error["code"], error["ref"]), ("not_allowed_now", "subscribe"))


class TimeoutTests(SynchronousTestCase):
    def test_loginTimeout(self) -> None:
        """
        A connection that does not log in within the login timeout is closed.
        """
        core = ServerCore(loginTimeout=15.0, keepaliveInterval=100, idleTimeout=200)
        client = core.connect()
        client.hello("device")
        core.clock.advance(14.9)
        self.assertFalse(client.closed)
        core.clock.advance(0.2)
        self.assertEqual(client.receive()[-1]["code"], "login_timeout")
        self.assertTrue(client.closed)

    def test_keepaliveAndIdle(self) -> None:
        """
        A quiet logged-in client is pinged every keepalive interval and
        closed after the idle timeout; any data resets the idle timer.
        """
        core = ServerCore(keepaliveInterval=10.0, idleTimeout=30.0)
        client = core.monitor()
        core.clock.advance(10)
        self.assertEqual(client.messages(), [{"type": "ping"}])
        client.send({"type": "pong"})
        core.clock.advance(20)
        self.assertFalse(client.closed)
        core.clock.advance(10)
        self.assertTrue(client.transport.disconnecting)

    def test_pingAnswered(self) -> None:
        core = ServerCore()
        client = core.monitor()
        client.send({"type": "ping", "id": 42})
        self.assertEqual(client.messages(), [{"type": "pong", "id": 42}])

    def test_bye(self) -> None:
        core = ServerCore()
        client = core.monitor()
        client.send({"type": "bye", "reason": "done"})
        self.assertTrue(client.closed)


def _hash(secret: str) -> str:
    from tests.support import fastHash

    return fastHash(secret)


class ErrorCodeTests(SynchronousTestCase):
    """
    The remaining error codes of the protocol's table, each from the
    situation the table gives for it.
    """

    def sendRawControl(self, client, payload: bytes) -> None:  # type: ignore[no-untyped-def]
        from mrs.wire.constants import FRAME_CONTROL

        client.sendRaw(FRAME_HEADER.pack(FRAME_CONTROL, 0, 0, len(payload)) + payload)

    def test_badJson(self) -> None:
        core = ServerCore()
        client = core.monitor()
        self.sendRawControl(client, b"{not json")
        [error] = client.messages()
        self.assertEqual(error["code"], "bad_json")
        self.assertFalse(client.closed)

    def test_unknownType(self) -> None:
        core = ServerCore()
        client = core.monitor()
        self.sendRawControl(client, b'{"type":"teleport","id":3}')
        [error] = client.messages()
        self.assertEqual((error["code"], error["id"]), ("unknown_type", 3))

    def test_outOfRange(self) -> None:
        core = ServerCore()
        device = core.device()
        self.sendRawControl(device, b'{"type":"location","lat":95,"lon":14,'
                                    b'"time":"1970-01-01T00:00:01Z"}')
        [error] = device.messages()
        self.assertEqual(error["code"], "out_of_range")
        self.assertEqual(error["message"],
                         "field 'lat' of location: 95 is out of range; use -90 to 90 degrees")

    def test_alreadyEncrypted(self) -> None:
        core = ServerCore()
        client = core.connect()
        client.session.encrypted = True
        client.hello("monitor")
        client.send({"type": "starttls"})
        [error] = client.messages()
        self.assertEqual(error["code"], "already_encrypted")

    def test_notSubscribed(self) -> None:
        core = ServerCore()
        core.device()
        client = core.monitor()
        client.send({"type": "unsubscribe", "device": "cam-1"})
        [error] = client.messages()
        self.assertEqual(error["code"], "not_subscribed")

    def test_internalError(self) -> None:
        """
        A login check that fails unexpectedly is logged and answered with
        internal_error; the connection stays.
        """
        core = ServerCore()

        def broken(name: str):  # type: ignore[no-untyped-def]
            raise RuntimeError("disk on fire")

        core.store.getUser = broken  # type: ignore[method-assign]
        client = core.connect()
        client.hello("monitor")
        client.send({"type": "login", "user": "alice", "password": "alice-pw"})
        [error] = client.messages()
        self.assertEqual(error["code"], "internal_error")
        self.assertFalse(client.closed)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_serverShutdown(self) -> None:
        """
        Stopping the client listeners closes every session with
        server_shutdown.
        """
        from mrs.server.service import ListenerService

        core = ServerCore()
        client = core.monitor()
        service = ListenerService("client listeners", core.clock, [], [])
        service.sessions = core.factory.sessions
        service.startService()
        service.stopService()
        self.assertEqual(client.messages()[-1]["code"], "server_shutdown")
        self.assertTrue(client.closed)


class FloodTests(SynchronousTestCase):
    def test_invalidMessagesLimited(self) -> None:
        """
        Invalid messages get error replies and at most one log line a
        second; past 100 in 10 s the connection closes with bad_frame.
        """
        from twisted.logger import globalLogPublisher

        events: list[dict] = []  # type: ignore[type-arg]
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        core = ServerCore()
        client = core.monitor()
        payload = b'{"type":"nonsense"}'
        for _ in range(100):
            client.sendRaw(FRAME_HEADER.pack(1, 0, 0, len(payload)) + payload)
        self.assertEqual(len(client.messages()), 100)
        self.assertFalse(client.closed)
        warnings = [e for e in events if "invalid message" in e.get("log_format", "")]
        self.assertEqual(len(warnings), 1)
        client.sendRaw(FRAME_HEADER.pack(1, 0, 0, len(payload)) + payload)
        self.assertEqual(client.messages()[-1]["code"], "bad_frame")
        self.assertTrue(client.closed)


class BusyDeviceKeepaliveTests(SynchronousTestCase):
    def test_busyDevicePinged(self) -> None:
        """
        A device that keeps sending but gets nothing back is pinged every
        keepalive interval, so that it can tell the server is alive.
        """
        core = ServerCore(keepaliveInterval=10.0, idleTimeout=30.0)
        device = core.device()
        pings = 0
        for second in range(35):
            device.sendMedia(1, 1, 1 if second == 0 else 0, second * 1_000_000, b"\x00\x00\x01\x65")
            core.clock.advance(1)
            pings += len([m for m in device.messages() if m["type"] == "ping"])
        self.assertEqual(pings, 3)
        self.assertFalse(device.closed)


class CloseReasonTests(SynchronousTestCase):
    def test_tlsErrorsInWords(self) -> None:
        """
        OpenSSL's error tuples become a sentence, with the fix for an HTTP
        request on the TLS port.
        """
        from OpenSSL import SSL
        from twisted.python.failure import Failure

        from mrs.server.session import describeClose

        http = Failure(SSL.Error([("SSL routines", "", "http request")]))
        self.assertEqual(describeClose(http, 12654),
                         "TLS handshake failed: the client sent an HTTP request; the admin web "
                         "UI is on port 12654")
        other = Failure(SSL.Error([("SSL routines", "", "unsupported protocol")]))
        self.assertEqual(describeClose(other, 12654),
                         "TLS handshake failed: unsupported protocol")
        self.assertEqual(describeClose(None, 12654), "closed")
