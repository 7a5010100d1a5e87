"""
Exceptions raised by the media readers and writers.

Every reader in L{mrs.media} raises only L{MediaError} subclasses for bad
input, so a caller can catch L{MediaError} around a whole file.
"""

from __future__ import annotations


class MediaError(ValueError):
    """
    Base class of every error about the content of a media or GPS input.
    """


class FormatError(MediaError):
    """
    The input is not in the expected format, or breaks its rules.
    """


class TruncatedStream(MediaError):
    """
    The input ends in the middle of a frame, packet or access unit.

    @ivar offset: the byte offset at which the incomplete unit starts.
    @ivar partial: the bytes of the incomplete unit, so that a caller who
        wants every byte (for example to copy a file exactly) still gets them.
    """

    def __init__(self, message: str, offset: int, partial: bytes) -> None:
        super().__init__(message)
        self.offset = offset
        self.partial = partial


class SizeLimitExceeded(FormatError):
    """
    One unit of the input (a frame, a packet, a line) is larger than the
    reader's limit; the reader stops rather than buffer without bound.
    """


class UnknownFormat(MediaError):
    """
    L{mrs.media.detect.detectFormat} could not recognise the input.
    """
