"""
H.265 (HEVC) Annex-B elementary stream reader.

Access unit boundaries follow ITU-T H.265 section 7.4.2.4.4.  After a coded
slice segment, an access unit delimiter, VPS, SPS, PPS, prefix SEI or NAL
unit type 41-44 or 48-55 starts a new access unit.  So does a slice segment
with first_slice_segment_in_pic_flag set.  Only the base layer
(nuh_layer_id 0) decides boundaries.
"""

from __future__ import annotations

import io
from fractions import Fraction

from mrs.media.annexb import AccessUnitReader, AnnexBWriter, NalChunk, NalInfo
from mrs.media.errors import FormatError
from mrs.media.sample import Sample

NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
NAL_AUD = 35
NAL_PREFIX_SEI = 39

_IRAP_TYPES = frozenset(range(16, 24))
_STARTS_ACCESS_UNIT = frozenset(
    {NAL_VPS, NAL_SPS, NAL_PPS, NAL_AUD, NAL_PREFIX_SEI, 41, 42, 43, 44, *range(48, 56)}
)
_PARAMETER_SETS = {NAL_VPS: "vps", NAL_SPS: "sps", NAL_PPS: "pps"}

__all__ = ["H265Reader", "AnnexBWriter", "splitAccessUnits", "nalType"]


def nalType(headerByte: int) -> int:
    """
    Return the nal_unit_type from the first byte of an H.265 NAL unit.
    """
    return (headerByte >> 1) & 0x3F


class H265Reader(AccessUnitReader):
    """
    Streaming H.265 access unit reader.  See L{AccessUnitReader}.

    A sample is a keyframe when it contains an IRAP slice (NAL types 16-23:
    BLA, IDR, CRA), and has C{parameterSets} set when it contains a VPS, an
    SPS and a PPS.
    """

    codecName = "H.265"
    requiredParameterSets = frozenset({"vps", "sps", "pps"})
    minimumSliceSize = 3

    def classify(self, chunk: NalChunk) -> NalInfo:
        data = chunk.data
        header = data[chunk.headerIndex]
        if header & 0x80:
            raise FormatError(
                f"not an H.265 stream, or a corrupt one: forbidden_zero_bit is set in the "
                f"NAL unit at offset {chunk.offset}"
            )
        if chunk.payloadSize < 2:
            raise FormatError(
                f"not an H.265 stream, or a corrupt one: the NAL unit at offset "
                f"{chunk.offset} is shorter than its 2-byte header"
            )
        second = data[chunk.headerIndex + 1]
        if second & 0x07 == 0:
            raise FormatError(
                f"not an H.265 stream, or a corrupt one: nuh_temporal_id_plus1 is 0 in the "
                f"NAL unit at offset {chunk.offset}"
            )
        kind = nalType(header)
        baseLayer = (header & 0x01) == 0 and (second >> 3) == 0
        if kind < 32:
            firstInPicture = (
                bool(data[chunk.headerIndex + 2] & 0x80) if chunk.payloadSize > 2 else False
            )
            return NalInfo(
                vcl=True,
                firstInPicture=baseLayer and firstInPicture,
                keyframe=kind in _IRAP_TYPES,
            )
        return NalInfo(
            startsAccessUnit=baseLayer and kind in _STARTS_ACCESS_UNIT,
            parameterSet=_PARAMETER_SETS.get(kind),
        )


def splitAccessUnits(data: bytes, frameRate: float | int | str | Fraction = 25) -> list[Sample]:
    """
    Split a whole H.265 Annex-B stream held in memory into access units.

    @raise FormatError: if C{data} is not an Annex-B H.265 stream.
    @raise TruncatedStream: if the last access unit is incomplete.
    """
    return list(H265Reader(io.BytesIO(data), frameRate=frameRate, maxAccessUnitSize=len(data) + 1))
