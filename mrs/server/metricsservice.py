"""
The metrics updater: connects gauges that are read at scrape time.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.logger import Logger


class MetricsService(Service):
    """
    Wires the certificate expiry gauge to the live TLS material.
    """

    name = "metrics"
    log = Logger()

    def __init__(self, metrics: Any, tls: Any) -> None:
        self.metrics = metrics
        self.tls = tls

    def startService(self) -> None:
        super().startService()
        self.metrics.watchCertificate(self.tls.daysToExpiry)
        self.log.info("metrics available at /metrics on the admin port")

    def stopService(self) -> None:
        super().stopService()
        self.log.info("metrics stopped")
