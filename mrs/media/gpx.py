"""
GPX 1.0 and 1.1 reader, and GPX and NDJSON writers for locations.

The reader streams with expat and rejects any DTD entity declaration and
external entity reference before expansion.  These are the guards that
defusedxml installs, so a hostile file cannot expand entities (billion
laughs) or make the parser read local files or URLs.  It is not a
validating parser: unknown elements are ignored.
"""

from __future__ import annotations

import io
import json
import math
import xml.parsers.expat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO
from xml.sax.saxutils import quoteattr

from mrs.media.errors import FormatError
from mrs.media.isotime import formatTime, parseTime
from mrs.media.location import LocationLike
from mrs.media.nmea import Fix

XML_PARSER = "xml.parsers.expat with entity declarations and external entities rejected"
GPX_1_1_NAMESPACE = "http://www.topografix.com/GPX/1/1"
DEFAULT_CHUNK_SIZE = 64 * 1024
POINT_KINDS = ("trkpt", "rtept", "wpt")

_KIND_DESCRIPTIONS = {"trkpt": "track points", "rtept": "route points", "wpt": "waypoints"}
_TEXT_FIELDS = frozenset({"ele", "time", "sat", "hdop", "speed", "course", "name"})


@dataclass(frozen=True)
class GpxPoint:
    """
    One point of a GPX file.

    @ivar kind: C{"trkpt"}, C{"rtept"} or C{"wpt"}.
    @ivar segment: for track points, the number of the C{<trkseg>} across
        the file (0 for the first), so a caller can see gaps; else 0.
    @ivar line: the line of the point's start tag, for messages.
    @ivar speed: metres per second (GPX 1.0 C{<speed>}), or C{None}.
    @ivar course: degrees (GPX 1.0 C{<course>}), or C{None}.
    """

    kind: str
    lat: float
    lon: float
    ele: float | None = None
    time: datetime | None = None
    satellites: int | None = None
    hdop: float | None = None
    speed: float | None = None
    course: float | None = None
    name: str | None = None
    segment: int = 0
    line: int = 0

    def toFix(self) -> Fix:
        """
        Return this point as a valid L{Fix}.

        @raise FormatError: if the point has no time.
        """
        if self.time is None:
            raise FormatError(f"the {self.kind} at line {self.line} has no <time>")
        return Fix(
            time=self.time,
            lat=self.lat,
            lon=self.lon,
            alt=self.ele,
            speed=self.speed,
            heading=self.course,
            satellites=self.satellites,
            hdop=self.hdop,
        )


class _Forbidden(Exception):
    pass


