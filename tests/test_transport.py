"""
Tests of mrs.server.transport: the TCP and TLS transports that write at
once.  They run on real sockets on 127.0.0.1, because what they change is
how bytes reach the kernel.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import optionsForClientTLS
from twisted.trial.unittest import TestCase

from mrs.server import transport
from mrs.server.transport import DirectTCPServer, RelayTLSFactory, RelayTLSProtocol, sendDirectly
from mrs.wire import CODEC_H264, TRACK_VIDEO, MediaFrame
from tests.loopback import LoopbackTestCase, sleep
from tests.test_tls_support import HOST, selfSignedPair


class Collector(Protocol):
    """
    Keeps what it receives; C{received} fires once C{expected} bytes came.
    """

    def __init__(self, expected: int = 0) -> None:
        self.data = bytearray()
        self.expected = expected
        self.received: Deferred[bytes] = Deferred()
        self.lost: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if self.expected and len(self.data) >= self.expected and not self.received.called:
            self.received.callback(bytes(self.data))

    def connectionLost(self, reason: Any = None) -> None:
        self.lost.callback(None)


class GreetingServer(Protocol):
    """
    Writes C{factory.greeting} as soon as the connection is made, which on
    a TLS port is before the handshake.
    """

    def connectionMade(self) -> None:
        self.factory.connections.append(self)  # type: ignore[attr-defined]
        self.lost: Deferred[None] = Deferred()
        greeting = self.factory.greeting  # type: ignore[attr-defined]
        if greeting:
            self.transport.write(greeting)  # type: ignore[union-attr]

    def connectionLost(self, reason: Any = None) -> None:
        self.lost.callback(None)


class ListenerMixin:
    """
    Listen on 127.0.0.1 with the server transports; close everything at
    the end of the test.
    """

    def listen(self, tls: bool, greeting: bytes = b"") -> tuple[int, Any, Any]:
        factory = Factory.forProtocol(GreetingServer)
        factory.connections = []  # type: ignore[attr-defined]
        factory.greeting = greeting  # type: ignore[attr-defined]
        keyPem, certPem = selfSignedPair()
        self.certPem = certPem
        if tls:
            creator = _serverCreator(keyPem, certPem)
            port = reactor.listenTCP(0, RelayTLSFactory(creator, False, factory),  # type: ignore[attr-defined]
                                     interface="127.0.0.1")
        else:
            port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
        sendDirectly(port)

        async def close() -> None:
            await port.stopListening()
            for connection in factory.connections:  # type: ignore[attr-defined]
                if not connection.lost.called:
                    connection.transport.abortConnection()
                    await connection.lost

        self.addCleanup(lambda: Deferred.fromCoroutine(close()))  # type: ignore[attr-defined]
        return port.getHost().port, factory, port

    @inlineCallbacks
    def connect(self, port: int, tls: bool, expected: int = 0):  # type: ignore[no-untyped-def]
        endpoint: Any = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        if tls:
            from twisted.internet.ssl import Certificate
            endpoint = wrapClientTLS(
                optionsForClientTLS(HOST, Certificate.loadPEM(self.certPem)), endpoint)
        client = yield connectProtocol(endpoint, Collector(expected))

        def close() -> Deferred[None] | None:
            if not client.lost.called:
                client.transport.abortConnection()
                return client.lost
            return None

        self.addCleanup(close)  # type: ignore[attr-defined]
        return client

    @inlineCallbacks
    def serverSide(self, factory: Any):  # type: ignore[no-untyped-def]
        while not factory.connections:
            yield sleep(0.01)
        return factory.connections[0]


def _serverCreator(keyPem: bytes, certPem: bytes) -> Any:
    from OpenSSL import crypto
    from twisted.internet.ssl import CertificateOptions

    return CertificateOptions(
        privateKey=crypto.load_privatekey(crypto.FILETYPE_PEM, keyPem),
        certificate=crypto.load_certificate(crypto.FILETYPE_PEM, certPem),
    )


class CountingSocket:
    """
    A socket proxy recording the size of every C{send}.
    """

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.sends: list[int] = []

    def send(self, data: Any) -> int:
        sent = self.socket.send(data)
        self.sends.append(sent)
        return sent  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.socket, name)


def countSends(testCase: TestCase, tcp: Any) -> list[int]:
    """
    Record the bytes each C{send()} on C{tcp}'s socket takes, until the end
    of the test.
    """
    proxy = CountingSocket(tcp.socket)
    tcp.socket = proxy
    testCase.addCleanup(setattr, tcp, "socket", proxy.socket)
    return proxy.sends


class DirectTCPTests(ListenerMixin, TestCase):
    @inlineCallbacks
    def test_writeLeavesAtOnce(self):  # type: ignore[no-untyped-def]
        """
        A write with nothing buffered goes to the socket before write
        returns, with nothing left in Twisted's buffer.
        """
        port, factory, _ = self.listen(tls=False)
        client = yield self.connect(port, tls=False, expected=1000)
        server = yield self.serverSide(factory)
        self.assertIsInstance(server.transport, DirectTCPServer)
        server.transport.write(b"m" * 1000)
        self.assertEqual(server.transport._tempDataLen, 0)
        self.assertEqual(server.transport.dataBuffer, b"")
        received = yield client.received
        self.assertEqual(received, b"m" * 1000)

    @inlineCallbacks
    def test_largeWriteKeepsOrder(self):  # type: ignore[no-untyped-def]
        """
        What the kernel does not take is buffered by Twisted, and later
        writes queue behind it instead of overtaking it.
        """
        port, factory, _ = self.listen(tls=False)
        big = os.urandom(64 * 1024 * 1024)
        tail = [b"tail-%d" % i for i in range(10)]
        client = yield self.connect(port, tls=False, expected=len(big) + len(b"".join(tail)))
        server = yield self.serverSide(factory)
        server.transport.write(big)
        self.assertGreater(server.transport._tempDataLen, 0)
        for piece in tail:
            server.transport.write(piece)
        received = yield client.received
        self.assertEqual(received, big + b"".join(tail))

    @inlineCallbacks
    def test_noWriteAfterAbort(self):  # type: ignore[no-untyped-def]
        """
        A write after abortConnection is dropped, as with Twisted's own
        transport: the peer gets the reset and no data.
        """
        port, factory, _ = self.listen(tls=False)
        client = yield self.connect(port, tls=False)
        server = yield self.serverSide(factory)
        server.transport.abortConnection()
        server.transport.write(b"written after the abort")
        yield client.lost
        self.assertEqual(bytes(client.data), b"")

    def test_otherPortsUnchanged(self) -> None:
        """
        Only TCP ports get the direct transport; a UNIX socket port keeps
        its own.
        """
        from twisted.internet import unix

        path = self.mktemp()  # type: ignore[attr-defined]
        port = reactor.listenUNIX(path, Factory.forProtocol(Protocol))  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        sendDirectly(port)
        self.assertIs(port.transport, unix.Server)


class RelayTLSTests(ListenerMixin, TestCase):
    @inlineCallbacks
    def test_largeWriteIsOneTCPWrite(self):  # type: ignore[no-untyped-def]
        """
        A 100 kB write, seven TLS records, leaves in one send() and arrives
        intact.
        """
        port, factory, _ = self.listen(tls=True)
        payload = os.urandom(100_000)
        client = yield self.connect(port, tls=True, expected=len(payload))
        server = yield self.serverSide(factory)
        self.assertIsInstance(server.transport, RelayTLSProtocol)
        # The handshake is complete once the client has its first byte.
        server.transport.write(b"x")
        yield sleep(0.1)
        client.data.clear()
        sizes = countSends(self, server.transport.transport)
        server.transport.write(payload)
        received = yield client.received
        self.assertEqual(received, payload)
        self.assertEqual(len(sizes), 1)
        # Seven records of at most 16 KiB, each with at most 29 bytes of
        # framing and tag.
        self.assertGreater(sizes[0], len(payload))
        self.assertLessEqual(sizes[0], len(payload) + 7 * 29)

    @inlineCallbacks
    def test_writeBeforeHandshake(self):  # type: ignore[no-untyped-def]
        """
        A write made before the handshake is held and sent once it is
        done.
        """
        port, _, _ = self.listen(tls=True, greeting=b"welcome")
        client = yield self.connect(port, tls=True, expected=7)
        received = yield client.received
        self.assertEqual(received, b"welcome")

    @inlineCallbacks
    def test_flushBeyondEstimate(self):  # type: ignore[no-untyped-def]
        """
        When more records wait than the write that made them suggests, the
        layer reads until OpenSSL has none left, still in one send().
        """
        port, factory, _ = self.listen(tls=True, greeting=b"hi")
        payload = os.urandom(300_000)
        client = yield self.connect(port, tls=True, expected=2)
        yield client.received
        server = yield self.serverSide(factory)
        client.data.clear()
        client.expected = len(payload)
        client.received = Deferred()
        sizes = countSends(self, server.transport.transport)
        tls = server.transport
        done = 0
        while done < len(payload):
            done += tls._tlsConnection.send(payload[done:])
        tls._flushRecords(0)
        received = yield client.received
        self.assertEqual(received, payload)
        self.assertEqual(len(sizes), 1)


class ServerListenerTests(LoopbackTestCase):
    @inlineCallbacks
    def test_clientPortsUseRelayTransports(self):  # type: ignore[no-untyped-def]
        """
        The TLS client port wraps its sessions in L{RelayTLSProtocol} over
        L{DirectTCPServer}; the plaintext port uses L{DirectTCPServer}.
        """
        yield self.client(tls=True)
        yield self.client(tls=False)
        sessions = self.server.services["client listeners"].sessions
        while len(sessions) < 2:
            yield sleep(0.01)
        layers = {s.tlsPort: (type(s.transport), type(getattr(s.transport, "transport", None)))
                  for s in sessions}
        self.assertEqual(layers, {True: (RelayTLSProtocol, DirectTCPServer),
                                  False: (DirectTCPServer, type(None))})

    @inlineCallbacks
    def test_frameEncryptedInOneCall(self):  # type: ignore[no-untyped-def]
        """
        With the server's own TLS settings a 100 kB frame takes one
        SSL_write and one send(), and arrives whole.
        """
        client = yield self.client(tls=True)
        client.send({"type": "hello", "versions": [1], "role": "monitor"})
        yield client.waitForMessage("welcome")
        [session] = self.server.services["client listeners"].sessions
        tls = session.transport
        calls: list[int] = []
        sslWrite = transport._SSL_write

        def countingWrite(ssl: Any, data: Any, size: int) -> int:
            calls.append(size)
            return sslWrite(ssl, data, size)  # type: ignore[no-any-return]

        self.patch(transport, "_SSL_write", countingWrite)
        sizes = countSends(self, tls.transport)
        frame = MediaFrame(TRACK_VIDEO, CODEC_H264, 0, 1, 40_000, os.urandom(100_000))
        tls.write(frame.encode())
        yield client.waitFor(lambda: bool(client.frames()))
        self.assertEqual(client.frames(), [frame])
        self.assertEqual(calls, [len(frame.encode())])
        self.assertEqual(len(sizes), 1)

    @inlineCallbacks
    def test_frameWithoutRawCalls(self):  # type: ignore[no-untyped-def]
        """
        Without the OpenSSL bindings the layer falls back to pyOpenSSL's
        API, with the same result on the wire.
        """
        self.patch(transport, "_SSL_write", None)
        client = yield self.client(tls=True)
        client.send({"type": "hello", "versions": [1], "role": "monitor"})
        yield client.waitForMessage("welcome")
        [session] = self.server.services["client listeners"].sessions
        sizes = countSends(self, session.transport.transport)
        frame = MediaFrame(TRACK_VIDEO, CODEC_H264, 0, 1, 40_000, os.urandom(100_000))
        session.transport.write(frame.encode())
        yield client.waitFor(lambda: bool(client.frames()))
        self.assertEqual(client.frames(), [frame])
        self.assertEqual(len(sizes), 1)
