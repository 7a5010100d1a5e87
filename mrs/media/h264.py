"""
H.264 (AVC) Annex-B elementary stream reader.

Access unit boundaries follow ITU-T H.264 section 7.4.1.2.3: after a coded
slice, an access unit delimiter, SEI, SPS, PPS or NAL unit type 14-18
starts a new access unit, and so does a slice with first_mb_in_slice == 0.
Streams that use arbitrary slice order (first slice not at macroblock 0)
are split wrongly; no common encoder produces them.
"""

from __future__ import annotations

import io
from fractions import Fraction

from mrs.media.annexb import AccessUnitReader, AnnexBWriter, NalChunk, NalInfo
from mrs.media.errors import FormatError
from mrs.media.sample import Sample

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9

_VCL_TYPES = frozenset(range(1, 6))
_STARTS_ACCESS_UNIT = frozenset({NAL_SEI, NAL_SPS, NAL_PPS, NAL_AUD, 14, 15, 16, 17, 18})
_PARAMETER_SETS = {NAL_SPS: "sps", NAL_PPS: "pps"}

__all__ = ["H264Reader", "AnnexBWriter", "splitAccessUnits", "nalType"]


def nalType(headerByte: int) -> int:
    """
    Return the nal_unit_type from the first byte of an H.264 NAL unit.
    """
    return headerByte & 0x1F


class H264Reader(AccessUnitReader):
    """
    Streaming H.264 access unit reader.  See L{AccessUnitReader}.

    A sample is a keyframe when it contains an IDR slice (NAL type 5), and has
    C{parameterSets} set when it contains both an SPS and a PPS.
    """

    codecName = "H.264"
    requiredParameterSets = frozenset({"sps", "pps"})
    minimumSliceSize = 2

    def classify(self, chunk: NalChunk) -> NalInfo:
        header = chunk.data[chunk.headerIndex]
        if header & 0x80:
            raise FormatError(
                f"not an H.264 stream, or a corrupt one: forbidden_zero_bit is set in the "
                f"NAL unit at offset {chunk.offset}"
            )
        kind = nalType(header)
        if kind in _VCL_TYPES:
            # first_mb_in_slice is ue(v) and comes first in the slice header;
            # its value is 0 exactly when the first bit is 1.  Emulation
            # prevention bytes cannot occur this early.
            # A slice too short to tell is rejected by the caller.
            firstByte = chunk.data[chunk.headerIndex + 1] if chunk.payloadSize > 1 else 0
            return NalInfo(
                vcl=True, firstInPicture=bool(firstByte & 0x80), keyframe=kind == NAL_IDR
            )
        return NalInfo(
            startsAccessUnit=kind in _STARTS_ACCESS_UNIT,
            parameterSet=_PARAMETER_SETS.get(kind),
        )


def splitAccessUnits(data: bytes, frameRate: float | int | str | Fraction = 25) -> list[Sample]:
    """
    Split a whole H.264 Annex-B stream held in memory into access units.

    @raise FormatError: if C{data} is not an Annex-B H.264 stream.
    @raise TruncatedStream: if the last access unit is incomplete; the
        complete ones are lost, so use L{H264Reader} to keep them.
    """
    return list(H264Reader(io.BytesIO(data), frameRate=frameRate, maxAccessUnitSize=len(data) + 1))
