"""
The server's policy for locations received from devices.

The wire codec has already checked each field's type and range.  This
policy decides what is relayed as the device's current position:

 - a fix the device marks invalid, or one at exactly 0,0 (what many
   receivers report before their first fix), is not relayed;
 - a fix time more than C{maxFuture} seconds ahead of the server clock is
   not relayed;
 - an exact repeat of the current fix (same time, latitude and longitude)
   is dropped;
 - a fix older than the current one goes into the device's history and
   does not replace the current position.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any


class LocationPolicy:
    """
    Decides, per device, whether a received location is relayed.

    @ivar history: per device id, the latest out-of-order fixes, newest last.
    """

    historyLength = 1000

    def __init__(self, maxFuture: float = 60.0) -> None:
        self.maxFuture = maxFuture
        self._current: dict[str, tuple[float, float, float]] = {}
        self.history: dict[str, deque[dict[str, Any]]] = {}

    def __call__(self, entry: Any, location: dict[str, Any], now: float) -> str | None:
        """
        Return L{None} to relay C{location} from C{entry}'s device, else
        the reason it is not relayed.
        """
        if location.get("valid") is False:
            return "the receiver reports no valid fix"
        lat, lon = location["lat"], location["lon"]
        if lat == 0 and lon == 0:
            return "position 0,0 is what receivers report without a fix"
        fixTime = _seconds(location["time"])
        if fixTime > now + self.maxFuture:
            return f"fix time {location['time']} is more than {self.maxFuture:g} s in the future"
        key = entry.deviceId
        current = self._current.get(key)
        if current is not None:
            if current == (fixTime, lat, lon):
                return "duplicate of the current fix"
            if fixTime < current[0]:
                history = self.history.setdefault(key, deque(maxlen=self.historyLength))
                history.append(dict(location))
                return "older than the current fix; kept in history"
        self._current[key] = (fixTime, lat, lon)
        return None


def _seconds(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text).timestamp()
