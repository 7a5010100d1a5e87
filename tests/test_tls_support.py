"""
Helpers for the TLS tests: certificates made at run time, a recording
store, and loopback TLS servers and clients.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from zope.interface import implementer

from mrs.tls.generate import generatePrivateKey, selfSignedCertificate
from mrs.tls.validate import fingerprint

HOST = "mrs.example.test"


def requireOpenSSL() -> str:
    """
    Return the path of the openssl command, failing the test (not skipping
    it) when it is missing, because CI installs it.
    """
    path = shutil.which("openssl")
    if path is None:
        raise AssertionError("the openssl command line tool is required: apt-get install openssl")
    return path


def pem(key: Any) -> bytes:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certificatePem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def selfSignedPair(
    names: Sequence[str] = (HOST, "127.0.0.1"), keyType: str = "ec-p256", days: int = 825
) -> tuple[bytes, bytes]:
    """
    Make a key and a valid v3 self-signed certificate with subjectAltName.
    """
    key = generatePrivateKey(keyType)
    certificate = selfSignedCertificate(key, names, datetime.now(UTC), days=days)
    return pem(key), certificatePem(certificate)


def noSanPair(commonName: str = HOST) -> tuple[bytes, bytes]:
    """
    Make an EC key and a v3 self-signed certificate that names the host
    only in its Common Name.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, commonName)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=100))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return pem(key), certificatePem(certificate)


def fingerprintOf(certPem: bytes) -> str:
    return fingerprint(x509.load_pem_x509_certificates(certPem)[0])


class RecordingStore:
    """
    The audit part of the store interface: records entries, or fails when
    told to.
    """

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str, str]] = []
        self.failure: Exception | None = None

    def audit(self, actor: str, action: str, object: str, detail: str = "") -> Deferred[None]:
        if self.failure is not None:
            return fail(self.failure)
        self.entries.append((actor, action, object, detail))
        return succeed(None)


class EchoServer(Protocol):
    def connectionMade(self) -> None:
        self.factory.connections.append(self)  # type: ignore[attr-defined]
        self.lost: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.lost.callback(None)


@implementer(IHandshakeListener)
class RecordingClient(Protocol):
    """
    A TLS client protocol that reports the handshake, echoes and the reason
    the connection closed.
    """

    def __init__(self) -> None:
        self.handshake: Deferred[RecordingClient] = Deferred()
        self.lost: Deferred[None] = Deferred()
        self.reason: Failure | None = None
        self.reply: Deferred[bytes] | None = None

    def handshakeCompleted(self) -> None:
        self.handshake.callback(self)

    def dataReceived(self, data: bytes) -> None:
        if self.reply is not None:
            reply, self.reply = self.reply, None
            reply.callback(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.reason = reason
        if not self.handshake.called:
            self.handshake.errback(reason)
        self.lost.callback(None)

    def echo(self, data: bytes) -> Deferred[bytes]:
        self.reply = Deferred()
        self.transport.write(data)  # type: ignore[union-attr]
        return self.reply

    def peerFingerprint(self) -> str:
        certificate = self.transport.getPeerCertificate()  # type: ignore[union-attr]
        return fingerprint(certificate.to_cryptography())

    @property
    def negotiatedProtocol(self) -> bytes | None:
        return self.transport.negotiatedProtocol  # type: ignore[union-attr, no-any-return]


class LoopbackMixin:
    """
    Start TLS listeners on 127.0.0.1 and connect clients to them, closing
    everything at the end of the test.
    """

    def listen(self, creator: Any) -> int:
        from twisted.internet import reactor

        serverFactory = Factory.forProtocol(EchoServer)
        serverFactory.connections = []  # type: ignore[attr-defined]
        port = reactor.listenTCP(  # type: ignore[attr-defined]
            0, TLSMemoryBIOFactory(creator, False, serverFactory), interface="127.0.0.1"
        )

        async def close() -> None:
            await port.stopListening()
            for connection in serverFactory.connections:  # type: ignore[attr-defined]
                if not connection.lost.called:
                    connection.transport.abortConnection()
                    await connection.lost

        self.addCleanup(lambda: Deferred.fromCoroutine(close()))  # type: ignore[attr-defined]
        return port.getHost().port  # type: ignore[no-any-return]

    async def connect(self, creator: Any, port: int) -> RecordingClient:
        """
        Connect and wait for the handshake; raise the reason the
        connection closed if it did not complete.
        """
        from twisted.internet import reactor

        endpoint = wrapClientTLS(creator, TCP4ClientEndpoint(reactor, "127.0.0.1", port))
        client: RecordingClient = await endpoint.connect(Factory.forProtocol(RecordingClient))

        async def close() -> None:
            if client.reason is None:
                client.transport.abortConnection()  # type: ignore[union-attr]
                await client.lost

        self.addCleanup(lambda: Deferred.fromCoroutine(close()))  # type: ignore[attr-defined]
        return await client.handshake
