"""
A monitor: lists devices, subscribes to their tracks, receives media,
locations and events, and sends commands.

Requests carry an id and return a L{Deferred} that fires with the
matching answer or fails with L{RequestFailed}.  Subscriptions are
remembered and made again after each reconnect.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from mrs.client.connection import BaseClient, ClientError, ClientSession, ConnectOptions
from mrs.wire import (
    FATAL_ERROR_CODES,
    TRACK_NAMES,
    Command,
    CommandResult,
    Devices,
    ErrorMessage,
    Event,
    ListDevices,
    Location,
    LoginOk,
    MediaFrame,
    Message,
    Revoked,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
)


class RequestFailed(Exception):
    """
    The server answered a request with an error.

    @ivar code: the protocol error code, such as C{"permission_denied"}.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def describeEvent(message: Event | Revoked) -> str:
    """
    Describe an event or a revocation in one line for the user.
    """
    if isinstance(message, Revoked):
        return (f"revoked: {', '.join(message.tracks)} of device {message.device}: "
                f"{message.reason}")
    device = message.device
    words = {
        "device_online": f"device {device} online",
        "device_offline": f"device {device} offline",
        "device_reconnecting": f"device {device} reconnecting",
        "stream_restarted": f"device {device} stream restarted",
        "device_added": f"device {device} now visible",
        "device_removed": f"device {device} no longer visible",
    }
    if message.event == "tracks_changed":
        tracks = ", ".join(f"{t.track} {t.codec}" if t.codec else t.track
                           for t in message.tracks or ())
        text = f"device {device} tracks: {tracks or 'none'}"
    else:
        text = words.get(message.event, f"device {device} {message.event}")
    if message.reason and message.event != "device_added":
        text += f": {message.reason}"
    return f"event: {text}"


