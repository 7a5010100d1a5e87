"""
End-to-end tests of the admin site in a real headless Chromium over real
HTTPS on 127.0.0.1, driven by L{tests.browser_driver} in a subprocess.

They need Debian's C{chromium} package (C{/usr/bin/chromium}) and the
C{openssl} command: apt-get install -y chromium openssl.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
from pathlib import Path

from cryptography import x509
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from mrs.passwords import hashPassword
from mrs.tls.validate import fingerprint
from tests.fakes_admin import ListeningAdmin
from tests.test_tls_support import requireOpenSSL

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent


async def run(command: str, *args: str) -> tuple[str, str]:
    out, err, code = await getProcessOutputAndValue(
        command, args, env=dict(os.environ), path=str(ROOT), reactor=reactor)
    if code != 0:
        raise AssertionError(f"{command} {' '.join(args)} failed ({code}): "
                             f"{out.decode()} {err.decode()}")
    return out.decode(), err.decode()


def servedFingerprint(port: int) -> str:
    """
    Connect over TLS and return the SHA-256 fingerprint of the served
    certificate (verification is off because the point is to read it).
    """
    import socket

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return fingerprint(x509.load_der_x509_certificate(der))


class BrowserTests(TestCase):
    timeout = 300

    async def test_fullTour(self) -> None:
        """
        An administrator signs in with the first password, changes it,
        sees the live device, adds a device, a user and a rule, installs a
        pasted key and certificate, sees a mismatched pair rejected next to
        the key box with the old certificate still served, and makes a CSR.
        """
        if not os.path.exists(CHROMIUM):
            raise AssertionError("chromium is required: apt-get install -y chromium")
        openssl = requireOpenSSL()
        work = Path(self.mktemp()).resolve()
        work.mkdir()
        await run(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(work / "good.key"),
                  "-out", str(work / "good.crt"), "-days", "90", "-subj", "/CN=localhost",
                  "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                  "-addext", "basicConstraints=critical,CA:FALSE")
        await run(openssl, "genpkey", "-algorithm", "EC", "-pkeyopt",
                  "ec_paramgen_curve:P-256", "-out", str(work / "other.key"))
        goodCert = (work / "good.crt").read_text()
        goodFingerprint = fingerprint(x509.load_pem_x509_certificate(goodCert.encode()))

        server = ListeningAdmin(self, reactor, sqlite=True, hubEntries=[{
            "role": "device", "name": "cam-live", "address": "127.0.0.1:40123",
            "encrypted": True, "tlsVersion": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384",
            "since": reactor.seconds() - 42, "bitrateIn": {"video": 1_800_000},
            "subscribers": 1, "lastLocation": {"lat": 46.0569, "lon": 14.5058},
            "lastLocationTime": reactor.seconds() - 2,
        }])
        origin = await server.start()
        await server.store.addUser("admin", "admin", hashPassword("first-password-xyz"),
                                   "system", mustChangePassword=True)
        shots = Path(os.environ.get("MRS_SCREENSHOTS", str(work)))
        inputs = {
            "scenario": "fullTour", "origin": origin, "screenshots": str(shots),
            "user": "admin", "firstPassword": "first-password-xyz",
            "newPassword": "a-much-better-password",
            "goodKey": (work / "good.key").read_text(), "goodCertificate": goodCert,
            "otherKey": (work / "other.key").read_text(),
        }
        (work / "inputs.json").write_text(json.dumps(inputs))
        out, code = await self._drive(work / "inputs.json")
        self.assertEqual(code, 0, out)
        seen = json.loads(out.splitlines()[-1])

        self.assertIn("cam-live", seen["dashboardRow"])
        self.assertIn("TLSv1.3 TLS_AES_256_GCM_SHA384", seen["dashboardRow"])
        self.assertIn("video 1.8 Mbit/s", seen["dashboardRow"])
        user = await server.store.getUser("admin")
        self.assertFalse(user.mustChangePassword)
        device = await server.store.getDevice("cam-7")
        self.assertEqual(device.displayName, "Loading dock")
        self.assertGreaterEqual(len(seen["deviceSecret"]), 16)
        [rule] = await server.store.listRules()
        self.assertEqual((rule.subject, rule.target, rule.rights),
                         ("dispatcher", "cam-7", frozenset({"video", "location"})))
        self.assertEqual(seen["installedFingerprint"], goodFingerprint)
        self.assertNotEqual(seen["oldFingerprint"], goodFingerprint)
        self.assertTrue(seen["keyError"].startswith("Error: "), seen["keyError"])
        self.assertEqual(seen["keyBoxAfterFailure"], "")
        self.assertEqual(seen["fingerprintAfterFailure"], goodFingerprint)
        self.assertEqual(await deferToThread(servedFingerprint, server.port.getHost().port),
                         goodFingerprint)
        self.assertTrue(seen["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----"))
        self.assertEqual(await server.tls.pendingRequest(), seen["csr"].encode())
        for path in seen["screenshots"]:
            self.assertGreater(Path(path).stat().st_size, 10_000, path)
        actors = {e.actor for e in await server.store.listAudit()}
        self.assertEqual(actors, {"system", "admin"})
        explained = server.permissions.explain("dispatcher", "cam-7")
        self.assertEqual(sorted(right for right, _ in explained), ["location", "video"])

    async def _drive(self, inputs: Path) -> tuple[str, int]:
        out, err, code = await getProcessOutputAndValue(
            sys.executable, ["-m", "tests.browser_driver", str(inputs)],
            env=dict(os.environ), path=str(ROOT), reactor=reactor)
        return out.decode() + err.decode()[-3000:], code
