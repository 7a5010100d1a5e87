"""
C{make demo}: the whole demo runs and finds every track intact.
"""

from __future__ import annotations

import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase


class DemoTests(SynchronousTestCase):
    def test_demo(self) -> None:
        """
        The demo starts a server, streams the samples from a device to a
        monitor over TLS and reports each track identical.
        """
        result = subprocess.run([sys.executable, "-m", "mrs.demo"], capture_output=True,
                                text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        lines = result.stdout.splitlines()
        self.assertIn("demo: video: sent 250 frames, 736276 bytes; received 250 frames, "
                      "736276 bytes: identical", lines)
        self.assertIn("demo: audio: sent 470 frames, 83738 bytes; received 470 frames, "
                      "83738 bytes: identical", lines)
        [location] = [line for line in lines if line.startswith("demo: location: ")]
        self.assertTrue(location.startswith("demo: location: sent 296 positions; received "),
                        location)
        self.assertIn(": identical", location)
        self.assertEqual(lines[-1], "demo: every track arrived intact")
