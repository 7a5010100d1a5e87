"""
The benchmark suite's quick mode runs to the end and produces sane
figures, so that the benchmarks cannot rot.  No timing thresholds: the
machine running the tests may be busy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase, TestCase

from bench.__main__ import targets
from bench.profile import summarize
from bench.suite import serverDisconnects

ROOT = Path(__file__).parent.parent


class QuickBenchTests(TestCase):
    def test_quickRun(self) -> None:
        """
        C{python -m bench --quick} exits with status 0, prints the table
        and writes a result file whose figures are positive and whose
        relays lost no frame.
        """
        output = Path(self.mktemp()).absolute()
        run = subprocess.run([sys.executable, "-m", "bench", "--quick", "--output", str(output)],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertIn("Targets", run.stdout)
        document = json.loads(output.read_text())
        self.assertEqual(document["command"], "python -m bench --quick")
        results = document["results"]
        self.assertEqual(sorted(results),
                         ["admin", "devices", "fanout", "handshakes", "idle", "slow"])
        for n in ("1", "10"):
            paced = results["fanout"]["paced"][n]
            self.assertGreater(paced["cpuPerGB"]["median"], 0)
            self.assertEqual(paced["gaps"], 0)
            self.assertGreater(paced["mbitPerMonitor"]["median"], 1)
        self.assertGreater(results["fanout"]["bulk"]["10"]["deliveredMBps"]["median"], 0)
        devices = results["devices"]
        self.assertEqual(devices["dropped"], 0)
        self.assertGreater(devices["latencyP50Ms"]["median"], 0)
        idle = results["idle"]["mrs"]
        self.assertEqual(idle["connections"], 300)
        self.assertGreater(idle["bytesPerConnection"], 0)
        for name in ("mrs rsa2048", "mrs ecdsa-p256"):
            self.assertGreater(results["handshakes"][name]["perCoreSecond"]["median"], 0)
        self.assertEqual(results["slow"]["droppedOthers"], 0)
        # The quick run's 5 s stall is shorter than the 20 s congestion timeout.
        self.assertEqual(results["slow"]["serverDisconnects"], {"congested": 0, "idle": 0})
        self.assertIsNone(results["slow"]["secondsToDisconnect"])
        for page in ("dashboard", "api devices", "api users", "api rules"):
            self.assertGreater(results["admin"][page]["p99Ms"]["median"], 0)
        self.assertEqual(document["machine"]["nproc"] > 0, True)


class ServerDisconnectsTests(SynchronousTestCase):
    def test_countsEachReason(self) -> None:
        """
        L{serverDisconnects} counts the server's congested and idle
        disconnect lines and ignores the others.
        """
        log = Path(self.mktemp())
        log.write_text(
            "2026-12-04T21:47:45+0000 [mrs.server.session.ClientSession#warn] connection "
            "2c632578 from 127.0.0.1:41100 has not read for 20.0 s; disconnecting it\n"
            "2026-12-04T21:47:46+0000 [mrs.server.session.ClientSession#info] connection "
            "2c632578 closed\n"
            "2026-12-04T21:48:15+0000 [mrs.server.session.ClientSession#warn] connection "
            "9a1b2c3d from 127.0.0.1:41102 sent nothing for 30 s; closing\n")
        self.assertEqual(serverDisconnects(log), {"congested": 1, "idle": 1})

    def test_missingLog(self) -> None:
        """
        A log that does not exist yet counts no disconnect.
        """
        self.assertEqual(serverDisconnects(Path(self.mktemp())),
                         {"congested": 0, "idle": 0})


class ProfileSummaryTests(SynchronousTestCase):
    def test_ownAndTotalShares(self) -> None:
        """
        L{summarize} merges the lines of one function and gives each
        function's share of own and total samples.
        """
        raw = Path(self.mktemp())
        raw.write_text(
            "run (/v/lib/python3.11/site-packages/twisted/internet/base.py:10);"
            "send (/v/lib/python3.11/site-packages/OpenSSL/SSL.py:20) 3\n"
            "run (/v/lib/python3.11/site-packages/twisted/internet/base.py:10);"
            "send (/v/lib/python3.11/site-packages/OpenSSL/SSL.py:25) 1\n"
            "run (/v/lib/python3.11/site-packages/twisted/internet/base.py:12) 4\n")
        lines = summarize(raw).splitlines()
        self.assertEqual(lines[0], "8 samples")
        self.assertEqual(lines[1:4], ["own time:",
                                      "   50.0%  send (OpenSSL/SSL.py)",
                                      "   50.0%  run (twisted/internet/base.py)"])
        self.assertEqual(lines[4:], ["total time:",
                                     "  100.0%  run (twisted/internet/base.py)",
                                     "   50.0%  send (OpenSSL/SSL.py)"])


class TargetsTests(SynchronousTestCase):
    def test_peerRatios(self) -> None:
        """
        The fan-out targets compare our CPU per GB with the peer's at the
        same N.
        """
        def figure(value: float) -> dict[str, float]:
            return {"median": value, "min": value, "max": value}

        results = {
            "fanout": {"paced": {"10": {"cpuPerGB": figure(4.0)},
                                 "50": {"cpuPerGB": figure(3.0)}}},
            "peer": {"10": {"cpuPerGB": figure(4.0)}, "50": {"cpuPerGB": figure(6.0)}},
        }
        found = {name: (value, met) for name, value, met in targets(results)}
        self.assertEqual(found["fan-out 50: CPU/GB <= 0.8x node-media-server"],
                         ("0.50x", True))
        self.assertEqual(found["fan-out 10: CPU/GB <= 0.9x node-media-server"],
                         ("1.00x", False))
