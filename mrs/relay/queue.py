"""
The outbound queue of one monitor connection.

Every byte the server sends to a monitor goes through its L{OutboundQueue},
which is registered with the transport as a streaming producer.  While the
transport accepts data, frames are written straight through.  When the
transport pauses us (its send buffer is full: the monitor reads slower than
the device sends), frames wait here, up to C{limit} bytes.  Past the limit:

 - audio and video frames are dropped for this monitor only;
 - after a video frame of a source is dropped, that source's video resumes
   only at its next keyframe, so the monitor never gets a frame whose
   reference it missed;
 - location updates are coalesced: a queued location of the same device is
   replaced by the newer one;
 - control messages are always queued, within a separate, generous bound.

A queue paused for longer than C{congestionTimeout} without any progress
calls C{onStalled}, and the session disconnects the monitor.  A full
queue drops frames instead of pushing back on the hub, so the device and
the other monitors never wait for a slow one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from mrs.wire import TRACK_VIDEO

#: Queued control bytes beyond which a monitor is disconnected.  Control
#: traffic is small (events, replies, coalesced locations), so reaching this
#: means the monitor has stopped reading altogether.
CONTROL_LIMIT = 1024 * 1024

_MEDIA = 0
_CONTROL = 1


@implementer(IPushProducer)
class OutboundQueue:
    """
    A bounded, flow-controlled write queue in front of one transport.

    @ivar droppedFrames: media frames dropped for this monitor so far.
    @ivar queuedBytes: bytes waiting here (not counting the transport's
        own buffer).
    """

    log = Logger()
    warnInterval = 10.0

    def __init__(
        self,
        transport: Any,
        clock: IReactorTime,
        limit: int,
        congestionTimeout: float,
        onStalled: Callable[[], None],
        label: str = "",
    ) -> None:
        self.transport = transport
        self.clock = clock
        self.limit = limit
        self.congestionTimeout = congestionTimeout
        self.onStalled = onStalled
        self.label = label
        self.paused = False
        self.stopped = False
        self.queuedBytes = 0
        self.controlBytes = 0
        self.sentBytes = 0
        self.droppedFrames = 0
        self.droppedBytes = 0
        #: Entries are [kind, data, coalesceKey, source, track].
        self._entries: deque[list[Any]] = deque()
        self._coalesced: dict[Hashable, list[Any]] = {}
        self._needKeyframe: set[int] = set()
        self._stallTimer: IDelayedCall | None = None
        self._lastWarning = -self.warnInterval
        self._droppedSinceWarning = 0
        transport.registerProducer(self, True)

    # IPushProducer

    def pauseProducing(self) -> None:
        if self.paused or self.stopped:
            return
        self.paused = True
        if self._stallTimer is None:
            self._stallTimer = self.clock.callLater(self.congestionTimeout, self._stalled)

    def resumeProducing(self) -> None:
        if self.stopped:
            return
        self.paused = False
        self._cancelStallTimer()
        self._flush()

    def stopProducing(self) -> None:
        self.stopped = True
        self._cancelStallTimer()
        self._entries.clear()
        self._coalesced.clear()
        self.queuedBytes = self.controlBytes = 0

    # Writing

    def sendControl(self, data: bytes, coalesceKey: Hashable | None = None) -> None:
        """
        Send an encoded control frame; with C{coalesceKey}, a still-queued
        frame of the same key is replaced instead of adding another.
        """
        if self.stopped:
            return
        if coalesceKey is not None:
            queued = self._coalesced.get(coalesceKey)
            if queued is not None:
                self.queuedBytes += len(data) - len(queued[1])
                self.controlBytes += len(data) - len(queued[1])
                queued[1] = data
                return
        if not self.paused and not self._entries:
            self._write(data)
            return
        entry = [_CONTROL, data, coalesceKey, 0, 0]
        self._entries.append(entry)
        if coalesceKey is not None:
            self._coalesced[coalesceKey] = entry
        self.queuedBytes += len(data)
        self.controlBytes += len(data)
        if self.controlBytes > CONTROL_LIMIT:
            self.log.warn("monitor {label} has {size} bytes of control messages queued; "
                          "disconnecting it", label=self.label, size=self.controlBytes)
            self._stalled()

    def sendMedia(self, data: bytes, source: int, track: int, keyframe: bool) -> bool:
        """
        Send an encoded media frame of C{source}'s C{track}, or drop it
        under the policy in the module docstring.

        @return: whether the frame was sent or queued.
        """
        if self.stopped:
            return False
        if track == TRACK_VIDEO and source in self._needKeyframe:
            if not keyframe:
                self._drop(data)
                return False
        if not self.paused and not self._entries:
            if track == TRACK_VIDEO:
                self._needKeyframe.discard(source)
            self._write(data)
            return True
        if self.queuedBytes + len(data) > self.limit:
            if track == TRACK_VIDEO:
                self._needKeyframe.add(source)
            self._drop(data)
            return False
        if track == TRACK_VIDEO:
            self._needKeyframe.discard(source)
        self._entries.append([_MEDIA, data, None, source, track])
        self.queuedBytes += len(data)
        return True

    def close(self) -> None:
        """
        Hand everything queued to the transport, ignoring back-pressure,
        and unregister from it so that it can close.  Twisted's TLS
        transport does not start its shutdown while a producer is
        registered.
        """
        if self.stopped:
            return
        self.paused = False
        self._cancelStallTimer()
        while self._entries:
            self._write(self._entries.popleft()[1])
        self.queuedBytes = self.controlBytes = 0
        self._coalesced.clear()
        self.stopped = True
        self.transport.unregisterProducer()

    def requireKeyframe(self, source: int) -> None:
        """
        Deliver no more video of C{source} until its next keyframe.
        """
        self._needKeyframe.add(source)

    def purge(self, source: int, tracks: set[int]) -> None:
        """
        Remove queued media of C{source}'s C{tracks}, after a revocation.
        """
        kept: deque[list[Any]] = deque()
        for entry in self._entries:
            if entry[0] == _MEDIA and entry[3] == source and entry[4] in tracks:
                self.queuedBytes -= len(entry[1])
            else:
                kept.append(entry)
        self._entries = kept

    def _drop(self, data: bytes) -> None:
        self.droppedFrames += 1
        self.droppedBytes += len(data)
        self._droppedSinceWarning += 1
        now = self.clock.seconds()
        if now - self._lastWarning >= self.warnInterval:
            # One line when dropping starts and then at most one every
            # warnInterval seconds, each with the count since the last line.
            self.log.warn(
                "monitor {label} reads too slowly: dropping audio and video until it "
                "catches up ({count} frames dropped since the last report, {total} on this "
                "connection, {queued} bytes queued)",
                label=self.label, count=self._droppedSinceWarning,
                total=self.droppedFrames, queued=self.queuedBytes,
            )
            self._lastWarning = now
            self._droppedSinceWarning = 0

    def _write(self, data: bytes) -> None:
        self.sentBytes += len(data)
        self.transport.write(data)

    def _flush(self) -> None:
        entries = self._entries
        while entries and not self.paused and not self.stopped:
            entry = entries.popleft()
            data = entry[1]
            self.queuedBytes -= len(data)
            if entry[0] == _CONTROL:
                self.controlBytes -= len(data)
                if entry[2] is not None:
                    self._coalesced.pop(entry[2], None)
            self._write(data)

    def _cancelStallTimer(self) -> None:
        if self._stallTimer is not None and self._stallTimer.active():
            self._stallTimer.cancel()
        self._stallTimer = None

    def _stalled(self) -> None:
        self._stallTimer = None
        if not self.stopped:
            self.onStalled()
