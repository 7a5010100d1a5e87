"""
Server-side checks of received locations, and the per-device tracker that
decides which location is current.

Pure functions and plain objects: the caller passes the clock value, and
nothing here does I/O or logging.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

DEFAULT_MAX_FUTURE_SECONDS = 60.0
DEFAULT_MAX_HISTORY = 1000

# Outcomes of LocationTracker.offer.
CURRENT = "current"
HISTORY = "history"
DUPLICATE = "duplicate"


class LocationLike(Protocol):
    """
    The fields of a location: an L{mrs.media.nmea.Fix}, a GPX point turned
    into a fix, or the wire protocol's location message.
    """

    @property
    def time(self) -> datetime: ...

    @property
    def lat(self) -> float: ...

    @property
    def lon(self) -> float: ...

    @property
    def alt(self) -> float | None: ...

    @property
    def speed(self) -> float | None: ...

    @property
    def heading(self) -> float | None: ...

    @property
    def accuracy(self) -> float | None: ...

    @property
    def satellites(self) -> int | None: ...

    @property
    def fixQuality(self) -> int | None: ...

    @property
    def valid(self) -> bool | None: ...


def _finite(value: float | None) -> bool:
    return value is None or (isinstance(value, int | float) and math.isfinite(value))


def validateLocation(
    fix: LocationLike,
    now: float,
    maxFutureSeconds: float = DEFAULT_MAX_FUTURE_SECONDS,
    maxAgeSeconds: float | None = None,
) -> tuple[bool, str]:
    """
    Check a location received from a device.

    @param now: the server time in POSIX seconds (C{reactor.seconds()}).
    @param maxFutureSeconds: how far the fix time may lie ahead of C{now}
        (device clocks drift).
    @param maxAgeSeconds: how far it may lie behind, or C{None} for no
        limit (replayed or buffered fixes are legitimately old).
    @return: C{(True, "")} or C{(False, reason)} where the reason names the
        field and value, for a log line or an error message.
    """
    if fix.valid is False:
        return False, "the device marked the fix as not valid"
    lat, lon = fix.lat, fix.lon
    if not (_finite(lat) and -90.0 <= lat <= 90.0):
        return False, f"latitude {lat!r} is outside -90..90"
    if not (_finite(lon) and -180.0 <= lon <= 180.0):
        return False, f"longitude {lon!r} is outside -180..180"
    if lat == 0 and lon == 0:
        return False, "position 0,0 is a receiver's placeholder, not a fix"
    for name, low, high in (
        ("alt", -1000.0, 100000.0),
        ("speed", 0.0, 1000.0),
        ("heading", 0.0, 360.0),
        ("accuracy", 0.0, 1e7),
    ):
        value = getattr(fix, name)
        if value is not None and not (_finite(value) and low <= value <= high):
            return False, f"{name} {value!r} is outside {low:g}..{high:g}"
    satellites = fix.satellites
    if satellites is not None and not 0 <= satellites <= 255:
        return False, f"satellites {satellites!r} is outside 0..255"
    if fix.fixQuality == 0:
        return False, "fix quality 0 means no fix"
    fixTime = fix.time
    if fixTime.tzinfo is None:
        return False, f"fix time {fixTime.isoformat()} has no timezone"
    reference = datetime.fromtimestamp(now, UTC)
    ahead = (fixTime - reference).total_seconds()
    if ahead > maxFutureSeconds:
        return False, (
            f"fix time {fixTime.isoformat()} is {ahead:.0f} s ahead of the server clock "
            f"(limit {maxFutureSeconds:g} s); check the device clock"
        )
    if maxAgeSeconds is not None and -ahead > maxAgeSeconds:
        return False, (
            f"fix time {fixTime.isoformat()} is {-ahead:.0f} s behind the server clock "
            f"(limit {maxAgeSeconds:g} s)"
        )
    return True, ""


@dataclass
class TrackerCounters:
    """
    Counts of the fixes offered to a L{LocationTracker}, by outcome.

    @ivar current: fixes that became the current location.
    @ivar history: fixes older than the current one, kept in history only.
    @ivar duplicates: exact duplicates dropped.
    @ivar historyDropped: fixes pushed out of the bounded history.
    """

    current: int = 0
    history: int = 0
    duplicates: int = 0
    historyDropped: int = 0


class LocationTracker:
    """
    The locations of one device: the current one and a bounded history.

    A fix is an exact duplicate when a fix with the same time, latitude and
    longitude was accepted before and is still in the history.  Duplicates
    are dropped.  A fix older than the current one goes into the history at
    its own time and does not replace the current one.  Validation is the
    caller's job (L{validateLocation}).

    @ivar current: the newest accepted fix, or C{None}.
    @ivar history: accepted fixes (the current one included) ordered by
        fix time, oldest first, at most C{maxHistory}; the oldest are
        dropped first.
    @ivar counters: L{TrackerCounters}.
    """

    def __init__(self, maxHistory: int = DEFAULT_MAX_HISTORY) -> None:
        if maxHistory < 1:
            raise ValueError(f"invalid maxHistory {maxHistory}; it must be at least 1")
        self.maxHistory = maxHistory
        self.current: LocationLike | None = None
        self.history: list[LocationLike] = []
        self.counters = TrackerCounters()
        self._times: list[datetime] = []
        self._keys: OrderedDict[tuple[datetime, float, float], None] = OrderedDict()

    def offer(self, fix: LocationLike) -> str:
        """
        Record a fix.  Offer only fixes that passed L{validateLocation}:
        the times must be timezone-aware to compare.

        @return: L{CURRENT} if it became the current location (forward it),
            L{HISTORY} if it is older than the current one (store it, do
            not show it as current), or L{DUPLICATE} (drop it).
        """
        key = (fix.time, fix.lat, fix.lon)
        if key in self._keys:
            self.counters.duplicates += 1
            return DUPLICATE
        self._keys[key] = None

        index = bisect.bisect_right(self._times, fix.time)
        self._times.insert(index, fix.time)
        self.history.insert(index, fix)
        if len(self.history) > self.maxHistory:
            dropped = self.history.pop(0)
            self._times.pop(0)
            self._keys.pop((dropped.time, dropped.lat, dropped.lon), None)
            self.counters.historyDropped += 1

        if self.current is None or fix.time >= self.current.time:
            self.current = fix
            self.counters.current += 1
            return CURRENT
        self.counters.history += 1
        return HISTORY

    def age(self, now: float) -> timedelta | None:
        """
        Return how old the current fix is at server time C{now} (POSIX
        seconds), or C{None} without a current fix.
        """
        if self.current is None:
            return None
        return datetime.fromtimestamp(now, UTC) - self.current.time
