"""
NMEA 0183 reader that turns a receiver's sentences into position fixes.

The parser is sans-IO (L{NmeaParser.feed} takes bytes, returns fixes) and
tolerant of the damage that real receivers and serial links produce: NUL
bytes, sentences cut off or joined without a line end, CR/LF or LF line
ends, and proprietary sentences.  Every sentence is checked before use:

  - the checksum must be present and correct;
  - the fields it uses must have the right syntax and range (latitude
    0-90 degrees with N or S, longitude 0-180 with E or W, a real time of
    day and date), even when the checksum is right.

A rejected sentence is counted in L{NmeaCounters}; the parser raises no
exception for any input (a property test feeds it random bytes).

Sentences with the same time of day form one epoch, and each epoch with a
position gives one L{Fix}: RMC, GGA and GLL give the position, GGA the
altitude, satellites and fix quality, RMC and VTG the speed and course, GSA
the HDOP, RMC and ZDA the date.  A sentence without a time (VTG, GSA)
belongs to the epoch before it.

Dates: NMEA puts a date only in RMC and ZDA.  An epoch with its own date
uses it.  Otherwise the date is chosen so that the fix lies within 12 hours
of a reference time: the device time of the epoch that follows when it has
a date (a receiver may send ZDA after GGA), else the last fix's time, else
the injectable reference clock.  Chaining from the last fix makes the time
roll over midnight without a date.

Fixes that are not valid (RMC or GLL status V, RMC mode N, GGA quality 0,
GSA fix type 1, a position of exactly 0,0, or no time) are counted in
C{noFix} and skipped by default; with C{includeInvalid=True} they are
yielded with C{valid=False} when they have a time and a position.
"""

from __future__ import annotations

import re
import time as timeModule
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, BinaryIO

KNOTS_TO_METRES_PER_SECOND = 1852 / 3600
DEFAULT_MAX_LINE_LENGTH = 4096
DEFAULT_CHUNK_SIZE = 64 * 1024

_TIME = re.compile(r"(\d{2})(\d{2})(\d{2})(?:\.(\d{1,9}))?")
_LATITUDE = re.compile(r"(\d{2})(\d{2}(?:\.\d+)?)")
_LONGITUDE = re.compile(r"(\d{3})(\d{2}(?:\.\d+)?)")
_DATE = re.compile(r"(\d{2})(\d{2})(\d{2})")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_INTEGER = re.compile(r"\d{1,4}")
_ADDRESS = re.compile(r"[A-Z0-9]{2,}")
_HEX = "0123456789ABCDEFabcdef"
_LINE_END = re.compile(rb"[\r\n]")


@dataclass(frozen=True)
class Fix:
    """
    One position fix, merged from the sentences of one epoch.

    The field names match those of the wire protocol's location message,
    see L{locationFields}.

    @ivar time: the fix time, timezone-aware UTC.
    @ivar lat: degrees, north positive.
    @ivar lon: degrees, east positive.
    @ivar alt: metres above mean sea level, or C{None}.
    @ivar speed: metres per second over ground, or C{None}.
    @ivar heading: degrees from true north, or C{None}.
    @ivar accuracy: estimated horizontal error in metres, or C{None}; NMEA
        RMC/GGA do not carry it, GPX files and phones may.
    @ivar satellites: satellites used, or C{None}.
    @ivar fixQuality: the GGA fix quality (1 GPS, 2 DGPS, 4 RTK...), or
        C{None}.
    @ivar hdop: horizontal dilution of precision, or C{None}.
    @ivar valid: the receiver reported a usable fix.
    """

    time: datetime
    lat: float
    lon: float
    alt: float | None = None
    speed: float | None = None
    heading: float | None = None
    accuracy: float | None = None
    satellites: int | None = None
    fixQuality: int | None = None
    hdop: float | None = None
    valid: bool = True

    def locationFields(self) -> dict[str, Any]:
        """
        Return the fields of the wire protocol's location message
        (lat, lon, alt, speed, heading, accuracy, time, satellites,
        fixQuality, valid) as keyword arguments.
        """
        return {
            "lat": self.lat,
            "lon": self.lon,
            "alt": self.alt,
            "speed": self.speed,
            "heading": self.heading,
            "accuracy": self.accuracy,
            "time": self.time,
            "satellites": self.satellites,
            "fixQuality": self.fixQuality,
            "valid": self.valid,
        }


