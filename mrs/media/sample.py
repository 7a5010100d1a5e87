"""
The unit that every media reader yields and every media writer accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

# The media frame flag bits of the MRS wire protocol, repeated here so that
# this package does not depend on mrs.wire.
FLAG_KEYFRAME = 1
FLAG_CONFIG = 2

MICROSECONDS = 1_000_000


@dataclass(frozen=True)
class Sample:
    """
    One access unit, JPEG image, ADTS frame or Opus packet, with its timing.

    @ivar data: the bytes exactly as they appear in the input.  For Annex-B
        and ADTS they include start codes and headers.  For Ogg they are the
        packet without page framing.
    @ivar timestamp: microseconds from the start of the stream.
    @ivar keyframe: a decoder can start at this sample (IDR or IRAP access
        unit, every JPEG, every audio frame).
    @ivar config: the sample is codec configuration and carries no media
        (OpusHead, OpusTags).  H.264/H.265 parameter sets ride inside the
        keyframe access unit instead, see C{parameterSets}.
    @ivar duration: microseconds, when the format states it.
    @ivar parameterSets: a video access unit that contains its sequence and
        picture parameter sets (and, for H.265, the video parameter set).
    """

    data: bytes
    timestamp: int
    keyframe: bool = False
    config: bool = False
    duration: int | None = None
    parameterSets: bool = False

    @property
    def flags(self) -> int:
        """
        The media frame flag bits (keyframe 1, config 2) for this sample.
        """
        flags = 0
        if self.keyframe:
            flags |= FLAG_KEYFRAME
        if self.config:
            flags |= FLAG_CONFIG
        return flags


def frameTimestamp(index: int, frameRate: Fraction) -> int:
    """
    Return the timestamp in microseconds of frame C{index} at C{frameRate}
    frames per second, rounded to the nearest microsecond.
    """
    return round(index * MICROSECONDS / frameRate)


def toFrameRate(frameRate: float | int | str | Fraction) -> Fraction:
    """
    Convert a frame rate such as C{25}, C{"30000/1001"} or C{29.97} to an
    exact fraction.

    @raise ValueError: if the rate is not a positive number.
    """
    try:
        rate = Fraction(str(frameRate)) if isinstance(frameRate, float) else Fraction(frameRate)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"invalid frame rate {frameRate!r}; use a positive number such as 25")
    if rate <= 0:
        raise ValueError(f"invalid frame rate {frameRate!r}; use a positive number such as 25")
    return rate
