"""
AAC ADTS stream reader and writer.

An ADTS stream is a sequence of frames, each with a 7-byte header (9 bytes
with a CRC) that contains the sync word 0xFFF, the sample rate, the channel
configuration and the frame length in bytes.  Each frame contains one to four
raw data blocks of 1024 samples.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO, NoReturn

from mrs.media._buffer import ReadBuffer
from mrs.media.errors import FormatError, TruncatedStream
from mrs.media.sample import MICROSECONDS, Sample

SAMPLE_RATES = (
    96000,
    88200,
    64000,
    48000,
    44100,
    32000,
    24000,
    22050,
    16000,
    12000,
    11025,
    8000,
    7350,
)
SAMPLES_PER_BLOCK = 1024
DEFAULT_CHUNK_SIZE = 64 * 1024


class ADTSReader:
    """
    Streaming reader of ADTS frames.

    Iterate over it to get one keyframe L{Sample} per frame, with the
    header included, so the samples concatenate to the input byte for byte.
    Timestamps count the samples of the frames before (1024 per raw data
    block) at the sample rate of the header.  The reader does not resync:
    bytes that are not a frame header where one is due stop it with
    L{FormatError}.

    @ivar frames: frames yielded so far.
    @ivar sampleRate: the sample rate of the last frame, in Hz, or C{None}
        before the first frame.
    @ivar channels: the channel configuration of the last frame (0 means
        it is given in the bitstream), or C{None}.
    @ivar profile: the MPEG-4 audio object type of the last frame (2 is
        AAC-LC), or C{None}.
    """

    def __init__(self, source: BinaryIO, chunkSize: int = DEFAULT_CHUNK_SIZE) -> None:
        self.frames = 0
        self.sampleRate: int | None = None
        self.channels: int | None = None
        self.profile: int | None = None
        self._buffer = ReadBuffer(source, chunkSize)
        # Timing survives a sample rate change: time of the last rate
        # change plus samples since then.
        self._baseTime = 0
        self._samplesSinceBase = 0

    def __iter__(self) -> Iterator[Sample]:
        buffer = self._buffer
        while True:
            complete = buffer.fill(7)
            if not buffer.data:
                return
            header = buffer.data
            if len(header) >= 2 and (header[0] != 0xFF or (header[1] & 0xF6) != 0xF0):
                raise FormatError(
                    f"not an ADTS stream, or lost sync: expected an ADTS header (fff sync word, "
                    f"layer 0) at offset {buffer.offset}, found {bytes(header[:2]).hex(' ')}"
                )
            if not complete:
                self._truncated()
            headerSize = 7 if header[1] & 0x01 else 9
            rateIndex = (header[2] >> 2) & 0x0F
            if rateIndex >= len(SAMPLE_RATES):
                raise FormatError(
                    f"invalid ADTS header at offset {buffer.offset}: sampling frequency index "
                    f"{rateIndex} is reserved"
                )
            frameLength = ((header[3] & 0x03) << 11) | (header[4] << 3) | (header[5] >> 5)
            if frameLength < headerSize:
                raise FormatError(
                    f"invalid ADTS header at offset {buffer.offset}: frame length {frameLength} "
                    f"is shorter than the {headerSize}-byte header"
                )
            if not buffer.fill(frameLength):
                self._truncated()
            sampleRate = SAMPLE_RATES[rateIndex]
            if sampleRate != self.sampleRate:
                if self.sampleRate is not None:
                    self._baseTime = self._time(self._samplesSinceBase)
                    self._samplesSinceBase = 0
                self.sampleRate = sampleRate
            self.profile = (header[2] >> 6) + 1
            self.channels = ((header[2] & 0x01) << 2) | (header[3] >> 6)
            samples = SAMPLES_PER_BLOCK * ((header[6] & 0x03) + 1)
            start = self._time(self._samplesSinceBase)
            self._samplesSinceBase += samples
            self.frames += 1
            yield Sample(
                data=buffer.take(frameLength),
                timestamp=start,
                keyframe=True,
                duration=self._time(self._samplesSinceBase) - start,
            )

    def _time(self, samples: int) -> int:
        assert self.sampleRate is not None
        return self._baseTime + (samples * MICROSECONDS + self.sampleRate // 2) // self.sampleRate

    def _truncated(self) -> NoReturn:
        raise TruncatedStream(
            f"ADTS stream is truncated: the frame at offset {self._buffer.offset} is incomplete "
            f"({len(self._buffer.data)} bytes left)",
            self._buffer.offset,
            bytes(self._buffer.data),
        )


def splitFrames(data: bytes) -> list[Sample]:
    """
    Split a whole ADTS stream held in memory into frames.

    @raise FormatError: if C{data} is not an ADTS stream.
    @raise TruncatedStream: if the last frame is incomplete.
    """
    return list(ADTSReader(io.BytesIO(data)))


class ADTSWriter:
    """
    Writer of an ADTS stream: the frames, headers included, concatenated.
    Sans-IO: each call returns the bytes to write.
    """

    def write(self, sample: Sample) -> bytes:
        """
        Return the bytes of one ADTS frame.
        """
        return sample.data

    def finish(self) -> bytes:
        """
        Return the bytes that end the stream (none for ADTS).
        """
        return b""
