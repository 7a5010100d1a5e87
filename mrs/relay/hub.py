"""
The relay hub: the in-memory router between devices and monitors.

The hub keeps one L{DeviceEntry} per online device (or per device inside
its reconnect grace period) and one L{MonitorEntry} per logged-in monitor.
It never touches sockets: sessions hand it decoded frames and messages,
and it writes to monitors only through their L{OutboundQueue} and to
devices through the small L{DevicePeer} interface.  Time comes from the
injected reactor, so every timer is driven by C{Clock.advance} in tests.

Every media frame is encoded once, with the device's source number, and
the same bytes go to every subscriber.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from mrs.relay.queue import OutboundQueue
from mrs.relay.stats import RateMeter
from mrs.wire import (
    CODEC_NAMES,
    FLAG_DISCONTINUITY,
    TRACK_AUDIO,
    TRACK_NAMES,
    TRACK_VIDEO,
    MediaFrame,
)
from mrs.wire.constants import (
    FRAME_CONTROL,
    FRAME_HEADER,
    FRAME_MEDIA,
    MEDIA_FRAME_HEADER,
    MEDIA_HEADER_SIZE,
)

_packMedia = MEDIA_FRAME_HEADER.pack

#: Media tracks a monitor subscribes to, by name.
MEDIA_TRACKS = {"video": TRACK_VIDEO, "audio": TRACK_AUDIO}

#: Bytes of video kept per track for new subscribers: the latest keyframe
#: and what followed it.  A longer group of pictures is not cached, and new
#: subscribers of that track wait for the next keyframe instead.
GOP_CACHE_LIMIT = 16 * 1024 * 1024

#: A timestamp this far ahead of the previous one (microseconds) is a jump.
TIMESTAMP_JUMP = 10_000_000

#: Seconds a device has to return a command's result.
COMMAND_TIMEOUT = 30.0


def trackSpecs(announced: dict[str, str]) -> list[dict[str, str]]:
    """
    Describe announced tracks as the protocol's track objects.
    """
    return [{"track": name, "codec": codec} if codec else {"track": name}
            for name, codec in sorted(announced.items())]


def controlFrame(message: dict[str, Any]) -> bytes:
    """
    Encode a server-built control message as a whole frame.  Unlike
    L{mrs.wire.encodeMessage}, it does not build and check a message object,
    because the hub builds these itself, often once per frame or location.
    """
    payload = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return FRAME_HEADER.pack(FRAME_CONTROL, 0, 0, len(payload)) + payload


class RelayError(Exception):
    """
    A monitor's request cannot be served; C{code} is the protocol error code.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DevicePeer(Protocol):
    """
    The interface the hub uses to reach a device's session.
    """

    address: str

    def sendMessage(self, message: dict[str, Any]) -> None: ...

    def sendFrame(self, data: bytes) -> None: ...

    def disconnect(self, code: str, message: str) -> None: ...


class MonitorPeer(Protocol):
    """
    The interface the hub uses to reach a monitor's session.
    """

    address: str
    queue: OutboundQueue

    def disconnect(self, code: str, message: str) -> None: ...


@dataclass(eq=False, repr=False)
class TrackState:
    """
    One media track of one device.
    """

    number: int
    codec: int = 0
    subscribers: set[MonitorEntry] = field(default_factory=set)
    gop: list[bytes] = field(default_factory=list)
    gopBytes: int = 0
    #: Codec configuration frames (FLAG_CONFIG), replayed to new subscribers.
    config: list[bytes] = field(default_factory=list)
    streaming: bool = False
    lingerTimer: IDelayedCall | None = None
    lastTimestamp: int | None = None
    framesIn: int = 0
    bytesIn: int = 0
    rate: RateMeter = field(default_factory=RateMeter)


