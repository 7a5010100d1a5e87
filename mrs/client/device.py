"""
A capture device that streams files: video, audio and location tracks,
started and stopped on the server's request.

Each track has a L{TrackStreamer} that reads its file in a thread, a batch
at a time, and sends each item when its timestamp comes due (or at once
with pacing off).  The device is the push producer of its connection:
while the transport's buffer is full, no track sends and no file is read.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from zope.interface import implementer

from mrs.client.connection import BaseClient, ClientError, ClientSession, ConnectOptions
from mrs.client.sources import InputError, ItemReader
from mrs.media.nmea import Fix
from mrs.media.sample import Sample
from mrs.wire import (
    CODEC_NUMBERS,
    FATAL_ERROR_CODES,
    TRACK_NUMBERS,
    Announce,
    Announced,
    Command,
    CommandResult,
    ErrorMessage,
    Location,
    LoginOk,
    MediaFrame,
    Message,
    MessageError,
    Start,
    Stop,
    TrackSpec,
)

#: Items read from a file per trip to the thread pool.
READ_BATCH = 64

#: Items sent per reactor turn when not paced, so one fast track cannot
#: starve the others or the reactor.
SEND_BATCH = 32

#: Commands this device executes.
COMMANDS = ("ping", "status")

RunInThread = Callable[..., Deferred[Any]]


class TrackStreamer:
    """
    Streams one file as one track.

    @ivar running: the server asked for the track and it has not stopped.
    @ivar finished: the file was sent to its end (and is not looped).
    @ivar sent: items sent.
    @ivar skipped: items not sent: video frames skipped to restart at a
        keyframe, and positions or frames the wire format does not allow.
    """

    def __init__(self, device: DeviceClient, reader: ItemReader) -> None:
        self.device = device
        self.reader = reader
        self.track = reader.track
        self.codec = reader.source.codec
        self.running = False
        self.finished = False
        self.sent = 0
        self.skipped = 0
        self.sentBytes = 0
        self.problems: list[str] = []
        self._buffer: deque[Sample | Fix] = deque()
        self._ended = False
        self._fetching = False
        self._timer: Any = None
        self._anchor: tuple[float, int] | None = None
        self._needKeyframe = False
        self._config: list[bytes] = []
        self._loopOffset = 0
        self._passStart: int | None = None
        self._passEnd = 0

    def spec(self) -> TrackSpec:
        return TrackSpec(track=self.track, codec=self.codec)

    # Control

    def start(self) -> None:
        """
        Start or resume sending; video resumes at the next keyframe.
        """
        if self.running:
            return
        if self.finished:
            self.device.report(f"{self.track}: the server asked for the track again, but "
                               f"{self.reader.source.path.name} was sent to its end")
            return
        self.running = True
        self._anchor = None
        if self.sent:
            self._needKeyframe = self.track == "video"
            for data in self._config:
                self._sendMedia(Sample(data=data, timestamp=self._loopOffset, config=True),
                                self._loopOffset)
        self.schedule()

    def stop(self) -> None:
        """
        Stop sending until the next L{start}.
        """
        self.running = False
        self._cancelTimer()

    def resume(self) -> None:
        """
        Continue after the transport drained; paced timing starts anew.
        """
        self._anchor = None
        self.schedule()

    def schedule(self, delay: float = 0.0) -> None:
        if self._timer is None and self.running:
            self._timer = self.device.reactor.callLater(delay, self._pump)

    def _cancelTimer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    # Sending

    def _pump(self) -> None:
        self._timer = None
        device = self.device
        sentNow = 0
        while self.running and not device.paused and not self._fetching:
            if not self._buffer:
                if self._ended:
                    self._endOfFile()
                else:
                    self._fetch()
                return
            item = self._buffer[0]
            timestamp = self._timestampOf(item)
            if self._needKeyframe and not (isinstance(item, Sample) and item.keyframe):
                self._buffer.popleft()
                self.skipped += 1
                continue
            self._needKeyframe = False
            if device.pace:
                now = device.reactor.seconds()
                if self._anchor is None:
                    self._anchor = (now, timestamp)
                due = self._anchor[0] + (timestamp - self._anchor[1]) / 1e6 / device.speed
                if due > now:
                    self.schedule(due - now)
                    return
            self._buffer.popleft()
            self._send(item, timestamp)
            sentNow += 1
            if sentNow >= SEND_BATCH:
                self.schedule()
                return

    def _timestampOf(self, item: Sample | Fix) -> int:
        if isinstance(item, Sample):
            return item.timestamp + self._loopOffset
        return round(item.time.timestamp() * 1_000_000) + self._loopOffset

    def _send(self, item: Sample | Fix, timestamp: int) -> None:
        if isinstance(item, Sample):
            end = item.timestamp + (item.duration or 0)
            self._passEnd = max(self._passEnd, end)
            if item.config:
                if self.reader.passes > 1 and item.data in self._config:
                    return
                if item.data.startswith(b"OpusHead"):
                    self._config = []
                self._config.append(item.data)
            self._sendMedia(item, timestamp)
        else:
            self._sendLocation(item)

    def _sendMedia(self, sample: Sample, timestamp: int) -> None:
        session = self.device.session
        if session is None:
            return
        limit = self.device.maxFrameSize()
        if len(sample.data) + 16 > limit:
            self.skipped += 1
            self._problem(f"{self.track}: skipped a {len(sample.data)}-byte frame at "
                          f"{timestamp} us, over the server's frame limit of {limit} bytes")
            return
        assert self.codec is not None
        frame = MediaFrame(TRACK_NUMBERS[self.track], CODEC_NUMBERS[self.codec], sample.flags,
                           0, timestamp, sample.data)
        session.sendFrame(frame)
        self.sent += 1
        self.sentBytes += len(sample.data)

    def _sendLocation(self, fix: Fix) -> None:
        session = self.device.session
        if session is None:
            return
        span = round(fix.time.timestamp() * 1_000_000)
        if self._passStart is None:
            self._passStart = span
        self._passEnd = max(self._passEnd, span - self._passStart)
        fields = fix.locationFields()
        fields["time"] = fix.time + timedelta(microseconds=self._loopOffset)
        try:
            message = Location(**fields)
        except MessageError as e:
            self.skipped += 1
            self._problem(f"location: skipped a position the protocol does not allow: {e}")
            return
        session.send(message)
        self.sent += 1

    def _problem(self, text: str) -> None:
        if len(self.problems) < 5:
            self.device.report(text)
        self.problems.append(text)

    # Reading

    def _fetch(self) -> None:
        self._fetching = True
        d = self.device.runInThread(self.reader.take, READ_BATCH)

        def fetched(result: tuple[list[Sample | Fix], bool]) -> None:
            items, ended = result
            self._fetching = False
            self._buffer.extend(items)
            self._ended = ended
            self.schedule()

        def failed(failure: Failure) -> None:
            self._fetching = False
            self.running = False
            self.finished = True
            if failure.check(InputError):
                self.device.fail(ClientError(failure.getErrorMessage()))
            else:
                self.device.log.failure("reading {path} failed", failure,
                                        path=str(self.reader.source.path))
                self.device.fail(ClientError(
                    f"reading {self.reader.source.path} failed: {failure.getErrorMessage()}"))

        d.addCallbacks(fetched, failed)
        d.addErrback(lambda f: self.device.log.failure("streaming {track} failed", f,
                                                       track=self.track))

    def _endOfFile(self) -> None:
        truncated = self.reader.truncated
        if truncated is not None and self.reader.passes == 1:
            self._problem(f"warning: {self.reader.source.path.name}: {truncated}; the "
                          f"incomplete part ({len(truncated.partial)} bytes) was not sent")
        if self.device.loop:
            if self.track == "location":
                # The next pass repeats the track one second after its last fix.
                self._loopOffset += self._passEnd + 1_000_000
            else:
                self._loopOffset += self._passEnd
            self._passStart = None
            self._passEnd = 0
            self._ended = False
            self._fetch()
            return
        self.running = False
        self.finished = True
        self.device.trackFinished(self)


@implementer(IPushProducer)
class DeviceClient(BaseClient):
    """
    A device that logs in, announces the tracks of its files and streams
    each one while the server requests it.

    @ivar paused: the transport asked to stop producing.
    @ivar commands: the commands received, as (name, args, sender).
    """

    role = "device"

    def __init__(self, reactor: Any, options: ConnectOptions, deviceId: str, secret: str,
                 readers: list[ItemReader], *, pace: bool = True, speed: float = 1.0,
                 loop: bool = False,
                 runInThread: RunInThread | None = None, **kwargs: Any) -> None:
        """
        @param readers: one reader per track; at most one each of video,
            audio and location.
        @param pace: send items when their timestamps come due, else as
            fast as the connection takes them.
        @param speed: how many times faster than real time a paced replay
            runs.
        @param loop: start each file again at its end.
        @param runInThread: runs a blocking call and returns a L{Deferred};
            the reactor's thread pool by default.
        @raise ValueError: for two readers of the same track.
        """
        super().__init__(reactor, options, **kwargs)
        self.credentials = {"device": deviceId, "secret": secret}
        self.deviceId = deviceId
        if not speed > 0:
            raise ValueError(f"invalid speed {speed!r}; use a number greater than 0")
        self.pace = pace
        self.speed = speed
        self.loop = loop
        self.paused = False
        self.commands: list[tuple[str, dict[str, Any], str | None]] = []
        if runInThread is None:
            def runInThread(f: Callable[..., Any], *args: Any) -> Deferred[Any]:
                return deferToThreadPool(reactor, reactor.getThreadPool(), f, *args)
        self.runInThread = runInThread
        self.streamers: dict[str, TrackStreamer] = {}
        for reader in readers:
            if reader.track in self.streamers:
                other = self.streamers[reader.track].reader.source.path
                raise ValueError(
                    f"{reader.source.path} and {other} are both {reader.track}; a device "
                    f"streams one file per track, so run another device for the other file")
            self.streamers[reader.track] = TrackStreamer(self, reader)

    def maxFrameSize(self) -> int:
        """
        Return the largest frame payload the server accepts, in bytes.
        """
        session = self.session
        if session is not None and session.welcome is not None:
            return session.welcome.limits.maxFrameSize
        return 8 * 1024 * 1024

    # Session callbacks

    def loginSucceeded(self, session: ClientSession, loginOk: LoginOk) -> None:
        link = "TLS" if session.encrypted else "unencrypted"
        self.report(f"logged in to {self.options.server} as device {loginOk.name} ({link})")
        self.paused = False
        transport: Any = session.transport
        transport.registerProducer(self, True)
        tracks = tuple(streamer.spec() for streamer in self.streamers.values())
        session.send(Announce(tracks=tracks))

    def connectionEnded(self, session: ClientSession) -> None:
        for streamer in self.streamers.values():
            streamer.stop()

    def messageReceived(self, session: ClientSession, message: Message) -> None:
        super().messageReceived(session, message)
        if isinstance(message, Start):
            self._startStop(message.track, True)
        elif isinstance(message, Stop):
            self._startStop(message.track, False)
        elif isinstance(message, Command):
            self._command(session, message)
        elif isinstance(message, ErrorMessage) and message.code not in FATAL_ERROR_CODES:
            # A fatal error ends the connection, and the retry line reports it.
            self.report(f"server error: {message.message} ({message.code})")
        elif not isinstance(message, Announced):
            self.log.debug("ignoring {type} from the server", type=message.TYPE)

    def _startStop(self, track: str, start: bool) -> None:
        streamer = self.streamers.get(track)
        if streamer is None:
            self.log.warn("the server asked to {action} track {track}, which this device does "
                          "not have", action="start" if start else "stop", track=track)
            return
        self.report(f"{'start' if start else 'stop'} {track}")
        if start:
            streamer.start()
        else:
            streamer.stop()

    def _command(self, session: ClientSession, command: Command) -> None:
        self.commands.append((command.name, command.args, command.sender))
        self.report(f"command {command.name} {json.dumps(command.args)} from "
                    f"{command.sender or '?'} (id {command.id})")
        if command.name == "ping":
            result = CommandResult(id=command.id, ok=True, result="pong")
        elif command.name == "status":
            result = CommandResult(id=command.id, ok=True, result={
                name: {"running": s.running, "finished": s.finished, "sent": s.sent}
                for name, s in self.streamers.items()})
        else:
            result = CommandResult(
                id=command.id, ok=False,
                error=f"unknown command {command.name!r}; this device answers "
                      f"{', '.join(COMMANDS)}")
        session.send(result)

    def stop(self, reason: str = "done") -> Deferred[None]:
        """
        Stop streaming, say bye after what is queued and stop reconnecting.
        """
        for streamer in self.streamers.values():
            streamer.stop()
        session = self.session
        if session is not None and session.transport is not None:
            transport: Any = session.transport
            transport.unregisterProducer()
        return super().stop(reason)

    def trackFinished(self, streamer: TrackStreamer) -> None:
        self.report(f"{streamer.track}: sent {streamer.sent} items to the end of "
                    f"{streamer.reader.source.path.name}")
        if all(s.finished for s in self.streamers.values()):
            self.stop("all files sent")

    # IPushProducer

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        if not self.paused:
            return
        self.paused = False
        for streamer in self.streamers.values():
            if streamer.running:
                streamer.resume()

    def stopProducing(self) -> None:
        self.paused = True

    # Summary

    def summary(self) -> list[str]:
        """
        Describe, one line per track, what was read, sent and skipped.
        """
        lines = []
        for streamer in self.streamers.values():
            line = f"{streamer.reader.summary()}; {streamer.sent} sent"
            if streamer.skipped:
                line += f", {streamer.skipped} skipped"
            lines.append(line)
        return lines
