"""
Recognise the format of a media or GPS file from its first bytes.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import NoReturn

from mrs.media.errors import UnknownFormat

FORMATS = ("h264", "h265", "mjpeg", "aac", "opus", "nmea", "gpx")

# Only used when the first NAL unit header is valid in both H.264 and H.265.
_VIDEO_EXTENSIONS = {
    ".h264": "h264",
    ".264": "h264",
    ".avc": "h264",
    ".h265": "h265",
    ".265": "h265",
    ".hevc": "h265",
}
_NMEA_SENTENCE = re.compile(rb"[$!][A-Z0-9]{3,}[,*]")
_H264_FIRST_TYPES = frozenset({1, 5, 6, 7, 8, 9})
_H265_FIRST_TYPES = frozenset({*range(0, 10), *range(16, 22), 32, 33, 34, 35, 39})


def detectFormat(path: str | PurePath, firstBytes: bytes) -> str:
    """
    Return the format of a file, one of L{FORMATS}, from its content.

    @param path: the file name; its extension only decides between H.264
        and H.265 when the first NAL unit header fits both.
    @param firstBytes: the start of the file; 4 KiB is plenty.
    @raise UnknownFormat: if the content matches no supported format.  The
        message lists the supported ones.
    """
    extensionGuess = _VIDEO_EXTENSIONS.get(PurePath(path).suffix.lower())
    data = firstBytes

    if data.startswith(b"OggS"):
        if b"OpusHead" in data[:512]:
            return "opus"
        _unknown(
            path, "it is an Ogg file without an OpusHead header; only Opus in Ogg is supported"
        )
    if data.startswith(b"\xff\xd8\xff"):
        return "mjpeg"
    if len(data) >= 2 and data[0] == 0xFF and (data[1] & 0xF6) == 0xF0:
        return "aac"

    annexB = _annexBGuess(data, extensionGuess)
    if annexB is not None:
        return annexB

    text = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        if b"<gpx" in text[:4096]:
            return "gpx"
        _unknown(path, "it is XML but has no <gpx> element")
    if _NMEA_SENTENCE.search(data[:4096]) is not None:
        return "nmea"
    _unknown(path, f"its first bytes are {data[:8].hex(' ') or 'empty'}")


def _annexBGuess(data: bytes, extensionGuess: str | None) -> str | None:
    """
    Return C{"h264"} or C{"h265"} if C{data} starts, after optional zero
    bytes, with an Annex-B start code and a plausible first NAL header.
    """
    stripped = data.lstrip(b"\x00")
    zeros = len(data) - len(stripped)
    if zeros < 2 or not stripped.startswith(b"\x01") or len(stripped) < 3:
        return None
    first, second = stripped[1], stripped[2]
    if first & 0x80:
        return None
    h264Type = first & 0x1F
    h264 = h264Type in _H264_FIRST_TYPES and not (h264Type in (6, 9) and first & 0x60)
    h265 = ((first >> 1) & 0x3F) in _H265_FIRST_TYPES and (second & 0x07) != 0 and first & 0x01 == 0
    if h264 and h265:
        return extensionGuess if extensionGuess in ("h264", "h265") else "h264"
    if h264:
        return "h264"
    if h265:
        return "h265"
    return None


def _unknown(path: str | PurePath, detail: str) -> NoReturn:
    raise UnknownFormat(
        f"unknown format of {str(path)!r}: {detail}; supported formats are "
        f"{', '.join(FORMATS)} (H.264/H.265 Annex-B, MJPEG, AAC in ADTS, Opus in Ogg, NMEA 0183, "
        f"GPX)"
    )
