"""
Input files of a streaming device: format detection, readers and counts.

Every function and method here blocks on the file system; the device runs
them in a thread.  The parsing itself is L{mrs.media}'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from mrs.media.adts import ADTSReader
from mrs.media.detect import detectFormat
from mrs.media.errors import MediaError, TruncatedStream, UnknownFormat
from mrs.media.gpx import GpxReader
from mrs.media.h264 import H264Reader
from mrs.media.h265 import H265Reader
from mrs.media.mjpeg import MJPEGReader
from mrs.media.nmea import Fix, NmeaReader
from mrs.media.ogg import OggOpusReader
from mrs.media.sample import Sample

#: The track and wire codec name of each format L{detectFormat} returns.
FORMAT_TRACKS: dict[str, tuple[str, str | None]] = {
    "h264": ("video", "h264"),
    "h265": ("video", "h265"),
    "mjpeg": ("video", "mjpeg"),
    "aac": ("audio", "aac"),
    "opus": ("audio", "opus"),
    "nmea": ("location", None),
    "gpx": ("location", None),
}

_PROBE_SIZE = 4096


class InputError(Exception):
    """
    An input file cannot be streamed; the message names the file, the
    problem and the fix.
    """


@dataclass(frozen=True)
class InputFile:
    """
    One input file and what it holds.

    @ivar format: one of L{mrs.media.detect.FORMATS}.
    @ivar track: C{"video"}, C{"audio"} or C{"location"}.
    @ivar codec: the wire codec name, or L{None} for location.
    """

    path: Path
    format: str
    track: str
    codec: str | None


def identify(path: str | Path) -> InputFile:
    """
    Detect the format of the file at C{path} from its first bytes.

    @raise InputError: when the file cannot be read or its format is not
        supported.
    """
    filePath = Path(path)
    try:
        with filePath.open("rb") as f:
            first = f.read(_PROBE_SIZE)
    except OSError as e:
        raise InputError(f"cannot read {str(filePath)!r}: {e.strerror or e}; check the path")
    if not first:
        raise InputError(f"{str(filePath)!r} is empty; give a media or GPS file with content")
    try:
        kind = detectFormat(filePath, first)
    except UnknownFormat as e:
        raise InputError(str(e))
    track, codec = FORMAT_TRACKS[kind]
    return InputFile(filePath, kind, track, codec)


class ItemReader:
    """
    Reads the samples (video, audio) or fixes (location) of one file, a
    batch at a time, and counts what it read and skipped.

    @ivar truncated: the L{TruncatedStream} that ended the last pass, if any.
    @ivar items: items read over all passes.
    """

    def __init__(self, source: InputFile, clock: Callable[[], float] = time.time,
                 includeInvalid: bool = False) -> None:
        """
        @param clock: the reference time (POSIX seconds) used to date NMEA
            fixes that come without a date.
        @param includeInvalid: also return NMEA fixes the receiver marks
            invalid, with C{valid=False}.
        """
        self.source = source
        self.clock = clock
        self.includeInvalid = includeInvalid
        self.truncated: TruncatedStream | None = None
        self.items = 0
        self.keyframes = 0
        self.bytes = 0
        self.passes = 0
        self._file: BinaryIO | None = None
        self._iterator: Iterator[Any] | None = None
        self._reader: Any = None
        self._counters: dict[str, int] = {}

    @property
    def track(self) -> str:
        return self.source.track

    def open(self) -> None:
        """
        Open the file (again) at its start.

        @raise InputError: when it cannot be opened.
        """
        self.close()
        path = self.source.path
        try:
            self._file = path.open("rb")
        except OSError as e:
            raise InputError(f"cannot read {str(path)!r}: {e.strerror or e}; check the path")
        self._reader = self._makeReader(self._file)
        self._iterator = iter(self._reader)
        self.truncated = None
        self.passes += 1

    def _makeReader(self, f: BinaryIO) -> Any:
        kind = self.source.format
        if kind == "h264":
            return H264Reader(f)
        if kind == "h265":
            return H265Reader(f)
        if kind == "mjpeg":
            return MJPEGReader(f)
        if kind == "aac":
            return ADTSReader(f)
        if kind == "opus":
            return OggOpusReader(f)
        if kind == "nmea":
            return NmeaReader(f, clock=self.clock, includeInvalid=self.includeInvalid)
        return GpxReader(f, name=str(self.source.path))

    def take(self, count: int) -> tuple[list[Sample | Fix], bool]:
        """
        Read up to C{count} items.

        @return: the items and whether the file has ended.
        @raise InputError: for content that is not valid in its format.
        """
        if self._iterator is None:
            self.open()
        assert self._iterator is not None
        items: list[Sample | Fix] = []
        try:
            for _ in range(count):
                item = next(self._iterator, None)
                if item is None:
                    self._endPass()
                    return items, True
                if self.source.format == "gpx":
                    item = item.toFix()
                items.append(item)
                self._count(item)
        except TruncatedStream as e:
            self.truncated = e
            self._endPass()
            return items, True
        except MediaError as e:
            self._endPass()
            raise InputError(f"cannot stream {str(self.source.path)!r}: {e}")
        return items, False

    def _count(self, item: Sample | Fix) -> None:
        self.items += 1
        if isinstance(item, Sample):
            self.bytes += len(item.data)
            if item.keyframe:
                self.keyframes += 1

    def _endPass(self) -> None:
        reader = self._reader
        counters = getattr(reader, "counters", None)
        if counters is not None:
            for name, value in vars(counters).items():
                self._counters[name] = self._counters.get(name, 0) + value
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._iterator = None

    def probe(self) -> None:
        """
        Read up to the first item, so that a file with nothing to stream
        fails before the device connects.  The next L{take} starts again
        at the beginning.

        @raise InputError: when the file contains nothing to stream.
        """
        self.open()
        items, ended = self.take(1)
        reader = self._reader
        self.close()
        counted = dict(self._counters)
        self._counters = {}
        self.items = self.keyframes = self.bytes = self.passes = 0
        if items:
            self.truncated = None
            return
        path = str(self.source.path)
        if self.truncated is not None:
            raise InputError(f"cannot stream {path!r}: {self.truncated}")
        if self.source.format == "nmea":
            raise InputError(
                f"{path!r} has no NMEA sentence with a position fix "
                f"({describeNmea(counted)}); record the log after the receiver has a fix, or "
                f"pass --include-invalid to send the positions marked invalid")
        if self.source.format == "gpx":
            counts = getattr(reader, "counts", {})
            others = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "no points"
            raise InputError(f"{path!r} has no track points (<trkpt>) to stream; it has "
                             f"{others}")
        raise InputError(f"{path!r} contains no complete frame to stream")

    def summary(self) -> str:
        """
        Describe what was read and skipped, in one line.
        """
        name = self.source.path.name
        if self.track == "location":
            text = f"{name}: {self.items} positions read"
            if self.source.format == "nmea":
                text += f" from {describeNmea(self._counters)}"
        else:
            unit = {"h264": "access units", "h265": "access units", "mjpeg": "images",
                    "aac": "ADTS frames", "opus": "Opus packets"}[self.source.format]
            text = f"{name}: {self.items} {unit} read"
            if self.track == "video" and self.source.format != "mjpeg":
                text += f" ({self.keyframes} keyframes)"
            text += f", {self.bytes} bytes"
        if self.passes > 1:
            text += f", {self.passes} passes"
        return text


def describeNmea(counters: dict[str, int]) -> str:
    """
    Summarize NMEA parser counters: sentences and what was skipped.
    """
    return (f"{counters.get('sentences', 0)} sentences; skipped "
            f"{counters.get('badChecksum', 0)} with a bad or missing checksum, "
            f"{counters.get('malformed', 0)} malformed, "
            f"{counters.get('noFix', 0)} epochs without a valid fix")
