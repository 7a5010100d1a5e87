"""
The real server over real loopback sockets with real certificates: the TLS
port, STARTTLS, server verification, abusive clients and relaying.
"""

from __future__ import annotations

import os

from twisted.internet.defer import inlineCallbacks
from twisted.internet.error import ConnectionDone, ConnectionLost

from mrs.tls.client import ServerVerificationError
from mrs.wire import CODEC_H264, FLAG_KEYFRAME, TRACK_VIDEO
from tests.loopback import LoopbackTestCase, login, reactor, sleep

IDR = b"\x00\x00\x00\x01\x67SPS\x00\x00\x00\x01\x68PPS\x00\x00\x00\x01\x65" + b"I" * 1000


class TLSPortTests(LoopbackTestCase):
    @inlineCallbacks
    def test_relayOverTLS(self):  # type: ignore[no-untyped-def]
        """
        A device and three monitors on the TLS port, each verifying the
        server against its certificate: every monitor receives the frames
        byte-identical, and the dashboard sees the link as TLS 1.3.
        """
        device = yield self.client()
        ok = yield login(device, "device", "cam-1", "cam-1-secret")
        self.assertEqual(ok["type"], "login_ok")
        monitors = []
        for _ in range(3):
            monitor = yield self.client()
            yield login(monitor, "monitor", "alice", "alice-pw")
            monitor.send({"type": "subscribe", "device": "cam-1", "tracks": ["video"]})
            yield monitor.waitForMessage("subscribed")
            monitors.append(monitor)
        payloads = [IDR] + [b"\x00\x00\x00\x01\x41" + bytes([n]) * 3000 for n in range(20)]
        for n, payload in enumerate(payloads):
            device.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME if n == 0 else 0,
                             n * 40000, payload)
        for monitor in monitors:
            yield monitor.waitFor(lambda m=monitor: len(m.frames()) == len(payloads))
            self.assertEqual([f.data for f in monitor.frames()], payloads)
            self.assertEqual([f.timestamp for f in monitor.frames()],
                             [n * 40000 for n in range(len(payloads))])
        [status] = [s for s in self.server.hub.statusSnapshot() if s["role"] == "device"]
        self.assertEqual((status["encrypted"], status["tlsVersion"]), (True, "TLSv1.3"))

    @inlineCallbacks
    def test_pinnedFingerprint(self):  # type: ignore[no-untyped-def]
        """
        A client pinning the certificate's SHA-256 fingerprint connects;
        one pinning another fingerprint fails the handshake.
        """
        pin = self.server.tls.current.info.sha256
        good = yield self.client(fingerprint=pin)
        ok = yield login(good, "monitor", "alice", "alice-pw")
        self.assertEqual(ok["type"], "login_ok")
        bad = yield self.client(fingerprint="AB" * 32)
        yield bad.closed
        self.assertEqual(bad.items, [])

    @inlineCallbacks
    def test_wrongHostName(self):  # type: ignore[no-untyped-def]
        """
        A client expecting another host name gets no data through.
        """
        client = yield self.client(hostname="other.example")
        client.send({"type": "hello", "versions": [1], "role": "monitor"})
        yield client.closed
        self.assertEqual(client.items, [])

    def test_verificationErrorType(self) -> None:
        self.assertTrue(issubclass(ServerVerificationError, Exception))


class StartTLSTests(LoopbackTestCase):
    @inlineCallbacks
    def test_upgradeThenLogin(self):  # type: ignore[no-untyped-def]
        """
        On the plaintext port a client says hello, sends starttls, upgrades
        with the server's certificate verified, then logs in.
        """
        from mrs.tls.client import clientCreator

        client = yield self.client(tls=False)
        client.send({"type": "hello", "versions": [1], "role": "monitor"})
        welcome = yield client.waitForMessage("welcome")
        self.assertEqual((welcome["starttls"], welcome["encrypted"]), (True, False))
        client.send({"type": "starttls"})
        yield client.waitForMessage("starttls_ok")
        client.transport.startTLS(clientCreator("127.0.0.1",
                                                caFile=self.server.certificatePath))
        client.send({"type": "login", "user": "alice", "password": "alice-pw"})
        ok = yield client.waitForMessage("login_ok")
        self.assertEqual(ok["name"], "alice")
        [status] = [s for s in self.server.hub.statusSnapshot() if s["role"] == "monitor"]
        self.assertEqual(status["encrypted"], True)

    @inlineCallbacks
    def test_plaintextLoginRejected(self):  # type: ignore[no-untyped-def]
        client = yield self.client(tls=False)
        reply = yield login(client, "monitor", "alice", "alice-pw")
        self.assertEqual(reply["code"], "tls_required")

    @inlineCallbacks
    def test_injectedBytesAfterStartTLS(self):  # type: ignore[no-untyped-def]
        """
        Plaintext bytes sent together with starttls close the connection
        instead of being read as if they came through TLS.
        """
        client = yield self.client(tls=False)
        client.send({"type": "hello", "versions": [1], "role": "monitor"})
        yield client.waitForMessage("welcome")
        from mrs.wire import encodeMessage, parseMessage

        client.transport.write(
            encodeMessage(parseMessage({"type": "starttls"}))
            + encodeMessage(parseMessage({"type": "login", "user": "alice",
                                          "password": "alice-pw"})))
        yield client.closed
        self.assertEqual(client.messages("login_ok"), [])


