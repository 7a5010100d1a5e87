"""
Annex-B byte stream splitting shared by the H.264 and H.265 readers.

An Annex-B stream is a sequence of NAL units, each preceded by a start code
(C{00 00 01}, usually with extra leading zero bytes).  The reader here cuts
the stream into chunks of "zero bytes, C{00 00 01}, NAL unit" so that the
chunks concatenate to the input byte for byte, and groups the chunks into
access units with rules supplied by a codec subclass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

from mrs.media.errors import FormatError, SizeLimitExceeded, TruncatedStream
from mrs.media.sample import Sample, frameTimestamp, toFrameRate

START_CODE = b"\x00\x00\x01"
DEFAULT_CHUNK_SIZE = 64 * 1024
DEFAULT_PROBE_SIZE = 64 * 1024
DEFAULT_MAX_ACCESS_UNIT_SIZE = 16 * 1024 * 1024


@dataclass(frozen=True)
class NalChunk:
    """
    One NAL unit with the start code and zero bytes in front of it.

    @ivar offset: stream offset of C{data[0]}.
    @ivar data: the zero bytes, the start code and the NAL unit.  The first
        chunk of a stream also contains any bytes before the first start code.
    @ivar headerIndex: index in C{data} of the first NAL header byte; equal
        to C{len(data)} for an empty NAL unit.
    """

    offset: int
    data: bytes
    headerIndex: int

    @property
    def payloadSize(self) -> int:
        """
        The size of the NAL unit itself (header included), without the
        start code.
        """
        return len(self.data) - self.headerIndex


def iterNalChunks(
    source: BinaryIO,
    codecName: str,
    chunkSize: int = DEFAULT_CHUNK_SIZE,
    probeSize: int = DEFAULT_PROBE_SIZE,
    maxNalSize: int = DEFAULT_MAX_ACCESS_UNIT_SIZE,
) -> Iterator[NalChunk]:
    """
    Split an Annex-B stream read from C{source} into L{NalChunk}s.

    Memory use is bounded by C{maxNalSize} plus C{chunkSize}.

    @raise FormatError: if there is no start code in the first C{probeSize}
        bytes.
    @raise SizeLimitExceeded: if one NAL unit is larger than C{maxNalSize}.
    """
    buffer = bytearray()
    base = 0
    eof = False

    # Bytes before the first start code stay in the first chunk, so that
    # the chunks still add up to the whole input.
    while True:
        index = buffer.find(START_CODE)
        if index >= 0:
            break
        if eof or len(buffer) >= probeSize:
            raise FormatError(
                f"not an Annex-B {codecName} stream: no start code found in the first "
                f"{min(len(buffer), probeSize)} bytes"
            )
        data = source.read(chunkSize)
        if not data:
            eof = True
        buffer += data

    start = 0
    headerIndex = index + 3
    searchFrom = headerIndex
    while True:
        position = buffer.find(START_CODE, searchFrom)
        if position < 0:
            if eof:
                yield NalChunk(base + start, bytes(buffer[start:]), headerIndex - start)
                return
            if len(buffer) - start > maxNalSize:
                raise SizeLimitExceeded(
                    f"NAL unit at offset {base + start} is larger than the limit of "
                    f"{maxNalSize} bytes; raise the limit if the stream is valid"
                )
            if start:
                del buffer[:start]
                base += start
                headerIndex -= start
                start = 0
            searchFrom = max(headerIndex, len(buffer) - 2)
            data = source.read(chunkSize)
            if not data:
                eof = True
            buffer += data
            continue

        # Zero bytes in front of a start code belong to that start code
        # (zero_byte, leading or trailing zero bytes), never to a NAL unit,
        # whose last byte is never zero.
        end = position
        while end > headerIndex and buffer[end - 1] == 0:
            end -= 1
        yield NalChunk(base + start, bytes(buffer[start:end]), headerIndex - start)
        start = end
        headerIndex = position + 3
        searchFrom = headerIndex


@dataclass
class NalInfo:
    """
    The properties of one NAL unit that decide access unit boundaries.

    @ivar vcl: the NAL unit is a coded slice (segment) of a picture.
    @ivar firstInPicture: for a VCL NAL unit, it is the first slice of its
        picture (H.264 first_mb_in_slice == 0, H.265
        first_slice_segment_in_pic_flag == 1).
    @ivar startsAccessUnit: for a non-VCL NAL unit, it starts a new access
        unit when it follows a VCL NAL unit (delimiter, parameter sets, SEI).
    @ivar keyframe: a VCL NAL unit of a random access picture (IDR, IRAP).
    @ivar parameterSet: C{"vps"}, C{"sps"}, C{"pps"} or C{None}.
    """

    vcl: bool = False
    firstInPicture: bool = False
    startsAccessUnit: bool = False
    keyframe: bool = False
    parameterSet: str | None = None


class AccessUnitReader:
    """
    Streaming reader of access units from an Annex-B file object.

    Iterate over it to get one L{Sample} per access unit; the samples'
    C{data} concatenate to the input byte for byte.  Timestamps come from
    the frame rate, in decode order: an elementary stream has no timestamps,
    so a stream with B-frames gets decode-order times.

    Truncation is reported (L{TruncatedStream}) when the stream ends inside
    a start code, after parameter sets without a slice, or inside a slice
    header's first bytes.  NOTE: a slice cut anywhere later cannot be told
    from a complete one without decoding it, so such a last access unit is
    yielded as it is.

    Subclasses set C{codecName}, C{requiredParameterSets} and implement
    C{classify}.

    @ivar accessUnits: access units yielded so far.
    @ivar keyframes: keyframe access units yielded so far.
    @ivar nalUnits: NAL units read so far.
    """

    codecName = ""
    requiredParameterSets: frozenset[str] = frozenset()
    # NAL header bytes plus the first slice header byte.
    minimumSliceSize = 2

    def __init__(
        self,
        source: BinaryIO,
        frameRate: float | int | str | Fraction = 25,
        chunkSize: int = DEFAULT_CHUNK_SIZE,
        maxAccessUnitSize: int = DEFAULT_MAX_ACCESS_UNIT_SIZE,
        probeSize: int = DEFAULT_PROBE_SIZE,
    ) -> None:
        """
        @param source: a binary file object; only C{read(n)} is used.
        @param frameRate: frames per second used for the timestamps.
        @param maxAccessUnitSize: the largest access unit (and NAL unit)
            accepted, in bytes.
        @param probeSize: how far to look for the first start code.
        """
        self.source = source
        self.frameRate = toFrameRate(frameRate)
        self.chunkSize = chunkSize
        self.maxAccessUnitSize = maxAccessUnitSize
        self.probeSize = probeSize
        self.accessUnits = 0
        self.keyframes = 0
        self.nalUnits = 0

    def classify(self, chunk: NalChunk) -> NalInfo:
        """
        Describe one NAL unit.

        @raise FormatError: if the NAL header is invalid.
        """
        raise NotImplementedError()

    def __iter__(self) -> Iterator[Sample]:
        parts: list[bytes] = []
        size = 0
        auOffset = 0
        seenVcl = False
        keyframe = False
        parameterSets: set[str] = set()
        lastChunk: NalChunk | None = None

        for chunk in iterNalChunks(
            self.source,
            self.codecName,
            self.chunkSize,
            self.probeSize,
            self.maxAccessUnitSize,
        ):
            self.nalUnits += 1
            lastChunk = chunk
            info = self._classifyChecked(chunk)
            if seenVcl and (info.startsAccessUnit or (info.vcl and info.firstInPicture)):
                yield self._makeSample(b"".join(parts), keyframe, parameterSets)
                parts = []
                size = 0
                auOffset = chunk.offset
                seenVcl = False
                keyframe = False
                parameterSets = set()
            parts.append(chunk.data)
            size += len(chunk.data)
            if size > self.maxAccessUnitSize:
                raise SizeLimitExceeded(
                    f"{self.codecName} access unit at offset {auOffset} is larger than the "
                    f"limit of {self.maxAccessUnitSize} bytes; raise the limit if the stream "
                    f"is valid"
                )
            if info.vcl:
                seenVcl = True
                keyframe = keyframe or info.keyframe
            if info.parameterSet is not None:
                parameterSets.add(info.parameterSet)

        if lastChunk is None:
            return
        if lastChunk.payloadSize == 0:
            # The access unit before the dangling start code is complete.
            parts.pop()
            if seenVcl:
                yield self._makeSample(b"".join(parts), keyframe, parameterSets)
            raise TruncatedStream(
                f"{self.codecName} stream is truncated: it ends inside a start code at offset "
                f"{lastChunk.offset}",
                lastChunk.offset,
                lastChunk.data,
            )
        if not seenVcl:
            raise TruncatedStream(
                f"{self.codecName} stream is truncated: the last access unit at offset "
                f"{auOffset} has no coded slice",
                auOffset,
                b"".join(parts),
            )
        yield self._makeSample(b"".join(parts), keyframe, parameterSets)

    def _classifyChecked(self, chunk: NalChunk) -> NalInfo:
        if chunk.payloadSize == 0:
            # An empty NAL unit at the very end is reported as truncation
            # by the caller; anywhere else the stream is broken.
            return NalInfo()
        info = self.classify(chunk)
        if info.vcl and chunk.payloadSize < self.minimumSliceSize:
            # Too short to hold the slice header's first bit; only possible
            # at the end of a cut stream, or in garbage.
            raise TruncatedStream(
                f"{self.codecName} stream is truncated or corrupt: slice NAL unit at offset "
                f"{chunk.offset} has only {chunk.payloadSize} bytes",
                chunk.offset,
                chunk.data,
            )
        return info

    def _makeSample(self, data: bytes, keyframe: bool, parameterSets: set[str]) -> Sample:
        index = self.accessUnits
        self.accessUnits += 1
        if keyframe:
            self.keyframes += 1
        return Sample(
            data=data,
            timestamp=frameTimestamp(index, self.frameRate),
            keyframe=keyframe,
            duration=frameTimestamp(index + 1, self.frameRate)
            - frameTimestamp(index, self.frameRate),
            parameterSets=self.requiredParameterSets <= parameterSets,
        )


class AnnexBWriter:
    """
    Writer of an Annex-B (H.264 or H.265) elementary stream: the access
    units concatenated.  Sans-IO: each call returns the bytes to write.
    """

    def write(self, sample: Sample) -> bytes:
        """
        Return the bytes of one access unit.
        """
        return sample.data

    def finish(self) -> bytes:
        """
        Return the bytes that end the stream (none for Annex-B).
        """
        return b""
