"""
MJPEG elementary stream reader: JPEG images back to back.

Each image runs from its SOI marker (FF D8) to its EOI marker (FF D9).  The
reader walks the marker segments by their length fields.  It scans only the
entropy-coded data after SOS for the next marker, and skips stuffed bytes
(FF 00), restart markers (FF D0-D7) and fill bytes (FF FF).  So an FF D9
inside a segment (an EXIF thumbnail, for example) does not end the image.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from fractions import Fraction
from typing import BinaryIO

from mrs.media._buffer import ReadBuffer
from mrs.media.errors import FormatError, SizeLimitExceeded, TruncatedStream
from mrs.media.sample import Sample, frameTimestamp, toFrameRate

SOI = b"\xff\xd8"
DEFAULT_CHUNK_SIZE = 64 * 1024
DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024

_MARKER_SOI = 0xD8
_MARKER_EOI = 0xD9
_MARKER_SOS = 0xDA
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})


class _NeedMore(Exception):
    pass


class MJPEGReader:
    """
    Streaming reader of the JPEG images of an MJPEG stream.

    Iterate over it to get one keyframe L{Sample} per image, timed from the
    frame rate (an MJPEG stream carries no timestamps).  Bytes between one
    image's EOI and the next SOI stay with the earlier image, so the
    samples concatenate to the input byte for byte.

    @ivar frames: images yielded so far.
    """

    def __init__(
        self,
        source: BinaryIO,
        frameRate: float | int | str | Fraction = 25,
        chunkSize: int = DEFAULT_CHUNK_SIZE,
        maxFrameSize: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        self.frameRate = toFrameRate(frameRate)
        self.maxFrameSize = maxFrameSize
        self.frames = 0
        self._buffer = ReadBuffer(source, chunkSize)

    def __iter__(self) -> Iterator[Sample]:
        buffer = self._buffer
        buffer.fill(2)
        if not buffer.data:
            return
        if bytes(buffer.data[:2]) != SOI:
            raise FormatError(
                f"not an MJPEG stream: it starts with {bytes(buffer.data[:2]).hex(' ')}, "
                f"not with a JPEG SOI marker (ff d8)"
            )
        while buffer.data:
            end = self._findEnd()
            # Keep any bytes up to the next SOI with this image.
            nextStart = buffer.data.find(SOI, end)
            while nextStart < 0 and not buffer.eof:
                self._checkSize(len(buffer.data))
                buffer.readMore()
                nextStart = buffer.data.find(SOI, end)
            if nextStart < 0:
                nextStart = len(buffer.data)
            self._checkSize(nextStart)
            index = self.frames
            self.frames += 1
            yield Sample(
                data=buffer.take(nextStart),
                timestamp=frameTimestamp(index, self.frameRate),
                keyframe=True,
                duration=frameTimestamp(index + 1, self.frameRate)
                - frameTimestamp(index, self.frameRate),
            )

    def _checkSize(self, size: int) -> None:
        if size > self.maxFrameSize:
            raise SizeLimitExceeded(
                f"JPEG image at offset {self._buffer.offset} is larger than the limit of "
                f"{self.maxFrameSize} bytes; raise the limit if the stream is valid"
            )

    def _need(self, size: int) -> None:
        self._checkSize(size)
        if not self._buffer.fill(size):
            raise _NeedMore()

    def _findEnd(self) -> int:
        """
        Return the index just past the EOI of the image at the start of the
        buffer.
        """
        try:
            return self._walkSegments()
        except _NeedMore:
            raise TruncatedStream(
                f"MJPEG stream is truncated: the JPEG image at offset {self._buffer.offset} "
                f"has no EOI marker",
                self._buffer.offset,
                bytes(self._buffer.data),
            )

    def _walkSegments(self) -> int:
        data = self._buffer.data
        position = 2
        while True:
            self._need(position + 2)
            if data[position] != 0xFF:
                raise FormatError(
                    f"invalid JPEG image at offset {self._buffer.offset}: expected a marker at "
                    f"offset {self._buffer.offset + position}, found byte {data[position]:#04x}"
                )
            marker = data[position + 1]
            if marker == 0xFF:
                position += 1
                continue
            if marker == _MARKER_EOI:
                return position + 2
            if marker in _STANDALONE_MARKERS:
                position += 2
                continue
            if marker in (_MARKER_SOI, 0x00):
                raise FormatError(
                    f"invalid JPEG image at offset {self._buffer.offset}: unexpected marker "
                    f"ff {marker:02x} at offset {self._buffer.offset + position}"
                )
            self._need(position + 4)
            length = (data[position + 2] << 8) | data[position + 3]
            if length < 2:
                raise FormatError(
                    f"invalid JPEG image at offset {self._buffer.offset}: segment length "
                    f"{length} at offset {self._buffer.offset + position} is below 2"
                )
            position += 2 + length
            if marker == _MARKER_SOS:
                position = self._skipEntropyCodedData(position)

    def _skipEntropyCodedData(self, position: int) -> int:
        data = self._buffer.data
        while True:
            found = data.find(b"\xff", position)
            if found < 0:
                position = len(data)
                self._need(position + 1)
                continue
            self._need(found + 2)
            following = data[found + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                # Stuffed zero byte or restart marker: still entropy-coded data.
                position = found + 2
            elif following == 0xFF:
                # Fill byte: the marker proper starts at a later FF.
                position = found + 1
            else:
                return found


def splitJpegs(data: bytes, frameRate: float | int | str | Fraction = 25) -> list[Sample]:
    """
    Split a whole MJPEG stream held in memory into images.

    @raise FormatError: if C{data} is not a sequence of JPEG images.
    @raise TruncatedStream: if the last image has no EOI marker.
    """
    return list(MJPEGReader(io.BytesIO(data), frameRate=frameRate, maxFrameSize=len(data) + 1))


class MJPEGWriter:
    """
    Writer of an MJPEG elementary stream: the images concatenated.
    Sans-IO: each call returns the bytes to write.
    """

    def write(self, sample: Sample) -> bytes:
        """
        Return the bytes of one JPEG image.
        """
        return sample.data

    def finish(self) -> bytes:
        """
        Return the bytes that end the stream (none for MJPEG).
        """
        return b""
