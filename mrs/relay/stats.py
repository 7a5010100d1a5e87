"""
Small counters for the dashboard and metrics.
"""

from __future__ import annotations


class RateMeter:
    """
    Bytes per second over the last few seconds, from timestamped samples.

    Samples go into one-second buckets; L{rate} averages the complete
    buckets of the last C{window} seconds.
    """

    __slots__ = ("window", "_buckets")

    def __init__(self, window: int = 5) -> None:
        self.window = window
        self._buckets: dict[int, int] = {}

    def add(self, now: float, amount: int) -> None:
        second = int(now)
        buckets = self._buckets
        buckets[second] = buckets.get(second, 0) + amount
        if len(buckets) > self.window + 2:
            for old in [s for s in buckets if s < second - self.window]:
                del buckets[old]

    def rate(self, now: float) -> float:
        """
        Return the average amount per second over the last C{window}
        complete seconds.
        """
        current = int(now)
        total = sum(v for s, v in self._buckets.items() if current - self.window <= s < current)
        return total / self.window