class AbuseTests(LoopbackTestCase):
    overrides = {"idle_timeout": 1.0, "keepalive_interval": 0.4, "login_timeout": 2.0,
                 "max_frame_size": 8 * 1024 * 1024}

    @inlineCallbacks
    def test_hugeFramesClosedOthersUnaffected(self):  # type: ignore[no-untyped-def]
        """
        A 3 MiB keyframe reaches the monitor whole; a header claiming 64 MiB
        and one claiming 2 GiB close only that device's connection.
        """
        device = yield self.client()
        yield login(device, "device", "cam-1", "cam-1-secret")
        monitor = yield self.client()
        yield login(monitor, "monitor", "alice", "alice-pw")
        monitor.send({"type": "subscribe", "device": "cam-1", "tracks": ["video"]})
        yield monitor.waitForMessage("subscribed")
        big = os.urandom(3 * 1024 * 1024)
        device.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME, 1, big)
        yield monitor.waitFor(lambda: len(monitor.frames()) == 1)
        self.assertEqual(monitor.frames()[0].data, big)
        for claimed in (64 * 1024 * 1024, 2 * 1024 ** 3):
            other = yield self.client()
            yield login(other, "device", "cam-2", "cam-2-secret")
            other.transport.write(b"\x02\x00\x00\x00" + claimed.to_bytes(4, "big"))
            yield other.closed
            self.assertEqual(other.messages("error")[-1]["code"], "frame_too_large")
        monitor.send({"type": "ping", "id": "still-there"})
        pong = yield monitor.waitForMessage("pong")
        self.assertEqual(pong["id"], "still-there")
        self.assertFalse(device.lost)

    @inlineCallbacks
    def test_silentClientClosed(self):  # type: ignore[no-untyped-def]
        """
        A client that connects and sends nothing is closed by the idle or
        login timeout.
        """
        client = yield self.client(tls=False)
        yield client.closed
        self.assertTrue(client.lost)

    @inlineCallbacks
    def test_stallMidFrameAfterTLS(self):  # type: ignore[no-untyped-def]
        """
        A logged-in client that stops in the middle of a frame is closed
        after the idle timeout.
        """
        device = yield self.client()
        yield login(device, "device", "cam-1", "cam-1-secret")
        device.autoPong = False
        device.transport.write(b"\x02\x00\x00\x00\x00\x01\x00\x00" + b"x" * 100)
        started = reactor.seconds()
        yield device.closed
        self.assertLess(reactor.seconds() - started, 5)

    @inlineCallbacks
    def test_garbageStream(self):  # type: ignore[no-untyped-def]
        """
        Megabytes of garbage cost one read: the connection closes at the
        first bytes.
        """
        client = yield self.client(tls=False)
        client.preambleSent = True
        try:
            for _ in range(100):
                client.transport.write(os.urandom(1024 * 1024))
                yield sleep(0)
        except (ConnectionDone, ConnectionLost):
            pass
        yield client.closed
        self.assertLessEqual(len(client.messages()), 1)

    @inlineCallbacks
    def test_deadPeersFound(self):  # type: ignore[no-untyped-def]
        """
        Devices that log in, send one position and go silent are closed
        within the idle timeout plus one keepalive interval, and new devices
        are still accepted.
        """
        from mrs.passwords import hashPassword

        secretHash = hashPassword("fleet-secret")
        for n in range(20):
            yield self.server.store.addDevice(f"van-{n}", f"Van {n}", secretHash, actor="test")
        sessions = self.server.services["client listeners"].sessions
        devices = []
        for n in range(20):
            device = yield self.client()
            yield login(device, "device", f"van-{n}", "fleet-secret")
            device.send({"type": "location", "lat": 46.0, "lon": 14.5,
                         "time": "2026-01-01T00:00:00Z"})
            devices.append(device)
        self.assertEqual(len(sessions), 20)
        for device in devices:
            # Stop reading and writing, like a peer whose link died.
            device.autoPong = False
            device.transport.pauseProducing()
        started = reactor.seconds()
        while sessions and reactor.seconds() - started < 5:
            yield sleep(0.1)
        self.assertEqual(len(sessions), 0)
        self.assertLess(reactor.seconds() - started, 2.0)
        fresh = yield self.client()
        reply = yield login(fresh, "device", "cam-1", "cam-1-secret")
        self.assertEqual(reply["type"], "login_ok")
