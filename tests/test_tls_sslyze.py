"""
Scan a listener backed by L{TLSMaterial} with sslyze.

sslyze pins an older cryptography than the server, so it lives in its own
virtualenv: python3 -m venv .venv-sslyze && .venv-sslyze/bin/pip install
sslyze.  MRS_SSLYZE_PYTHON overrides the interpreter.  The test fails, not
skips, without sslyze, because CI installs it.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from mrs.tls import TLSMaterial
from tests.test_tls_support import HOST, LoopbackMixin, RecordingStore

ROOT = Path(__file__).resolve().parent.parent
SSLYZE_PYTHON = os.environ.get("MRS_SSLYZE_PYTHON", str(ROOT / ".venv-sslyze" / "bin" / "python"))

# Names as sslyze reports them (IANA names) for the weaknesses the
# intermediate configuration excludes.
WEAK_MARKERS = ("RC4", "3DES", "DES_", "NULL", "EXPORT", "ANON", "_CBC_", "MD5")


class SslyzeScanTests(LoopbackMixin, TestCase):
    """
    What a TLS scanner sees on a listener with the default settings.
    """

    timeout = 120

    async def scan(self, port: int) -> dict[str, Any]:
        if not Path(SSLYZE_PYTHON).exists():
            self.fail(
                f"sslyze is missing: {SSLYZE_PYTHON} does not exist. Install it with: python3 -m "
                f"venv .venv-sslyze && .venv-sslyze/bin/pip install sslyze (or set "
                f"MRS_SSLYZE_PYTHON)"
            )
        output = Path(self.mktemp())
        out, err, code = await getProcessOutputAndValue(
            SSLYZE_PYTHON,
            ["-m", "sslyze", f"127.0.0.1:{port}", f"--json_out={output}"],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            reactor=reactor,
        )
        if not output.exists():
            self.fail(
                f"sslyze exited with {code} and wrote no JSON: {err.decode(errors='replace')}"
            )
        result = json.loads(output.read_text())
        scans = result["server_scan_results"]
        self.assertEqual(len(scans), 1)
        self.assertEqual(scans[0]["scan_status"], "COMPLETED", scans[0])
        return scans[0]["scan_result"]  # type: ignore[no-any-return]

    @staticmethod
    def accepted(scan: dict[str, Any], name: str) -> list[str]:
        return [c["cipher_suite"]["name"] for c in scan[name]["result"]["accepted_cipher_suites"]]

    async def test_defaultListener(self) -> None:
        """
        The default settings offer only TLS 1.2 and 1.3 with AEAD ciphers
        and Mozilla's intermediate groups, and present the installed
        certificate.
        """
        material = TLSMaterial(
            Path(self.mktemp()), (HOST, "127.0.0.1"), "1.2", "rsa2048", RecordingStore(), reactor
        )
        material.startService()
        self.addCleanup(material.stopService)
        await material.whenReady()
        port = self.listen(material.serverCreator([b"mrs/1"]))

        scan = await self.scan(port)

        for legacy in (
            "ssl_2_0_cipher_suites",
            "ssl_3_0_cipher_suites",
            "tls_1_0_cipher_suites",
            "tls_1_1_cipher_suites",
        ):
            self.assertEqual(scan[legacy]["status"], "COMPLETED")
            self.assertEqual(self.accepted(scan, legacy), [], legacy)
        tls12 = self.accepted(scan, "tls_1_2_cipher_suites")
        self.assertEqual(
            sorted(tls12),
            [
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            ],
        )
        tls13 = self.accepted(scan, "tls_1_3_cipher_suites")
        self.assertNotEqual(tls13, [])
        for name in tls12 + tls13:
            for marker in WEAK_MARKERS:
                self.assertNotIn(marker, name)
            self.assertFalse(name.endswith("_SHA"), name)

        curves = scan["elliptic_curves"]["result"]["supported_curves"]
        self.assertEqual([c["name"] for c in curves], ["X25519", "secp256r1", "secp384r1"])

        deployment = scan["certificate_info"]["result"]["certificate_deployments"][0]
        leaf = deployment["received_certificate_chain"][0]
        fingerprint = base64.b64decode(leaf["fingerprint_sha256"])
        self.assertEqual(":".join(f"{b:02X}" for b in fingerprint), material.current.info.sha256)
