"""
Where a monitor writes what it receives: elementary streams, Ogg Opus,
GPX and NDJSON files, or standard output.

Writes go to a thread one batch at a time and in order, so the reactor
never waits on the disk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from mrs.media.adts import ADTSWriter
from mrs.media.annexb import AnnexBWriter
from mrs.media.gpx import GpxWriter, NdjsonWriter
from mrs.media.mjpeg import MJPEGWriter
from mrs.media.ogg import OggOpusWriter, makeOpusHead
from mrs.media.sample import Sample
from mrs.wire import CODEC_NAMES, Location, MediaFrame

RunInThread = Callable[..., Deferred[Any]]


class OutputError(Exception):
    """
    An output file cannot be opened or written.
    """


class ByteSink:
    """
    An output file (or standard output) written in order from a thread.

    @ivar bytes: bytes handed to L{write} so far.
    """

    log = Logger()

    def __init__(self, target: str | BinaryIO, runInThread: RunInThread) -> None:
        """
        @param target: a path to create, or an open binary stream such as
            C{sys.stdout.buffer}, which is flushed but not closed.
        """
        self.target = target
        self.name = target if isinstance(target, str) else "standard output"
        self.runInThread = runInThread
        self.bytes = 0
        self.error: Exception | None = None
        self._file: BinaryIO | None = None
        self._pending: list[bytes] = []
        self._writing = False
        self._drained: list[Deferred[None]] = []

    def open(self) -> Deferred[None]:
        """
        Create the file.  Fails with L{OutputError} when it cannot.
        """
        if not isinstance(self.target, str):
            self._file = self.target
            return succeed(None)
        path = self.target

        def create() -> None:
            try:
                self._file = open(path, "wb")
            except OSError as e:
                raise OutputError(f"cannot create {path!r}: {e.strerror or e}; check the path")

        return self.runInThread(create)

    def write(self, data: bytes) -> None:
        if not data or self.error is not None:
            return
        self.bytes += len(data)
        self._pending.append(data)
        self._kick()

    def _kick(self) -> None:
        if self._writing or not self._pending:
            if not self._writing and not self._pending:
                drained, self._drained = self._drained, []
                for d in drained:
                    d.callback(None)
            return
        data = b"".join(self._pending)
        self._pending = []
        self._writing = True
        assert self._file is not None
        handle = self._file

        def writeAll() -> None:
            handle.write(data)
            handle.flush()

        d = self.runInThread(writeAll)

        def written(_: object) -> None:
            self._writing = False
            self._kick()

        def failed(failure: Any) -> None:
            self._writing = False
            self.error = OutputError(f"writing {self.name} failed: {failure.getErrorMessage()}")
            self._pending = []
            self._kick()

        d.addCallbacks(written, failed)
        d.addErrback(lambda f: self.log.failure("writing {name} failed", f, name=self.name))

    def close(self) -> Deferred[None]:
        """
        Write what is pending, then close the file (not standard output).
        """
        d: Deferred[None] = Deferred()
        self._drained.append(d)
        self._kick()

        def closeFile(_: object) -> Deferred[None] | None:
            handle, self._file = self._file, None
            if handle is None or not isinstance(self.target, str):
                return None
            return self.runInThread(handle.close)

        return d.addCallback(closeFile)


def toSample(frame: MediaFrame) -> Sample:
    return Sample(data=frame.data, timestamp=frame.timestamp, keyframe=frame.keyframe,
                  config=frame.config)


class MediaOutput:
    """
    Writes one media track to a L{ByteSink}, with the writer that the
    codec of the first frame needs.

    @ivar frames: frames written.
    """

    def __init__(self, sink: ByteSink, report: Callable[[str], None]) -> None:
        self.sink = sink
        self.report = report
        self.codec: str | None = None
        self.frames = 0
        self._writer: Any = None

    def write(self, frame: MediaFrame) -> None:
        codec = CODEC_NAMES.get(frame.codec, str(frame.codec))
        if self._writer is None:
            self.codec = codec
            self._writer = _writerFor(codec)
        elif codec != self.codec:
            self.report(f"warning: the codec changed from {self.codec} to {codec}; "
                        f"{self.sink.name} keeps only {self.codec} frames")
            return
        self.sink.write(self._writer.write(toSample(frame)))
        if not frame.config:
            self.frames += 1

    def close(self) -> Deferred[None]:
        if self._writer is not None:
            self.sink.write(self._writer.finish())
        return self.sink.close()


def _writerFor(codec: str) -> Any:
    if codec in ("h264", "h265"):
        return AnnexBWriter()
    if codec == "mjpeg":
        return MJPEGWriter()
    if codec == "aac":
        return ADTSWriter()
    if codec == "opus":
        return OggOpusWriter(fallbackHead=makeOpusHead())
    raise OutputError(f"cannot write {codec} to a file; supported: h264, h265, mjpeg, aac, "
                      f"opus")


class LocationOutput:
    """
    Writes locations to a GPX or an NDJSON L{ByteSink}.
    """

    def __init__(self, sink: ByteSink, kind: str, device: str) -> None:
        self.sink = sink
        self.kind = kind
        self.device = device
        self.count = 0
        self._writer: Any = (GpxWriter(creator="mrs monitor", trackName=device)
                             if kind == "gpx" else NdjsonWriter())

    def write(self, location: Location) -> None:
        if self.kind == "gpx":
            self.sink.write(self._writer.write(location))
        else:
            self.sink.write(self._writer.write(location, location.device))
        self.count += 1

    def close(self) -> Deferred[None]:
        self.sink.write(self._writer.finish())
        return self.sink.close()
