"""
Tests for L{mrs.media.detect.detectFormat}.
"""

from __future__ import annotations

import io
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from mrs.media.detect import detectFormat
from mrs.media.errors import UnknownFormat
from mrs.media.formats import MEDIA_FORMATS, TRACKS, makeSampleWriter, openSampleReader

DATA = Path(__file__).parent / "data"


class DetectFormatTests(SynchronousTestCase):
    """
    Tests for L{detectFormat}.
    """

    def test_realFiles(self) -> None:
        """
        Every sample file is recognised from its first 4 KiB, also under a
        name without a telling extension.
        """
        expected = {
            "media/testsrc_640x360_25fps_gop50_baseline.h264": "h264",
            "media/testsrc_160x90_25fps_slices3_aud.h264": "h264",
            "media/testsrc_160x90_25fps_gop25.h265": "h265",
            "media/testsrc_640x360_25fps.mjpeg": "mjpeg",
            "media/sine_1kHz_48k_mono.aac": "aac",
            "media/sine_440Hz_48k_mono.opus": "opus",
            "gps/cerknicko-jezero.gpx": "gpx",
            "gps/Mojstrovka.gpx": "gpx",
            "gps/gpsdf.log": "nmea",
            "gps/mr-350p.log": "nmea",
            "gps/gp-320fw-2019-04-07-coldboot.log": "nmea",
        }
        for name, format in expected.items():
            firstBytes = (DATA / name).read_bytes()[:4096]
            self.assertEqual(detectFormat(DATA / name, firstBytes), format)
            self.assertEqual(detectFormat("upload.bin", firstBytes), format)

    def test_unknown(self) -> None:
        """
        Unknown content raises with a message that lists the supported
        formats.
        """
        error = self.assertRaises(
            UnknownFormat, detectFormat, "clip.mp4", b"\x00\x00\x00\x20ftypisom"
        )
        self.assertEqual(
            str(error),
            "unknown format of 'clip.mp4': its first bytes are 00 00 00 20 66 74 79 70; supported "
            "formats are h264, h265, mjpeg, aac, opus, nmea, gpx (H.264/H.265 Annex-B, MJPEG, AAC "
            "in ADTS, Opus in Ogg, NMEA 0183, GPX)",
        )

    def test_oggWithoutOpus(self) -> None:
        """
        An Ogg Vorbis file is named as such.
        """
        error = self.assertRaises(
            UnknownFormat, detectFormat, "a.ogg", b"OggS\x00\x02" + bytes(30) + b"\x01vorbis"
        )
        self.assertIn("it is an Ogg file without an OpusHead header", str(error))

    def test_empty(self) -> None:
        """
        An empty file is unknown.
        """
        error = self.assertRaises(UnknownFormat, detectFormat, "e", b"")
        self.assertIn("its first bytes are empty", str(error))


class FormatsTests(SynchronousTestCase):
    """
    Tests for L{mrs.media.formats}.
    """

    def test_readAndWriteEveryMediaFormat(self) -> None:
        """
        For each media sample, the reader and writer chosen by format name
        copy the file: byte for byte, except Ogg, whose pages the writer
        lays out again.
        """
        files = {
            "h264": "testsrc_640x360_25fps_gop50_baseline.h264",
            "h265": "testsrc_160x90_25fps_gop25.h265",
            "mjpeg": "testsrc_640x360_25fps.mjpeg",
            "aac": "sine_1kHz_48k_mono.aac",
            "opus": "sine_440Hz_48k_mono.opus",
        }
        self.assertEqual(sorted(files), sorted(MEDIA_FORMATS))
        for format, name in files.items():
            data = (DATA / "media" / name).read_bytes()
            samples = list(openSampleReader(format, io.BytesIO(data)))
            writer = makeSampleWriter(format)
            output = b"".join(writer.write(sample) for sample in samples) + writer.finish()
            if format == "opus":
                copy = list(openSampleReader(format, io.BytesIO(output)))
                self.assertEqual([s.data for s in copy], [s.data for s in samples])
            else:
                self.assertEqual(output, data)
            self.assertIn(TRACKS[format], ("video", "audio"))

    def test_unknownFormat(self) -> None:
        """
        A format name that is not a media format is rejected.
        """
        error = self.assertRaises(ValueError, makeSampleWriter, "nmea")
        self.assertEqual(
            str(error), "invalid media format 'nmea'; choose from h264, h265, mjpeg, aac, opus"
        )
        self.assertRaises(ValueError, openSampleReader, "gpx", io.BytesIO())
