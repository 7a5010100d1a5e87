"""
Failed-login counting shared by the client ports and the admin site.
"""

from __future__ import annotations

from collections import deque

from twisted.internet.interfaces import IReactorTime


class LoginThrottle:
    """
    Count failed logins per key (an account name or an address) in a
    sliding window and tell when a key has used up its allowance.
    """

    def __init__(self, clock: IReactorTime, limit: int, window: float) -> None:
        self._clock = clock
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def retryAfter(self, key: str) -> float:
        """
        Return the seconds until C{key} may try again, or 0 when it may now.
        """
        failures = self._recent(key)
        if len(failures) < self.limit:
            return 0.0
        return max(0.0, failures[0] + self.window - self._clock.seconds())

    def blocked(self, key: str) -> bool:
        """
        Tell whether C{key} has used up its allowance for now.
        """
        return self.retryAfter(key) > 0

    def failed(self, key: str) -> None:
        """
        Record one failed login for C{key}.
        """
        failures = self._recent(key)
        failures.append(self._clock.seconds())
        self._failures[key] = failures

    def succeeded(self, key: str) -> None:
        """
        Forget the failures of C{key} after a successful login.
        """
        self._failures.pop(key, None)

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.get(key, deque())
        cutoff = self._clock.seconds() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        # Keep the deque bounded even when a key is hammered.
        while len(failures) > self.limit:
            failures.popleft()
        return failures
