"""
ISO 8601 UTC timestamps as GPX, NDJSON and the wire protocol write them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_ISO_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(Z|[+-]\d{2}:?\d{2})?"
)


def formatTime(value: datetime) -> str:
    """
    Format an aware datetime as UTC, C{2019-04-07T10:11:12.5Z}: fractional
    seconds only when non-zero, with trailing zeros removed, so that
    L{parseTime} gives back the same value to the microsecond.

    @raise ValueError: if C{value} is naive.
    """
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}; give a timezone-aware UTC time")
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def parseTime(text: str) -> datetime:
    """
    Parse an ISO 8601 date and time into an aware UTC datetime.  A time
    without a zone is taken as UTC (GPX requires UTC); digits beyond
    microseconds are dropped.

    @raise ValueError: if C{text} is not an ISO 8601 date and time.
    """
    match = _ISO_TIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"invalid time {text!r}; expected ISO 8601 such as 2019-04-07T10:11:12Z")
    fraction = (match[7] or "").ljust(6, "0")[:6]
    result = datetime(
        int(match[1]),
        int(match[2]),
        int(match[3]),
        int(match[4]),
        int(match[5]),
        int(match[6]),
        int(fraction),
        UTC,
    )
    zone = match[8]
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        result -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return result
