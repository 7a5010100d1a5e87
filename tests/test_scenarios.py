"""
Relay scenarios drawn from failures seen in real media relays, run against
the real server on 127.0.0.1 with real TLS and the recorded H.264 sample.

The sample is about 0.6 Mbit/s.  The tests pad each access unit with an
H.264 filler NAL unit (type 12), which decoders skip, so the stream runs at
about 4 Mbit/s and stays decodable.
"""

from __future__ import annotations

import base64
import resource
import socket
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import LoopingCall
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from mrs.media.h264 import splitAccessUnits
from mrs.passwords import hashPassword
from mrs.wire import CODEC_H264, FLAG_KEYFRAME, TRACK_VIDEO, MediaFrame
from tests.loopback import LoopbackTestCase, RawClient, login, reactor, sleep

SAMPLE = Path(__file__).parent / "data" / "media" / "testsrc_640x360_25fps_gop50_baseline.h264"
FRAME_INTERVAL = 0.04
#: Bytes per access unit for about 4 Mbit/s at 25 frames per second.
PADDED_SIZE = 20_000


def paddedAccessUnits() -> list[tuple[bytes, bool]]:
    """
    Return the sample's access units, each padded with a filler NAL unit to
    about C{PADDED_SIZE} bytes, with their keyframe flags.
    """
    units = []
    for sample in splitAccessUnits(SAMPLE.read_bytes()):
        filler = max(0, PADDED_SIZE - len(sample.data) - 6)
        data = sample.data + b"\x00\x00\x00\x01\x0c" + b"\xff" * filler + b"\x80"
        units.append((data, sample.keyframe))
    return units


def decodeErrors(testCase: TestCase, video: bytes) -> str:
    """
    Decode an Annex-B H.264 stream with ffmpeg and return what it reported
    as errors (empty when the stream decodes cleanly).
    """
    path = Path(testCase.mktemp())
    path.write_bytes(video)
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "h264", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True, timeout=120)
    return result.stderr


def rss() -> int:
    """
    Return this process's resident set size in bytes.
    """
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


class Streamer:
    """
    Sends the padded sample in a loop from a device client, paced at 25
    frames per second.
    """

    def __init__(self, device: RawClient) -> None:
        self.device = device
        self.units = paddedAccessUnits()
        self.sent: list[bytes] = []
        self.index = 0
        self.loop = LoopingCall(self.sendOne)

    def sendOne(self) -> None:
        data, keyframe = self.units[self.index % len(self.units)]
        timestamp = self.index * 40_000
        self.device.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME if keyframe else 0,
                              timestamp, data)
        self.sent.append(data)
        self.index += 1

    def start(self) -> None:
        self.loop.start(FRAME_INTERVAL)

    def stop(self) -> None:
        if self.loop.running:
            self.loop.stop()


class ScenarioTestCase(LoopbackTestCase):
    overrides: dict[str, object] = {"queue_limit": 1024 * 1024, "congestion_timeout": 20}

    def setUp(self):  # type: ignore[no-untyped-def]
        self.streamers: list[Streamer] = []
        return super().setUp()

    def tearDown(self):  # type: ignore[no-untyped-def]
        for streamer in self.streamers:
            streamer.stop()
        return super().tearDown()

    @inlineCallbacks
    def monitor(self, user: str = "alice", password: str = "alice-pw"):  # type: ignore[no-untyped-def]
        monitor = yield self.client()
        yield login(monitor, "monitor", user, password)
        monitor.send({"type": "subscribe", "device": "cam-1", "tracks": ["video"]})
        yield monitor.waitForMessage("subscribed")
        return monitor

    @inlineCallbacks
    def streamingDevice(self, name: str = "cam-1"):  # type: ignore[no-untyped-def]
        device = yield self.client()
        yield login(device, "device", name, f"{name}-secret")
        streamer = Streamer(device)
        self.streamers.append(streamer)
        streamer.start()
        return streamer