@dataclass
class NmeaCounters:
    """
    Counts of the sentences and epochs an L{NmeaParser} has handled.

    @ivar sentences: pieces of input that looked like a sentence or part of
        one (blank lines and C{#} comment lines are not counted).
    @ivar badChecksum: sentences rejected for a wrong or missing checksum.
    @ivar missingChecksum: the part of C{badChecksum} with no checksum at all
        (usually cut-off sentences).
    @ivar malformed: sentences rejected for their syntax or a field out of
        range, and fragments that do not start with C{$}.
    @ivar proprietary: proprietary sentences (C{$P...}) ignored.
    @ivar unsupported: valid standard sentences of types not used (GSV,
        TXT...).
    @ivar used: sentences used (RMC, GGA, GLL, VTG, GSA, ZDA).
    @ivar noFix: epochs with a position sentence that gave no valid fix.
    @ivar fixes: fixes returned, valid or not.
    @ivar overlongLines: lines longer than the parser's limit, discarded.
    """

    sentences: int = 0
    badChecksum: int = 0
    missingChecksum: int = 0
    malformed: int = 0
    proprietary: int = 0
    unsupported: int = 0
    used: int = 0
    noFix: int = 0
    fixes: int = 0
    overlongLines: int = 0


class _Malformed(Exception):
    pass


@dataclass
class _Epoch:
    """
    The fields collected from the sentences of one time of day.
    """

    timeOfDay: time | None
    date: date | None = None
    lat: float | None = None
    lon: float | None = None
    alt: float | None = None
    speed: float | None = None
    heading: float | None = None
    satellites: int | None = None
    fixQuality: int | None = None
    hdop: float | None = None
    hasPosition: bool = False
    noFix: bool = False
    kinds: set[str] = field(default_factory=set)


def _checksumOk(body: str, checksum: str) -> bool:
    value = 0
    for character in body:
        value ^= ord(character)
    return int(checksum, 16) == value


def _parseTime(text: str) -> time | None:
    if not text:
        return None
    match = _TIME.fullmatch(text)
    if match is None:
        raise _Malformed(f"invalid time {text!r}")
    hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3])
    if hours > 23 or minutes > 59 or seconds > 59:
        raise _Malformed(f"time {text!r} out of range")
    fraction = (match[4] or "").ljust(6, "0")[:6]
    return time(hours, minutes, seconds, int(fraction))


def _parseDate(text: str) -> date | None:
    """
    Parse an RMC date, ddmmyy.  Two-digit years 80-99 are 1980-1999 and
    00-79 are 2000-2079 (GPS time starts in 1980).
    """
    if not text:
        return None
    match = _DATE.fullmatch(text)
    if match is None:
        raise _Malformed(f"invalid date {text!r}")
    day, month, year = int(match[1]), int(match[2]), int(match[3])
    year += 1900 if year >= 80 else 2000
    try:
        return date(year, month, day)
    except ValueError:
        raise _Malformed(f"date {text!r} out of range")


def _parseCoordinate(value: str, hemisphere: str, latitude: bool) -> float | None:
    if not value and not hemisphere:
        return None
    pattern, limit, hemispheres = (_LATITUDE, 90, "NS") if latitude else (_LONGITUDE, 180, "EW")
    match = pattern.fullmatch(value)
    if match is None or len(hemisphere) != 1 or hemisphere not in hemispheres:
        raise _Malformed(f"invalid coordinate {value!r},{hemisphere!r}")
    degrees, minutes = int(match[1]), float(match[2])
    if minutes >= 60:
        raise _Malformed(f"coordinate minutes {value!r} out of range")
    result = degrees + minutes / 60
    if result > limit:
        raise _Malformed(f"coordinate {value!r} out of range")
    return -result if hemisphere in "SW" else result


def _parseNumber(
    text: str, minimum: float | None = None, maximum: float | None = None
) -> float | None:
    if not text:
        return None
    if _NUMBER.fullmatch(text) is None:
        raise _Malformed(f"invalid number {text!r}")
    value = float(text)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _Malformed(f"number {text!r} out of range")
    return value


def _parseInteger(text: str, maximum: int) -> int | None:
    if not text:
        return None
    if _INTEGER.fullmatch(text) is None or int(text) > maximum:
        raise _Malformed(f"invalid integer {text!r}")
    return int(text)


