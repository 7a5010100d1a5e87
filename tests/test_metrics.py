"""
Tests for L{mrs.metrics.Metrics}.
"""

from __future__ import annotations

from prometheus_client import REGISTRY
from twisted.trial.unittest import SynchronousTestCase

from mrs.metrics import Metrics


class MetricsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.metrics = Metrics()
        self.value = self.metrics.registry.get_sample_value

    def test_connections(self) -> None:
        """
        Open connections are counted by role and encryption, and an
        upgrade moves one from plaintext to encrypted.
        """
        self.metrics.connectionOpened("device", False)
        self.metrics.connectionOpened("monitor", True)
        self.metrics.connectionUpgraded("device")
        self.assertEqual(self.value("mrs_connections", {"role": "device", "encrypted": "no"}), 0)
        self.assertEqual(self.value("mrs_connections", {"role": "device", "encrypted": "yes"}), 1)
        self.metrics.connectionClosed("monitor", True)
        self.assertEqual(self.value("mrs_connections", {"role": "monitor", "encrypted": "yes"}),
                         0)
        self.assertEqual(
            self.value("mrs_connections_opened_total", {"role": "monitor", "encrypted": "yes"}),
            1)

    def test_loginsAndDenials(self) -> None:
        """
        Logins are counted by result and denials by right.
        """
        self.metrics.login("device", True)
        self.metrics.login("device", False)
        self.metrics.login("device", False)
        self.metrics.permissionDenied("video")
        self.assertEqual(self.value("mrs_logins_total", {"role": "device", "result": "failed"}),
                         2)
        self.assertEqual(self.value("mrs_logins_total", {"role": "device", "result": "ok"}), 1)
        self.assertEqual(self.value("mrs_permission_denials_total", {"right": "video"}), 1)

    def test_media(self) -> None:
        """
        Media bytes and frames are counted by track and direction, and
        dropped frames by track.
        """
        self.metrics.mediaIn("video", 1000)
        self.metrics.mediaIn("video", 500)
        self.metrics.mediaOut("video", 3000, count=2)
        self.metrics.frameDropped("audio", 3)
        self.assertEqual(self.value("mrs_media_bytes_total", {"track": "video", "direction": "in"}),
                         1500)
        self.assertEqual(
            self.value("mrs_media_frames_total", {"track": "video", "direction": "in"}), 2)
        self.assertEqual(
            self.value("mrs_media_frames_total", {"track": "video", "direction": "out"}), 2)
        self.assertEqual(self.value("mrs_frames_dropped_total", {"track": "audio"}), 3)

    def test_certificateExpiry(self) -> None:
        """
        The certificate gauge reads the function at every scrape.
        """
        days = [30.5]
        self.metrics.watchCertificate(lambda: days[0])
        self.assertEqual(self.value("mrs_certificate_days_to_expiry"), 30.5)
        days[0] = 29.0
        body, contentType = self.metrics.render()
        self.assertIn(b"mrs_certificate_days_to_expiry 29.0", body)
        self.assertTrue(contentType.startswith("text/plain"))

    def test_privateRegistry(self) -> None:
        """
        Two Metrics objects do not collide and nothing lands on the global
        registry.
        """
        other = Metrics()
        other.login("admin", True)
        self.assertIsNone(self.value("mrs_logins_total", {"role": "admin", "result": "ok"}))
        self.assertIsNone(REGISTRY.get_sample_value("mrs_logins_total",
                                                    {"role": "admin", "result": "ok"}))