def shrinkReceiveBuffer(client: RawClient) -> None:
    """
    Give a client socket a small receive buffer, so that a client that
    reads slowly fills the server's queue within seconds instead of after
    the megabytes loopback sockets buffer by default.  Much smaller buffers
    stall loopback TCP altogether, because one loopback segment is larger
    than the buffer.
    """
    # Behind TLS, the TCP transport is the TLS protocol's own transport.
    tcp = getattr(client.transport, "transport", client.transport)
    tcp.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)


class SlowMonitorScenarios(ScenarioTestCase):
    overrides = {"queue_limit": 512 * 1024, "congestion_timeout": 20.0}
    @inlineCallbacks
    def test_slowReaderCatchesUpAtKeyframe(self):  # type: ignore[no-untyped-def]
        """
        Monitor B reads about 50 kB/s for a while, then at full speed.  A
        gets every frame; B's queue stays under the limit, its frames drop
        up to a keyframe, its output decodes with no errors, and the drops
        show in the session status.
        """
        streamer = yield self.streamingDevice()
        fast = yield self.monitor()
        slow = yield self.monitor()
        shrinkReceiveBuffer(slow)
        slowReads = LoopingCall(self._readOnce, slow)
        slow.transport.pauseProducing()
        # One read a second: at most 64 KiB, Twisted's read size.
        slowReads.start(1.0)
        queues = [s.queue for s in self.server.services["client listeners"].sessions
                  if s.principal is not None and s.principal.name == "alice"]
        peak = 0
        # The socket buffers of both ends take a few megabytes before the
        # server's queue fills (Linux lets a send buffer grow to 4 MiB, eight
        # seconds of this stream); fifteen slow seconds overflow it.
        for _ in range(150):
            yield sleep(0.1)
            peak = max(peak, *(q.queuedBytes for q in queues))
        slowReads.stop()
        # Let the last scheduled pause run before reading at full speed.
        yield sleep(0.05)
        slow.transport.resumeProducing()
        yield sleep(4)
        streamer.stop()
        yield sleep(0.5)

        self.assertLessEqual(peak, 512 * 1024)
        assertContiguous(self, fast.frames(), streamer)
        slowFrames = slow.frames()
        self.assertTrue(slowFrames[0].keyframe)
        self.assertLess(len(slowFrames), len(fast.frames()))
        positions = [f.timestamp // 40_000 for f in slowFrames]
        gaps = [i for i in range(1, len(positions)) if positions[i] != positions[i - 1] + 1]
        self.assertTrue(gaps)
        for i in gaps:
            self.assertTrue(slowFrames[i].keyframe)
        self.assertEqual(decodeErrors(self, b"".join(f.data for f in slowFrames)), "")
        [status] = [s for s in self.server.hub.statusSnapshot()
                    if s["role"] == "monitor" and s["droppedFrames"]]
        self.assertGreater(status["droppedFrames"], 0)

    @staticmethod
    def _readOnce(client: RawClient) -> None:
        client.transport.resumeProducing()
        reactor.callLater(0, client.transport.pauseProducing)


class PausedMonitorScenario(ScenarioTestCase):
    overrides = {"queue_limit": 512 * 1024, "congestion_timeout": 60.0}

    @inlineCallbacks
    def test_pausedThirtySecondsResumesAtKeyframe(self):  # type: ignore[no-untyped-def]
        """
        A monitor that reads nothing for 30 s of a 4 Mbit/s stream leaves
        the server's queue within its limit and its memory bounded.  The
        other monitor gets every frame.  When it reads again, its first new
        frame is a keyframe and its whole output decodes cleanly.
        """
        streamer = yield self.streamingDevice()
        fast = yield self.monitor()
        paused = yield self.monitor()
        shrinkReceiveBuffer(paused)
        paused.transport.pauseProducing()
        sessions = self.server.services["client listeners"].sessions
        [session] = [s for s in sessions if s.principal and s.principal.name == "alice"
                     and s.address.endswith(f":{paused.transport.getHost().port}")]
        before = rss()
        peak = 0
        for _ in range(300):
            yield sleep(0.1)
            peak = max(peak, session.queue.queuedBytes)
        growth = rss() - before
        paused.transport.resumeProducing()
        yield sleep(3)
        streamer.stop()
        yield sleep(0.5)

        self.assertLessEqual(peak, 512 * 1024)
        self.assertLess(growth, 32 * 1024 * 1024)
        self.assertFalse(paused.lost)
        assertContiguous(self, fast.frames(), streamer)
        frames = paused.frames()
        positions = [f.timestamp // 40_000 for f in frames]
        gaps = [i for i in range(1, len(positions)) if positions[i] != positions[i - 1] + 1]
        # Catching up may drop again while the backlog drains; every gap
        # still ends on a keyframe.
        self.assertTrue(gaps)
        for i in gaps:
            self.assertTrue(frames[i].keyframe)
        self.assertEqual(decodeErrors(self, b"".join(f.data for f in frames)), "")


class StalledMonitorScenario(ScenarioTestCase):
    overrides = {"queue_limit": 512 * 1024, "congestion_timeout": 3.0}

    @inlineCallbacks
    def test_stalledMonitorDisconnected(self):  # type: ignore[no-untyped-def]
        """
        A monitor that never reads is disconnected after the congestion
        timeout; memory stays bounded, and the device and the other monitor
        carry on.
        """
        streamer = yield self.streamingDevice()
        fast = yield self.monitor()
        stalled = yield self.monitor()
        shrinkReceiveBuffer(stalled)
        stalled.transport.pauseProducing()
        sessions = self.server.services["client listeners"].sessions
        [session] = [s for s in sessions if s.principal and s.principal.name == "alice"
                     and s.address.endswith(f":{stalled.transport.getHost().port}")]
        before = rss()
        started = reactor.seconds()
        yield session.closed
        elapsed = reactor.seconds() - started
        growth = rss() - before
        streamer.stop()
        yield sleep(0.3)
        # The congestion timeout starts once the socket buffers are full,
        # which at 4 Mbit/s takes a few seconds on loopback.
        self.assertGreaterEqual(elapsed, 3.0)
        self.assertLess(elapsed, 12.0)
        self.assertLess(growth, 64 * 1024 * 1024)
        assertContiguous(self, fast.frames(), streamer)
        self.assertFalse(streamer.device.lost)


class GopScenarios(ScenarioTestCase):
    @inlineCallbacks
    def test_lateJoinDecodesCleanly(self):  # type: ignore[no-untyped-def]
        """
        A monitor subscribing 1.2 s after a keyframe starts on that keyframe
        with SPS and PPS, and ffmpeg decodes its output with no errors.
        """
        streamer = yield self.streamingDevice()
        yield sleep(1.2)
        late = yield self.monitor()
        yield sleep(2.5)
        streamer.stop()
        yield sleep(0.3)
        frames = late.frames()
        self.assertTrue(frames[0].keyframe)
        self.assertEqual(frames[0].data[:5], b"\x00\x00\x00\x01\x67")
        self.assertEqual(decodeErrors(self, b"".join(f.data for f in frames)), "")

    def test_startingMidGopWouldFail(self) -> None:
        """
        The check above can fail: the same stream started at access unit 7
        makes ffmpeg report missing references.
        """
        units = [data for data, _ in paddedAccessUnits()]
        self.assertIn("non-existing PPS", decodeErrors(self, b"".join(units[7:50])))


class ReconnectScenarios(ScenarioTestCase):
    @inlineCallbacks
    def test_frozenDeviceTakenOver(self):  # type: ignore[no-untyped-def]
        """
        A device whose old connection froze logs in again: the new session
        takes over at once, the old socket is closed, subscribers continue
        from the new stream's first keyframe, and one session shows.
        """
        old = yield self.streamingDevice()
        monitor = yield self.monitor()
        yield sleep(0.5)
        old.stop()
        old.device.transport.pauseProducing()
        yield sleep(0.5)
        new = yield self.streamingDevice()
        yield sleep(1.0)
        new.stop()
        yield sleep(0.3)
        events = [m.get("event") for m in monitor.messages("event")]
        self.assertIn("stream_restarted", events)
        after = [f for f in monitor.frames() if f.timestamp < 40_000 * new.index
                 and f.data in new.sent[:5] and f.keyframe]
        self.assertTrue(after)
        devices = [s for s in self.server.hub.statusSnapshot() if s["role"] == "device"]
        self.assertEqual(len(devices), 1)
        sessions = self.server.services["client listeners"].sessions
        self.assertEqual(len([s for s in sessions if s.principal
                              and s.principal.name == "cam-1"]), 1)

    @inlineCallbacks
    def test_resetAndReconnect(self):  # type: ignore[no-untyped-def]
        """
        Three monitors stay connected through a device reset: they get
        device_reconnecting, then stream_restarted, then a keyframe marked
        as a discontinuity.
        """
        first = yield self.streamingDevice()
        monitors = []
        for _ in range(3):
            monitor = yield self.monitor()
            monitors.append(monitor)
        yield sleep(0.5)
        first.stop()
        first.device.transport.abortConnection()
        yield sleep(1.0)
        second = yield self.streamingDevice()
        yield sleep(2.2)
        second.stop()
        yield sleep(0.3)
        for monitor in monitors:
            events = [m["event"] for m in monitor.messages("event")]
            self.assertEqual(events, ["device_reconnecting", "stream_restarted"])
            self.assertFalse(monitor.lost)
            restarted = [f for f in monitor.frames() if f.discontinuity]
            self.assertEqual(len(restarted), 1)
            self.assertTrue(restarted[0].keyframe)


class AccessScenarios(ScenarioTestCase):
    @inlineCallbacks
    def test_failedAccessGetsNoMedia(self):  # type: ignore[no-untyped-def]
        """
        No credentials, a wrong password, a user without rights, an expired
        token and a subscribe before login all fail before any media or
        position is sent, with the same error for wrong user and wrong
        password.
        """
        streamer = yield self.streamingDevice()
        streamer.device.send({"type": "location", "lat": 46.0, "lon": 14.5,
                              "time": "2026-12-04T00:00:00Z"})
        attempts = []
        for user, password in ((None, None), ("alice", "wrong"), ("nobody", "alice-pw"),
                               ("bob", "bob-pw")):
            client = yield self.client()
            client.send({"type": "hello", "versions": [1], "role": "monitor"})
            yield client.waitForMessage("welcome")
            if user is None:
                client.send({"type": "subscribe", "device": "cam-1", "tracks": ["video"]})
            else:
                client.send({"type": "login", "user": user, "password": password})
                yield client.waitFor(lambda c=client: bool(c.messages("error")
                                                           or c.messages("login_ok")))
                client.send({"type": "subscribe", "device": "cam-1",
                             "tracks": ["video", "audio"]})
            attempts.append(client)
        yield sleep(3)
        for client in attempts:
            self.assertEqual(client.frames(), [])
            self.assertEqual(client.messages("location"), [])
        wrongPassword, unknownUser = attempts[1].messages("error")[0], \
            attempts[2].messages("error")[0]
        self.assertEqual(wrongPassword, unknownUser)
        self.assertEqual(attempts[0].messages("error")[0]["code"], "not_allowed_now")
        self.assertEqual(attempts[3].messages("error")[0]["code"], "permission_denied")
        streamer.stop()


class SecretScenarios(ScenarioTestCase):
    @inlineCallbacks
    def test_secretNeverShown(self):  # type: ignore[no-untyped-def]
        """
        A device secret with characters that need escaping never appears,
        raw, percent-encoded or base64-encoded, in the server's log or in
        what the server sends, through failed and successful logins, a TLS
        failure and a device dropping mid-stream.
        """
        secret = "p@ss:w/rd%"
        forms = {secret, urllib.parse.quote(secret), urllib.parse.quote_plus(secret),
                 base64.b64encode(secret.encode()).decode()}
        events: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            from twisted.logger import formatEvent

            events.append(formatEvent(event))
            failure = event.get("log_failure")
            if failure is not None:
                events.append(failure.getTraceback())

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        yield self.server.store.addDevice("legacy", "Legacy", hashPassword(secret),
                                          actor="test")
        received: list[RawClient] = []
        for attempt in (secret + "x", secret):
            device = yield self.client()
            reply = yield login(device, "device", "legacy", attempt)
            received.append(device)
        self.assertEqual(reply["type"], "login_ok")
        device.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME, 0, b"\x00\x00\x00\x01\x65x")
        device.transport.abortConnection()
        bad = yield self.client(fingerprint="00" * 32)
        yield bad.closed
        yield sleep(0.5)
        text = "\n".join(events)
        self.assertIn("login failed: device 'legacy'", text)
        sent = repr([c.items for c in received])
        for form in forms:
            self.assertNotIn(form, text)
            self.assertNotIn(form, sent)


class ManyDevicesScenario(ScenarioTestCase):
    overrides = {"idle_timeout": 3.0, "keepalive_interval": 1.0}

    @inlineCallbacks
    def test_deadPeersOfAFleet(self):  # type: ignore[no-untyped-def]
        """
        200 devices send one position each and go silent without closing;
        all are closed within three missed keepalives, the server's file
        descriptors return to the baseline, and 50 new devices get in.
        """
        from tests.support import fastHash

        secretHash = fastHash("fleet-secret")
        for n in range(250):
            yield self.server.store.addDevice(f"unit-{n}", f"Unit {n}", secretHash, actor="t")
        sessions = self.server.services["client listeners"].sessions
        baseline = _openFiles()
        fleet = []
        for n in range(200):
            device = yield self.client()
            yield login(device, "device", f"unit-{n}", "fleet-secret")
            device.send({"type": "location", "lat": 46.0, "lon": 14.5 + n / 1000,
                         "time": "2026-12-04T00:00:00Z"})
            fleet.append(device)
        for device in fleet:
            device.autoPong = False
            device.transport.pauseProducing()
        started = reactor.seconds()
        while sessions and reactor.seconds() - started < 10:
            yield sleep(0.2)
        self.assertEqual(len(sessions), 0)
        self.assertLess(reactor.seconds() - started, 3.0 + 1.0 + 1.0)
        for device in fleet:
            device.transport.abortConnection()
        yield sleep(0.5)
        self.assertLess(abs(_openFiles() - baseline), 10)
        for n in range(200, 250):
            device = yield self.client()
            reply = yield login(device, "device", f"unit-{n}", "fleet-secret")
            self.assertEqual(reply["type"], "login_ok")


def _openFiles() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def assertContiguous(testCase: TestCase, frames: list[MediaFrame], streamer: Streamer) -> None:
    """
    Assert that C{frames} are every frame C{streamer} sent from the first
    one received to the end, byte for byte.
    """
    first = frames[0].timestamp // 40_000
    testCase.assertEqual([f.timestamp // 40_000 for f in frames],
                         list(range(first, streamer.index)))
    testCase.assertEqual([f.data for f in frames], streamer.sent[first:])


class AdminRevocationScenario(ScenarioTestCase):
    """
    An administrator changes a watching monitor's access through the HTTPS
    JSON API; the monitor loses exactly what was taken, within two seconds.
    """

    @inlineCallbacks
    def setUp(self):  # type: ignore[no-untyped-def]
        yield super().setUp()
        import hashlib
        import secrets

        self.token = secrets.token_urlsafe(24)
        yield self.server.store.addApiToken("admin", "tests",
                                            hashlib.sha256(self.token.encode()).hexdigest(),
                                            actor="test")

    @inlineCallbacks
    def api(self, method: str, path: str, body: Any = None):  # type: ignore[no-untyped-def]
        import json

        import treq
        from twisted.web.client import Agent
        from twisted.web.iweb import IPolicyForHTTPS
        from zope.interface import implementer

        from mrs.tls.client import clientCreator

        caFile = self.server.certificatePath

        @implementer(IPolicyForHTTPS)
        class TrustServer:
            def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
                return clientCreator("127.0.0.1", caFile=caFile, alpn=(b"http/1.1",))

        client = treq.client.HTTPClient(Agent(reactor, contextFactory=TrustServer()))
        url = f"https://127.0.0.1:{self.server.adminPort}/api/v1{path}"
        kwargs: dict[str, Any] = {"headers": {"Authorization": f"Bearer {self.token}"}}
        if body is not None:
            kwargs["data"] = json.dumps(body).encode()
            kwargs["headers"]["Content-Type"] = "application/json"
        response = yield client.request(method, url, **kwargs)
        content = yield response.content()
        self.assertLess(response.code, 300, content)
        return json.loads(content) if content else None

    @inlineCallbacks
    def watching(self):  # type: ignore[no-untyped-def]
        streamer = yield self.streamingDevice()
        monitor = yield self.client()
        yield login(monitor, "monitor", "alice", "alice-pw")
        monitor.send({"type": "subscribe", "device": "cam-1", "tracks": ["video", "location"]})
        yield monitor.waitForMessage("subscribed")
        self.positions = LoopingCall(lambda: streamer.device.send({
            "type": "location", "lat": 46.0, "lon": 14.5 + streamer.index / 1e5,
            "time": f"2026-12-04T00:{streamer.index // 1500 % 60:02d}:"
                    f"{streamer.index // 25 % 60:02d}Z"}))
        self.positions.start(1.0)
        self.addCleanup(lambda: self.positions.running and self.positions.stop())
        yield sleep(1.0)
        return streamer, monitor

    @inlineCallbacks
    def aliceRule(self):  # type: ignore[no-untyped-def]
        rules = yield self.api("GET", "/rules")
        [rule] = [r for r in rules if r["subject"] == "alice"]
        return rule

    @inlineCallbacks
    def test_removeRuleThenVideoOnly(self):  # type: ignore[no-untyped-def]
        """
        (b) Taking only video away keeps locations flowing; (a) removing the
        rule ends everything; each comes with a revoked message, a new
        subscribe is refused, and the audit log records both.
        """
        streamer, monitor = yield self.watching()
        rule = yield self.aliceRule()
        yield self.api("PATCH", f"/rules/{rule['ruleId']}", {"rights": ["location"]})
        yield monitor.waitForMessage("revoked", timeout=2.0)
        [revoked] = monitor.messages("revoked")
        self.assertEqual(revoked["tracks"], ["video"])
        cut = len(monitor.items)
        yield sleep(2.2)
        later = monitor.items[cut:]
        self.assertEqual([i for i in later if isinstance(i, MediaFrame)], [])
        self.assertTrue([i for i in later if isinstance(i, dict) and i["type"] == "location"])

        rule = yield self.aliceRule()
        yield self.api("DELETE", f"/rules/{rule['ruleId']}")
        yield monitor.waitForMessage("revoked", count=2, timeout=2.0)
        self.assertEqual(monitor.messages("revoked")[1]["tracks"], ["location"])
        monitor.send({"type": "subscribe", "device": "cam-1", "tracks": ["video"], "id": 9})
        yield monitor.waitFor(lambda: any(m.get("id") == 9 for m in monitor.messages("error")))
        self.assertEqual([m["code"] for m in monitor.messages("error")], ["unknown_device"])
        audit = yield self.api("GET", "/audit?action=rule")
        self.assertEqual([e["action"] for e in audit][:2], ["rule.remove", "rule.update"])
        streamer.stop()

    @inlineCallbacks
    def test_disableAndLogout(self):  # type: ignore[no-untyped-def]
        """
        (c) Disabling the user and (d) logging the user out each close the
        monitor's connection within two seconds.
        """
        streamer, monitor = yield self.watching()
        started = reactor.seconds()
        yield self.api("PATCH", "/users/alice", {"enabled": False})
        yield monitor.closed
        self.assertLess(reactor.seconds() - started, 2.0)
        self.assertEqual(monitor.messages("error")[-1]["code"], "account_disabled")

        yield self.api("PATCH", "/users/alice", {"enabled": True})
        yield sleep(1.1)
        again = yield self.client()
        yield login(again, "monitor", "alice", "alice-pw")
        started = reactor.seconds()
        result = yield self.api("POST", "/users/alice/logout")
        self.assertEqual(result, {"sessions": 1})
        yield again.closed
        self.assertLess(reactor.seconds() - started, 2.0)
        self.assertEqual(again.messages("error")[-1]["code"], "logged_out")
        audit = yield self.api("GET", "/audit?object=user:alice")
        self.assertIn("user.logout", [e["action"] for e in audit])
        streamer.stop()
