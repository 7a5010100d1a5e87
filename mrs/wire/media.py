"""
Media frames: one access unit, JPEG image or audio packet with its header.
"""

from __future__ import annotations

from dataclasses import dataclass

from mrs.wire.constants import (
    CODEC_NAMES,
    FLAG_CONFIG,
    FLAG_DISCONTINUITY,
    FLAG_KEYFRAME,
    FLAG_NAMES,
    FRAME_MEDIA,
    KNOWN_FLAGS,
    MAX_UINT32,
    MAX_UINT64,
    MEDIA_FRAME_HEADER,
    MEDIA_HEADER_SIZE,
    TRACK_CODECS,
    TRACK_NAMES,
)
from mrs.wire.errors import BadMessage, OutOfRange

_pack = MEDIA_FRAME_HEADER.pack
_FLAG_NAMES = sorted(FLAG_NAMES.items())


@dataclass(frozen=True, slots=True, repr=False)
class MediaFrame:
    """
    One media frame.

    Constructing a frame checks every header field, so an instance always
    encodes to a frame the protocol allows.  The codec data is not checked.

    @ivar track: L{TRACK_VIDEO}, L{TRACK_AUDIO} or L{TRACK_TALK}.
    @ivar codec: a codec number from L{CODEC_NAMES} that is legal on the track.
    @ivar flags: a combination of L{FLAG_KEYFRAME}, L{FLAG_CONFIG} and
        L{FLAG_DISCONTINUITY}.
    @ivar source: 0 on frames from a device; on frames from the server, the
        number of the device they belong to; on talk frames from a monitor,
        the number of the target device.  0 to 2**32 - 1.
    @ivar timestamp: the device's presentation time in microseconds,
        0 to 2**64 - 1, passed through unchanged.
    @ivar data: the codec data.
    """

    track: int
    codec: int
    flags: int
    source: int
    timestamp: int
    data: bytes

    def __post_init__(self) -> None:
        # One combined test keeps the per-frame cost low; the detailed
        # checks run only to name the offending field.
        codecs = TRACK_CODECS.get(self.track)
        if (
            codecs is None
            or type(self.track) is not int
            or type(self.codec) is not int
            or self.codec not in codecs
            or type(self.flags) is not int
            or self.flags & ~KNOWN_FLAGS
            or self.flags < 0
            or type(self.source) is not int
            or not 0 <= self.source <= MAX_UINT32
            or type(self.timestamp) is not int
            or not 0 <= self.timestamp <= MAX_UINT64
            or not isinstance(self.data, bytes)
        ):
            _raiseInvalidField(self)

    @property
    def keyframe(self) -> bool:
        """
        Whether the frame can be decoded without earlier frames.
        """
        return bool(self.flags & FLAG_KEYFRAME)

    @property
    def config(self) -> bool:
        """
        Whether the frame carries codec configuration, such as OpusHead.
        """
        return bool(self.flags & FLAG_CONFIG)

    @property
    def discontinuity(self) -> bool:
        """
        Whether timestamps jump between the previous frame and this one.
        """
        return bool(self.flags & FLAG_DISCONTINUITY)

    @property
    def trackName(self) -> str:
        """
        The track's name as control messages spell it, such as C{"video"}.
        """
        return TRACK_NAMES[self.track]

    @property
    def codecName(self) -> str:
        """
        The codec's name as control messages spell it, such as C{"h264"}.
        """
        return CODEC_NAMES[self.codec]

    def encode(self) -> bytes:
        """
        Return the whole frame: frame header, media header and data.
        """
        data = self.data
        return _pack(
            FRAME_MEDIA, 0, 0, MEDIA_HEADER_SIZE + len(data),
            self.track, self.codec, self.flags, 0, self.source, self.timestamp,
        ) + data

    def withSource(self, source: int) -> MediaFrame:
        """
        Return a copy of this frame with another source number.
        """
        return MediaFrame(self.track, self.codec, self.flags, source, self.timestamp, self.data)

    def withFlags(self, flags: int) -> MediaFrame:
        """
        Return a copy of this frame with other flags, for example with
        L{FLAG_DISCONTINUITY} added after a device reconnects.
        """
        return MediaFrame(self.track, self.codec, flags, self.source, self.timestamp, self.data)

    def __repr__(self) -> str:
        # The data can be megabytes, so only its length is shown.
        flagNames = [name for bit, name in _FLAG_NAMES if self.flags & bit]
        return (
            f"MediaFrame(track={TRACK_NAMES.get(self.track, self.track)}, "
            f"codec={CODEC_NAMES.get(self.codec, self.codec)}, "
            f"flags={'|'.join(flagNames) or 0}, source={self.source}, "
            f"timestamp={self.timestamp}, data=<{len(self.data)} bytes>)"
        )


def _raiseInvalidField(frame: MediaFrame) -> None:
    """
    Raise L{BadMessage} or L{OutOfRange} naming the first invalid field
    of C{frame}.
    """
    for name in ("track", "codec", "flags", "source", "timestamp"):
        value = getattr(frame, name)
        if type(value) is not int:
            raise BadMessage("media", name, "an integer", value)
    if frame.track not in TRACK_CODECS:
        raise OutOfRange("media", "track", frame.track,
                         "use 1 (video), 2 (audio) or 3 (talk)")
    codecs = TRACK_CODECS[frame.track]
    if frame.codec not in codecs:
        legal = ", ".join(f"{n} ({CODEC_NAMES[n]})" for n in sorted(codecs))
        raise OutOfRange("media", "codec", frame.codec,
                         f"use one of {legal} on the {TRACK_NAMES[frame.track]} track")
    if frame.flags < 0 or frame.flags & ~KNOWN_FLAGS:
        raise OutOfRange("media", "flags", frame.flags,
                         "use a combination of 1 (keyframe), 2 (config) and "
                         "4 (discontinuity)")
    if not 0 <= frame.source <= MAX_UINT32:
        raise OutOfRange("media", "source", frame.source, "use 0 to 4294967295")
    if not 0 <= frame.timestamp <= MAX_UINT64:
        raise OutOfRange("media", "timestamp", frame.timestamp,
                         "use 0 to 18446744073709551615 microseconds")
    raise BadMessage("media", "data", "bytes", type(frame.data).__name__)
