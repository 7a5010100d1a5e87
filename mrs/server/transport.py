"""
Transports tuned for relaying media to many monitors.

A relayed frame is written once per monitor, so the cost of one write is
paid tens of times per frame.  Twisted's stock transports favour many small
writes.  Its TLS layer delays each write to the next reactor pass and then
encrypts it in 16 KiB slices, each read out of OpenSSL and handed to TCP
separately.  Its TCP layer always buffers and waits for the reactor to
report the socket writable.  Profiles of the fan-out benchmark put most of
the server's time there (see docs/benchmarks.rst).

The classes here do the same work with fewer steps:

 - L{RelayTLSProtocol} encrypts a write at once, as a whole, and hands the
   resulting records to TCP in one piece;
 - L{DirectTCPServer} sends on the socket at once when nothing is waiting
   in its buffer, and falls back to Twisted's buffering when the kernel
   takes only part of the data.

The server's writers already hand over whole frames, so holding writes back
to gather them would only add latency and copies.  Flow control does not
change: a full socket still buffers in Twisted and pauses the producer.
Connections upgraded with STARTTLS keep Twisted's TLS layer, which Twisted
builds itself, over the direct TCP writes.
"""

from __future__ import annotations

from typing import Any

from OpenSSL.SSL import Error, WantReadError
from twisted.internet import _newtls, tcp
from twisted.internet.abstract import FileDescriptor
from twisted.protocols.policies import ProtocolWrapper
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.python.failure import Failure


def _findRawCalls() -> tuple[Any, Any, Any]:
    # pyOpenSSL's send() and bio_read() add Python work to every frame and
    # monitor: argument checks, an error lookup after every call, and a
    # fresh buffer and a copy per read.  The relay's write path therefore
    # calls SSL_write and BIO_read through the bindings pyOpenSSL itself
    # uses, as mrs.tls.options does for settings pyOpenSSL has no API for.
    # Alternating with pyOpenSSL's API over four rounds of bench/'s fan-out
    # to 50 monitors, this cut the server's CPU per GB by 15%.  Without
    # those bindings, or without the private attributes it reads,
    # RelayTLSProtocol uses pyOpenSSL's API.
    try:
        from OpenSSL._util import ffi, lib

        return ffi, lib.SSL_write, lib.BIO_read
    except (ImportError, AttributeError):
        return None, None, None


_ffi, _SSL_write, _BIO_read = _findRawCalls()


#: Extra room read out of OpenSSL per written byte: TLS 1.3 adds 22 bytes
#: to each record of up to 16 KiB, TLS 1.2 with AES-GCM 29.
_RECORD_OVERHEAD = 4096

#: The buffer the relay's write path reads records into.  It grows to the
#: largest frame relayed (at most max_frame_size plus the records' framing)
#: and stays that size.  One is enough because only the reactor thread
#: writes.
_scratch: Any = _ffi.new("char[]", 65536) if _ffi is not None else None


def _sendNow(connection: tcp.Server, data: Any) -> None:
    """
    Write C{data} (bytes, or a buffer the caller reuses) on C{connection}'s
    socket at once if nothing is waiting in its buffer.  Twisted's buffer
    keeps a copy of the rest, or of all of it.
    """
    if (len(data) and not connection._tempDataBuffer
            and connection.offset == len(connection.dataBuffer)
            and connection.connected and not connection._writeDisconnected
            and not connection._aborting):
        try:
            sent = connection.socket.send(data)
        except OSError:
            # Full (EAGAIN), interrupted, or lost: Twisted's buffer and its
            # next doWrite deal with each, lost connections included.
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    # Slicing copies a reused buffer, and bytes() of bytes is the same object.
    FileDescriptor.write(connection, bytes(data))


class _DirectBypass:
    """
    The methods a STARTTLS layer uses to reach the socket under it: plain
    Twisted ones, except that writes go out at once.
    """

    write = staticmethod(_sendNow)
    writeSequence = FileDescriptor.writeSequence
    loseConnection = FileDescriptor.loseConnection
    registerProducer = FileDescriptor.registerProducer
    unregisterProducer = FileDescriptor.unregisterProducer


class DirectTCPServer(tcp.Server):
    """
    A TCP server connection whose writes go to the socket at once while
    nothing is buffered, instead of waiting for the next reactor pass.
    After STARTTLS, the TLS layer's records take the same path.
    """

    def write(self, data: bytes) -> None:
        if self.TLS:
            super().write(data)
        else:
            _sendNow(self, data)

    def startTLS(self, ctx: Any, normal: bool = True) -> None:
        _newtls.startTLS(self, ctx, normal, _DirectBypass)


