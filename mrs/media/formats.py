"""
One place that maps a format name from L{mrs.media.detect.detectFormat} to
its track kind, reader and writer, so that device and monitor clients can
handle every format the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import BinaryIO, Protocol

from mrs.media.adts import ADTSReader, ADTSWriter
from mrs.media.annexb import AnnexBWriter
from mrs.media.h264 import H264Reader
from mrs.media.h265 import H265Reader
from mrs.media.mjpeg import MJPEGReader, MJPEGWriter
from mrs.media.ogg import OggOpusReader, OggOpusWriter
from mrs.media.sample import Sample

# Format name -> track kind of the wire protocol's announce message.
TRACKS = {
    "h264": "video",
    "h265": "video",
    "mjpeg": "video",
    "aac": "audio",
    "opus": "audio",
    "nmea": "location",
    "gpx": "location",
}

# The media formats' names are also the wire protocol's codec names.
MEDIA_FORMATS = ("h264", "h265", "mjpeg", "aac", "opus")


class SampleWriter(Protocol):
    """
    A sans-IO media writer: each call returns the bytes to output.
    """

    def write(self, sample: Sample) -> bytes: ...

    def finish(self) -> bytes: ...


def openSampleReader(
    format: str,
    source: BinaryIO,
    frameRate: float | int | str | Fraction = 25,
) -> Iterable[Sample]:
    """
    Return a streaming reader of the samples of a media file.

    @param format: one of L{MEDIA_FORMATS}.
    @param frameRate: frames per second, for the video formats, which
        carry no timestamps.
    @raise ValueError: if C{format} is not a media format.
    """
    if format == "h264":
        return H264Reader(source, frameRate=frameRate)
    if format == "h265":
        return H265Reader(source, frameRate=frameRate)
    if format == "mjpeg":
        return MJPEGReader(source, frameRate=frameRate)
    if format == "aac":
        return ADTSReader(source)
    if format == "opus":
        return OggOpusReader(source)
    raise ValueError(f"invalid media format {format!r}; choose from {', '.join(MEDIA_FORMATS)}")


_WRITERS: dict[str, Callable[[], SampleWriter]] = {
    "h264": AnnexBWriter,
    "h265": AnnexBWriter,
    "mjpeg": MJPEGWriter,
    "aac": ADTSWriter,
    "opus": OggOpusWriter,
}


def makeSampleWriter(format: str) -> SampleWriter:
    """
    Return a new writer for a media format (a codec name).

    @raise ValueError: if C{format} is not a media format.
    """
    try:
        factory = _WRITERS[format]
    except KeyError:
        raise ValueError(f"invalid media format {format!r}; choose from {', '.join(MEDIA_FORMATS)}")
    return factory()
