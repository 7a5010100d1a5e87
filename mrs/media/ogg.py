"""
Ogg Opus reader and writer (RFC 3533 pages, RFC 7845 Opus mapping).

The reader checks each page's CRC, reassembles packets across pages and
times them from the granule positions.  Only one logical Opus stream is
supported; a multiplexed or chained Ogg file is rejected.

Timestamps count 48 kHz samples from the stream's granule origin and
include the pre-skip: a player drops the first C{preSkip} samples, so the
presentation time is C{timestamp - preSkip / 48000} seconds.  Keeping the
pre-skip in makes every timestamp non-negative and lets the writer give
back the same granule positions.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, NoReturn

from mrs.media._buffer import ReadBuffer
from mrs.media.errors import FormatError, SizeLimitExceeded, TruncatedStream
from mrs.media.sample import MICROSECONDS, Sample

CAPTURE_PATTERN = b"OggS"
OPUS_HEAD = b"OpusHead"
OPUS_TAGS = b"OpusTags"
OPUS_RATE = 48000
DEFAULT_CHUNK_SIZE = 64 * 1024
DEFAULT_MAX_PACKET_SIZE = 16 * 1024 * 1024

HEADER_CONTINUED = 0x01
HEADER_BOS = 0x02
HEADER_EOS = 0x04

_PAGE_HEADER = struct.Struct("<4sBBqIIIB")
_NO_GRANULE = -1


def _makeCrcTable() -> list[int]:
    table = []
    for index in range(256):
        value = index << 24
        for _ in range(8):
            value = ((value << 1) ^ 0x04C11DB7) if value & 0x80000000 else (value << 1)
        table.append(value & 0xFFFFFFFF)
    return table


_CRC_TABLE = _makeCrcTable()


def oggCrc(data: bytes) -> int:
    """
    Return the Ogg page checksum of C{data}: CRC-32 with polynomial
    0x04C11DB7, initial value 0, no bit reflection, no final XOR.
    """
    crc = 0
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


def opusPacketSamples(packet: bytes) -> int:
    """
    Return the number of 48 kHz samples an Opus packet decodes to, from
    its TOC byte (RFC 6716 section 3.1).

    @raise FormatError: if the packet is empty, lacks its frame count byte,
        or lasts more than 120 ms.
    """
    if not packet:
        raise FormatError("invalid Opus packet: it is empty and has no TOC byte")
    toc = packet[0]
    config = toc >> 3
    if config < 12:
        frameSize = (480, 960, 1920, 2880)[config % 4]
    elif config < 16:
        frameSize = (480, 960)[config % 2]
    else:
        frameSize = (120, 240, 480, 960)[config % 4]
    code = toc & 0x03
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        if len(packet) < 2:
            raise FormatError("invalid Opus packet: code 3 packet has no frame count byte")
        frames = packet[1] & 0x3F
    samples = frames * frameSize
    if samples > 5760:
        raise FormatError(f"invalid Opus packet: {samples} samples is more than 120 ms")
    return samples


def samplesToMicroseconds(samples: int) -> int:
    """
    Convert a count of 48 kHz samples to microseconds, rounded.
    """
    return (samples * MICROSECONDS + OPUS_RATE // 2) // OPUS_RATE


def microsecondsToSamples(microseconds: int) -> int:
    """
    Convert microseconds to a count of 48 kHz samples, rounded.
    """
    return (microseconds * OPUS_RATE + MICROSECONDS // 2) // MICROSECONDS


@dataclass(frozen=True)
class OggPage:
    """
    One Ogg page.

    @ivar segments: the lacing values of the segment table.
    @ivar body: the page body (all segments).
    """

    headerType: int
    granulePosition: int
    serial: int
    sequence: int
    segments: bytes
    body: bytes
    offset: int = 0


class OggPageReader:
    """
    Streaming reader of Ogg pages with CRC checking.

    @ivar pages: pages read so far.
    """

    def __init__(self, source: BinaryIO, chunkSize: int = DEFAULT_CHUNK_SIZE) -> None:
        self._buffer = ReadBuffer(source, chunkSize)
        self.pages = 0

    def __iter__(self) -> Iterator[OggPage]:
        buffer = self._buffer
        while True:
            if not buffer.fill(27):
                if buffer.data:
                    self._truncated("page header")
                return
            header = bytes(buffer.data[:27])
            pattern, version, headerType, granule, serial, sequence, crc, count = (
                _PAGE_HEADER.unpack(header)
            )
            if pattern != CAPTURE_PATTERN:
                raise FormatError(
                    f"not an Ogg stream, or lost sync: expected the page capture pattern OggS "
                    f"at offset {buffer.offset}, found {header[:4]!r}"
                )
            if version != 0:
                raise FormatError(
                    f"unsupported Ogg page version {version} at offset {buffer.offset}; only "
                    f"version 0 exists"
                )
            if not buffer.fill(27 + count):
                self._truncated("segment table")
            segments = bytes(buffer.data[27 : 27 + count])
            pageSize = 27 + count + sum(segments)
            if not buffer.fill(pageSize):
                self._truncated("page body")
            offset = buffer.offset
            page = buffer.take(pageSize)
            computed = oggCrc(page[:22] + b"\x00\x00\x00\x00" + page[26:])
            if computed != crc:
                raise FormatError(
                    f"Ogg page {sequence} at offset {offset} fails its CRC check "
                    f"(stored {crc:08x}, computed {computed:08x}); the file is corrupt"
                )
            self.pages += 1
            yield OggPage(
                headerType, granule, serial, sequence, segments, page[27 + count :], offset
            )

    def _truncated(self, part: str) -> NoReturn:
        raise TruncatedStream(
            f"Ogg stream is truncated: the page at offset {self._buffer.offset} ends inside "
            f"its {part}",
            self._buffer.offset,
            bytes(self._buffer.data),
        )


class OggOpusReader:
    """
    Streaming reader of the packets of an Ogg Opus file.

    Iterate over it to get L{Sample}s: first OpusHead and OpusTags with
    C{config} set and timestamp 0, then one keyframe sample per audio
    packet, timed from the granule positions (see the module docstring).

    @ivar preSkip: the pre-skip of OpusHead in 48 kHz samples, or C{None}
        before OpusHead is read.
    @ivar channels: the channel count of OpusHead, or C{None}.
    @ivar packets: audio packets yielded so far (not counting the headers).
    @ivar lostPages: gaps in the page sequence numbers.
    @ivar droppedSegments: packet pieces dropped because a page's
        continued flag did not match the previous page: it continued a
        packet that was never started, or did not continue one that was.
    """

    def __init__(
        self,
        source: BinaryIO,
        chunkSize: int = DEFAULT_CHUNK_SIZE,
        maxPacketSize: int = DEFAULT_MAX_PACKET_SIZE,
    ) -> None:
        self._pages = OggPageReader(source, chunkSize)
        self.maxPacketSize = maxPacketSize
        self.preSkip: int | None = None
        self.channels: int | None = None
        self.packets = 0
        self.lostPages = 0
        self.droppedSegments = 0

    def __iter__(self) -> Iterator[Sample]:
        serial: int | None = None
        expectedSequence = 0
        partial = bytearray()
        partialActive = False
        # The offset of the page on which the partial packet starts.
        partialOffset = 0
        headersSeen = 0
        # The end of the last timed packet, in 48 kHz samples.
        position: int | None = None
        ended = False

        for page in self._pages:
            if serial is None:
                if not page.headerType & HEADER_BOS:
                    raise FormatError(
                        "not an Ogg Opus file: the first page at offset 0 is not a "
                        "beginning-of-stream page"
                    )
                serial = page.serial
            elif page.serial != serial or ended:
                raise FormatError(
                    f"multiplexed or chained Ogg streams are not supported: page at offset "
                    f"{page.offset} belongs to another logical stream (serial {page.serial:#x})"
                )
            if page.sequence != expectedSequence:
                self.lostPages += 1
            expectedSequence = (page.sequence + 1) & 0xFFFFFFFF
            ended = bool(page.headerType & HEADER_EOS)

            if page.headerType & HEADER_CONTINUED:
                if not partialActive:
                    self.droppedSegments += 1
            elif partialActive:
                self.droppedSegments += 1
                partial.clear()
                partialActive = False
            skipContinued = bool(page.headerType & HEADER_CONTINUED) and not partialActive

            completed: list[bytes] = []
            cursor = 0
            for lacing in page.segments:
                piece = page.body[cursor : cursor + lacing]
                cursor += lacing
                if skipContinued:
                    if lacing < 255:
                        skipContinued = False
                    continue
                if not partialActive:
                    partialOffset = page.offset
                partial += piece
                partialActive = True
                if len(partial) > self.maxPacketSize:
                    raise SizeLimitExceeded(
                        f"Ogg packet ending on the page at offset {page.offset} is larger than "
                        f"the limit of {self.maxPacketSize} bytes"
                    )
                if lacing < 255:
                    completed.append(bytes(partial))
                    partial.clear()
                    partialActive = False

            audio: list[bytes] = []
            for packet in completed:
                if headersSeen == 0:
                    self._readHead(packet)
                    headersSeen = 1
                    yield Sample(data=packet, timestamp=0, config=True)
                elif headersSeen == 1:
                    if not packet.startswith(OPUS_TAGS):
                        raise FormatError(
                            f"not an Ogg Opus file: the second packet (page at offset "
                            f"{page.offset}) is not OpusTags"
                        )
                    headersSeen = 2
                    yield Sample(data=packet, timestamp=0, config=True)
                else:
                    audio.append(packet)
            if not audio:
                continue

            durations = [opusPacketSamples(packet) for packet in audio]
            total = sum(durations)
            granule = page.granulePosition
            if granule == _NO_GRANULE:
                start = position if position is not None else 0
            else:
                start = granule - total
                if position is None:
                    start = max(start, 0)
                elif start < position and ended:
                    # The last page may trim samples at the end, so its
                    # granule is less than the sum of its packets.
                    start = position
            for packet, duration in zip(audio, durations, strict=True):
                self.packets += 1
                timestamp = samplesToMicroseconds(start)
                yield Sample(
                    data=packet,
                    timestamp=timestamp,
                    keyframe=True,
                    duration=samplesToMicroseconds(start + duration) - timestamp,
                )
                start += duration
            position = start

        if serial is None:
            return
        if headersSeen < 2:
            raise TruncatedStream(
                "Ogg Opus stream is truncated: it ends before the OpusHead and OpusTags "
                "packets are complete",
                0,
                bytes(partial),
            )
        if partialActive:
            raise TruncatedStream(
                f"Ogg Opus stream is truncated: its last packet is incomplete "
                f"({len(partial)} bytes, starting on the page at offset {partialOffset})",
                partialOffset,
                bytes(partial),
            )

    def _readHead(self, packet: bytes) -> None:
        if not packet.startswith(OPUS_HEAD) or len(packet) < 19:
            raise FormatError(
                "not an Ogg Opus file: the first packet is not an OpusHead header (it may be "
                "Vorbis, FLAC or another codec)"
            )
        version = packet[8]
        if version >> 4 != 0:
            raise FormatError(f"unsupported OpusHead version {version}; only version 0.x exists")
        self.channels = packet[9]
        self.preSkip = struct.unpack_from("<H", packet, 10)[0]


def splitPackets(data: bytes) -> list[Sample]:
    """
    Read all packets of an Ogg Opus file held in memory.

    @raise FormatError: if C{data} is not a valid Ogg Opus file.
    @raise TruncatedStream: if it ends inside a page or a packet.
    """
    return list(OggOpusReader(io.BytesIO(data)))


def makeOpusHead(channels: int = 1, preSkip: int = 312, inputSampleRate: int = 48000) -> bytes:
    """
    Build an OpusHead packet for mono or stereo (channel mapping family 0).

    @raise ValueError: if C{channels} is not 1 or 2.
    """
    if channels not in (1, 2):
        raise ValueError(f"invalid channel count {channels}; family 0 allows 1 or 2")
    return OPUS_HEAD + struct.pack("<BBHIhB", 1, channels, preSkip, inputSampleRate, 0, 0)


def makeOpusTags(vendor: str = "mrs") -> bytes:
    """
    Build an OpusTags packet with a vendor string and no comments.
    """
    vendorBytes = vendor.encode("utf-8")
    return OPUS_TAGS + struct.pack("<I", len(vendorBytes)) + vendorBytes + struct.pack("<I", 0)


class OggOpusWriter:
    """
    Writer of an Ogg Opus file from OpusHead, OpusTags and audio packets.
    Sans-IO: each call returns the bytes to write.

    Feed it samples in order: the OpusHead config sample, the OpusTags
    config sample (a minimal one is made if audio comes first) and audio
    samples.  Later config samples (a device that reconnects sends them
    again) are ignored and counted in C{ignoredConfig}; a stream whose
    OpusHead changes would need a chained Ogg file, which this writer does
    not make.

    Granule positions come from the sample timestamps, so a reader gets
    back the same timestamps (rounded to whole 48 kHz samples).  A page
    ends whenever the next packet does not start where the last one ended.
    NOTE: the last page's granule position covers the whole last packet,
    so end trimming of the source file (a shorter final granule) is lost
    and the copy may play up to one packet longer.

    @ivar ignoredConfig: config samples ignored after the headers.
    """

    def __init__(
        self,
        serial: int = 0x4D525331,
        maxPacketsPerPage: int = 50,
        fallbackHead: bytes | None = None,
    ) -> None:
        """
        @param serial: the logical stream serial number.
        @param maxPacketsPerPage: packets collected before a page is written
            (50 packets of 20 ms make one page per second).
        @param fallbackHead: an OpusHead to use when audio arrives before
            any OpusHead, for example from L{makeOpusHead}; without it such
            audio raises L{FormatError}.
        """
        self.serial = serial
        self.maxPacketsPerPage = maxPacketsPerPage
        self.fallbackHead = fallbackHead
        self.ignoredConfig = 0
        self._sequence = 0
        self._head: bytes | None = None
        self._tagsWritten = False
        self._pending: list[tuple[bytes, int]] = []
        self._pendingEnd = 0
        self._finished = False

    def write(self, sample: Sample) -> bytes:
        """
        Add one sample and return the pages it completes.

        @raise FormatError: if audio comes before any OpusHead and there is
            no fallback head, or if the first config sample is not OpusHead.
        """
        if self._finished:
            raise ValueError("OggOpusWriter.write called after finish")
        if sample.config:
            return self._writeConfig(sample.data)
        output = b""
        if self._head is None:
            if self.fallbackHead is None:
                raise FormatError(
                    "no OpusHead before the first Opus audio packet; the device must send its "
                    "codec config first, or give the writer a fallback head"
                )
            output += self._writeConfig(self.fallbackHead)
        if not self._tagsWritten:
            output += self._writeConfig(makeOpusTags())

        start = microsecondsToSamples(sample.timestamp)
        if self._pending and start != self._pendingEnd:
            output += self._flush(eos=False)
        self._pendingEnd = start + opusPacketSamples(sample.data)
        self._pending.append((sample.data, self._pendingEnd))
        if len(self._pending) >= self.maxPacketsPerPage:
            output += self._flush(eos=False)
        return output

    def finish(self) -> bytes:
        """
        Return the last page, marked end-of-stream.
        """
        if self._finished or self._head is None:
            self._finished = True
            return b""
        self._finished = True
        if not self._tagsWritten:
            return self._writeConfig(makeOpusTags()) + self._flush(eos=True)
        return self._flush(eos=True)

    def _writeConfig(self, packet: bytes) -> bytes:
        if self._head is None:
            if not packet.startswith(OPUS_HEAD):
                raise FormatError(
                    f"the first Opus config packet must be OpusHead, not one starting with "
                    f"{packet[:8]!r}"
                )
            self._head = packet
            return self._pages([(packet, 0)], HEADER_BOS)
        if not self._tagsWritten and packet.startswith(OPUS_TAGS):
            self._tagsWritten = True
            return self._pages([(packet, 0)], 0)
        self.ignoredConfig += 1
        return b""

    def _flush(self, eos: bool) -> bytes:
        packets = self._pending
        self._pending = []
        if not packets:
            # An empty end-of-stream page still states where the stream ends.
            return self._page(HEADER_EOS if eos else 0, self._pendingEnd, b"", b"")
        return self._pages(packets, HEADER_EOS if eos else 0)

    def _pages(self, packets: list[tuple[bytes, int]], headerType: int) -> bytes:
        """
        Lay out C{packets} (data and end granule position) on as many
        pages as their lacing values need.  Each page's granule position is
        the end of the last packet that ends on it, or -1 if none does.
        """
        # One entry per lacing value: (value, end granule if a packet ends here).
        lacing: list[tuple[int, int | None]] = []
        for data, packetEnd in packets:
            lacing.extend((255, None) for _ in range(len(data) // 255))
            lacing.append((len(data) % 255, packetEnd))
        body = b"".join(data for data, _ in packets)

        output = []
        cursor = 0
        continued = False
        for index in range(0, max(len(lacing), 1), 255):
            group = lacing[index : index + 255]
            last = index + 255 >= len(lacing)
            pageType = headerType if last else headerType & HEADER_BOS
            if continued:
                pageType |= HEADER_CONTINUED
            granule = _NO_GRANULE
            for _, lacingEnd in group:
                if lacingEnd is not None:
                    granule = lacingEnd
            size = sum(value for value, _ in group)
            segments = bytes(value for value, _ in group)
            output.append(self._page(pageType, granule, segments, body[cursor : cursor + size]))
            cursor += size
            continued = bool(group) and group[-1][1] is None
        return b"".join(output)

    def _page(self, headerType: int, granule: int, segments: bytes, body: bytes) -> bytes:
        header = _PAGE_HEADER.pack(
            CAPTURE_PATTERN, 0, headerType, granule, self.serial, self._sequence, 0, len(segments)
        )
        self._sequence += 1
        page = header + segments + body
        crc = oggCrc(page)
        return page[:22] + struct.pack("<I", crc) + page[26:]
