"""
Tests for the H.264, H.265 and MJPEG readers in L{mrs.media}.

The expected frame and keyframe counts were measured with ffprobe 5.1.9
(C{ffprobe -count_frames} and C{-show_entries frame=key_frame}) and are
recorded in tests/data/SOURCES.md.
"""

from __future__ import annotations

import io
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from mrs.media import h264, h265
from mrs.media.annexb import AnnexBWriter
from mrs.media.errors import FormatError, SizeLimitExceeded, TruncatedStream
from mrs.media.h264 import H264Reader
from mrs.media.h265 import H265Reader
from mrs.media.mjpeg import MJPEGReader, MJPEGWriter, splitJpegs
from mrs.media.sample import Sample

MEDIA = Path(__file__).parent / "data" / "media"
BASELINE = MEDIA / "testsrc_640x360_25fps_gop50_baseline.h264"
SLICED = MEDIA / "testsrc_160x90_25fps_slices3_aud.h264"
HEVC = MEDIA / "testsrc_160x90_25fps_gop25.h265"
MJPEG = MEDIA / "testsrc_640x360_25fps.mjpeg"


class H264ReaderTests(SynchronousTestCase):
    """
    Tests for L{H264Reader} and L{h264.splitAccessUnits}.
    """

    def setUp(self) -> None:
        self.data = BASELINE.read_bytes()

    def test_baselineCounts(self) -> None:
        """
        The baseline sample splits into ffprobe's 250 frames, with IDR
        keyframes exactly at frames 0, 50, 100, 150 and 200.
        """
        with BASELINE.open("rb") as source:
            reader = H264Reader(source)
            units = list(reader)
        self.assertEqual(len(units), 250)
        self.assertEqual(reader.accessUnits, 250)
        self.assertEqual(reader.keyframes, 5)
        self.assertEqual(
            [i for i, unit in enumerate(units) if unit.keyframe], [0, 50, 100, 150, 200]
        )

    def test_byteExact(self) -> None:
        """
        The access units concatenate to the input byte for byte, also when
        the reader gets the file in small chunks.
        """
        for chunkSize in (7, 1000, 65536):
            with BASELINE.open("rb") as source:
                units = list(H264Reader(source, chunkSize=chunkSize))
            self.assertEqual(b"".join(unit.data for unit in units), self.data)

    def test_firstAccessUnit(self) -> None:
        """
        The first access unit is an IDR keyframe that starts with the SPS
        and PPS, and x264's SEI, with their 4-byte start codes.
        """
        first = h264.splitAccessUnits(self.data)[0]
        self.assertTrue(first.keyframe)
        self.assertTrue(first.parameterSets)
        self.assertEqual(first.flags, 1)
        self.assertEqual(first.data[:5], b"\x00\x00\x00\x01\x67")
        self.assertEqual(first.timestamp, 0)

    def test_parameterSetsBeforeEveryIdr(self) -> None:
        """
        x264 repeats SPS and PPS before each IDR, so each keyframe access
        unit, and only those, carries parameter sets.
        """
        units = h264.splitAccessUnits(self.data)
        self.assertEqual([unit.parameterSets for unit in units], [unit.keyframe for unit in units])

    def test_timestamps(self) -> None:
        """
        Timestamps advance 40 ms per access unit at the default 25 fps,
        and follow another frame rate when one is given.
        """
        units = h264.splitAccessUnits(self.data)
        self.assertEqual([unit.timestamp for unit in units[:3]], [0, 40000, 80000])
        self.assertEqual(units[-1].timestamp, 9960000)
        self.assertEqual(units[0].duration, 40000)
        ntsc = h264.splitAccessUnits(self.data, frameRate="30000/1001")
        self.assertEqual([unit.timestamp for unit in ntsc[:3]], [0, 33367, 66733])

    def test_slicesAndDelimiters(self) -> None:
        """
        A stream with three slices per picture and access unit delimiters
        gives ffprobe's 50 frames, each with the delimiter first.
        """
        data = SLICED.read_bytes()
        with SLICED.open("rb") as source:
            reader = H264Reader(source, chunkSize=100)
            units = list(reader)
        self.assertEqual(len(units), 50)
        self.assertEqual(reader.nalUnits, 205)
        self.assertEqual([i for i, unit in enumerate(units) if unit.keyframe], [0, 25])
        self.assertEqual(b"".join(unit.data for unit in units), data)
        for unit in units:
            self.assertEqual(unit.data[:5], b"\x00\x00\x00\x01\x09")

    def test_noStartCode(self) -> None:
        """
        Input without a start code in the probed bytes is rejected with a
        message that names the number of bytes probed.
        """
        error = self.assertRaises(FormatError, h264.splitAccessUnits, b"\x12" * 5000)
        self.assertEqual(
            str(error),
            "not an Annex-B H.264 stream: no start code found in the first 5000 bytes",
        )
        with io.BytesIO(b"\x12" * 100000) as source:
            reader = H264Reader(source, probeSize=4096, chunkSize=4096)
            error = self.assertRaises(FormatError, list, reader)
        self.assertEqual(
            str(error),
            "not an Annex-B H.264 stream: no start code found in the first 4096 bytes",
        )

    def test_emptyInput(self) -> None:
        """
        Empty input is not an Annex-B stream.
        """
        error = self.assertRaises(FormatError, h264.splitAccessUnits, b"")
        self.assertEqual(
            str(error), "not an Annex-B H.264 stream: no start code found in the first 0 bytes"
        )

    def test_truncatedInsideStartCode(self) -> None:
        """
        A stream cut inside a start code is reported as truncated; the
        complete access units come out first.
        """
        units = h264.splitAccessUnits(self.data)
        cut = b"".join(unit.data for unit in units[:3]) + b"\x00\x00\x00\x01"
        with io.BytesIO(cut) as source:
            reader = H264Reader(source)
            received: list[Sample] = []
            error = self.assertRaises(TruncatedStream, lambda: received.extend(reader))
        self.assertEqual(len(received), 3)
        offset = sum(len(unit.data) for unit in units[:3])
        self.assertEqual(
            str(error),
            f"H.264 stream is truncated: it ends inside a start code at offset {offset}",
        )
        self.assertEqual(error.partial, b"\x00\x00\x00\x01")

    def test_truncatedWithoutSlice(self) -> None:
        """
        A stream that ends after the parameter sets of the next keyframe
        but before its slice is reported as truncated, with the partial
        access unit's bytes.
        """
        units = h264.splitAccessUnits(self.data)
        idr = units[50].data
        sliceStart = idr.index(b"\x00\x00\x01\x65")
        cut = b"".join(unit.data for unit in units[:50]) + idr[:sliceStart]
        error = self.assertRaises(TruncatedStream, h264.splitAccessUnits, cut)
        offset = sum(len(unit.data) for unit in units[:50])
        self.assertEqual(
            str(error),
            f"H.264 stream is truncated: the last access unit at offset {offset} has no "
            f"coded slice",
        )
        self.assertEqual(error.offset, offset)
        self.assertEqual(error.partial, idr[:sliceStart])

    def test_forbiddenBit(self) -> None:
        """
        A NAL header with forbidden_zero_bit set is rejected.
        """
        error = self.assertRaises(FormatError, h264.splitAccessUnits, b"\x00\x00\x01\xe5\x88")
        self.assertEqual(
            str(error),
            "not an H.264 stream, or a corrupt one: forbidden_zero_bit is set in the NAL unit "
            "at offset 0",
        )

    def test_sizeLimit(self) -> None:
        """
        An access unit over the limit stops the reader instead of growing
        its buffer.
        """
        with BASELINE.open("rb") as source:
            reader = H264Reader(source, maxAccessUnitSize=10000, chunkSize=4096)
            error = self.assertRaises(SizeLimitExceeded, list, reader)
        self.assertIn("is larger than the limit of 10000 bytes", str(error))

    def test_invalidFrameRate(self) -> None:
        """
        A frame rate of zero is rejected with the value in the message.
        """
        error = self.assertRaises(ValueError, H264Reader, io.BytesIO(), frameRate=0)
        self.assertEqual(str(error), "invalid frame rate 0; use a positive number such as 25")

    def test_writer(self) -> None:
        """
        L{AnnexBWriter} gives back the access units unchanged.
        """
        writer = AnnexBWriter()
        output = b"".join(writer.write(unit) for unit in h264.splitAccessUnits(self.data))
        self.assertEqual(output + writer.finish(), self.data)


