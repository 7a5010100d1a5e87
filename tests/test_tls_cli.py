"""
Tests for C{mrs tls}: check, install, generate and show, run through the
C{mrs} command driver with a temporary data directory.
"""

from __future__ import annotations

import io
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mrs.cli import runCommand
from mrs.tls import TLSMaterial
from mrs.tls.generate import selfSignedCertificate
from tests.test_tls_support import HOST, fingerprintOf, noSanPair, selfSignedPair

NAMES = (HOST, "127.0.0.1")


class TLSCommandTests(TestCase):
    def setUp(self) -> None:
        self.directory = Path(self.mktemp())
        self.directory.mkdir()
        self.dataDir = self.directory / "var"
        self.config = self.directory / "mrs.ini"
        self.config.write_text(
            f"[server]\ndata_dir = {self.dataDir}\nserver_names = {', '.join(NAMES)}\n"
            f"[tls]\nkey_type = ec-p256\n"
        )

    def write(self, name: str, data: bytes) -> str:
        path = self.directory / name
        path.write_bytes(data)
        return str(path)

    async def mrs(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = await runCommand(
            ["--config", str(self.config), *argv], reactor, out=out, err=err, actor="cli:alice"
        )
        return code, out.getvalue(), err.getvalue()

    async def test_checkAccepted(self) -> None:
        """
        C{check} exits 0 for a usable pair and prints its details and warnings.
        """
        keyPem, certPem = selfSignedPair(NAMES)
        code, out, err = await self.mrs(
            "tls", "check", self.write("key.pem", keyPem), self.write("cert.pem", certPem)
        )
        self.assertEqual((code, err), (0, ""))
        lines = out.splitlines()
        self.assertEqual(lines[0], "subject:     CN=mrs.example.test")
        self.assertEqual(lines[1], "names:       DNS:mrs.example.test, IP:127.0.0.1")
        self.assertEqual(lines[5], f"SHA-256:     {fingerprintOf(certPem)}")
        self.assertEqual(lines[6], "key:         EC P-256")
        self.assertTrue(
            lines[7].startswith("warning (certificate): The certificate is self-signed")
        )
        self.assertEqual(lines[-1], "accepted: this key and certificate can be installed")

    async def test_checkRejected(self) -> None:
        """
        C{check} exits 1 for a pair that would be rejected, printing each
        problem with its fix; C{--server-name} replaces the configured names.
        """
        keyPem, certPem = noSanPair("MRS Operator")
        code, out, _ = await self.mrs(
            "tls",
            "check",
            self.write("key.pem", keyPem),
            self.write("cert.pem", certPem),
            "--server-name",
            "mrs.example.test",
        )
        self.assertEqual(code, 1)
        errors = [line for line in out.splitlines() if line.startswith("error ")]
        self.assertEqual(
            errors,
            [
                "error (certificate): The certificate is for MRS Operator, not for this "
                "server's host name mrs.example.test; clients will fail host-name checks. Make "
                "a certificate whose subjectAltName contains mrs.example.test, or, if clients "
                "really reach this server as MRS Operator, add that name to server_names in "
                "the configuration."
            ],
        )
        self.assertEqual(out.splitlines()[-1], "rejected: fix the errors above")

    async def test_checkPassphraseFile(self) -> None:
        """
        An encrypted key is checked with C{--passphrase-file}, never a prompt.
        """
        keyPem, certPem = selfSignedPair(NAMES)
        key = serialization.load_pem_private_key(keyPem, None)
        encrypted = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
        keyFile = self.write("key.pem", encrypted)
        certFile = self.write("cert.pem", certPem)
        code, out, _ = await self.mrs("tls", "check", keyFile, certFile)
        self.assertEqual(code, 1)
        self.assertIn("error (passphrase): The private key is protected by a passphrase", out)
        passphrase = self.write("passphrase", b"s3cret\n")
        code, out, _ = await self.mrs(
            "tls", "check", keyFile, certFile, "--passphrase-file", passphrase
        )
        self.assertEqual(code, 0, out)

    async def test_installReachesRunningServer(self) -> None:
        """
        C{install} stores the pair and audit-logs it; a running server
        serves it after its next poll, and a rejected pair changes nothing.
        """
        material = TLSMaterial(
            self.dataDir, NAMES, "1.2", "ec-p256", None, reactor, pollInterval=0.05
        )
        material.startService()
        self.addCleanup(material.stopService)
        await material.whenReady()

        keyPem, certPem = selfSignedPair(NAMES)
        code, out, err = await self.mrs(
            "tls", "install", self.write("key.pem", keyPem), self.write("cert.pem", certPem)
        )
        self.assertEqual((code, err), (0, ""))
        fingerprint = fingerprintOf(certPem)
        self.assertIn(f"installed CN=mrs.example.test (SHA-256 {fingerprint})", out)
        for _ in range(40):
            if material.current.info.sha256 == fingerprint:
                break
            await deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(material.current.info.sha256, fingerprint)

        otherKey, _ = selfSignedPair(NAMES)
        stored = material.files.read()
        code, out, err = await self.mrs(
            "tls", "install", self.write("other.pem", otherKey), self.write("cert.pem", certPem)
        )
        self.assertEqual(code, 1)
        self.assertTrue(err.startswith("error (key): The private key does not belong"))
        self.assertTrue(err.endswith("rejected: nothing was changed\n"))
        self.assertEqual(material.files.read(), stored)

    async def test_csrThenInstallPending(self) -> None:
        """
        C{generate --csr} prints a CSR and keeps its key; C{install
        --pending CERT} installs the signed certificate with that key.
        """
        code, out, err = await self.mrs(
            "tls", "generate", "--csr", "--organization", "Example", "--country", "si"
        )
        self.assertEqual((code, err), (0, ""))
        request = x509.load_pem_x509_csr(out.encode("ascii"))
        self.assertEqual(request.subject.rfc4514_string(), "CN=mrs.example.test,O=Example,C=SI")
        pendingKey = self.dataDir / "tls" / "pending.key"
        self.assertIn(f"The key waits in {pendingKey}.", out)

        key = serialization.load_pem_private_key(pendingKey.read_bytes(), None)
        from datetime import UTC, datetime

        certificate = selfSignedCertificate(key, NAMES, datetime.now(UTC))  # type: ignore[arg-type]
        certPem = certificate.public_bytes(serialization.Encoding.PEM)
        code, out, err = await self.mrs("tls", "install", "--pending", self.write("c.pem", certPem))
        self.assertEqual((code, err), (0, ""))
        self.assertFalse(pendingKey.exists())

        code, out, err = await self.mrs("tls", "show")
        self.assertEqual((code, err), (0, ""))
        self.assertIn(f"SHA-256:     {fingerprintOf(certPem)}", out.splitlines())

    async def test_generateSelfSigned(self) -> None:
        """
        C{generate --self-signed --key-type rsa2048} installs a new pair.
        """
        code, out, err = await self.mrs("tls", "generate", "--self-signed", "--key-type", "rsa2048")
        self.assertEqual((code, err), (0, ""))
        self.assertIn("key:         RSA 2048 bit", out.splitlines())
        keyFile = self.dataDir / "tls" / "server.key"
        self.assertEqual(keyFile.stat().st_mode & 0o777, 0o600)

    async def test_showWithoutFiles(self) -> None:
        """
        C{show} on an empty data directory prints how to make a pair.
        """
        code, out, err = await self.mrs("tls", "show")
        self.assertEqual(code, 1)
        self.assertEqual(
            err,
            f"no TLS key and certificate in {self.dataDir / 'tls'}; start the server once, or "
            f"run 'mrs tls generate' or 'mrs tls install KEY CERT'\n",
        )

    async def test_wrongFileCount(self) -> None:
        """
        C{check} with one file names what it expects.
        """
        code, _, err = await self.mrs("tls", "check", self.write("key.pem", b""))
        self.assertEqual(code, 1)
        self.assertEqual(err, "mrs tls check: expected KEY CERT [CHAIN], got 1 file(s)\n")
