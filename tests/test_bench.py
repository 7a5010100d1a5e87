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

from twisted.trial.unittest import TestCase

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
        for page in ("dashboard", "api devices", "api users", "api rules"):
            self.assertGreater(results["admin"][page]["p99Ms"]["median"], 0)
        self.assertEqual(document["machine"]["nproc"] > 0, True)
