"""
A one-shot "ready" event for services that start asynchronously.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure


class Readiness:
    """
    A one-shot event that any number of callers may wait for.
    """

    def __init__(self) -> None:
        self._waiting: list[Deferred[None]] = []
        self.fired = False
        self._failure: Failure | None = None

    def whenReady(self) -> Deferred[None]:
        if self.fired:
            return fail(self._failure) if self._failure is not None else succeed(None)
        d: Deferred[None] = Deferred()
        self._waiting.append(d)
        return d

    def fire(self, failure: Failure | None = None) -> None:
        self.fired = True
        self._failure = failure
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            if failure is None:
                d.callback(None)
            else:
                d.errback(failure)
