"""
Tests for the ADTS and Ogg Opus readers and writers in L{mrs.media}.

Packet counts were measured with ffprobe 5.1.9 (C{-count_packets}).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from mrs.media.adts import ADTSReader, ADTSWriter, splitFrames
from mrs.media.errors import FormatError, TruncatedStream
from mrs.media.ogg import (
    OggOpusReader,
    OggOpusWriter,
    OggPageReader,
    makeOpusHead,
    makeOpusTags,
    oggCrc,
    opusPacketSamples,
    splitPackets,
)
from mrs.media.sample import Sample

MEDIA = Path(__file__).parent / "data" / "media"
AAC = MEDIA / "sine_1kHz_48k_mono.aac"
OPUS = MEDIA / "sine_440Hz_48k_mono.opus"


class ADTSReaderTests(SynchronousTestCase):
    """
    Tests for L{ADTSReader}.
    """

    def setUp(self) -> None:
        self.data = AAC.read_bytes()

    def test_counts(self) -> None:
        """
        The AAC sample contains ffprobe's 470 frames of 48 kHz mono AAC-LC,
        and they concatenate to the input.
        """
        with AAC.open("rb") as source:
            reader = ADTSReader(source, chunkSize=100)
            frames = list(reader)
        self.assertEqual(len(frames), 470)
        self.assertEqual(reader.frames, 470)
        self.assertEqual(reader.sampleRate, 48000)
        self.assertEqual(reader.channels, 1)
        self.assertEqual(reader.profile, 2)
        self.assertEqual(b"".join(frame.data for frame in frames), self.data)
        self.assertTrue(all(frame.data[:2] == b"\xff\xf1" for frame in frames))

    def test_timestamps(self) -> None:
        """
        Each frame lasts 1024 samples at 48 kHz, 21333 or 21334 us.
        """
        frames = splitFrames(self.data)
        self.assertEqual([frame.timestamp for frame in frames[:4]], [0, 21333, 42667, 64000])
        self.assertEqual(frames[-1].timestamp, 469 * 1024 * 1_000_000 // 48000)
        self.assertEqual(frames[0].duration, 21333)

    def test_lostSync(self) -> None:
        """
        Bytes that are not an ADTS header where one is due stop the reader.
        """
        first = splitFrames(self.data)[0].data
        error = self.assertRaises(FormatError, splitFrames, first + b"ID3")
        self.assertEqual(
            str(error),
            f"not an ADTS stream, or lost sync: expected an ADTS header (fff sync word, "
            f"layer 0) at offset {len(first)}, found 49 44",
        )

    def test_truncated(self) -> None:
        """
        A stream cut inside a frame is reported as truncated with the
        partial frame.
        """
        cut = self.data[:-10]
        with io.BytesIO(cut) as source:
            received: list[Sample] = []
            error = self.assertRaises(TruncatedStream, lambda: received.extend(ADTSReader(source)))
        self.assertEqual(len(received), 469)
        offset = sum(len(frame.data) for frame in received)
        self.assertEqual(error.offset, offset)
        self.assertEqual(error.partial, cut[offset:])

    def test_frameLengthTooShort(self) -> None:
        """
        A frame length shorter than the header is invalid.
        """
        header = bytes([0xFF, 0xF1, 0x4C, 0x40, 0x00, 0x1F, 0xFC])
        error = self.assertRaises(FormatError, splitFrames, header)
        self.assertEqual(
            str(error),
            "invalid ADTS header at offset 0: frame length 0 is shorter than the 7-byte header",
        )

    def test_writer(self) -> None:
        """
        L{ADTSWriter} gives back the frames unchanged.
        """
        writer = ADTSWriter()
        output = b"".join(writer.write(frame) for frame in splitFrames(self.data))
        self.assertEqual(output + writer.finish(), self.data)


class OggOpusReaderTests(SynchronousTestCase):
    """
    Tests for L{OggOpusReader}.
    """

    def setUp(self) -> None:
        self.data = OPUS.read_bytes()

    def test_counts(self) -> None:
        """
        The Opus sample contains OpusHead, OpusTags and ffprobe's 501 audio
        packets of 20 ms.
        """
        with OPUS.open("rb") as source:
            reader = OggOpusReader(source, chunkSize=333)
            packets = list(reader)
        self.assertEqual(len(packets), 503)
        self.assertEqual(reader.packets, 501)
        self.assertEqual(reader.preSkip, 312)
        self.assertEqual(reader.channels, 1)
        self.assertEqual(reader.lostPages, 0)
        self.assertEqual(reader.droppedSegments, 0)
        self.assertEqual([packet.config for packet in packets[:3]], [True, True, False])
        self.assertEqual(packets[0].data[:8], b"OpusHead")
        self.assertEqual(packets[1].data[:8], b"OpusTags")
        self.assertEqual({opusPacketSamples(packet.data) for packet in packets[2:]}, {960})

    def test_timestamps(self) -> None:
        """
        Audio packets are 20 ms apart from 0, also across the last page
        whose granule position trims the end.
        """
        packets = splitPackets(self.data)
        timestamps = [packet.timestamp for packet in packets[2:]]
        self.assertEqual(timestamps, [index * 20000 for index in range(501)])
        self.assertEqual(packets[2].duration, 20000)

    def test_crcChecked(self) -> None:
        """
        A page whose bytes were changed fails its CRC check.
        """
        corrupt = bytearray(self.data)
        corrupt[200] ^= 0x01
        error = self.assertRaises(FormatError, splitPackets, bytes(corrupt))
        self.assertRegex(
            str(error),
            r"^Ogg page \d+ at offset \d+ fails its CRC check \(stored [0-9a-f]{8}, "
            r"computed [0-9a-f]{8}\); the file is corrupt$",
        )

    def test_crcKnownValue(self) -> None:
        """
        L{oggCrc} is the unreflected CRC-32 with polynomial 0x04C11DB7 and
        initial value 0 (the "CRC-32/MPEG-2" check value with init 0).
        """
        self.assertEqual(oggCrc(b"123456789"), 0x89A1897F)

    def test_notOgg(self) -> None:
        """
        Input without the capture pattern is rejected.
        """
        error = self.assertRaises(FormatError, splitPackets, b"RIFF" + bytes(40))
        self.assertEqual(
            str(error),
            "not an Ogg stream, or lost sync: expected the page capture pattern OggS at "
            "offset 0, found b'RIFF'",
        )

    def test_notOpus(self) -> None:
        """
        An Ogg file whose first packet is not OpusHead is rejected.
        """
        writer = OggOpusWriter()
        page = writer._page(0x02, 0, b"\x1e", b"\x01vorbis" + bytes(23))
        error = self.assertRaises(FormatError, splitPackets, page)
        self.assertEqual(
            str(error),
            "not an Ogg Opus file: the first packet is not an OpusHead header (it may be "
            "Vorbis, FLAC or another codec)",
        )

    def test_truncated(self) -> None:
        """
        A file cut inside a page is reported as truncated.
        """
        cut = self.data[:-50]
        with io.BytesIO(cut) as source:
            error = self.assertRaises(TruncatedStream, list, OggOpusReader(source))
        self.assertTrue(str(error).startswith("Ogg stream is truncated: the page at offset "))

    def test_truncatedPacket(self) -> None:
        """
        A file that ends between the pages of one packet is reported as
        truncated, with the packet's first page and its bytes so far.
        """
        writer = OggOpusWriter(fallbackHead=makeOpusHead())
        output = writer.write(Sample(b"\xfc" + bytes(70000), 0)) + writer.finish()
        pages = list(OggPageReader(io.BytesIO(output)))
        self.assertEqual([len(page.segments) for page in pages], [1, 1, 255, 20])
        error = self.assertRaises(TruncatedStream, splitPackets, output[: pages[-1].offset])
        self.assertEqual(
            str(error),
            "Ogg Opus stream is truncated: its last packet is incomplete (65025 bytes, starting "
            "on the page at offset 94)",
        )
        self.assertEqual(error.offset, 94)
        self.assertEqual(error.partial, b"\xfc" + bytes(65024))

    def test_pages(self) -> None:
        """
        L{OggPageReader} reads every page; the first is beginning-of-stream
        and the last end-of-stream.
        """
        with OPUS.open("rb") as source:
            pages = list(OggPageReader(source))
        self.assertEqual(pages[0].headerType, 0x02)
        self.assertEqual(pages[-1].headerType & 0x04, 0x04)
        self.assertEqual([page.sequence for page in pages], list(range(len(pages))))


class OggOpusWriterTests(SynchronousTestCase):
    """
    Tests for L{OggOpusWriter}.
    """

    def roundTrip(self, samples: list[Sample], **options: object) -> list[Sample]:
        writer = OggOpusWriter(**options)  # type: ignore[arg-type]
        output = b"".join(writer.write(sample) for sample in samples) + writer.finish()
        return splitPackets(output)

    def test_valueExact(self) -> None:
        """
        Writing the sample's packets and reading them back gives the same
        packets, config flags and timestamps, whatever the page size.
        """
        original = splitPackets(OPUS.read_bytes())
        for perPage in (1, 7, 50, 255):
            copy = self.roundTrip(original, maxPacketsPerPage=perPage)
            self.assertEqual(
                [(s.data, s.timestamp, s.config) for s in copy],
                [(s.data, s.timestamp, s.config) for s in original],
            )

    def test_gapsAndLargePackets(self) -> None:
        """
        Gaps between packets survive (the writer starts a new page), and a
        packet larger than one page is split across pages and rebuilt.
        """
        samples = [
            Sample(makeOpusHead(), 0, config=True),
            Sample(makeOpusTags("test"), 0, config=True),
            Sample(b"\xfc" + bytes(70000), 0),
            Sample(b"\xfc" + b"a" * 300, 20000),
            Sample(b"\xfc" + b"b" * 255, 100000),
            Sample(b"\xfc" + b"c" * 509, 120000),
        ]
        copy = self.roundTrip(samples)
        self.assertEqual(
            [(s.data, s.timestamp, s.config) for s in copy],
            [(s.data, s.timestamp, s.config) for s in samples],
        )

    def test_fallbackHead(self) -> None:
        """
        Audio before any OpusHead raises unless a fallback head is given,
        and then the file gets that head and a minimal OpusTags.
        """
        packet = Sample(b"\xfc\x01", 0)
        error = self.assertRaises(FormatError, OggOpusWriter().write, packet)
        self.assertEqual(
            str(error),
            "no OpusHead before the first Opus audio packet; the device must send its codec "
            "config first, or give the writer a fallback head",
        )
        copy = self.roundTrip([packet], fallbackHead=makeOpusHead(channels=2))
        self.assertEqual(
            [s.data for s in copy], [makeOpusHead(channels=2), makeOpusTags(), b"\xfc\x01"]
        )

    def test_repeatedConfigIgnored(self) -> None:
        """
        Config samples sent again after the headers are ignored and
        counted.
        """
        head = Sample(makeOpusHead(), 0, config=True)
        tags = Sample(makeOpusTags(), 0, config=True)
        writer = OggOpusWriter()
        for sample in (head, tags, Sample(b"\xfc\x01", 0), head, tags, Sample(b"\xfc\x02", 20000)):
            writer.write(sample)
        self.assertEqual(writer.ignoredConfig, 2)

    def test_headFields(self) -> None:
        """
        L{makeOpusHead} lays out version 1, channels, pre-skip and input
        rate little-endian.
        """
        head = makeOpusHead(channels=2, preSkip=3840, inputSampleRate=44100)
        self.assertEqual(head, b"OpusHead" + struct.pack("<BBHIhB", 1, 2, 3840, 44100, 0, 0))
