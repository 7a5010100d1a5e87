"""
Tests of the rationed log lines of connections that close before login
(mrs.server.closelog) and of the close lines the session writes.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from mrs.metrics import Metrics
from mrs.server.closelog import EarlyCloseLog
from tests.support import ServerCore


def captureLines(testCase: SynchronousTestCase) -> list[str]:
    """
    Collect the text of every log event from now to the end of the test.
    """
    lines: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    testCase.addCleanup(globalLogPublisher.removeObserver, observe)
    return lines


def close(log: EarlyCloseLog, n: int, host: str = "192.0.2.7",
          reason: str = "Connection lost.") -> None:
    log.closed(f"s{n}", f"{host}:{40000 + n}", host, "TLS", 0.25, "hello", reason)


class EarlyCloseLogTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.metrics = Metrics()
        self.log = EarlyCloseLog(self.clock, burst=2, interval=10.0, metrics=self.metrics)
        self.lines = captureLines(self)

    def test_burstLoggedOneByOne(self) -> None:
        """
        The first C{burst} closes of an interval get their own line, the
        same line a logged-in session gets.
        """
        close(self.log, 1)
        close(self.log, 2)
        self.assertEqual(self.lines, [
            "connection s1 from 192.0.2.7:40001 on the TLS port closed after 0.2 s in "
            "state hello: Connection lost.",
            "connection s2 from 192.0.2.7:40002 on the TLS port closed after 0.2 s in "
            "state hello: Connection lost.",
        ])
        self.assertEqual(self.log.suppressed, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_restSummarizedAtIntervalEnd(self) -> None:
        """
        Past the burst, closes are counted and summed up in one line when
        the interval ends, with the reasons and the busiest address.
        """
        for n in range(2):
            close(self.log, n)
        del self.lines[:]
        self.clock.advance(3)
        for n in range(3):
            close(self.log, n, host="198.51.100.4")
        close(self.log, 9, reason="TLS handshake failed: wrong version number")
        self.assertEqual(self.lines, [])
        self.assertEqual(self.log.suppressed, 4)
        self.clock.advance(6.9)
        self.assertEqual(self.lines, [])
        self.clock.advance(0.1)
        self.assertEqual(self.lines, [
            "4 more connections closed before logging in were not logged one by one (at "
            "most 2 lines every 10 s): 3 closed in state hello: Connection lost; 1 closed "
            "in state hello: TLS handshake failed: wrong version number; from 2 addresses, "
            "most from 198.51.100.4 (3)",
        ])
        self.assertEqual(self.log.suppressed, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_newIntervalLogsAgain(self) -> None:
        """
        A close after the interval has ended gets its own line again; the
        timer has written the summary of the old interval by then.
        """
        for n in range(3):
            close(self.log, n)
        self.clock.advance(10)
        self.assertIn("1 more connections closed before logging in", self.lines[-1])
        del self.lines[:]
        close(self.log, 5)
        self.assertEqual(self.lines, [
            "connection s5 from 192.0.2.7:40005 on the TLS port closed after 0.2 s in "
            "state hello: Connection lost.",
        ])

    def test_manyReasonsShortened(self) -> None:
        """
        The summary names the three commonest reasons and counts the rest.
        """
        for n in range(2):
            close(self.log, n)
        for n in range(5):
            close(self.log, n, reason=f"reason {n}")
        self.log.flush()
        [summary] = self.lines[2:]
        self.assertIn(": 1 closed in state hello: reason 0; 1 closed in state hello: reason 1; "
                      "1 closed in state hello: reason 2; 2 other reasons; all from 192.0.2.7",
                      summary)

    def test_flushWithNothingLeftOut(self) -> None:
        """
        Flushing with nothing suppressed writes nothing.
        """
        close(self.log, 1)
        self.log.flush()
        self.assertEqual(len(self.lines), 1)

    def test_everyCloseCounted(self) -> None:
        """
        The metrics count each close, logged or not.
        """
        for n in range(7):
            close(self.log, n)
        self.assertEqual(
            self.metrics.registry.get_sample_value("mrs_connections_closed_before_login_total"),
            7.0)


class SessionCloseLineTests(SynchronousTestCase):
    def test_loggedInSessionAlwaysLogged(self) -> None:
        """
        A session that logged in gets its close line even when the budget
        for early closes is used up.
        """
        lines = captureLines(self)
        core = ServerCore()
        core.factory.earlyCloses.burst = 0
        monitor = core.monitor()
        core.clock.advance(2.5)
        monitor.session.connectionLost(Failure(ConnectionDone()))
        closes = [line for line in lines if " closed after " in line]
        self.assertEqual(len(closes), 1)
        self.assertRegex(closes[0], r"^connection [0-9a-f]{8} from 10\.0\.0\.7:40000 on the "
                         r"plaintext port closed after 2\.5 s in state monitor: Connection was "
                         r"closed cleanly\.$")
        self.assertEqual(core.factory.earlyCloses.suppressed, 0)

    def test_earlyCloseRationed(self) -> None:
        """
        Sessions closing before login go through the factory's ration, and
        the factory writes the summary when its port stops.
        """
        lines = captureLines(self)
        core = ServerCore()
        core.factory.doStart()
        core.factory.earlyCloses.burst = 1
        for _ in range(3):
            client = core.connect()
            client.session.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len([line for line in lines if " closed after " in line]), 1)
        self.assertEqual(core.factory.earlyCloses.suppressed, 2)
        core.factory.doStop()
        self.assertEqual(core.factory.earlyCloses.suppressed, 0)
        self.assertIn("2 more connections closed before logging in", lines[-1])

    def test_serverReasonReplacesTransportReason(self) -> None:
        """
        When the server closes a connection that has not logged in, its
        reason is the one in the close line, and no separate warning is
        written.
        """
        core = ServerCore()
        lines = captureLines(self)
        client = core.connect()
        client.sendRaw(b"\x00\x01\x02\x03\x04\x05")
        client.session.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(lines), 1)
        self.assertRegex(lines[0], r"^connection [0-9a-f]{8} from 10\.0\.0\.7:40000 on the "
                         r"plaintext port closed after 0\.0 s in state hello: did not start "
                         r"with the MRS preamble$")

    def test_loginTimeoutInCloseLine(self) -> None:
        """
        The close line gives a login timeout as the reason, and the
        client gets the login_timeout error.
        """
        core = ServerCore(loginTimeout=15.0)
        lines = captureLines(self)
        client = core.connect()
        client.hello("monitor")
        core.clock.advance(15)
        self.assertEqual(client.messages()[-1]["code"], "login_timeout")
        client.session.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(lines), 1)
        self.assertRegex(lines[0], r"closed after 15\.0 s in state auth: did not log in "
                         r"within 15 s$")

    def test_loggedInWarningsKept(self) -> None:
        """
        After login the server still warns, at once, when it closes a
        connection, and the logout and close lines follow.
        """
        lines = captureLines(self)
        core = ServerCore(keepaliveInterval=10.0, idleTimeout=30.0)
        monitor = core.monitor()
        del lines[:]
        core.clock.advance(30)
        monitor.session.connectionLost(Failure(ConnectionDone()))
        self.assertRegex(lines[0], r"^connection [0-9a-f]{8} from 10\.0\.0\.7:40000 sent "
                         r"nothing for 30 s; closing$")
        self.assertRegex(lines[1], r": idle_timeout: nothing received for 30 seconds$")
        self.assertEqual(lines[2], "logout: user alice from 10.0.0.7:40000")
        self.assertRegex(lines[3], r"closed after 30\.0 s in state monitor: Connection was "
                         r"closed cleanly\.$")
        self.assertEqual(len(lines), 4)
