"""
Log lines for connections that close before they log in, within a budget.

Every connection gets one log line when it closes.  Most connections that
never log in are port scanners, load-balancer health checks, TLS probes
and floods.  At thousands a second their lines would fill the disk and
bury the lines that matter.  They would also cost the server about 100
microseconds of CPU time each, a sixth of a full ECDSA handshake (measured
with bench/ through twistd's file log on 2 cores).  So such connections
are logged one by one up to C{burst} in each C{interval}.  Past that they
are counted, and one summary line at the end of the interval states how
many were left out, why they closed and which address sent the most.  When the server closes such a
connection (no preamble, an HTTP request, a login timeout), its reason
replaces the transport's in the line and the summary.  Connections that
logged in are always logged, with a warning for each reason the server
closes them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

#: The log line of one closed connection, the same for all connections.
CLOSE_FORMAT = (
    "connection {session} from {address} on the {port} port closed after "
    "{duration:.1f} s in state {state}: {reason}"
)


class EarlyCloseLog:
    """
    Logs, or counts and summarizes, connections closing before login.

    @ivar suppressed: connections left out of the log in this interval.
    """

    def __init__(self, clock: IReactorTime, burst: int = 10, interval: float = 10.0,
                 metrics: Any = None) -> None:
        self.clock = clock
        self.burst = burst
        self.interval = interval
        self.metrics = metrics
        # The lines read as the session's own close lines.
        self.log = Logger(namespace="mrs.server.session.ClientSession", source=self)
        self.suppressed = 0
        self._windowStart = float("-inf")
        self._logged = 0
        self._reasons: Counter[str] = Counter()
        self._hosts: Counter[str] = Counter()
        self._timer: IDelayedCall | None = None

    def closed(self, session: str, address: str, host: str, port: str, duration: float,
               state: str, reason: str) -> None:
        """
        Report a connection that closed before logging in.
        """
        if self.metrics is not None:
            self.metrics.closedBeforeLogin()
        now = self.clock.seconds()
        if now - self._windowStart >= self.interval:
            self.flush()
            self._windowStart = now
            self._logged = 0
        if self._logged < self.burst:
            self._logged += 1
            self.log.info(CLOSE_FORMAT, session=session, address=address, port=port,
                          duration=duration, state=state, reason=reason)
            return
        self.suppressed += 1
        # Twisted's reasons end with a full stop, which would sit before the
        # summary's semicolons.
        self._reasons[f"in state {state}: {reason.rstrip('.')}"] += 1
        self._hosts[host] += 1
        if self._timer is None:
            self._timer = self.clock.callLater(
                self._windowStart + self.interval - now, self.flush)

    def flush(self) -> None:
        """
        Write the summary of the connections left out so far, if any.
        """
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        if not self.suppressed:
            return
        reasons = "; ".join(f"{count} closed {reason}"
                            for reason, count in self._reasons.most_common(3))
        if len(self._reasons) > 3:
            reasons += f"; {len(self._reasons) - 3} other reasons"
        [(host, count)] = self._hosts.most_common(1)
        addresses = len(self._hosts)
        sources = (f"all from {host}" if addresses == 1
                   else f"from {addresses} addresses, most from {host} ({count})")
        self.log.info(
            "{count} more connections closed before logging in were not logged one by "
            "one (at most {burst} lines every {interval:g} s): {reasons}; {sources}",
            count=self.suppressed, burst=self.burst, interval=self.interval,
            reasons=reasons, sources=sources)
        self.suppressed = 0
        self._reasons.clear()
        self._hosts.clear()