@dataclass(eq=False, repr=False)
class DeviceEntry:
    deviceId: str
    source: int
    peer: DevicePeer | None
    credentialsVersion: int
    since: float
    announced: dict[str, str] = field(default_factory=dict)
    tracks: dict[int, TrackState] = field(default_factory=dict)
    locationSubscribers: set[MonitorEntry] = field(default_factory=set)
    location: dict[str, Any] | None = None
    locationFrame: bytes | None = None
    locationReceived: float | None = None
    locationsIn: int = 0
    locationsRejected: int = 0
    graceTimer: IDelayedCall | None = None
    pendingDiscontinuity: set[int] = field(default_factory=set)
    lastJumpWarning: float = float("-inf")
    info: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<DeviceEntry {self.deviceId} source={self.source} online={self.online}>"

    @property
    def online(self) -> bool:
        return self.peer is not None

    def track(self, number: int) -> TrackState:
        state = self.tracks.get(number)
        if state is None:
            state = self.tracks[number] = TrackState(number)
        return state


@dataclass(eq=False, repr=False)
class MonitorEntry:
    user: str
    peer: MonitorPeer
    credentialsVersion: int
    since: float
    #: device id -> subscribed track names
    subscriptions: dict[str, set[str]] = field(default_factory=dict)
    visible: set[str] = field(default_factory=set)
    info: dict[str, Any] = field(default_factory=dict)
    sentFrames: int = 0


@dataclass(eq=False)
class PendingCommand:
    monitor: MonitorEntry
    clientId: Any
    deviceId: str
    timer: IDelayedCall


