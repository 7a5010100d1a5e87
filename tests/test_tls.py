"""
Tests for L{mrs.tls}: the TLS material service over real loopback sockets,
file polling and expiry with a fake clock, and client-side verification.
"""

from __future__ import annotations

import ipaddress
import os
import stat
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL
from twisted.internet import reactor
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IHandshakeListener, IOpenSSLClientConnectionCreator
from twisted.internet.protocol import ClientCreator, Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from mrs.tls import InstallRejected, NotReady, ServedPair, TLSMaterial
from mrs.tls.client import ServerVerificationError, clientCreator, normalizeFingerprint
from mrs.tls.generate import selfSignedCertificate
from mrs.tls.options import INTERMEDIATE_CIPHERS, ServerConnectionCreator
from mrs.tls.storage import StorageError, TLSFiles
from mrs.tls.validate import checkPair
from tests.test_tls_inputs import CA, issueLeaf
from tests.test_tls_support import (
    HOST,
    LoopbackMixin,
    RecordingStore,
    certificatePem,
    fingerprintOf,
    noSanPair,
    selfSignedPair,
)

NAMES = (HOST, "127.0.0.1")


def inline(f: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
    return maybeDeferred(f, *args, **kwargs)


@implementer(IOpenSSLClientConnectionCreator)
class RawClientCreator:
    """
    A client that does not verify the server and speaks only the given TLS
    versions, to probe what the server accepts.
    """

    def __init__(self, minimum: int, maximum: int, alpn: list[bytes] | None = None) -> None:
        self.context = SSL.Context(SSL.TLS_METHOD)
        self.context.set_min_proto_version(minimum)
        self.context.set_max_proto_version(maximum)
        self.context.set_cipher_list(b"ALL:@SECLEVEL=0")
        if alpn:
            self.context.set_alpn_protos(alpn)

    def clientConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        return SSL.Connection(self.context, None)


class MaterialLoopbackTests(LoopbackMixin, TestCase):
    """
    L{TLSMaterial} behind real TLS listeners on 127.0.0.1.
    """

    async def startMaterial(self, minVersion: str = "1.2") -> TLSMaterial:
        self.dataDir = Path(self.mktemp())
        self.store = RecordingStore()
        material = TLSMaterial(self.dataDir, NAMES, minVersion, "ec-p256", self.store, reactor)
        material.startService()
        self.addCleanup(material.stopService)
        await material.whenReady()
        return material

    async def test_firstStartGenerates(self) -> None:
        """
        On first start the service generates a key and a self-signed v3
        certificate for the server names, stores them (key mode 0600) and
        audit-logs it.
        """
        material = await self.startMaterial()
        info = material.current.info
        files = material.files
        self.assertEqual(info.sans, ("DNS:mrs.example.test", "IP:127.0.0.1"))
        self.assertEqual(info.subject, "CN=mrs.example.test")
        self.assertTrue(info.selfSigned)
        self.assertEqual(info.version, 3)
        self.assertEqual(info.keyDescription, "EC P-256")
        self.assertEqual(stat.S_IMODE(os.stat(files.keyPath).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(files.directory).st_mode), 0o700)
        self.assertEqual(fingerprintOf(files.certificatePath.read_bytes()), info.sha256)
        self.assertEqual(len(self.store.entries), 1)
        actor, action, target, detail = self.store.entries[0]
        self.assertEqual((actor, action, target), ("system", "tls.generate", "tls"))
        self.assertIn(f"sha256={info.sha256}", detail)
        self.assertGreater(material.daysToExpiry(), 364)
        self.assertIsNone(material.minVersionWarning)

    async def test_generatedCertificatePassesValidation(self) -> None:
        """
        The generated certificate has no errors and only the self-signed
        warning.
        """
        material = await self.startMaterial()
        keyPem, certPem = material.files.read()
        report = await material.check(keyPem, certPem)
        self.assertTrue(report.accepted)
        self.assertEqual(len(report.warnings), 1)
        self.assertTrue(report.warnings[0].message.startswith("The certificate is self-signed"))

    async def test_installWhileConnected(self) -> None:
        """
        An installed pair is presented from the next handshake on, while an
        open connection keeps working; a bad pair leaves the new one serving
        and the files unchanged.
        """
        material = await self.startMaterial()
        port = self.listen(material.serverCreator([b"mrs/1"]))
        oldFingerprint = material.current.info.sha256
        first = await self.connect(clientCreator(HOST, fingerprint=oldFingerprint), port)
        self.assertEqual(first.peerFingerprint(), oldFingerprint)
        self.assertEqual(await first.echo(b"before"), b"before")

        keyPem, certPem = selfSignedPair(NAMES)
        report = await material.install(keyPem, certPem, actor="alice")
        newFingerprint = fingerprintOf(certPem)
        self.assertEqual(report.info.sha256 if report.info else None, newFingerprint)
        self.assertEqual(material.current.info.sha256, newFingerprint)

        self.assertEqual(await first.echo(b"after"), b"after")
        second = await self.connect(clientCreator(HOST, fingerprint=newFingerprint), port)
        self.assertEqual(second.peerFingerprint(), newFingerprint)

        storedKey, storedCert = material.files.read()
        otherKey, _ = selfSignedPair(NAMES)
        with self.assertRaises(InstallRejected) as caught:
            await material.install(otherKey, certPem, actor="alice")
        self.assertEqual([p.field for p in caught.exception.report.errors], ["key"])
        self.assertEqual(material.files.read(), (storedKey, storedCert))
        third = await self.connect(clientCreator(HOST, fingerprint=newFingerprint), port)
        self.assertEqual(third.peerFingerprint(), newFingerprint)
        self.assertEqual(await first.echo(b"still"), b"still")

        actions = [(e[0], e[1]) for e in self.store.entries]
        self.assertEqual(actions, [("system", "tls.generate"), ("alice", "tls.install")])
        detail = self.store.entries[1][3]
        self.assertIn(f"sha256={newFingerprint}", detail)
        self.assertIn("sans=DNS:mrs.example.test, IP:127.0.0.1", detail)
        self.assertIn(f"previous sha256={oldFingerprint}", detail)

    async def test_installKeepsBackup(self) -> None:
        """
        Installing keeps the replaced pair in a timestamped backup directory.
        """
        material = await self.startMaterial()
        previous = material.files.read()
        keyPem, certPem = selfSignedPair(NAMES)
        await material.install(keyPem, certPem)
        backups = list(material.files.backupRoot.iterdir())
        self.assertEqual(len(backups), 1)
        self.assertRegex(backups[0].name, r"^\d{8}T\d{6}Z$")
        self.assertEqual((backups[0] / "server.key").read_bytes(), previous[0])
        self.assertEqual((backups[0] / "server.crt").read_bytes(), previous[1])
        self.assertEqual(stat.S_IMODE(os.stat(backups[0] / "server.key").st_mode), 0o600)

    async def test_auditFailureRestoresFiles(self) -> None:
        """
        When the audit entry cannot be written, the files go back to the
        previous pair and the served pair does not change.
        """
        material = await self.startMaterial()
        previous = material.files.read()
        oldFingerprint = material.current.info.sha256
        self.store.failure = RuntimeError("database is locked")
        keyPem, certPem = selfSignedPair(NAMES)
        with self.assertRaises(RuntimeError):
            await material.install(keyPem, certPem)
        self.assertEqual(material.files.read(), previous)
        self.assertEqual(material.current.info.sha256, oldFingerprint)

    async def test_firstStartAuditFailure(self) -> None:
        """
        On first start a store that cannot write the audit entry yet does
        not stop the server from serving its generated certificate.
        """
        self.dataDir = Path(self.mktemp())
        store = RecordingStore()
        store.failure = RuntimeError("the store is not open yet")
        material = TLSMaterial(self.dataDir, NAMES, "1.2", "ec-p256", store, reactor)
        material.startService()
        self.addCleanup(material.stopService)
        pair = await material.whenReady()
        self.assertEqual(pair.info.sha256, fingerprintOf(material.files.read()[1]))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    async def test_alpnClient(self) -> None:
        """
        A client that offers ALPN completes the handshake and gets the
        listener's protocol.
        """
        material = await self.startMaterial()
        clientPort = self.listen(material.serverCreator([b"mrs/1"]))
        adminPort = self.listen(material.serverCreator([b"http/1.1"]))
        fingerprint = material.current.info.sha256
        client = await self.connect(clientCreator(HOST, fingerprint=fingerprint), clientPort)
        self.assertEqual(client.negotiatedProtocol, b"mrs/1")
        browser = await self.connect(
            clientCreator(HOST, fingerprint=fingerprint, alpn=[b"h2", b"http/1.1"]), adminPort
        )
        self.assertEqual(browser.negotiatedProtocol, b"http/1.1")

    async def test_startTLS(self) -> None:
        """
        The creator works with C{transport.startTLS} on a plaintext
        connection, as the STARTTLS upgrade on the client port uses it.
        """
        material = await self.startMaterial()
        fingerprint = material.current.info.sha256
        serverCreator = material.serverCreator([b"mrs/1"])

        class UpgradingServer(Protocol):
            def dataReceived(self, data: bytes) -> None:
                if data == b"STARTTLS\n":
                    self.transport.write(b"OK\n")  # type: ignore[union-attr]
                    self.transport.startTLS(serverCreator)  # type: ignore[union-attr]
                else:
                    self.transport.write(data)  # type: ignore[union-attr]

        @implementer(IHandshakeListener)
        class UpgradingClient(Protocol):
            def __init__(self) -> None:
                self.handshake: Deferred[None] = Deferred()
                self.reply: Deferred[bytes] = Deferred()
                self.lost: Deferred[None] = Deferred()

            def connectionMade(self) -> None:
                self.transport.write(b"STARTTLS\n")  # type: ignore[union-attr]

            def dataReceived(self, data: bytes) -> None:
                if data == b"OK\n":
                    self.transport.startTLS(  # type: ignore[union-attr]
                        clientCreator(HOST, fingerprint=fingerprint)
                    )
                    self.transport.write(b"secret")  # type: ignore[union-attr]
                else:
                    self.reply.callback(data)

            def handshakeCompleted(self) -> None:
                self.handshake.callback(None)

            def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
                self.lost.callback(None)

        server = reactor.listenTCP(  # type: ignore[attr-defined]
            0, Factory.forProtocol(UpgradingServer), interface="127.0.0.1"
        )
        self.addCleanup(server.stopListening)
        client = UpgradingClient()
        await ClientCreator(reactor, lambda: client).connectTCP("127.0.0.1", server.getHost().port)
        await client.handshake
        self.assertEqual(await client.reply, b"secret")
        certificate = client.transport.getPeerCertificate()  # type: ignore[union-attr]
        self.assertEqual(
            fingerprintOf(certificate.to_cryptography().public_bytes(serialization.Encoding.PEM)),
            fingerprint,
        )
        client.transport.loseConnection()  # type: ignore[union-attr]
        await client.lost

    async def test_tls11RefusedByDefault(self) -> None:
        """
        With the default minimum of TLS 1.2 a TLS 1.1 client is refused,
        while a TLS 1.2 client is served an intermediate cipher.
        """
        material = await self.startMaterial()
        port = self.listen(material.serverCreator([b"mrs/1"]))
        legacy = RawClientCreator(SSL.TLS1_1_VERSION, SSL.TLS1_1_VERSION)
        with self.assertRaises(SSL.Error):
            await self.connect(legacy, port)
        modern = await self.connect(RawClientCreator(SSL.TLS1_2_VERSION, SSL.TLS1_2_VERSION), port)
        connection = modern.transport._tlsConnection  # type: ignore[union-attr]
        self.assertEqual(connection.get_protocol_version_name(), "TLSv1.2")
        self.assertIn(connection.get_cipher_name(), INTERMEDIATE_CIPHERS.split(":"))

    async def test_minVersion10Accepted(self) -> None:
        """
        With min_tls_version 1.0 the server really completes a TLS 1.0
        handshake (OpenSSL needs security level 0 for it) and warns about it.
        """
        material = await self.startMaterial("1.0")
        port = self.listen(material.serverCreator([b"mrs/1"]))
        for version, name in ((SSL.TLS1_VERSION, "TLSv1"), (SSL.TLS1_1_VERSION, "TLSv1.1")):
            client = await self.connect(RawClientCreator(version, version), port)
            connection = client.transport._tlsConnection  # type: ignore[union-attr]
            self.assertEqual(connection.get_protocol_version_name(), name)
        self.assertIsNotNone(material.minVersionWarning)
        assert material.minVersionWarning is not None
        self.assertTrue(
            material.minVersionWarning.startswith(
                "The minimum TLS version is 1.0, so clients may connect with TLS 1.0"
            )
        )


class ClientVerificationTests(LoopbackMixin, TestCase):
    """
    L{clientCreator} against a server with a known certificate.
    """

    def serve(self, keyPem: bytes, certPem: bytes) -> int:
        report = checkPair(keyPem, certPem, now=_now())
        assert report.privateKey is not None
        pair = ServedPair(report.privateKey, report.certificates, "1.2", certPem)
        return self.listen(ServerConnectionCreator(lambda: pair, [b"mrs/1"]))

    def caFile(self, certPem: bytes) -> str:
        path = Path(self.mktemp())
        path.write_bytes(certPem)
        return str(path)

    async def failure(self, creator: Any, port: int) -> str:
        with self.assertRaises(ServerVerificationError) as caught:
            await self.connect(creator, port)
        return str(caught.exception)

    async def test_caFileSuccess(self) -> None:
        """
        A client trusting the certificate through a CA file connects by host
        name and by IP address.
        """
        keyPem, certPem = selfSignedPair(NAMES)
        port = self.serve(keyPem, certPem)
        caFile = self.caFile(certPem)
        client = await self.connect(clientCreator(HOST, caFile=caFile), port)
        self.assertEqual(client.peerFingerprint(), fingerprintOf(certPem))
        await self.connect(clientCreator("127.0.0.1", caFile=caFile), port)

    async def test_chainSentWithLeaf(self) -> None:
        """
        The server sends the intermediate after its certificate, so a client
        trusting only the root verifies it; the chain arrived with CRLF line
        endings in the intermediate-first order.
        """
        keyPem, leaf = issueLeaf((HOST,))
        intermediate = (CA / "intermediate.pem").read_bytes()
        pasted = (intermediate + certificatePem(leaf)).replace(b"\n", b"\r\n")
        port = self.serve(keyPem, pasted)
        client = await self.connect(clientCreator(HOST, caFile=CA / "root.pem"), port)
        connection = client.transport._tlsConnection  # type: ignore[union-attr]
        chain = connection.get_peer_cert_chain()
        self.assertEqual(
            [c.to_cryptography().subject.rfc4514_string() for c in chain],
            ["CN=mrs.example.test", "CN=MRS Test Intermediate CA,O=MRS Test"],
        )

    async def test_wrongName(self) -> None:
        """
        A host name the certificate does not cover fails, naming the
        expected name, the certificate's names and the fixes.
        """
        keyPem, certPem = selfSignedPair(NAMES)
        port = self.serve(keyPem, certPem)
        message = await self.failure(
            clientCreator("other.example.test", caFile=self.caFile(certPem)), port
        )
        self.assertEqual(
            message,
            "The server certificate is not valid for other.example.test: its subjectAltName "
            "contains only DNS:mrs.example.test, IP:127.0.0.1. Connect with one of those "
            "names, or add other.example.test to the server's server_names and install a "
            "certificate that covers it; to accept this certificate anyway, pin it with "
            f"--fingerprint {fingerprintOf(certPem)}.",
        )

    async def test_noSubjectAltNameFailsClosed(self) -> None:
        """
        A trusted certificate without subjectAltName is refused even for the
        name in its Common Name, because the Common Name is not checked.
        """
        keyPem, certPem = noSanPair(HOST)
        port = self.serve(keyPem, certPem)
        message = await self.failure(clientCreator(HOST, caFile=self.caFile(certPem)), port)
        self.assertEqual(
            message,
            "The server certificate for mrs.example.test has no subjectAltName (its subject "
            "is 'CN=mrs.example.test'), so its host name cannot be checked: this client, like "
            "browsers and service-identity, ignores the Common Name. Re-make the server's "
            "certificate with subjectAltName DNS:mrs.example.test (mrs tls generate does), "
            f"or pin this certificate with --fingerprint {fingerprintOf(certPem)}.",
        )

    async def test_unknownCA(self) -> None:
        """
        A certificate that the CA file does not vouch for fails with
        OpenSSL's reason and the options that fix it.
        """
        keyPem, certPem = selfSignedPair(NAMES)
        _, otherCert = selfSignedPair(NAMES)
        port = self.serve(keyPem, certPem)
        caFile = self.caFile(otherCert)
        message = await self.failure(clientCreator(HOST, caFile=caFile), port)
        self.assertEqual(
            message,
            "The server certificate for mrs.example.test is not trusted: OpenSSL reports "
            "'self-signed certificate' for 'CN=mrs.example.test', issued by "
            f"'CN=mrs.example.test', which the CA file {caFile} does not vouch for. Pass the "
            "CA certificate that issued the server's certificate (or the server's "
            "self-signed certificate) with --ca-file, or pin the server's certificate with "
            "--fingerprint.",
        )

    async def test_pinnedFingerprint(self) -> None:
        """
        A pinned fingerprint accepts the server whatever its names, and a
        different fingerprint is refused with both values.
        """
        keyPem, certPem = noSanPair("MRS Operator")
        port = self.serve(keyPem, certPem)
        actual = fingerprintOf(certPem)
        client = await self.connect(
            clientCreator(HOST, fingerprint=actual.replace(":", "").lower()), port
        )
        self.assertEqual(client.peerFingerprint(), actual)
        wrong = "00:" * 31 + "00"
        message = await self.failure(clientCreator(HOST, fingerprint=wrong), port)
        self.assertEqual(
            message,
            f"The server mrs.example.test presented a certificate with SHA-256 fingerprint "
            f"{actual}, but --fingerprint pins {wrong}. If the server's certificate was "
            f"replaced on purpose, pin the new fingerprint (shown by mrs tls show on the "
            f"server); otherwise something else is answering for mrs.example.test.",
        )


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


class FingerprintTests(SynchronousTestCase):
    def test_normalize(self) -> None:
        """
        Fingerprints are accepted with or without colons, in any case.
        """
        compact = "ab" * 32
        self.assertEqual(normalizeFingerprint(compact), ":".join(["AB"] * 32))
        prefixed = "SHA256:" + ":".join(["ab"] * 32)
        self.assertEqual(normalizeFingerprint(prefixed), ":".join(["AB"] * 32))

    def test_invalid(self) -> None:
        """
        A fingerprint of the wrong length is rejected with the command that
        prints the right one.
        """
        with self.assertRaises(ValueError) as caught:
            normalizeFingerprint("AB:CD")
        self.assertEqual(
            str(caught.exception),
            "fingerprint 'AB:CD' is invalid; expected the SHA-256 fingerprint as 64 hex "
            "digits, such as the output of: openssl x509 -noout -fingerprint -sha256 -in "
            "cert.pem",
        )


class MaterialClockTests(SynchronousTestCase):
    """
    L{TLSMaterial} with a fake reactor and file and crypto work run inline.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.clock.advance(time.time())
        self.dataDir = Path(self.mktemp())
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def material(self) -> TLSMaterial:
        material = TLSMaterial(
            self.dataDir, NAMES, "1.2", "ec-p256", None, self.clock, runInThread=inline
        )
        material.startService()
        self.addCleanup(material.stopService)
        return material

    def messages(self, level: str) -> list[str]:
        from twisted.logger import formatEvent

        return [formatEvent(e) for e in self.events if e["log_level"].name == level]

    def writeFiles(self, keyPem: bytes, certPem: bytes) -> None:
        # Another process, such as "mrs tls install", writing the files.
        TLSFiles(self.dataDir).write(keyPem, certPem, _now())

    def test_notReady(self) -> None:
        """
        Before loading, L{TLSMaterial.current} raises L{NotReady}.
        """
        material = TLSMaterial(self.dataDir, NAMES, "1.2", "ec-p256", None, self.clock)
        self.assertRaises(NotReady, lambda: material.current)

    def test_reloadChangedFiles(self) -> None:
        """
        Files changed by another process are served after the next poll.
        """
        material = self.material()
        self.assertEqual(len(self.successResultOf(material.whenReady()).info.sha256), 95)
        keyPem, certPem = selfSignedPair(NAMES)
        self.writeFiles(keyPem, certPem)
        self.clock.advance(1.9)
        self.assertNotEqual(material.current.info.sha256, fingerprintOf(certPem))
        self.clock.advance(0.1)
        self.assertEqual(material.current.info.sha256, fingerprintOf(certPem))

    def test_badChangedFilesKeepOldPair(self) -> None:
        """
        Unusable files written by another process are logged and the
        current pair stays.
        """
        material = self.material()
        serving = material.current.info.sha256
        otherKey, _ = selfSignedPair(NAMES)
        _, certPem = selfSignedPair(NAMES)
        self.writeFiles(otherKey, certPem)
        self.clock.advance(2)
        self.assertEqual(material.current.info.sha256, serving)
        warnings = self.messages("warn")
        self.assertTrue(
            any(m.startswith("The changed TLS files in") and serving in m for m in warnings),
            warnings,
        )

    def test_expiryWarningDaily(self) -> None:
        """
        A certificate that expires within 30 days is logged once at start
        and again each day.
        """
        self.writeFiles(*selfSignedPair(NAMES, days=10))
        material = self.material()
        self.assertTrue(9.99 < material.daysToExpiry() <= 10, material.daysToExpiry())
        expiring = [m for m in self.messages("warn") if "expires in 9 days" in m]
        self.assertEqual(len(expiring), 1)
        self.clock.advance(86400)
        expiring = [m for m in self.messages("warn") if "expires in 8 days" in m]
        self.assertEqual(len(expiring), 1)

    def test_onlyOneFile(self) -> None:
        """
        A key without its certificate stops the start with a message that
        names both files.
        """
        files = TLSFiles(self.dataDir)
        files.ensureDirectory()
        files.keyPath.write_bytes(b"")
        material = self.material()
        failure = self.failureResultOf(material.whenReady())
        self.assertEqual(len(self.flushLoggedErrors(StorageError)), 1)
        self.assertIn(
            f"{files.certificatePath} is missing but {files.keyPath} exists", str(failure.value)
        )
        self.assertIsInstance(failure, Failure)

    def test_encryptedStoredKeyNeverPrompts(self) -> None:
        """
        An encrypted key placed in the data directory by hand stops the
        start with the passphrase message instead of an OpenSSL prompt on
        the terminal.
        """
        keyPem, certPem = selfSignedPair(NAMES)
        key = serialization.load_pem_private_key(keyPem, None)
        encrypted = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
        self.writeFiles(encrypted, certPem)
        material = self.material()
        failure = self.failureResultOf(material.whenReady())
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertIn("The private key is protected by a passphrase", str(failure.value))

    def test_csrThenInstallPending(self) -> None:
        """
        A CSR keeps its key in the data directory; installing the signed
        certificate with an empty key uses that key and removes it.
        """
        material = self.material()
        result = self.successResultOf(material.generate("ec-p256", selfSigned=False))
        assert result.requestPem is not None
        request = x509.load_pem_x509_csr(result.requestPem)
        self.assertEqual(
            request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value,
            x509.SubjectAlternativeName(
                [x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
        )
        pendingKey = material.files.pendingKeyPath
        self.assertEqual(stat.S_IMODE(os.stat(pendingKey).st_mode), 0o600)
        # Sign the request as a CA would (self-signed here, with the pending key).
        key = serialization.load_pem_private_key(pendingKey.read_bytes(), None)
        certificate = selfSignedCertificate(key, NAMES, _now())  # type: ignore[arg-type]
        certPem = certificate.public_bytes(serialization.Encoding.PEM)
        report = self.successResultOf(material.install(b"", certPem))
        self.assertTrue(report.accepted)
        self.assertFalse(pendingKey.exists())
        self.assertEqual(material.current.info.sha256, fingerprintOf(certPem))


class MissingCAFileTests(SynchronousTestCase):
    def test_missingCAFile(self) -> None:
        """
        A CA file that does not exist is named with what to pass instead.
        """
        from mrs.tls.client import clientCreator

        with self.assertRaises(ValueError) as caught:
            clientCreator("cams.example.test", caFile="/nonexistent/server.crt")
        self.assertEqual(str(caught.exception),
                         "CA file /nonexistent/server.crt not found; pass the server's "
                         "certificate (DATA_DIR/tls/server.crt on the server, or the download "
                         "on the admin page Server Authentication) or the CA that issued it")
