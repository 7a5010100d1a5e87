"""
The admin site of the whole running server in headless Chromium: the
dashboard shows a real device the moment it starts streaming, and a key and
certificate pasted in the Server Authentication page are presented on the
next TLS handshake to the client TLS port.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.utils import getProcessOutputAndValue

from mrs.passwords import hashPassword
from mrs.tls.validate import fingerprint
from tests.loopback import LoopbackTestCase, login, reactor, sleep
from tests.test_browser import CHROMIUM, ROOT, run
from tests.test_scenarios import Streamer
from tests.test_tls_support import requireOpenSSL


def spkiPin(certificatePem: bytes) -> str:
    """
    Return Chromium's pin of a certificate's public key: base64 of the
    SHA-256 of its SubjectPublicKeyInfo.
    """
    key = x509.load_pem_x509_certificate(certificatePem).public_key()
    spki = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


class LiveDashboardTests(LoopbackTestCase):
    def test_deviceAppearsAndPairServedOnClientPort(self) -> Deferred[None]:
        return ensureDeferred(self._tour())

    async def _tour(self) -> None:
        if not os.path.exists(CHROMIUM):
            raise AssertionError("chromium is required: apt-get install -y chromium")
        openssl = requireOpenSSL()
        work = Path(self.mktemp()).resolve()
        work.mkdir()
        await run(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(work / "new.key"),
                  "-out", str(work / "new.crt"), "-days", "90", "-subj", "/CN=localhost",
                  "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                  "-addext", "basicConstraints=critical,CA:FALSE")
        newCertificate = (work / "new.crt").read_bytes()
        newFingerprint = fingerprint(x509.load_pem_x509_certificate(newCertificate))
        await self.server.store.setUserPassword("admin", hashPassword("admin-password-1"),
                                                actor="test")
        ready = work / "ready"
        inputs = {
            "scenario": "liveDashboard",
            "origin": f"https://127.0.0.1:{self.server.adminPort}",
            "user": "admin", "password": "admin-password-1", "device": "cam-1",
            "readyFile": str(ready),
            "key": (work / "new.key").read_text(), "certificate": newCertificate.decode(),
            "trustSpki": [spkiPin(self.server.certificatePath.read_bytes()),
                          spkiPin(newCertificate)],
        }
        (work / "inputs.json").write_text(json.dumps(inputs))
        driving = getProcessOutputAndValue(
            sys.executable, ["-m", "tests.browser_driver", str(work / "inputs.json")],
            env=dict(os.environ), path=str(ROOT), reactor=reactor)

        for _ in range(300):
            if ready.exists():
                break
            await sleep(0.1)
        self.assertTrue(ready.exists(), "the browser never opened the dashboard")
        device = await self.client()
        await login(device, "device", "cam-1", "cam-1-secret")
        streamer = Streamer(device)
        streamer.start()
        self.addCleanup(streamer.stop)

        out, err, code = await driving
        self.assertEqual(code, 0, out.decode() + err.decode()[-3000:])
        seen = json.loads(out.decode().splitlines()[-1])
        self.assertIn("cam-1", seen["dashboardRow"])
        self.assertIn("TLSv1.3", seen["dashboardRow"])
        self.assertEqual(seen["marker"], 42)
        self.assertEqual(seen["installedFingerprint"], newFingerprint)

        pinned = await self.client(fingerprint=newFingerprint)
        reply = await login(pinned, "monitor", "alice", "alice-pw")
        self.assertEqual(reply["type"], "login_ok")
        self.assertFalse(device.lost)