def sendDirectly(port: Any) -> None:
    """
    Make the TCP listening C{port} build L{DirectTCPServer} connections.
    Ports of other kinds (UNIX sockets, systemd-provided descriptors of
    other types) keep their own transports.
    """
    if isinstance(port, tcp.Port) and port.transport is tcp.Server:
        port.transport = DirectTCPServer


class RelayTLSProtocol(TLSMemoryBIOProtocol):
    """
    A server-side TLS layer that encrypts each write at once and passes its
    records to the transport in a single write.
    """

    #: OpenSSL's SSL object and outgoing memory BIO of the connection, for
    #: the raw calls of L{write}; None where pyOpenSSL's API must be used.
    _ssl: Any = None
    _outgoing: Any = None

    def makeConnection(self, transport: Any) -> None:
        # Twisted's version declares the transport's interfaces on this
        # object one at a time, each call replacing the one before, and then
        # all at once in ProtocolWrapper.makeConnection.  The single
        # declaration has the same result and saves a few percent of the
        # CPU time of a handshake.
        if not self._connectWrapped:
            super().makeConnection(transport)
            return
        self._tlsConnection = connection = self.factory._creatorCallable(self)
        self._ssl = getattr(connection, "_ssl", None)
        self._outgoing = getattr(connection, "_from_ssl", None)
        self._appSendBuffer = []
        ProtocolWrapper.makeConnection(self, transport)
        self._checkHandshakeStatus()

    def write(self, data: bytes) -> None:
        tcp = self.transport
        if (_SSL_write is None or self._outgoing is None or self._ssl is None
                or not self._handshakeDone or self._appSendBuffer or self.disconnecting
                or self._lostTLSConnection or type(tcp) is not DirectTCPServer
                or type(data) is not bytes or not data):
            super().write(data)
            return

        # The relay's path for each frame and monitor: encrypt the whole
        # frame (server contexts turn off partial writes), read the records
        # into a reused buffer and send them from there.
        size = len(data)
        written = _SSL_write(self._ssl, _ffi.from_buffer(data), size)
        if written != size:
            # A partial write (a context with partial writes on) continues,
            # and an error is repeated, through pyOpenSSL's path, which
            # raises and handles it.  Either way the records already in the
            # memory BIO go out first.
            super().write(data[written:] if written > 0 else data)
            return

        global _scratch
        room = size + (size >> 9) + _RECORD_OVERHEAD
        if len(_scratch) < room:
            _scratch = _ffi.new("char[]", room)
        got = _BIO_read(self._outgoing, _scratch, room)

        if got == room:
            # The memory BIO contains more than this write made: read the rest
            # through pyOpenSSL.
            records = _ffi.buffer(_scratch, got)[:]
            self._flushRecords(0, records)
            return
        if got > 0:
            _sendNow(tcp, _ffi.buffer(_scratch, got))

    def _write(self, bytes: bytes) -> None:  # noqa: A002 (the overridden name)
        if self._lostTLSConnection:
            return
        connection = self._tlsConnection
        view = memoryview(bytes)
        total = len(view)
        done = 0
        try:
            # Partial-write mode returns after each record.
            while done < total:
                done += connection.send(view[done:])
        except WantReadError:
            # Not ready for application data (a handshake is in progress);
            # Twisted resends the rest once it is.
            self._flushRecords(done)
            self._bufferedWrite(bytes[done:])
            return
        except Error:
            self._tlsShutdownFinished(Failure())
            return
        self._flushRecords(done)

    def _flushRecords(self, written: int, first: bytes = b"") -> None:
        """
        Hand everything OpenSSL has encrypted to the transport in one write.
        C{written} is the number of application bytes just encrypted;
        C{first} contains records already read out.
        """
        connection = self._tlsConnection
        # One read of the expected size empties the memory BIO in the usual
        # case.  A read that fills the buffer means more may wait.
        size = written + (written >> 9) + _RECORD_OVERHEAD
        try:
            data = connection.bio_read(size)
        except WantReadError:
            if not first:
                return
            data = b""
        if first or len(data) == size:
            chunks = [first, data]
            while True:
                try:
                    chunks.append(connection.bio_read(size))
                except WantReadError:
                    break
            data = b"".join(chunks)
        self.transport.write(data)  # type: ignore[union-attr]

    def _flushSendBIO(self) -> None:
        # Handshake messages, alerts and session tickets can exceed the
        # 32 KiB that Twisted reads at once (long certificate chains).
        self._flushRecords(0)

    def writeSequence(self, iovec: Any) -> None:
        self.write(b"".join(iovec))


class RelayTLSFactory(TLSMemoryBIOFactory):
    """
    Wraps a server factory's connections in L{RelayTLSProtocol}.
    """

    protocol = RelayTLSProtocol
