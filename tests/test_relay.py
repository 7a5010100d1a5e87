"""
Relay decisions tested without sockets: fan-out, permissions, the GOP
cache, revocation, replacement and reconnect grace, on-demand streaming,
commands, talk-back, slow monitors, timestamps and locations.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from mrs.store.models import Schedule
from mrs.wire import (
    CODEC_H264,
    CODEC_OPUS,
    FLAG_CONFIG,
    FLAG_DISCONTINUITY,
    FLAG_KEYFRAME,
    TRACK_AUDIO,
    TRACK_TALK,
    TRACK_VIDEO,
    MediaFrame,
)
from tests.support import ServerCore, WireClient

IDR = b"\x00\x00\x00\x01\x67SPS\x00\x00\x00\x01\x68PPS\x00\x00\x00\x01\x65IDR"


def pframe(n: int) -> bytes:
    return b"\x00\x00\x00\x01\x41P" + bytes([n % 256]) * 10


def frames(items: list[Any]) -> list[MediaFrame]:
    return [i for i in items if isinstance(i, MediaFrame)]


def subscribe(core: ServerCore, monitor: WireClient, tracks: list[str],
              device: str = "cam-1") -> list[Any]:
    monitor.send({"type": "subscribe", "device": device, "tracks": tracks})
    return monitor.receive()


class FanOutTests(SynchronousTestCase):
    def test_sameBytesToEveryMonitor(self) -> None:
        """
        Every subscriber gets each frame byte-identical, with the device's
        source number filled in.
        """
        core = ServerCore()
        device = core.device()
        monitors = [core.monitor("alice"), core.monitor("root"), core.monitor("alice")]
        for monitor in monitors:
            [subscribed] = subscribe(core, monitor, ["video"])
            self.assertEqual(subscribed["tracks"], ["video"])
        for monitor in monitors:
            monitor.transport.clear()
        device.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME, 1000, IDR)
        for n in range(5):
            device.sendMedia(TRACK_VIDEO, CODEC_H264, 0, 1000 + 40000 * (n + 1), pframe(n))
        source = core.hub.sourceOf("cam-1")
        expected = [MediaFrame(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME, source, 1000, IDR).encode()]
        expected += [MediaFrame(TRACK_VIDEO, CODEC_H264, 0, source, 1000 + 40000 * (n + 1),
                                pframe(n)).encode() for n in range(5)]
        for monitor in monitors:
            self.assertEqual(monitor.transport.value(), b"".join(expected))

    def test_manyDevicesToOneMonitor(self) -> None:
        """
        One monitor subscribed to two devices receives each device's frames
        with that device's source number.
        """
        core = ServerCore()
        core.store.addRule("user", "alice", "device", "cam-2", ["video"], actor="test")
        core.permissions.refreshNow()
        first, second = core.device("cam-1"), core.device("cam-2")
        monitor = core.monitor()
        subscribe(core, monitor, ["video"], "cam-1")
        subscribe(core, monitor, ["video"], "cam-2")
        first.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME, 1, IDR + b"1")
        second.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME, 2, IDR + b"2")
        received = frames(monitor.receive())
        self.assertEqual([(f.source, f.data) for f in received],
                         [(core.hub.sourceOf("cam-1"), IDR + b"1"),
                          (core.hub.sourceOf("cam-2"), IDR + b"2")])


class PermissionTests(SynchronousTestCase):
    def test_partialGrant(self) -> None:
        """
        A monitor with only the location right gets location and a denial
        for video, and no video frame.
        """
        core = ServerCore()
        device = core.device()
        bob = core.monitor("bob")
        [subscribed] = subscribe(core, bob, ["video", "location"])
        self.assertEqual((subscribed["tracks"], subscribed["denied"]), (["location"], ["video"]))
        device.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME, 1, IDR)
        self.assertEqual(bob.receive(), [])

    def test_noRight(self) -> None:
        core = ServerCore()
        core.device()
        bob = core.monitor("bob")
        [error] = subscribe(core, bob, ["video"])
        self.assertEqual((error["code"], error["message"]),
                         ("permission_denied", "no right to video of device 'cam-1'"))

    def test_invisibleDevice(self) -> None:
        """
        A device the user has no right on is reported as unknown, whether
        it exists or not.
        """
        core = ServerCore()
        core.device("cam-2")
        alice = core.monitor("alice")
        [error] = subscribe(core, alice, ["video"], "cam-2")
        self.assertEqual(error["code"], "unknown_device")
        [error] = subscribe(core, alice, ["video"], "cam-404")
        self.assertEqual(error["code"], "unknown_device")

    def test_listDevices(self) -> None:
        """
        The list shows visible devices with online state, tracks and rights.
        """
        core = ServerCore()
        core.device("cam-1")
        alice = core.monitor("alice")
        alice.send({"type": "list", "id": 1})
        [reply] = alice.receive()
        self.assertEqual(reply["id"], 1)
        [entry] = reply["devices"]
        self.assertEqual(entry["device"], "cam-1")
        self.assertEqual(entry["online"], True)
        self.assertEqual(entry["tracks"], [{"track": "audio", "codec": "aac"},
                                           {"track": "location"},
                                           {"track": "video", "codec": "h264"}])
        self.assertEqual(entry["rights"], ["audio", "control", "location", "talk", "video"])
        root = core.monitor("root")
        root.send({"type": "list"})
        self.assertEqual([d["device"] for d in root.receive()[0]["devices"]], ["cam-1", "cam-2"])

    def test_revokeStopsDelivery(self) -> None:
        """
        Removing the rule ends the subscription at once with a revoked
        message, drops queued frames, and a new subscribe is refused.
        """
        core = ServerCore()
        device = core.device()
        alice = core.monitor()
        subscribe(core, alice, ["video", "location"])
        [rule] = [r for r in core.store.listRules().result if r.subject == "alice"]
        core.store.removeRule(rule.ruleId, actor="root")
        core.clock.advance(1.0)
        revoked = alice.messages()
        self.assertEqual(revoked[0]["type"], "revoked")
        self.assertEqual(revoked[0]["tracks"], ["location", "video"])
        self.assertEqual(revoked[1], {"type": "event", "event": "device_removed",
                                      "device": "cam-1", "source": core.hub.sourceOf("cam-1")})
        device.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME, 1, IDR)
        self.assertEqual(alice.receive(), [])
        [error] = subscribe(core, alice, ["video"])
        self.assertEqual(error["code"], "unknown_device")

    def test_revokeOneTrackKeepsOthers(self) -> None:
        """
        Taking away only video keeps location flowing.
        """
        core = ServerCore()
        device = core.device()
        alice = core.monitor()
        subscribe(core, alice, ["video", "location"])
        [rule] = [r for r in core.store.listRules().result if r.subject == "alice"]
        core.store.removeRule(rule.ruleId, actor="root")
        core.store.addRule("user", "alice", "device", "cam-1", ["location"], actor="root")
        core.clock.advance(1.0)
        [revoked] = alice.messages()
        self.assertEqual(revoked["tracks"], ["video"])
        device.send({"type": "location", "lat": 46.05, "lon": 14.5,
                     "time": "1970-01-01T00:00:01Z"})
        device.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME, 1, IDR)
        [location] = alice.receive()
        self.assertEqual((location["type"], location["lat"]), ("location", 46.05))

    def test_disabledUserDisconnected(self) -> None:
        core = ServerCore()
        alice = core.monitor()
        core.store.setUserEnabled("alice", False, actor="root")
        core.clock.advance(1.0)
        self.assertEqual(alice.messages()[-1]["code"], "account_disabled")
        self.assertTrue(alice.closed)

    def test_passwordChangeDisconnects(self) -> None:
        core = ServerCore()
        alice = core.monitor()
        core.store.setUserPassword("alice", "x", actor="root")
        core.clock.advance(1.0)
        self.assertEqual(alice.messages()[-1]["code"], "credentials_changed")

    def test_disabledDeviceDisconnected(self) -> None:
        core = ServerCore()
        device = core.device()
        core.store.setDeviceEnabled("cam-1", False, actor="root")
        core.clock.advance(1.0)
        self.assertEqual(device.messages()[-1]["code"], "account_disabled")

    def test_newRightAnnounced(self) -> None:
        """
        A new rule makes the device appear to the monitor with an event.
        """
        core = ServerCore()
        core.device("cam-2")
        alice = core.monitor()
        core.store.addRule("user", "alice", "device", "cam-2", ["video"], actor="root")
        core.clock.advance(1.0)
        self.assertEqual(alice.messages(), [{"type": "event", "event": "device_added",
                                             "device": "cam-2", "reason": "online",
                                             "source": core.hub.sourceOf("cam-2")}])

    def test_scheduleWindowCloses(self) -> None:
        """
        When a rule's time window closes, its subscriptions end at once.
        """
        core = ServerCore(keepaliveInterval=3600, idleTimeout=7200)
        # The fake clock starts at 0: Thursday 1970-01-01 00:00 UTC.
        core.store.addRule("user", "bob", "device", "cam-1", ["video"], actor="root",
                           schedule=Schedule(frozenset({3}), 0, 10))
        core.clock.advance(1.0)
        core.device()
        bob = core.monitor("bob")
        [subscribed] = subscribe(core, bob, ["video"])
        self.assertEqual(subscribed["tracks"], ["video"])
        core.clock.advance(8 * 60)
        self.assertEqual(bob.messages(), [])
        core.clock.advance(2 * 60)
        self.assertEqual(bob.messages()[0]["type"], "revoked")


class GopCacheTests(SynchronousTestCase):
    def test_lateSubscriberStartsOnKeyframe(self) -> None:
        """
        A monitor subscribing mid-GOP first gets the cached keyframe and the
        frames after it, in order.
        """
        core = ServerCore()
        device = core.device()
        device.sendMedia(TRACK_VIDEO, CODEC_H264, 0, 0, pframe(99))
        device.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME, 40, IDR)
        for n in range(3):
            device.sendMedia(TRACK_VIDEO, CODEC_H264, 0, 80 + n, pframe(n))
        alice = core.monitor()
        received = subscribe(core, alice, ["video"])
        self.assertEqual(received[0]["type"], "subscribed")
        self.assertEqual([f.data for f in frames(received)],
                         [IDR, pframe(0), pframe(1), pframe(2)])
        self.assertTrue(frames(received)[0].keyframe)

    def test_noKeyframeYetWaits(self) -> None:
        """
        Without a cached keyframe, video starts at the next keyframe.
        """
        core = ServerCore()
        device = core.device()
        alice = core.monitor()
        subscribe(core, alice, ["video"])
        device.sendMedia(TRACK_VIDEO, CODEC_H264, 0, 1, pframe(1))
        device.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME, 2, IDR)
        device.sendMedia(TRACK_VIDEO, CODEC_H264, 0, 3, pframe(2))
        self.assertEqual([f.data for f in frames(alice.receive())], [IDR, pframe(2)])

    def test_audioConfigReplayed(self) -> None:
        """
        A new audio subscriber first gets the codec configuration frame.
        """
        core = ServerCore()
        device = core.device()
        device.sendMedia(TRACK_AUDIO, CODEC_OPUS, FLAG_CONFIG, 0, b"OpusHead")
        device.sendMedia(TRACK_AUDIO, CODEC_OPUS, 0, 20000, b"packet")
        alice = core.monitor()
        received = frames(subscribe(core, alice, ["audio"]))
        self.assertEqual([f.data for f in received], [b"OpusHead"])


class ReconnectTests(SynchronousTestCase):
    def test_duplicateLoginReplaces(self) -> None:
        """
        A second login as the same device closes the first with replaced.
        Subscribers stay and get stream_restarted, and the new stream starts
        at a keyframe marked as a discontinuity.
        """
        core = ServerCore()
        old = core.device()
        alice = core.monitor()
        subscribe(core, alice, ["video"])
        old.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME, 1, IDR)
        alice.receive()
        new = core.device()
        self.assertEqual(old.messages()[-1]["code"], "replaced")
        self.assertTrue(old.closed)
        old.session.connectionLost(None)
        events = alice.messages()
        self.assertEqual([e.get("event") for e in events], ["stream_restarted"])
        new.sendMedia(TRACK_VIDEO, CODEC_H264, 0, 5, pframe(1))
        new.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME, 6, IDR)
        [first] = frames(alice.receive())
        self.assertEqual(first.data, IDR)
        self.assertEqual(first.flags, FLAG_KEYFRAME | FLAG_DISCONTINUITY)
        self.assertEqual(len([s for s in core.hub.statusSnapshot() if s["role"] == "device"]), 1)

    def test_graceThenOffline(self) -> None:
        """
        A dropped device leaves its monitors subscribed for the grace period
        with a device_reconnecting event, then device_offline.
        """
        core = ServerCore(grace=30.0)
        device = core.device()
        alice = core.monitor()
        subscribe(core, alice, ["video"])
        device.session.connectionLost(None)
        self.assertEqual(alice.messages()[0]["event"], "device_reconnecting")
        core.clock.advance(29.9)
        self.assertEqual(alice.messages(), [])
        core.clock.advance(0.2)
        self.assertEqual(alice.messages()[-1]["event"], "device_offline")
        self.assertEqual(core.hub.monitors.pop().subscriptions, {})

    def test_reconnectWithinGrace(self) -> None:
        """
        A device back within the grace period resumes delivery to the same
        subscription with stream_restarted.
        """
        core = ServerCore(grace=30.0)
        device = core.device()
        alice = core.monitor()
        subscribe(core, alice, ["video"])
        device.session.connectionLost(None)
        core.clock.advance(3)
        alice.receive()
        again = core.device()
        self.assertEqual(alice.messages()[0]["event"], "stream_restarted")
        again.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME, 1, IDR)
        self.assertEqual([f.data for f in frames(alice.receive())], [IDR])


class OnDemandTests(SynchronousTestCase):
    def test_startAndStopWithLinger(self) -> None:
        """
        The device gets start for video at the first subscriber and stop
        the linger time after the last one leaves.
        """
        core = ServerCore(linger=5.0)
        device = core.device()
        self.assertEqual(device.startup, [{"type": "announced"},
                                          {"type": "start", "track": "location"}])
        alice = core.monitor()
        subscribe(core, alice, ["video"])
        self.assertEqual(device.messages(), [{"type": "start", "track": "video"}])
        alice.send({"type": "unsubscribe", "device": "cam-1"})
        self.assertEqual(alice.messages(), [{"type": "unsubscribed", "device": "cam-1",
                                             "tracks": ["video"]}])
        core.clock.advance(4.9)
        self.assertEqual(device.messages(), [])
        core.clock.advance(0.2)
        self.assertEqual(device.messages(), [{"type": "stop", "track": "video"}])

    def test_resubscribeDuringLinger(self) -> None:
        core = ServerCore(linger=5.0)
        device = core.device()
        device.receive()
        alice = core.monitor()
        subscribe(core, alice, ["video"])
        alice.send({"type": "unsubscribe", "device": "cam-1"})
        core.clock.advance(2)
        subscribe(core, alice, ["video"])
        core.clock.advance(10)
        self.assertEqual(device.messages(), [{"type": "start", "track": "video"}])


class CommandTests(SynchronousTestCase):
    def test_commandRoundTrip(self) -> None:
        """
        A command reaches the device with the sender's name; the result
        returns to the sender only, with the sender's id.
        """
        core = ServerCore()
        device = core.device()
        device.receive()
        alice, root = core.monitor("alice"), core.monitor("root")
        alice.send({"type": "command", "id": "a1", "device": "cam-1", "name": "ping",
                    "args": {"n": 1}})
        [command] = device.messages()
        self.assertEqual((command["name"], command["args"], command["from"]),
                         ("ping", {"n": 1}, "alice"))
        device.send({"type": "command_result", "id": command["id"], "ok": True,
                     "result": "pong"})
        self.assertEqual(alice.messages(), [{"type": "command_result", "id": "a1",
                                             "device": "cam-1", "ok": True,
                                             "result": "pong"}])
        self.assertEqual(root.messages(), [])

    def test_commandWithoutRight(self) -> None:
        core = ServerCore()
        device = core.device()
        device.receive()
        bob = core.monitor("bob")
        bob.send({"type": "command", "id": 7, "device": "cam-1", "name": "reboot"})
        [error] = bob.messages()
        self.assertEqual((error["code"], error["id"]), ("permission_denied", 7))
        self.assertEqual(device.messages(), [])

    def test_commandTimeout(self) -> None:
        core = ServerCore()
        core.device()
        alice = core.monitor()
        alice.send({"type": "command", "id": 1, "device": "cam-1", "name": "slow"})
        core.clock.advance(30)
        self.assertEqual(alice.messages()[-1]["code"], "timeout")

    def test_commandToOfflineDevice(self) -> None:
        core = ServerCore()
        alice = core.monitor()
        alice.send({"type": "command", "id": 1, "device": "cam-1", "name": "x"})
        self.assertEqual(alice.messages()[-1]["code"], "device_offline")

    def test_talkNeedsRight(self) -> None:
        """
        Talk-back audio reaches the device only from a monitor with talk.
        """
        core = ServerCore()
        device = core.device()
        device.receive()
        source = core.hub.sourceOf("cam-1")
        alice, bob = core.monitor("alice"), core.monitor("bob")
        alice.sendMedia(TRACK_TALK, CODEC_OPUS, 0, 5, b"hello", source=source)
        [talk] = frames(device.receive())
        self.assertEqual((talk.track, talk.data, talk.source), (TRACK_TALK, b"hello", 0))
        bob.sendMedia(TRACK_TALK, CODEC_OPUS, 0, 5, b"hello", source=source)
        self.assertEqual(bob.messages()[-1]["code"], "permission_denied")
        self.assertEqual(device.receive(), [])


class SlowMonitorTests(SynchronousTestCase):
    def test_dropUntilKeyframe(self) -> None:
        """
        A paused monitor's queue stops at the limit; video resumes only at
        the next keyframe after it drains, and other monitors get every
        frame.
        """
        core = ServerCore(queueLimit=10_000)
        device = core.device()
        slow, fast = core.monitor(), core.monitor("root")
        subscribe(core, slow, ["video"])
        subscribe(core, fast, ["video"])
        slow.session.queue.pauseProducing()
        device.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME, 0, IDR)
        sent = [IDR]
        for n in range(40):
            data = pframe(n) + b"x" * 500
            device.sendMedia(TRACK_VIDEO, CODEC_H264, 0, n + 1, data)
            sent.append(data)
        self.assertLessEqual(slow.session.queue.queuedBytes, 10_000)
        self.assertGreater(slow.session.queue.droppedFrames, 0)
        slow.session.queue.resumeProducing()
        delivered = [f.data for f in frames(slow.receive())]
        self.assertEqual(delivered, sent[: len(delivered)])
        device.sendMedia(TRACK_VIDEO, CODEC_H264, 0, 100, pframe(100))
        device.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME, 101, IDR + b"2")
        self.assertEqual([f.data for f in frames(slow.receive())], [IDR + b"2"])
        self.assertEqual([f.data for f in frames(fast.receive())],
                         sent + [pframe(100), IDR + b"2"])

    def test_stalledMonitorDisconnected(self) -> None:
        """
        A monitor paused for the congestion timeout is disconnected; the
        device is not.
        """
        core = ServerCore(congestionTimeout=20.0, keepaliveInterval=100, idleTimeout=1000)
        device = core.device()
        slow = core.monitor()
        subscribe(core, slow, ["video"])
        slow.session.queue.pauseProducing()
        core.clock.advance(19.9)
        self.assertFalse(slow.closed)
        core.clock.advance(0.2)
        self.assertTrue(slow.transport.disconnected or slow.transport.disconnecting)
        self.assertFalse(device.closed)

    def test_locationCoalesced(self) -> None:
        """
        While paused, only the newest location of a device stays queued.
        """
        core = ServerCore()
        device = core.device()
        alice = core.monitor()
        subscribe(core, alice, ["location"])
        alice.session.queue.pauseProducing()
        for second in range(5):
            device.send({"type": "location", "lat": 46.0 + second / 100, "lon": 14.5,
                         "time": f"1970-01-01T00:00:0{second}Z"})
        alice.session.queue.resumeProducing()
        [location] = alice.messages()
        self.assertEqual(location["lat"], 46.04)


class TimestampTests(SynchronousTestCase):
    def test_jumpsMarkedAndForwarded(self) -> None:
        """
        Repeated timestamps pass unchanged; a backward jump and a jump of an
        hour are forwarded with the discontinuity flag.
        """
        core = ServerCore()
        device = core.device()
        alice = core.monitor()
        subscribe(core, alice, ["video"])
        device.sendMedia(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME, 10_000_000, IDR)
        for _ in range(3):
            device.sendMedia(TRACK_VIDEO, CODEC_H264, 0, 10_000_000, pframe(1))
        device.sendMedia(TRACK_VIDEO, CODEC_H264, 0, 5_000_000, pframe(2))
        device.sendMedia(TRACK_VIDEO, CODEC_H264, 0, 3_605_000_000, pframe(3))
        received = frames(alice.receive())
        self.assertEqual([f.timestamp for f in received],
                         [10_000_000] * 4 + [5_000_000, 3_605_000_000])
        self.assertEqual([bool(f.flags & FLAG_DISCONTINUITY) for f in received],
                         [False, False, False, False, True, True])


class LocationTests(SynchronousTestCase):
    def _send(self, device: WireClient, **fields: Any) -> None:
        message = {"type": "location", "lat": 46.05, "lon": 14.5,
                   "time": "1970-01-01T00:00:10Z"}
        message.update(fields)
        device.send(message)

    def test_invalidNotRelayed(self) -> None:
        """
        An invalid fix, 0,0 and a fix far in the future are not relayed;
        the device's session stays up.
        """
        core = ServerCore()
        device = core.device()
        alice = core.monitor()
        subscribe(core, alice, ["location"])
        self._send(device, valid=False)
        self._send(device, lat=0.0, lon=0.0)
        self._send(device, time="1970-01-01T01:00:00Z")
        self.assertEqual(alice.messages(), [])
        self.assertFalse(device.closed)
        self.assertEqual(core.hub.devices["cam-1"].locationsRejected, 3)

    def test_duplicatesAndHistory(self) -> None:
        """
        The same fix is relayed once; an older fix goes to history.
        """
        core = ServerCore()
        device = core.device()
        alice = core.monitor()
        subscribe(core, alice, ["location"])
        for _ in range(10):
            self._send(device)
        self._send(device, time="1970-01-01T00:00:05Z", lat=45.0)
        self.assertEqual(len(alice.messages()), 1)
        tracker = core.hub.validateLocation.trackers["cam-1"]
        self.assertEqual([h.lat for h in tracker.history], [45.0, 46.05])
        self.assertEqual(tracker.current.lat, 46.05)
        self.assertEqual((tracker.counters.duplicates, tracker.counters.history), (9, 1))

    def test_latestLocationOnSubscribe(self) -> None:
        core = ServerCore()
        device = core.device()
        self._send(device)
        alice = core.monitor()
        received = subscribe(core, alice, ["location"])
        self.assertEqual([m["type"] for m in received], ["subscribed", "location"])
        self.assertEqual(received[1]["device"], "cam-1")


class LiveSettingTests(SynchronousTestCase):
    def test_timeZoneFromStore(self) -> None:
        """
        A time zone stored by the admin site applies to schedules at the
        next refresh, without a restart.
        """
        core = ServerCore()
        # Thursday 00:00 UTC is Wednesday 19:00 in New York.
        core.store.addRule("user", "bob", "device", "cam-2", ["video"], actor="root",
                           schedule=Schedule(frozenset({2}), 18 * 60, 20 * 60))
        core.clock.advance(1.0)
        self.assertEqual(core.permissions.rights("bob", "cam-2"), frozenset())
        core.store.setSetting("config.time_zone", "America/New_York", actor="root")
        core.clock.advance(1.0)
        self.assertEqual(core.permissions.rights("bob", "cam-2"), frozenset({"video"}))

    def test_badStoredValueIgnored(self) -> None:
        core = ServerCore()
        core.store.setSetting("config.time_zone", "Nowhere/Special", actor="root")
        core.clock.advance(1.0)
        self.assertEqual(core.permissions.liveSettings, {})

    def test_congestionTimeoutApplied(self) -> None:
        """
        A congestion timeout stored by the admin site applies to new and
        open sessions.
        """
        from mrs.server.service import HubService

        core = ServerCore()
        alice = core.monitor()
        service = HubService(core.hub, core.permissions, core.settings, core.factory.sessions)
        service.startService()
        core.store.setSetting("config.congestion_timeout", "7.5", actor="root")
        core.clock.advance(1.0)
        self.assertEqual(core.settings.congestionTimeout, 7.5)
        self.assertEqual(alice.session.queue.congestionTimeout, 7.5)


class ByeTests(SynchronousTestCase):
    def test_byeGoesOfflineAtOnce(self) -> None:
        """
        A device that sends bye is offline at once, without the reconnect
        grace period.
        """
        core = ServerCore(grace=30.0)
        device = core.device()
        alice = core.monitor()
        subscribe(core, alice, ["video"])
        device.send({"type": "bye", "reason": "shutting down"})
        device.session.connectionLost(None)
        self.assertEqual([m["event"] for m in alice.messages()], ["device_offline"])
        self.assertNotIn("cam-1", core.hub.devices)


class ScheduleValidationTests(SynchronousTestCase):
    def test_equalStartAndEndRejected(self) -> None:
        """
        A schedule from 10:00 to 10:00 is ambiguous (empty or all day) and
        rejected with the fix.
        """
        from mrs.store.errors import InvalidValue

        with self.assertRaises(InvalidValue) as caught:
            Schedule(frozenset({0}), 600, 600)
        self.assertEqual(str(caught.exception),
                         "invalid schedule '10:00 to 10:00': give a start and an end that "
                         "differ; for the whole day use 00:00 to 24:00")