def _field(fields: list[str], index: int) -> str:
    return fields[index] if index < len(fields) else ""


class NmeaParser:
    """
    Sans-IO NMEA 0183 parser: feed it bytes, get L{Fix}es.

    @ivar counters: the L{NmeaCounters}.
    """

    def __init__(
        self,
        clock: Callable[[], float] = timeModule.time,
        includeInvalid: bool = False,
        skipComments: bool = True,
        maxLineLength: int = DEFAULT_MAX_LINE_LENGTH,
    ) -> None:
        """
        @param clock: returns the reference time in POSIX seconds, used to
            date a fix when the input has given no date yet (for example
            C{reactor.seconds}).
        @param includeInvalid: yield invalid fixes with C{valid=False}
            instead of skipping them.
        @param skipComments: skip lines starting with C{#}, as in GPSD's
            recorded logs.  A receiver never sends them.
        @param maxLineLength: longer lines are discarded and counted.
        """
        self.clock = clock
        self.includeInvalid = includeInvalid
        self.skipComments = skipComments
        self.maxLineLength = maxLineLength
        self.counters = NmeaCounters()
        self._pending = bytearray()
        self._discarding = False
        self._epoch: _Epoch | None = None
        self._lastTime: datetime | None = None

    def feed(self, data: bytes) -> list[Fix]:
        """
        Add bytes and return the fixes of the epochs they complete.  An
        epoch completes when a sentence of the next one arrives, so the
        last fix comes out of L{end}.
        """
        fixes: list[Fix] = []
        self._pending += data
        while True:
            lineEnd = _LINE_END.search(self._pending)
            if lineEnd is None:
                break
            cut = lineEnd.start()
            line = bytes(self._pending[:cut])
            del self._pending[: cut + 1]
            if self._discarding:
                self._discarding = False
                continue
            self._handleLine(line, fixes)
        if len(self._pending) > self.maxLineLength:
            self.counters.overlongLines += 1
            self.counters.malformed += 1
            self._pending.clear()
            self._discarding = True
        return fixes

    def end(self) -> list[Fix]:
        """
        Handle the rest of the input (a last line without a line end) and
        return the fixes of the last epoch.
        """
        fixes: list[Fix] = []
        if self._pending and not self._discarding:
            self._handleLine(bytes(self._pending), fixes)
        self._pending.clear()
        self._discarding = False
        if self._epoch is not None:
            self._finishEpoch(self._epoch, None, fixes)
            self._epoch = None
        return fixes

    def _handleLine(self, line: bytes, fixes: list[Fix]) -> None:
        if self.skipComments and line.startswith(b"#"):
            return
        for piece in line.split(b"\x00"):
            for sentence in re.split(rb"(?=[$!])", piece):
                sentence = sentence.strip(b" \t")
                if sentence:
                    self.counters.sentences += 1
                    self._handleSentence(sentence, fixes)

    def _handleSentence(self, raw: bytes, fixes: list[Fix]) -> None:
        counters = self.counters
        if raw[:1] not in (b"$", b"!"):
            counters.malformed += 1
            return
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            counters.badChecksum += 1
            return
        star = text.find("*")
        if (
            star < 0
            or len(text) < star + 3
            or text[star + 1] not in _HEX
            or text[star + 2] not in _HEX
        ):
            counters.badChecksum += 1
            counters.missingChecksum += 1
            return
        if not _checksumOk(text[1:star], text[star + 1 : star + 3]):
            counters.badChecksum += 1
            return
        if len(text) != star + 3 or not text[1:star].isprintable() or raw[:1] == b"!":
            # Bytes after the checksum mean a fragment of another sentence
            # was glued on; "!" sentences (AIS) are not positions.
            counters.malformed += 1
            return
        fields = text[1:star].split(",")
        address = fields[0]
        if _ADDRESS.fullmatch(address) is None:
            counters.malformed += 1
            return
        if address.startswith("P"):
            counters.proprietary += 1
            return
        kind = address[-3:]
        handler = _HANDLERS.get(kind) if len(address) == 5 else None
        if handler is None:
            counters.unsupported += 1
            return
        try:
            record = handler(fields[1:])
        except _Malformed:
            counters.malformed += 1
            return
        counters.used += 1
        self._addRecord(kind, record, fixes)

    def _addRecord(self, kind: str, record: dict[str, Any], fixes: list[Fix]) -> None:
        timed = "timeOfDay" in record
        epoch = self._epoch
        if timed:
            startsEpoch = (
                epoch is None or record["timeOfDay"] != epoch.timeOfDay or kind in epoch.kinds
            )
            if startsEpoch:
                following = _Epoch(timeOfDay=record["timeOfDay"])
                hint = None
                if record.get("date") is not None and record["timeOfDay"] is not None:
                    hint = datetime.combine(record["date"], record["timeOfDay"], UTC)
                if epoch is not None:
                    self._finishEpoch(epoch, hint, fixes)
                epoch = self._epoch = following
        elif epoch is None:
            # VTG or GSA before any timed sentence: no epoch to join.
            return
        assert epoch is not None
        epoch.kinds.add(kind)
        for name, value in record.items():
            if name == "noFix":
                epoch.noFix = epoch.noFix or value
            elif name == "hasPosition":
                epoch.hasPosition = epoch.hasPosition or value
            elif name != "timeOfDay" and value is not None and getattr(epoch, name) is None:
                setattr(epoch, name, value)

    def _finishEpoch(self, epoch: _Epoch, hint: datetime | None, fixes: list[Fix]) -> None:
        if epoch.timeOfDay is not None and epoch.date is not None:
            fixTime = datetime.combine(epoch.date, epoch.timeOfDay, UTC)
        elif epoch.timeOfDay is not None and epoch.hasPosition:
            reference = hint or self._lastTime
            if reference is None:
                reference = datetime.fromtimestamp(self.clock(), UTC)
            fixTime = nearestDateTime(epoch.timeOfDay, reference)
        else:
            if epoch.hasPosition:
                self.counters.noFix += 1
            return
        self._lastTime = fixTime
        if not epoch.hasPosition:
            return
        if epoch.lat is None or epoch.lon is None:
            self.counters.noFix += 1
            return
        valid = not epoch.noFix and not (epoch.lat == 0 and epoch.lon == 0)
        if not valid:
            self.counters.noFix += 1
            if not self.includeInvalid:
                return
        self.counters.fixes += 1
        fixes.append(
            Fix(
                time=fixTime,
                lat=epoch.lat,
                lon=epoch.lon,
                alt=epoch.alt,
                speed=epoch.speed,
                heading=epoch.heading,
                satellites=epoch.satellites,
                fixQuality=epoch.fixQuality,
                hdop=epoch.hdop,
                valid=valid,
            )
        )


