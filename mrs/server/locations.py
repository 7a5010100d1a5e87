"""
The server's policy for locations received from devices.

The wire codec has already checked each field's type and range.  This
policy applies L{mrs.media.location.validateLocation} (a fix the device
marks invalid, one at exactly 0,0, fix quality 0, or a fix time too far
ahead of the server clock is not relayed) and keeps one
L{mrs.media.location.LocationTracker} per device: an exact repeat of a
fix already received is dropped, and a fix older than the current one
goes into the device's history without replacing the current position.
"""

from __future__ import annotations

from typing import Any

from mrs.media.location import (
    DEFAULT_MAX_FUTURE_SECONDS,
    DEFAULT_MAX_HISTORY,
    DUPLICATE,
    HISTORY,
    LocationTracker,
    validateLocation,
)
from mrs.wire import parseMessage


class LocationPolicy:
    """
    Decides, per device, whether a received location is relayed.

    @ivar trackers: the L{LocationTracker} of each device id seen.
    """

    def __init__(self, maxFuture: float = DEFAULT_MAX_FUTURE_SECONDS,
                 historyLength: int = DEFAULT_MAX_HISTORY) -> None:
        self.maxFuture = maxFuture
        self.historyLength = historyLength
        self.trackers: dict[str, LocationTracker] = {}

    def __call__(self, entry: Any, location: dict[str, Any], now: float) -> str | None:
        """
        Return L{None} to relay C{location} from C{entry}'s device, else
        the reason it is not relayed.
        """
        fix = parseMessage(location)
        ok, reason = validateLocation(fix, now, self.maxFuture)  # type: ignore[arg-type]
        if not ok:
            return reason
        tracker = self.trackers.get(entry.deviceId)
        if tracker is None:
            tracker = self.trackers[entry.deviceId] = LocationTracker(self.historyLength)
        outcome = tracker.offer(fix)  # type: ignore[arg-type]
        if outcome == DUPLICATE:
            return "duplicate of a fix already received"
        if outcome == HISTORY:
            return "older than the current fix; kept in history"
        return None
