"""
Property tests: random and mutated input never makes a media or GPS reader
raise anything but its documented errors.

The NMEA parser raises nothing at all; the binary readers raise only
L{MediaError} subclasses; the GPX reader only L{FormatError}.  The number
of examples per test comes from C{MRS_FUZZ_EXAMPLES} (default 300).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from mrs.media.adts import ADTSReader
from mrs.media.errors import FormatError, MediaError, TruncatedStream
from mrs.media.gpx import GpxReader
from mrs.media.h264 import H264Reader
from mrs.media.h265 import H265Reader
from mrs.media.mjpeg import MJPEGReader
from mrs.media.nmea import NmeaParser
from mrs.media.ogg import OggOpusReader, OggOpusWriter

DATA = Path(__file__).parent / "data"
FUZZ_EXAMPLES = int(os.environ.get("MRS_FUZZ_EXAMPLES", "300"))
_fuzzSettings = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_H264 = (DATA / "media" / "testsrc_640x360_25fps_gop50_baseline.h264").read_bytes()[:30000]
_H265 = (DATA / "media" / "testsrc_160x90_25fps_gop25.h265").read_bytes()
_AAC = (DATA / "media" / "sine_1kHz_48k_mono.aac").read_bytes()[:5000]
_OPUS = (DATA / "media" / "sine_440Hz_48k_mono.opus").read_bytes()[:8000]
_MJPEG = (DATA / "media" / "testsrc_640x360_25fps.mjpeg").read_bytes()[:20000]
_NMEA = (DATA / "gps" / "gp-320fw-2019-04-07-coldboot.log").read_bytes()
_GPX = (DATA / "gps" / "cerknicko-jezero.gpx").read_bytes()[:6000]


@st.composite
def mutated(draw: Any, original: bytes) -> bytes:
    """
    Draw C{original} cut short, with a few bytes overwritten, inserted or
    removed.
    """
    data = bytearray(original[: draw(st.integers(0, len(original)))])
    for _ in range(draw(st.integers(0, 8))):
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["set", "insert", "delete"]))
        if action == "set":
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(max_size=8))
        else:
            del data[position : position + draw(st.integers(1, 8))]
    return bytes(data)


def inputs(original: bytes, prefix: bytes) -> st.SearchStrategy[bytes]:
    """
    Random bytes, random bytes after a format's magic, and mutations of a
    real file.
    """
    return st.one_of(
        st.binary(max_size=3000),
        st.binary(max_size=3000).map(lambda data: prefix + data),
        mutated(original),
    )


def drain(reader: Iterable[Any]) -> None:
    for _ in reader:
        pass


class BinaryReaderFuzzTests(SynchronousTestCase):
    """
    The binary readers raise only L{MediaError} subclasses.
    """

    def check(self, makeReader: Callable[[io.BytesIO], Iterable[Any]], data: bytes) -> None:
        try:
            drain(makeReader(io.BytesIO(data)))
        except (FormatError, TruncatedStream):
            pass
        except MediaError as error:
            self.fail(f"undocumented MediaError subclass {type(error).__name__}: {error}")

    @_fuzzSettings
    @given(inputs(_H264, b"\x00\x00\x00\x01"))
    def test_h264(self, data: bytes) -> None:
        """
        L{H264Reader} raises only L{FormatError} or L{TruncatedStream}.
        """
        self.check(lambda source: H264Reader(source, chunkSize=512, probeSize=2048), data)

    @_fuzzSettings
    @given(inputs(_H265, b"\x00\x00\x01\x40\x01"))
    def test_h265(self, data: bytes) -> None:
        """
        L{H265Reader} raises only L{FormatError} or L{TruncatedStream}.
        """
        self.check(lambda source: H265Reader(source, chunkSize=512), data)

    @_fuzzSettings
    @given(inputs(_AAC, b"\xff\xf1"))
    def test_adts(self, data: bytes) -> None:
        """
        L{ADTSReader} raises only L{FormatError} or L{TruncatedStream}.
        """
        self.check(lambda source: ADTSReader(source, chunkSize=512), data)

    @_fuzzSettings
    @given(inputs(_OPUS, b"OggS\x00\x02"))
    def test_ogg(self, data: bytes) -> None:
        """
        L{OggOpusReader} raises only L{FormatError} or L{TruncatedStream},
        and what it reads can be written again.
        """
        try:
            samples = list(OggOpusReader(io.BytesIO(data), chunkSize=512))
        except (FormatError, TruncatedStream):
            return
        writer = OggOpusWriter()
        for sample in samples:
            writer.write(sample)
        writer.finish()

    @_fuzzSettings
    @given(inputs(_MJPEG, b"\xff\xd8"))
    def test_mjpeg(self, data: bytes) -> None:
        """
        L{MJPEGReader} raises only L{FormatError} or L{TruncatedStream}.
        """
        self.check(lambda source: MJPEGReader(source, chunkSize=512), data)

    @_fuzzSettings
    @given(inputs(_GPX, b"<gpx>"))
    def test_gpx(self, data: bytes) -> None:
        """
        L{GpxReader} raises only L{FormatError}.
        """
        try:
            drain(GpxReader(io.BytesIO(data), requireTime=False, chunkSize=512))
        except FormatError:
            pass


class NmeaFuzzTests(SynchronousTestCase):
    """
    The NMEA parser never raises, whatever it is fed.
    """

    @_fuzzSettings
    @given(inputs(_NMEA, b"$GPRMC,"), st.integers(1, 64))
    def test_neverRaises(self, data: bytes, pieceSize: int) -> None:
        """
        Random, mutated and split input gives fixes and counters, and the
        counted sentences add up.
        """
        parser = NmeaParser(clock=lambda: 1.6e9, includeInvalid=True)
        for start in range(0, len(data), pieceSize):
            parser.feed(data[start : start + pieceSize])
        parser.end()
        counters = parser.counters
        self.assertEqual(
            counters.sentences,
            counters.badChecksum
            + counters.malformed
            - counters.overlongLines
            + counters.proprietary
            + counters.unsupported
            + counters.used,
        )