def nearestDateTime(timeOfDay: time, reference: datetime) -> datetime:
    """
    Return the UTC datetime with time of day C{timeOfDay} that is nearest
    to C{reference}, so at most 12 hours from it.
    """
    reference = reference.astimezone(UTC)
    candidates = [
        datetime.combine(reference.date() + timedelta(days=offset), timeOfDay, UTC)
        for offset in (-1, 0, 1)
    ]
    return min(candidates, key=lambda candidate: abs(candidate - reference))


def _position(fields: list[str], start: int) -> dict[str, Any]:
    lat = _parseCoordinate(_field(fields, start), _field(fields, start + 1), latitude=True)
    lon = _parseCoordinate(_field(fields, start + 2), _field(fields, start + 3), latitude=False)
    if (lat is None) != (lon is None):
        raise _Malformed("latitude without longitude")
    return {"lat": lat, "lon": lon, "hasPosition": True}


def _parseRmc(fields: list[str]) -> dict[str, Any]:
    # time, status, lat, N/S, lon, E/W, speed (knots), course, date,
    # magnetic variation, E/W, mode (NMEA 2.3), navigational status (4.1)
    if len(fields) < 9:
        raise _Malformed("RMC has too few fields")
    status = fields[1]
    if status not in ("A", "V"):
        raise _Malformed(f"invalid RMC status {status!r}")
    mode = _field(fields, 11)
    knots = _parseNumber(fields[6], minimum=0)
    record = {
        "timeOfDay": _parseTime(fields[0]),
        **_position(fields, 2),
        "speed": None if knots is None else knots * KNOTS_TO_METRES_PER_SECOND,
        "heading": _parseNumber(fields[7], minimum=0, maximum=360),
        "date": _parseDate(fields[8]),
        "noFix": status == "V" or mode == "N",
    }
    return record