class Hub:
    """
    Routes media, locations, events and commands between sessions.
    """

    log = Logger()

    def __init__(
        self,
        reactor: IReactorTime,
        permissions: Any,
        *,
        reconnectGrace: float = 30.0,
        onDemandLinger: float = 5.0,
        locationAlwaysOn: bool = True,
        metrics: Any = None,
        validateLocation: Any = None,
    ) -> None:
        self.reactor = reactor
        self.permissions = permissions
        self.reconnectGrace = reconnectGrace
        self.onDemandLinger = onDemandLinger
        self.locationAlwaysOn = locationAlwaysOn
        self.metrics = metrics
        self.validateLocation = validateLocation
        self.devices: dict[str, DeviceEntry] = {}
        self.monitors: set[MonitorEntry] = set()
        self._sources: dict[str, int] = {}
        self._bySource: dict[int, DeviceEntry] = {}
        self._nextSource = itertools.count(1)
        self._commands: dict[str, PendingCommand] = {}
        self._commandIds = itertools.count(1)
        self.started = reactor.seconds()
        self.stopped = False

    def stop(self) -> None:
        """
        Cancel every timer and start none, for a clean shutdown.
        """
        self.stopped = True
        for entry in self.devices.values():
            if entry.graceTimer is not None and entry.graceTimer.active():
                entry.graceTimer.cancel()
            for state in entry.tracks.values():
                self._cancelLinger(state)
        for pending in self._commands.values():
            if pending.timer.active():
                pending.timer.cancel()
        self._commands.clear()

    # Devices

    def sourceOf(self, deviceId: str) -> int:
        """
        Return the source number of C{deviceId}, stable for the server's
        lifetime so that reconnects keep it.
        """
        source = self._sources.get(deviceId)
        if source is None:
            source = self._sources[deviceId] = next(self._nextSource)
        return source

    def deviceConnected(self, peer: DevicePeer, deviceId: str,
                        credentialsVersion: int = 1, info: dict[str, Any] | None = None
                        ) -> DeviceEntry:
        """
        Attach a newly logged-in device session.  A session already online
        for the same id is replaced and closed; subscribers stay.
        """
        now = self.reactor.seconds()
        entry = self.devices.get(deviceId)
        if entry is None:
            source = self.sourceOf(deviceId)
            entry = DeviceEntry(deviceId, source, peer, credentialsVersion, now)
            self.devices[deviceId] = entry
            self._bySource[source] = entry
            entry.info = dict(info or {})
            self.log.info("device {device} online (source {source})", device=deviceId,
                          source=source)
            self._eventToViewers(entry, {"type": "event", "event": "device_online",
                                         "device": deviceId, "source": source})
            self._startNeeded(entry)
            return entry

        old = entry.peer
        restarted = old is not None or entry.graceTimer is not None
        if entry.graceTimer is not None and entry.graceTimer.active():
            entry.graceTimer.cancel()
        entry.graceTimer = None
        entry.peer = peer
        entry.credentialsVersion = credentialsVersion
        entry.since = now
        entry.info = dict(info or {})
        if old is not None:
            self.log.info("device {device} logged in again from {address}; closing its "
                          "previous connection from {old}", device=deviceId,
                          address=peer.address, old=old.address)
            old.disconnect("replaced", "another connection logged in as this device")
        if restarted:
            self._restartStreams(entry)
        return entry

    def _restartStreams(self, entry: DeviceEntry) -> None:
        for state in entry.tracks.values():
            state.gop.clear()
            state.gopBytes = 0
            state.streaming = False
            state.lastTimestamp = None
            entry.pendingDiscontinuity.add(state.number)
            if state.number == TRACK_VIDEO:
                for monitor in state.subscribers:
                    monitor.peer.queue.requireKeyframe(entry.source)
        subscribers = self._subscribersOf(entry)
        frame = controlFrame({"type": "event", "event": "stream_restarted",
                              "device": entry.deviceId, "source": entry.source})
        for monitor in subscribers:
            monitor.peer.queue.sendControl(frame)
        self._startNeeded(entry)

    def deviceDisconnected(self, entry: DeviceEntry, peer: DevicePeer,
                           clean: bool = False) -> None:
        """
        Detach a device session that closed.  Its subscribers stay for the
        reconnect grace period, unless the device sent bye (C{clean}), in
        which case it goes offline at once.
        """
        if entry.peer is not peer:
            return
        entry.peer = None
        for state in entry.tracks.values():
            self._cancelLinger(state)
            state.streaming = False
        self._failCommands(entry.deviceId, "device_offline", "the device went offline")
        if self.reconnectGrace <= 0 or self.stopped or clean:
            self._goOffline(entry)
            return
        self.log.info("device {device} disconnected; waiting {grace} s for it to reconnect",
                      device=entry.deviceId, grace=self.reconnectGrace)
        frame = controlFrame({"type": "event", "event": "device_reconnecting",
                              "device": entry.deviceId, "source": entry.source,
                              "reason": f"connection lost; waiting {self.reconnectGrace:g} s "
                                        "for the device to reconnect"})
        for monitor in self._subscribersOf(entry):
            monitor.peer.queue.sendControl(frame)
        entry.graceTimer = self.reactor.callLater(self.reconnectGrace, self._goOffline, entry)

    def _goOffline(self, entry: DeviceEntry) -> None:
        entry.graceTimer = None
        if self.devices.get(entry.deviceId) is not entry or entry.peer is not None:
            return
        del self.devices[entry.deviceId]
        self._bySource.pop(entry.source, None)
        for monitor in self._subscribersOf(entry):
            monitor.subscriptions.pop(entry.deviceId, None)
        for state in entry.tracks.values():
            self._cancelLinger(state)
            state.subscribers.clear()
        entry.locationSubscribers.clear()
        self.log.info("device {device} offline", device=entry.deviceId)
        self._eventToViewers(entry, {"type": "event", "event": "device_offline",
                                     "device": entry.deviceId, "source": entry.source})

    def deviceAnnounce(self, entry: DeviceEntry, tracks: Iterable[dict[str, Any]]) -> None:
        """
        Record the tracks a device offers and start those already wanted.
        """
        announced = {}
        for track in tracks:
            announced[track["track"]] = track.get("codec") or ""
        changed = announced != entry.announced
        entry.announced = announced
        if changed:
            self._eventToViewers(entry, {"type": "event", "event": "tracks_changed",
                                         "device": entry.deviceId, "source": entry.source,
                                         "tracks": trackSpecs(announced)})
        self._startNeeded(entry)

    def deviceMedia(self, entry: DeviceEntry, frame: MediaFrame) -> None:
        """
        Relay one media frame from a device to the track's subscribers.
        """
        state = entry.track(frame.track)
        now = self.reactor.seconds()
        flags = frame.flags
        if frame.track in entry.pendingDiscontinuity and (
                frame.track != TRACK_VIDEO or frame.keyframe):
            # Subscribers' video restarts at a keyframe, so that is the
            # frame that must carry the mark.
            entry.pendingDiscontinuity.discard(frame.track)
            flags |= FLAG_DISCONTINUITY
        last = state.lastTimestamp
        if last is not None and (frame.timestamp < last or
                                 frame.timestamp - last > TIMESTAMP_JUMP):
            flags |= FLAG_DISCONTINUITY
            if now - entry.lastJumpWarning >= 1.0:
                entry.lastJumpWarning = now
                self.log.warn(
                    "device {device} {track} timestamp jumped from {last} to {timestamp} us; "
                    "marking a discontinuity", device=entry.deviceId,
                    track=TRACK_NAMES.get(frame.track, frame.track), last=last,
                    timestamp=frame.timestamp)
        state.lastTimestamp = frame.timestamp
        if state.codec != frame.codec:
            if state.codec:
                state.gop.clear()
                state.gopBytes = 0
                state.config.clear()
            state.codec = frame.codec
            name = TRACK_NAMES.get(frame.track, "")
            if entry.announced.get(name) != CODEC_NAMES.get(frame.codec):
                entry.announced[name] = CODEC_NAMES.get(frame.codec, "")
                self._eventToViewers(entry, {"type": "event", "event": "tracks_changed",
                                             "device": entry.deviceId, "source": entry.source,
                                             "tracks": trackSpecs(entry.announced)})
        # The decoder has validated every field; pack the header directly
        # rather than building and checking another MediaFrame per frame.
        payload = frame.data
        data = _packMedia(FRAME_MEDIA, 0, 0, MEDIA_HEADER_SIZE + len(payload), frame.track,
                          frame.codec, flags, 0, entry.source, frame.timestamp) + payload
        state.framesIn += 1
        state.bytesIn += len(data)
        state.rate.add(now, len(data))
        trackName = TRACK_NAMES.get(frame.track, "other")
        if self.metrics is not None:
            self.metrics.mediaIn(trackName, len(data))

        keyframe = frame.keyframe
        if frame.config:
            state.config = [data]
        elif frame.track == TRACK_VIDEO:
            if keyframe:
                state.gop = [data]
                state.gopBytes = len(data)
            elif state.gop:
                state.gopBytes += len(data)
                if state.gopBytes > GOP_CACHE_LIMIT:
                    state.gop = []
                    state.gopBytes = 0
                else:
                    state.gop.append(data)

        source = entry.source
        track = frame.track
        sent = dropped = 0
        for monitor in state.subscribers:
            if monitor.peer.queue.sendMedia(data, source, track, keyframe):
                monitor.sentFrames += 1
                sent += 1
            else:
                dropped += 1
        if self.metrics is not None:
            if sent:
                self.metrics.mediaOut(trackName, sent * len(data), sent)
            if dropped:
                self.metrics.frameDropped(trackName, dropped)

    def deviceLocation(self, entry: DeviceEntry, location: dict[str, Any]) -> str | None:
        """
        Validate, cache and relay a location from a device.

        @return: L{None} when accepted, else the reason it was not relayed.
        """
        now = self.reactor.seconds()
        if self.validateLocation is not None:
            reason = self.validateLocation(entry, location, now)
            if reason is not None:
                entry.locationsRejected += 1
                return str(reason)
        message = {k: v for k, v in location.items() if k not in ("type", "id")}
        message.update({"type": "location", "device": entry.deviceId, "source": entry.source})
        frame = controlFrame(message)
        entry.location = message
        entry.locationFrame = frame
        entry.locationReceived = now
        entry.locationsIn += 1
        key = ("location", entry.source)
        for monitor in entry.locationSubscribers:
            monitor.peer.queue.sendControl(frame, coalesceKey=key)
        return None

    # On-demand streaming

    def _trackNeeded(self, entry: DeviceEntry, name: str) -> bool:
        if name == "location":
            return self.locationAlwaysOn or bool(entry.locationSubscribers)
        state = entry.tracks.get(MEDIA_TRACKS[name])
        return state is not None and bool(state.subscribers)

    def _startNeeded(self, entry: DeviceEntry) -> None:
        if entry.peer is None:
            return
        for name in ("video", "audio", "location"):
            if name in entry.announced and self._trackNeeded(entry, name):
                self._sendStart(entry, name)

    def _sendStart(self, entry: DeviceEntry, name: str) -> None:
        if entry.peer is None:
            return
        if name in MEDIA_TRACKS:
            state = entry.track(MEDIA_TRACKS[name])
            self._cancelLinger(state)
            if state.streaming:
                return
            state.streaming = True
        entry.peer.sendMessage({"type": "start", "track": name})

    def _trackIdle(self, entry: DeviceEntry, name: str) -> None:
        if name == "location":
            if not self.locationAlwaysOn and entry.peer is not None and name in entry.announced:
                entry.peer.sendMessage({"type": "stop", "track": name})
            return
        state = entry.track(MEDIA_TRACKS[name])
        if not state.streaming or state.lingerTimer is not None:
            return
        state.lingerTimer = self.reactor.callLater(self.onDemandLinger, self._stopTrack,
                                                   entry, state, name)

    def _stopTrack(self, entry: DeviceEntry, state: TrackState, name: str) -> None:
        state.lingerTimer = None
        if state.subscribers or not state.streaming:
            return
        state.streaming = False
        state.gop.clear()
        state.gopBytes = 0
        if entry.peer is not None:
            entry.peer.sendMessage({"type": "stop", "track": name})

    def _cancelLinger(self, state: TrackState) -> None:
        if state.lingerTimer is not None and state.lingerTimer.active():
            state.lingerTimer.cancel()
        state.lingerTimer = None

    # Monitors

    def monitorConnected(self, peer: MonitorPeer, user: str, credentialsVersion: int = 1,
                         info: dict[str, Any] | None = None) -> MonitorEntry:
        entry = MonitorEntry(user, peer, credentialsVersion, self.reactor.seconds())
        entry.info = dict(info or {})
        entry.visible = set(self.permissions.visibleDevices(user))
        self.monitors.add(entry)
        return entry

    def monitorDisconnected(self, monitor: MonitorEntry) -> None:
        self.monitors.discard(monitor)
        for deviceId in list(monitor.subscriptions):
            self._removeSubscription(monitor, deviceId, set(monitor.subscriptions[deviceId]))
        for commandId, pending in list(self._commands.items()):
            if pending.monitor is monitor:
                if pending.timer.active():
                    pending.timer.cancel()
                del self._commands[commandId]

    def disconnectUser(self, user: str, reason: str) -> int:
        """
        Close every monitor session of C{user}; return how many there were.
        """
        sessions = [m for m in self.monitors if m.user == user]
        for monitor in sessions:
            monitor.peer.disconnect("logged_out", reason)
        if sessions:
            self.log.info("logged out user {user} from {count} session(s): {reason}",
                          user=user, count=len(sessions), reason=reason)
        return len(sessions)

    def listDevices(self, monitor: MonitorEntry) -> list[dict[str, Any]]:
        """
        Describe the devices C{monitor}'s user may see, online or not.
        """
        snapshot = self.permissions.snapshot
        now = self.reactor.seconds()
        result = []
        for deviceId in self.permissions.visibleDevices(monitor.user):
            device = snapshot.devices.get(deviceId)
            entry = self.devices.get(deviceId)
            rights = self.permissions.rights(monitor.user, deviceId)
            item: dict[str, Any] = {
                "device": deviceId,
                "name": device.displayName if device is not None else deviceId,
                "online": entry is not None and entry.online,
                "source": self.sourceOf(deviceId),
                "tracks": trackSpecs(entry.announced) if entry is not None else [],
                "rights": sorted(rights),
            }
            if (entry is not None and entry.location is not None and "location" in rights
                    and entry.locationReceived is not None):
                item["location"] = {k: v for k, v in entry.location.items()
                                    if k not in ("type", "device", "source")}
                item["location_age"] = round(now - entry.locationReceived, 3)
            result.append(item)
        return result

    def subscribe(self, monitor: MonitorEntry, deviceId: str, tracks: Iterable[str],
                  requestId: Any = None) -> tuple[list[str], list[str]]:
        """
        Subscribe C{monitor} to C{tracks} of C{deviceId}, each checked
        against the user's rights.

        @return: the granted and the denied track names.
        @raise RelayError: the device is unknown to this user or offline,
            or no requested track is allowed.
        """
        requested = sorted(set(tracks))
        rights = self.permissions.rights(monitor.user, deviceId)
        if not rights:
            self.permissions.denied(monitor.user, deviceId, "view",
                                    monitor.peer.address)
            raise RelayError("unknown_device",
                             f"no device {deviceId!r} is visible to this account")
        entry = self.devices.get(deviceId)
        if entry is None:
            raise RelayError("device_offline", f"device {deviceId!r} is offline")
        granted = [t for t in requested if t in rights]
        denied = [t for t in requested if t not in rights]
        for name in denied:
            self.permissions.denied(monitor.user, deviceId, name, monitor.peer.address)
        if not granted:
            raise RelayError("permission_denied",
                             f"no right to {', '.join(denied)} of device {deviceId!r}")
        current = monitor.subscriptions.setdefault(deviceId, set())
        queue = monitor.peer.queue
        new = [t for t in granted if t not in current]
        reply: dict[str, Any] = {"type": "subscribed", "device": deviceId,
                                 "source": entry.source, "tracks": granted, "denied": denied}
        if requestId is not None:
            reply["id"] = requestId
        queue.sendControl(controlFrame(reply))
        for name in new:
            current.add(name)
            if name == "location":
                entry.locationSubscribers.add(monitor)
                if entry.locationFrame is not None:
                    queue.sendControl(entry.locationFrame, coalesceKey=("location", entry.source))
                continue
            state = entry.track(MEDIA_TRACKS[name])
            state.subscribers.add(monitor)
            for data in state.config:
                queue.sendMedia(data, entry.source, state.number, False)
            if state.number == TRACK_VIDEO:
                if state.gop:
                    for index, data in enumerate(state.gop):
                        queue.sendMedia(data, entry.source, TRACK_VIDEO, index == 0)
                else:
                    queue.requireKeyframe(entry.source)
        for name in new:
            if name not in entry.announced:
                continue
            if name == "location":
                if not self.locationAlwaysOn and len(entry.locationSubscribers) == 1:
                    self._sendStart(entry, name)
            else:
                self._sendStart(entry, name)
        return granted, denied

    def unsubscribe(self, monitor: MonitorEntry, deviceId: str,
                    tracks: Iterable[str] | None = None) -> list[str]:
        """
        End C{monitor}'s subscription to C{tracks} (all when L{None}).

        @raise RelayError: not subscribed to that device.
        """
        current = monitor.subscriptions.get(deviceId)
        if not current:
            raise RelayError("not_subscribed", f"not subscribed to device {deviceId!r}")
        names = set(current) if tracks is None else set(tracks) & current
        self._removeSubscription(monitor, deviceId, names)
        return sorted(names)

    def _removeSubscription(self, monitor: MonitorEntry, deviceId: str, names: set[str]) -> None:
        current = monitor.subscriptions.get(deviceId, set())
        entry = self.devices.get(deviceId)
        for name in names:
            current.discard(name)
            if entry is None:
                continue
            if name == "location":
                entry.locationSubscribers.discard(monitor)
                if not entry.locationSubscribers:
                    self._trackIdle(entry, name)
                continue
            state = entry.tracks.get(MEDIA_TRACKS[name])
            if state is not None:
                state.subscribers.discard(monitor)
                if not state.subscribers:
                    self._trackIdle(entry, name)
        if entry is not None:
            monitor.peer.queue.purge(entry.source,
                                     {MEDIA_TRACKS[n] for n in names if n in MEDIA_TRACKS})
        if not current:
            monitor.subscriptions.pop(deviceId, None)

    # Commands and talk-back

    def command(self, monitor: MonitorEntry, clientId: Any, deviceId: str, name: str,
                args: dict[str, Any]) -> None:
        """
        Forward a command to a device; the result returns to C{monitor} only.

        @raise RelayError: no control right, or the device is offline.
        """
        if not self.permissions.allowed(monitor.user, deviceId, "control"):
            self.permissions.denied(monitor.user, deviceId, "control", monitor.peer.address)
            raise RelayError("permission_denied",
                             f"no control right on device {deviceId!r}")
        entry = self.devices.get(deviceId)
        if entry is None or entry.peer is None:
            raise RelayError("device_offline", f"device {deviceId!r} is offline")
        commandId = f"c{next(self._commandIds)}"
        timer = self.reactor.callLater(COMMAND_TIMEOUT, self._commandTimedOut, commandId)
        self._commands[commandId] = PendingCommand(monitor, clientId, deviceId, timer)
        entry.peer.sendMessage({"type": "command", "id": commandId, "name": name,
                                "args": args, "from": monitor.user})

    def commandResult(self, entry: DeviceEntry, result: dict[str, Any]) -> bool:
        """
        Route a device's command result back to the monitor that asked.

        @return: whether the result matched a pending command of this device.
        """
        pending = self._commands.get(str(result.get("id")))
        if pending is None or pending.deviceId != entry.deviceId:
            return False
        del self._commands[str(result.get("id"))]
        if pending.timer.active():
            pending.timer.cancel()
        reply = {k: v for k, v in result.items() if k in ("ok", "result", "error")}
        reply.update({"type": "command_result", "id": pending.clientId,
                      "device": entry.deviceId})
        if pending.clientId is None:
            del reply["id"]
        pending.monitor.peer.queue.sendControl(controlFrame(reply))
        return True

    def _commandTimedOut(self, commandId: str) -> None:
        pending = self._commands.pop(commandId, None)
        if pending is not None:
            self._commandFailed(pending, "timeout",
                                f"device {pending.deviceId!r} did not answer within "
                                f"{COMMAND_TIMEOUT:g} s")

    def _failCommands(self, deviceId: str, code: str, message: str) -> None:
        for commandId, pending in list(self._commands.items()):
            if pending.deviceId == deviceId:
                del self._commands[commandId]
                if pending.timer.active():
                    pending.timer.cancel()
                self._commandFailed(pending, code, message)

    def _commandFailed(self, pending: PendingCommand, code: str, message: str) -> None:
        reply: dict[str, Any] = {"type": "error", "code": code, "message": message,
                                 "ref": "command"}
        if pending.clientId is not None:
            reply["id"] = pending.clientId
        pending.monitor.peer.queue.sendControl(controlFrame(reply))

    def talk(self, monitor: MonitorEntry, frame: MediaFrame) -> None:
        """
        Forward talk-back audio from a monitor to the device of the frame's
        source number.

        @raise RelayError: unknown source, no talk right, or device offline.
        """
        entry = self._bySource.get(frame.source)
        if entry is None:
            raise RelayError("unknown_device", f"no device has source {frame.source}")
        if not self.permissions.allowed(monitor.user, entry.deviceId, "talk"):
            self.permissions.denied(monitor.user, entry.deviceId, "talk", monitor.peer.address)
            raise RelayError("permission_denied",
                             f"no talk right on device {entry.deviceId!r}")
        if entry.peer is None:
            raise RelayError("device_offline", f"device {entry.deviceId!r} is offline")
        entry.peer.sendFrame(frame.withSource(0).encode())

    # Permission changes

    def applyPermissions(self, snapshot: Any) -> None:
        """
        Re-check every live session against the current permissions: end
        revoked subscriptions, disconnect disabled or changed accounts and
        tell monitors about devices that became visible or invisible.
        """
        for entry in list(self.devices.values()):
            device = snapshot.devices.get(entry.deviceId)
            if entry.peer is None:
                continue
            if device is None or not device.enabled:
                entry.peer.disconnect("account_disabled",
                                      "this device was disabled or removed by an administrator")
            elif device.credentialsVersion != entry.credentialsVersion:
                entry.peer.disconnect("credentials_changed",
                                      "this device's secret was changed; log in again")
        for monitor in list(self.monitors):
            user = snapshot.users.get(monitor.user)
            if user is None or not user.enabled:
                monitor.peer.disconnect("account_disabled",
                                        "this account was disabled or removed")
                continue
            if user.credentialsVersion != monitor.credentialsVersion:
                monitor.peer.disconnect("credentials_changed",
                                        "this account's password was changed; log in again")
                continue
            self._recheckMonitor(monitor)

    def _recheckMonitor(self, monitor: MonitorEntry) -> None:
        queue = monitor.peer.queue
        for deviceId, names in list(monitor.subscriptions.items()):
            rights = self.permissions.rights(monitor.user, deviceId)
            lost = {n for n in names if n not in rights}
            if lost:
                self._removeSubscription(monitor, deviceId, lost)
                self.log.info("revoked {tracks} of device {device} for user {user}",
                              tracks=",".join(sorted(lost)), device=deviceId, user=monitor.user)
                queue.sendControl(controlFrame({
                    "type": "revoked", "device": deviceId, "tracks": sorted(lost),
                    "reason": "permission revoked by an administrator or a schedule"}))
        visible = set(self.permissions.visibleDevices(monitor.user))
        for deviceId in sorted(visible - monitor.visible):
            entry = self.devices.get(deviceId)
            queue.sendControl(controlFrame({
                "type": "event", "event": "device_added", "device": deviceId,
                "source": self.sourceOf(deviceId),
                "reason": "online" if entry is not None and entry.online else "offline"}))
        for deviceId in sorted(monitor.visible - visible):
            queue.sendControl(controlFrame({
                "type": "event", "event": "device_removed", "device": deviceId,
                "source": self.sourceOf(deviceId)}))
        monitor.visible = visible

    # Helpers

    def _subscribersOf(self, entry: DeviceEntry) -> set[MonitorEntry]:
        result = set(entry.locationSubscribers)
        for state in entry.tracks.values():
            result |= state.subscribers
        return result

    def _eventToViewers(self, entry: DeviceEntry, event: dict[str, Any]) -> None:
        frame = controlFrame(event)
        for monitor in self.monitors:
            if entry.deviceId in monitor.visible:
                monitor.peer.queue.sendControl(frame)

    # Status

    def statusSnapshot(self) -> list[dict[str, Any]]:
        """
        Describe every live session for the dashboard.
        """
        now = self.reactor.seconds()
        result: list[dict[str, Any]] = []
        for entry in self.devices.values():
            tracks = {}
            for state in entry.tracks.values():
                name = TRACK_NAMES.get(state.number, str(state.number))
                tracks[name] = {
                    "codec": CODEC_NAMES.get(state.codec, ""),
                    "framesIn": state.framesIn,
                    "bytesIn": state.bytesIn,
                    "bitrateIn": round(state.rate.rate(now) * 8),
                    "subscribers": len(state.subscribers),
                }
            item = dict(entry.info)
            item.update({
                "role": "device", "name": entry.deviceId, "source": entry.source,
                "online": entry.online, "since": entry.since, "tracks": tracks,
                "subscribers": len(self._subscribersOf(entry)),
                "lastLocation": None, "lastLocationAge": None,
                "locationsIn": entry.locationsIn, "locationsRejected": entry.locationsRejected,
            })
            if entry.location is not None and entry.locationReceived is not None:
                item["lastLocation"] = {k: entry.location.get(k) for k in ("lat", "lon", "time")}
                item["lastLocationAge"] = round(now - entry.locationReceived, 1)
            result.append(item)
        for monitor in self.monitors:
            item = dict(monitor.info)
            queue = monitor.peer.queue
            item.update({
                "role": "monitor", "name": monitor.user, "since": monitor.since,
                "subscriptions": {d: sorted(t) for d, t in monitor.subscriptions.items()},
                "bytesOut": queue.sentBytes, "framesOut": monitor.sentFrames,
                "droppedFrames": queue.droppedFrames, "queuedBytes": queue.queuedBytes,
            })
            result.append(item)
        return result
