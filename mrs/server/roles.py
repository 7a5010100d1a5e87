"""
The behaviour of a logged-in client, by role.

L{ClientSession} hands every message after login to one of these objects.
They translate protocol messages into hub calls and hub results into
replies; all routing decisions are the hub's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from mrs.relay.hub import RelayError
from mrs.wire import TRACK_AUDIO, TRACK_TALK, TRACK_VIDEO, MediaFrame

if TYPE_CHECKING:
    from mrs.server.auth import Principal
    from mrs.server.session import ClientSession


class Role:
    """
    Base of the per-role behaviour of a session.
    """

    log = Logger()
    acceptsMedia = False

    def __init__(self, session: ClientSession, principal: Principal, info: dict[str, Any]):
        self.session = session
        self.principal = principal
        self.hub = session.factory.hub

    def messageReceived(self, message: dict[str, Any]) -> None:
        raise NotImplementedError()

    def mediaReceived(self, frame: MediaFrame) -> None:
        raise NotImplementedError()

    def connectionLost(self) -> None:
        raise NotImplementedError()


class DeviceRole(Role):
    """
    A capture device: announces tracks, publishes media and locations,
    returns command results.
    """

    acceptsMedia = True

    def __init__(self, session: ClientSession, principal: Principal, info: dict[str, Any]):
        super().__init__(session, principal, info)
        self.deviceId = principal.name
        self.entry = self.hub.deviceConnected(session, self.deviceId,
                                              principal.credentialsVersion, info)
        self.framesIn = 0
        self.lastRejectWarning = float("-inf")

    def messageReceived(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "announce":
            reply: dict[str, Any] = {"type": "announced"}
            if "id" in message:
                reply["id"] = message["id"]
            self.session.sendMessage(reply)
            self.hub.deviceAnnounce(self.entry, message.get("tracks", []))
        elif kind == "location":
            reason = self.hub.deviceLocation(self.entry, message)
            if reason is not None:
                self._locationRejected(reason)
        elif kind == "command_result":
            if not self.hub.commandResult(self.entry, message):
                self.session.sendError("bad_message",
                                       f"no pending command with id {message.get('id')!r}",
                                       message)

    def _locationRejected(self, reason: str) -> None:
        # A receiver without a fix may send a rejected location every second;
        # log at most one line per minute per device.
        clock = self.session.factory.reactor
        now = clock.seconds()
        if now - self.lastRejectWarning >= 60:
            self.lastRejectWarning = now
            self.log.warn("device {device}: location not relayed: {reason} "
                          "({count} rejected so far)", device=self.deviceId, reason=reason,
                          count=self.entry.locationsRejected)

    def mediaReceived(self, frame: MediaFrame) -> None:
        if frame.track not in (TRACK_VIDEO, TRACK_AUDIO):
            self.session.fatal("bad_frame", f"a device may not send media on track "
                                            f"{frame.track}; use 1 (video) or 2 (audio)")
            return
        self.hub.deviceMedia(self.entry, frame)

    def connectionLost(self) -> None:
        self.hub.deviceDisconnected(self.entry, self.session, clean=self.session.sentBye)
        self.log.info("logout: device {device} from {address}", device=self.deviceId,
                      address=self.session.address)


class MonitorRole(Role):
    """
    A monitor: lists devices, subscribes, sends commands and talk-back.
    """

    acceptsMedia = True

    def __init__(self, session: ClientSession, principal: Principal, info: dict[str, Any]):
        super().__init__(session, principal, info)
        self.user = principal.name
        self.entry = self.hub.monitorConnected(session, self.user,
                                               principal.credentialsVersion, info)

    def _reply(self, request: dict[str, Any], message: dict[str, Any]) -> None:
        if "id" in request:
            message["id"] = request["id"]
        self.session.sendMessage(message)

    def messageReceived(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        try:
            if kind == "list":
                self._reply(message, {"type": "devices",
                                      "devices": self.hub.listDevices(self.entry)})
            elif kind == "subscribe":
                self.hub.subscribe(self.entry, message["device"],
                                   message.get("tracks") or ["video", "audio", "location"],
                                   message.get("id"))
            elif kind == "unsubscribe":
                tracks = self.hub.unsubscribe(self.entry, message["device"],
                                              message.get("tracks"))
                self._reply(message, {"type": "unsubscribed", "device": message["device"],
                                      "tracks": tracks})
            elif kind == "command":
                self.hub.command(self.entry, message.get("id"), message["device"],
                                 message["name"], message.get("args") or {})
        except RelayError as e:
            self.session.sendError(e.code, e.message, message)

    def mediaReceived(self, frame: MediaFrame) -> None:
        if frame.track != TRACK_TALK:
            self.session.fatal("bad_frame", f"a monitor may only send talk-back audio "
                                            f"(track 3), not track {frame.track}")
            return
        try:
            self.hub.talk(self.entry, frame)
        except RelayError as e:
            self.session.sendError(e.code, e.message)

    def connectionLost(self) -> None:
        self.hub.monitorDisconnected(self.entry)
        self.log.info("logout: user {user} from {address}", user=self.user,
                      address=self.session.address)