class H265ReaderTests(SynchronousTestCase):
    """
    Tests for L{H265Reader}.
    """

    def test_counts(self) -> None:
        """
        The H.265 sample splits into ffprobe's 50 frames with IRAP
        keyframes at 0 and 25, each carrying VPS, SPS and PPS.
        """
        data = HEVC.read_bytes()
        with HEVC.open("rb") as source:
            reader = H265Reader(source, chunkSize=64)
            units = list(reader)
        self.assertEqual(len(units), 50)
        self.assertEqual(reader.keyframes, 2)
        self.assertEqual([i for i, unit in enumerate(units) if unit.keyframe], [0, 25])
        self.assertEqual([i for i, unit in enumerate(units) if unit.parameterSets], [0, 25])
        self.assertEqual(b"".join(unit.data for unit in units), data)
        self.assertEqual(h265.nalType(units[0].data[4]), h265.NAL_VPS)

    def test_noStartCode(self) -> None:
        """
        The message names H.265.
        """
        error = self.assertRaises(FormatError, h265.splitAccessUnits, b"abc")
        self.assertEqual(
            str(error), "not an Annex-B H.265 stream: no start code found in the first 3 bytes"
        )

    def test_temporalIdZero(self) -> None:
        """
        A NAL header with nuh_temporal_id_plus1 of 0 is invalid.
        """
        error = self.assertRaises(FormatError, h265.splitAccessUnits, b"\x00\x00\x01\x40\x00\x0c")
        self.assertEqual(
            str(error),
            "not an H.265 stream, or a corrupt one: nuh_temporal_id_plus1 is 0 in the NAL unit "
            "at offset 0",
        )