def _parseGga(fields: list[str]) -> dict[str, Any]:
    # time, lat, N/S, lon, E/W, quality, satellites, HDOP, altitude, M,
    # geoid separation, M, DGPS age, DGPS station
    if len(fields) < 6:
        raise _Malformed("GGA has too few fields")
    quality = _parseInteger(fields[5], maximum=8)
    return {
        "timeOfDay": _parseTime(fields[0]),
        **_position(fields, 1),
        "fixQuality": quality,
        "satellites": _parseInteger(_field(fields, 6), maximum=255),
        "hdop": _parseNumber(_field(fields, 7), minimum=0),
        "alt": _parseNumber(_field(fields, 8)),
        "noFix": quality == 0,
    }


def _parseGll(fields: list[str]) -> dict[str, Any]:
    # lat, N/S, lon, E/W, time, status, mode
    if len(fields) < 6:
        raise _Malformed("GLL has too few fields")
    status = fields[5]
    if status not in ("A", "V"):
        raise _Malformed(f"invalid GLL status {status!r}")
    return {
        "timeOfDay": _parseTime(fields[4]),
        **_position(fields, 0),
        "noFix": status == "V" or _field(fields, 6) == "N",
    }


def _parseVtg(fields: list[str]) -> dict[str, Any]:
    # course true, T, course magnetic, M, speed knots, N, speed km/h, K, mode
    if len(fields) < 8:
        raise _Malformed("VTG has too few fields")
    kmh = _parseNumber(fields[6], minimum=0)
    knots = _parseNumber(fields[4], minimum=0)
    if kmh is not None:
        speed: float | None = kmh / 3.6
    elif knots is not None:
        speed = knots * KNOTS_TO_METRES_PER_SECOND
    else:
        speed = None
    return {
        "heading": _parseNumber(fields[0], minimum=0, maximum=360),
        "speed": speed,
        "noFix": _field(fields, 8) == "N",
    }


def _parseGsa(fields: list[str]) -> dict[str, Any]:
    # mode, fix type, 12 satellite ids, PDOP, HDOP, VDOP, system id
    if len(fields) < 17:
        raise _Malformed("GSA has too few fields")
    fixType = _parseInteger(fields[1], maximum=3)
    return {"hdop": _parseNumber(fields[15], minimum=0), "noFix": fixType == 1}


def _parseZda(fields: list[str]) -> dict[str, Any]:
    # time, day, month, year, zone hours, zone minutes
    if len(fields) < 4:
        raise _Malformed("ZDA has too few fields")
    timeOfDay = _parseTime(fields[0])
    day, month, year = fields[1], fields[2], fields[3]
    if not (day or month or year):
        return {"timeOfDay": timeOfDay}
    if not (
        len(day) == 2 and len(month) == 2 and len(year) == 4 and (day + month + year).isdigit()
    ):
        raise _Malformed(f"invalid ZDA date {day},{month},{year}")
    try:
        return {"timeOfDay": timeOfDay, "date": date(int(year), int(month), int(day))}
    except ValueError:
        raise _Malformed(f"ZDA date {day},{month},{year} out of range")


_HANDLERS: dict[str, Callable[[list[str]], dict[str, Any]]] = {
    "RMC": _parseRmc,
    "GGA": _parseGga,
    "GLL": _parseGll,
    "VTG": _parseVtg,
    "GSA": _parseGsa,
    "ZDA": _parseZda,
}


class NmeaReader:
    """
    Streaming reader of the fixes in an NMEA file object (a receiver's
    serial output or a GPSD log).  Takes the same options as
    L{NmeaParser}; its C{counters} are the parser's.
    """

    def __init__(
        self,
        source: BinaryIO,
        clock: Callable[[], float] = timeModule.time,
        includeInvalid: bool = False,
        skipComments: bool = True,
        chunkSize: int = DEFAULT_CHUNK_SIZE,
        maxLineLength: int = DEFAULT_MAX_LINE_LENGTH,
    ) -> None:
        self.source = source
        self.chunkSize = chunkSize
        self.parser = NmeaParser(
            clock=clock,
            includeInvalid=includeInvalid,
            skipComments=skipComments,
            maxLineLength=maxLineLength,
        )
        self.counters = self.parser.counters

    def __iter__(self) -> Iterator[Fix]:
        while True:
            data = self.source.read(self.chunkSize)
            if not data:
                break
            yield from self.parser.feed(data)
        yield from self.parser.end()