class GpxReader:
    """
    Streaming reader of the points of a GPX file.

    Iterate over it to get L{GpxPoint}s of the requested kinds in file
    order.

    @ivar counts: points seen per kind, all kinds included.
    @ivar droppedValues: optional values (sat, hdop, speed, course) left
        out because they were out of range.
    """

    def __init__(
        self,
        source: BinaryIO,
        name: str = "GPX input",
        kinds: tuple[str, ...] = ("trkpt",),
        requireTime: bool = True,
        chunkSize: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        """
        @param name: the file name to use in messages.
        @param kinds: which points to yield, from L{POINT_KINDS}.
        @param requireTime: raise L{FormatError} for a yielded point without
            C{<time>}, because a replay cannot pace it.
        """
        unknown = set(kinds) - set(POINT_KINDS)
        if unknown or not kinds:
            raise ValueError(f"invalid point kinds {kinds!r}; choose from {POINT_KINDS}")
        self.source = source
        self.name = name
        self.kinds = kinds
        self.requireTime = requireTime
        self.chunkSize = chunkSize
        self.counts = dict.fromkeys(POINT_KINDS, 0)
        self.droppedValues = 0
        self._yielded = 0
        self._timed = 0
        self._segment = -1
        self._sawRoot = False
        self._point: dict[str, Any] | None = None
        self._text: list[str] | None = None
        self._ready: list[GpxPoint] = []

    def __iter__(self) -> Iterator[GpxPoint]:
        parser = xml.parsers.expat.ParserCreate(namespace_separator="}")
        parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.EntityDeclHandler = self._forbidEntity
        parser.UnparsedEntityDeclHandler = self._forbidUnparsedEntity
        parser.ExternalEntityRefHandler = self._forbidExternalEntity
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._characters
        self._parser = parser
        while True:
            data = self.source.read(self.chunkSize)
            self._parse(parser, data, final=not data)
            ready, self._ready = self._ready, []
            yield from ready
            if not data:
                break
        if self._yielded == 0:
            wanted = " or ".join(f"<{kind}>" for kind in self.kinds)
            others = [
                f"{count} <{kind}>"
                for kind, count in self.counts.items()
                if count and kind not in self.kinds
            ]
            hint = (
                f"; it has {', '.join(others)}, which the caller did not request" if others else ""
            )
            raise FormatError(f"{self.name} has no points ({wanted}){hint}")

    def _parse(self, parser: Any, data: bytes, final: bool) -> None:
        try:
            parser.Parse(data, final)
        except _Forbidden as error:
            raise FormatError(f"{self.name} is rejected: {error}")
        except xml.parsers.expat.ExpatError as error:
            raise FormatError(f"{self.name} is not well-formed XML: {error}")
        except LookupError as error:
            # expat looks up the encoding named in the XML declaration.
            raise FormatError(f"{self.name} declares an unsupported XML encoding: {error}")

    def _forbidEntity(self, name: str, *args: object) -> None:
        raise _Forbidden(f"it declares the XML entity {name!r}; GPX files need no entities")

    def _forbidUnparsedEntity(self, name: str, *args: object) -> None:
        raise _Forbidden(f"it declares the unparsed XML entity {name!r}")

    def _forbidExternalEntity(
        self, context: str, base: str | None, systemId: str | None, publicId: str | None
    ) -> int:
        raise _Forbidden(f"it references the external entity {systemId!r}")

    def _start(self, tag: str, attributes: dict[str, str]) -> None:
        local = tag.rpartition("}")[2]
        if not self._sawRoot:
            self._sawRoot = True
            if local != "gpx":
                raise FormatError(f"{self.name} is not a GPX file: its root element is <{local}>")
            return
        if local == "trkseg":
            self._segment += 1
        elif local in POINT_KINDS:
            line = self._parser.CurrentLineNumber
            self._point = {
                "kind": local,
                "lat": self._coordinate(attributes.get("lat"), "lat", 90.0, line),
                "lon": self._coordinate(attributes.get("lon"), "lon", 180.0, line),
                "line": line,
                "segment": max(self._segment, 0) if local == "trkpt" else 0,
            }
        elif self._point is not None and local in _TEXT_FIELDS:
            self._text = []

    def _characters(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def _end(self, tag: str) -> None:
        local = tag.rpartition("}")[2]
        point = self._point
        if point is None:
            return
        if self._text is not None and local in _TEXT_FIELDS:
            text = "".join(self._text).strip()
            self._text = None
            point[local] = text
            return
        if local == point["kind"]:
            self._point = None
            self._finishPoint(point)

    def _finishPoint(self, raw: dict[str, Any]) -> None:
        kind = raw["kind"]
        line = raw["line"]
        self.counts[kind] += 1
        if kind not in self.kinds:
            return
        timeText = raw.get("time")
        pointTime = None
        if timeText:
            try:
                pointTime = parseTime(timeText)
            except ValueError as error:
                raise FormatError(f"{self.name}: the {kind} at line {line} has an {error}")

        if pointTime is None and self.requireTime:
            if self._timed == 0:
                raise FormatError(
                    f"{self.name} has no <time> in its {_KIND_DESCRIPTIONS[kind]}; cannot pace it"
                )
            raise FormatError(
                f"{self.name}: the {kind} at line {line} has no <time>; cannot pace it"
            )
        if pointTime is not None:
            self._timed += 1

        satellites = self._optional(raw.get("sat"), "sat", line, 0.0, 255.0)
        if satellites is not None and not satellites.is_integer():
            satellites = None
            self.droppedValues += 1
        self._yielded += 1
        self._ready.append(
            GpxPoint(
                kind=kind,
                lat=raw["lat"],
                lon=raw["lon"],
                ele=self._number(raw.get("ele"), "ele", line),
                time=pointTime,
                satellites=None if satellites is None else int(satellites),
                hdop=self._optional(raw.get("hdop"), "hdop", line, 0.0, None),
                speed=self._optional(raw.get("speed"), "speed", line, 0.0, None),
                course=self._optional(raw.get("course"), "course", line, 0.0, 360.0),
                name=raw.get("name") or None,
                segment=raw["segment"],
                line=line,
            )
        )

    def _coordinate(self, text: str | None, name: str, limit: float, line: int) -> float:
        value = self._number(text, name, line)
        if value is None:
            raise FormatError(f"{self.name}: the point at line {line} has no {name} attribute")
        if not -limit <= value <= limit:
            raise FormatError(
                f"{self.name}: the point at line {line} has {name}={text!r}, outside "
                f"-{limit:g}..{limit:g}"
            )
        return value

    def _optional(
        self, text: str | None, name: str, line: int, low: float, high: float | None
    ) -> float | None:
        """
        Parse an optional value.  One out of range (apps write a speed of
        -1 for "unknown") is dropped and counted rather than rejecting the
        file.
        """
        value = self._number(text, name, line)
        if value is not None and (value < low or (high is not None and value > high)):
            self.droppedValues += 1
            return None
        return value

    def _number(self, text: str | None, name: str, line: int) -> float | None:
        if text is None or text == "":
            return None
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise FormatError(
                f"{self.name}: the point at line {line} has an invalid {name} {text!r}"
            )
        return value


def readGpx(
    data: bytes,
    name: str = "GPX input",
    kinds: tuple[str, ...] = ("trkpt",),
    requireTime: bool = True,
) -> list[GpxPoint]:
    """
    Read all points of the given kinds from a GPX document held in memory.

    @raise FormatError: see L{GpxReader}.
    """
    return list(GpxReader(io.BytesIO(data), name=name, kinds=kinds, requireTime=requireTime))


def _formatNumber(value: float) -> str:
    # repr gives the shortest text that reads back as the same float.
    return repr(float(value))


class GpxWriter:
    """
    Writer of a GPX 1.1 track from locations, one track segment.
    Sans-IO: each call returns the bytes to write; the first call includes
    the document header.

    Latitude, longitude, elevation and time read back to the same values
    (floats with C{repr}, times to the microsecond).  Speed and heading
    have no element in GPX 1.1 and are not written.
    """

    def __init__(self, creator: str = "mrs", trackName: str | None = None) -> None:
        self.creator = creator
        self.trackName = trackName
        self._started = False
        self._finished = False

    def header(self) -> bytes:
        """
        Return the document header, once; later calls return nothing.
        """
        if self._started:
            return b""
        self._started = True
        name = ""
        if self.trackName is not None:
            name = f"<name>{_escapeText(self.trackName)}</name>"
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<gpx version="1.1" creator={quoteattr(self.creator)} '
            f'xmlns="{GPX_1_1_NAMESPACE}">\n'
            f"<trk>{name}<trkseg>\n"
        ).encode()

    def write(self, fix: LocationLike) -> bytes:
        """
        Return one C{<trkpt>} (after the header on the first call).
        """
        parts = [
            f'<trkpt lat="{_formatNumber(fix.lat)}" lon="{_formatNumber(fix.lon)}">',
        ]
        if fix.alt is not None:
            parts.append(f"<ele>{_formatNumber(fix.alt)}</ele>")
        parts.append(f"<time>{formatTime(fix.time)}</time>")
        if fix.satellites is not None:
            parts.append(f"<sat>{int(fix.satellites)}</sat>")
        hdop = getattr(fix, "hdop", None)
        if hdop is not None:
            parts.append(f"<hdop>{_formatNumber(hdop)}</hdop>")
        parts.append("</trkpt>\n")
        return self.header() + "".join(parts).encode("utf-8")

    def finish(self) -> bytes:
        """
        Return the end of the document (with the header if nothing was
        written).
        """
        if self._finished:
            return b""
        self._finished = True
        return self.header() + b"</trkseg></trk>\n</gpx>\n"


def _escapeText(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class NdjsonWriter:
    """
    Writer of locations as newline-delimited JSON, one object per line,
    with the field names of the wire protocol's location message (C{lat},
    C{lon}, C{alt}, C{speed}, C{heading}, C{accuracy}, C{time},
    C{satellites}, C{fix_quality}, C{valid}) and C{device} when given.
    Absent values are left out.  Sans-IO: each call returns the bytes.
    """

    def write(self, fix: LocationLike, device: str | None = None) -> bytes:
        """
        Return one JSON line for C{fix}.
        """
        record: dict[str, Any] = {}
        if device is not None:
            record["device"] = device
        record["time"] = formatTime(fix.time)
        for name, key in (
            ("lat", "lat"),
            ("lon", "lon"),
            ("alt", "alt"),
            ("speed", "speed"),
            ("heading", "heading"),
            ("accuracy", "accuracy"),
            ("satellites", "satellites"),
            ("fixQuality", "fix_quality"),
            ("valid", "valid"),
        ):
            value = getattr(fix, name, None)
            if value is not None:
                record[key] = value
        return (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")

    def finish(self) -> bytes:
        """
        Return the end of the output (nothing for NDJSON).
        """
        return b""


def parseNdjsonLine(line: bytes | str) -> tuple[str | None, Fix]:
    """
    Parse one line written by L{NdjsonWriter}.

    @return: the device name (or C{None}) and the fix.
    @raise FormatError: if the line is not such a JSON object.
    """
    try:
        record = json.loads(line)
        fix = Fix(
            time=parseTime(record["time"]),
            lat=float(record["lat"]),
            lon=float(record["lon"]),
            alt=record.get("alt"),
            speed=record.get("speed"),
            heading=record.get("heading"),
            accuracy=record.get("accuracy"),
            satellites=record.get("satellites"),
            fixQuality=record.get("fix_quality"),
            valid=record.get("valid", True),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise FormatError(f"invalid NDJSON location line: {error}")
    return record.get("device"), fix