class MJPEGReaderTests(SynchronousTestCase):
    """
    Tests for L{MJPEGReader}.
    """

    def setUp(self) -> None:
        self.data = MJPEG.read_bytes()

    def test_counts(self) -> None:
        """
        The MJPEG sample contains ffprobe's 250 images, each a keyframe from
        SOI to EOI, and they concatenate to the input.
        """
        with MJPEG.open("rb") as source:
            reader = MJPEGReader(source, chunkSize=3000)
            images = list(reader)
        self.assertEqual(len(images), 250)
        self.assertEqual(reader.frames, 250)
        self.assertTrue(all(image.keyframe for image in images))
        self.assertTrue(all(image.data[:2] == b"\xff\xd8" for image in images))
        self.assertTrue(all(image.data[-2:] == b"\xff\xd9" for image in images))
        self.assertEqual(b"".join(image.data for image in images), self.data)
        self.assertEqual(images[1].timestamp, 40000)

    def test_markerLikeBytesInSegment(self) -> None:
        """
        An FF D9 inside a marker segment (such as an EXIF thumbnail) does
        not end the image, and stuffed or fill bytes in the scan data are
        skipped.
        """
        comment = b"\xff\xfe\x00\x06\xff\xd9\xff\xd8"
        scan = b"\xff\xda\x00\x02" + b"\x12\xff\x00\x34\xff\xd0\x56" + b"\xff\xff\xff\xd9"
        image = b"\xff\xd8" + comment + scan
        images = splitJpegs(image + image)
        self.assertEqual([sample.data for sample in images], [image, image])

    def test_bytesBetweenImages(self) -> None:
        """
        Bytes between one image's EOI and the next SOI stay with the first
        image.
        """
        image = b"\xff\xd8\xff\xda\x00\x02\x01\xff\xd9"
        images = splitJpegs(image + b"\x00\x00" + image)
        self.assertEqual([sample.data for sample in images], [image + b"\x00\x00", image])

    def test_notJpeg(self) -> None:
        """
        Input that does not start with SOI is rejected.
        """
        error = self.assertRaises(FormatError, splitJpegs, b"GIF89a")
        self.assertEqual(
            str(error),
            "not an MJPEG stream: it starts with 47 49, not with a JPEG SOI marker (ff d8)",
        )

    def test_truncated(self) -> None:
        """
        An image without EOI is reported as truncated, after the complete
        images.
        """
        cut = self.data[: len(self.data) - 100]
        with io.BytesIO(cut) as source:
            received: list[Sample] = []
            error = self.assertRaises(TruncatedStream, lambda: received.extend(MJPEGReader(source)))
        self.assertEqual(len(received), 249)
        self.assertTrue(
            str(error).startswith("MJPEG stream is truncated: the JPEG image at offset")
        )
        complete = sum(len(image.data) for image in received)
        self.assertEqual(error.partial, cut[complete:])

    def test_writer(self) -> None:
        """
        L{MJPEGWriter} gives back the images unchanged.
        """
        writer = MJPEGWriter()
        images = splitJpegs(self.data)
        self.assertEqual(b"".join(writer.write(image) for image in images), self.data)
        self.assertEqual(writer.finish(), b"")