class MonitorClient(BaseClient):
    """
    A monitor logged in as a user.

    @ivar subscriptions: the tracks subscribed per device; made again
        after each reconnect.
    @ivar sources: device id by source number, from L{Subscribed} and
        L{Devices}.
    """

    role = "monitor"

    def __init__(self, reactor: Any, options: ConnectOptions, user: str, password: str,
                 **kwargs: Any) -> None:
        super().__init__(reactor, options, **kwargs)
        self.credentials = {"user": user, "password": password}
        self.user = user
        self.subscriptions: dict[str, tuple[str, ...]] = {}
        self.sources: dict[int, str] = {}
        self._pending: dict[str, tuple[str, Deferred[Any]]] = {}
        self._ids = itertools.count(1)
        self._awaitingOnline: dict[str, tuple[str, ...]] = {}
        self._lastTimestamps: dict[tuple[int, int], int] = {}
        self._skipReplayed: set[tuple[int, int]] = set()

    # Requests

    def _nextId(self) -> str:
        return f"r{next(self._ids)}"

    def _send(self, build: Any, kind: str) -> Deferred[Any]:
        session = self.session
        if session is None:
            return _failed(RequestFailed("not_connected", "not connected to the server"))
        requestId = self._nextId()
        d: Deferred[Any] = Deferred()
        self._pending[requestId] = (kind, d)
        session.send(build(requestId))
        return d

    def listDevices(self) -> Deferred[Devices]:
        """
        Ask for the devices this user may see.
        """
        return self._send(lambda i: ListDevices(id=i), "devices")

    def subscribe(self, device: str, tracks: Sequence[str]) -> Deferred[Subscribed]:
        """
        Subscribe to C{tracks} of C{device}; the subscription is made again
        after every reconnect once it succeeded.
        """
        d = self._send(lambda i: Subscribe(device=device, tracks=tuple(tracks), id=i),
                       "subscribed")

        def subscribed(reply: Subscribed) -> Subscribed:
            self.subscriptions[device] = reply.tracks
            self.sources[reply.source] = device
            return reply

        return d.addCallback(subscribed)

    def unsubscribe(self, device: str) -> Deferred[Unsubscribed]:
        """
        End every subscription to C{device}.
        """
        self.subscriptions.pop(device, None)
        return self._send(lambda i: Unsubscribe(device=device, id=i), "unsubscribed")

    def command(self, device: str, name: str, args: dict[str, Any]) -> Deferred[CommandResult]:
        """
        Send a command to C{device}; fires with its L{CommandResult}.
        """
        return self._send(lambda i: Command(id=i, name=name, args=args, device=device),
                          "command_result")

    # Session callbacks

    def loginSucceeded(self, session: ClientSession, loginOk: LoginOk) -> None:
        link = "TLS" if session.encrypted else "unencrypted"
        self.report(f"logged in to {self.options.server} as user {loginOk.name} ({link})")
        if self.logins > 1:
            # The server replays its cached group of pictures to a new
            # subscription; frames already written are skipped.
            self._skipReplayed = set(self._lastTimestamps)
            for device, tracks in list(self.subscriptions.items()):
                self._subscribeAgain(device, tracks)

    def _subscribeAgain(self, device: str, tracks: tuple[str, ...]) -> None:
        """
        Renew a subscription after a reconnect; when the device is offline,
        renew it once the server reports it online.
        """
        def failed(failure: Failure) -> None:
            failure.trap(RequestFailed)
            error = failure.value
            assert isinstance(error, RequestFailed)
            if error.code == "device_offline":
                self._awaitingOnline[device] = tracks
                self.report(f"device {device} is offline; subscribing again when it comes "
                            f"online")
            elif error.code != "connection_lost":
                self.subscriptions.pop(device, None)
                self.report(f"subscribing to device {device} again failed: {error.message} "
                            f"({error.code})")

        d = self.subscribe(device, tracks)
        d.addErrback(failed)
        d.addErrback(lambda f: self.log.failure("subscribing again failed", f))

    def connectionEnded(self, session: ClientSession) -> None:
        pending, self._pending = self._pending, {}
        for _, d in pending.values():
            d.errback(RequestFailed("connection_lost",
                                    "the connection to the server was lost"))

    def messageReceived(self, session: ClientSession, message: Message) -> None:
        super().messageReceived(session, message)
        messageId = getattr(message, "id", None)
        if isinstance(message, (Devices, Subscribed, Unsubscribed, CommandResult, ErrorMessage)):
            entry = self._pending.pop(str(messageId), None) if messageId is not None else None
            if entry is not None:
                if isinstance(message, ErrorMessage):
                    entry[1].errback(RequestFailed(message.code, message.message))
                else:
                    entry[1].callback(message)
                return
            if isinstance(message, Subscribed):
                self.sources[message.source] = message.device
            elif isinstance(message, Devices):
                for info in message.devices:
                    self.sources[info.source] = info.device
            elif isinstance(message, ErrorMessage) and message.code not in FATAL_ERROR_CODES:
                # A fatal error ends the connection, and the retry line
                # reports it.
                self.report(f"server error: {message.message} ({message.code})")
        elif isinstance(message, Location):
            self.notify("location", message)
        elif isinstance(message, (Event, Revoked)):
            if isinstance(message, Revoked):
                remaining = tuple(t for t in self.subscriptions.get(message.device, ())
                                  if t not in message.tracks)
                if remaining:
                    self.subscriptions[message.device] = remaining
                else:
                    self.subscriptions.pop(message.device, None)
            self.report(describeEvent(message))
            if isinstance(message, Event) and message.event == "device_online":
                tracks = self._awaitingOnline.pop(message.device, None)
                if tracks is not None:
                    self._subscribeAgain(message.device, tracks)
            self.notify("event", message)

    def frameReceived(self, session: ClientSession, frame: MediaFrame) -> None:
        key = (frame.source, frame.track)
        last = self._lastTimestamps.get(key)
        if key in self._skipReplayed:
            if last is not None and frame.timestamp <= last and not frame.discontinuity:
                return
            self._skipReplayed.discard(key)
        self._lastTimestamps[key] = frame.timestamp
        self.notify("frame", frame)

    def deviceOf(self, frame: MediaFrame | Location) -> str | None:
        """
        Return the device id a frame or location came from, when known.
        """
        if isinstance(frame, Location):
            return frame.device
        return self.sources.get(frame.source)


def trackName(frame: MediaFrame) -> str:
    return TRACK_NAMES.get(frame.track, str(frame.track))


def _failed(error: Exception) -> Deferred[Any]:
    d: Deferred[Any] = Deferred()
    d.errback(Failure(error))
    return d


__all__ = ["MonitorClient", "RequestFailed", "ClientError", "describeEvent", "trackName"]
