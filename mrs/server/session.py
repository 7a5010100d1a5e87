"""
The client session: one protocol instance per client connection.

L{ClientSession} owns everything every client goes through: the preamble,
hello and version choice, the optional STARTTLS upgrade, login, keepalive
and timeouts.  After a successful login it hands each message over to a
role object, L{mrs.server.roles.DeviceRole} or
L{mrs.server.roles.MonitorRole}, which talk to the hub.

States and the messages legal in each (see docs/protocol.rst):

    HELLO      hello
    AUTH       starttls, login, ping, pong, bye
    LOGGING_IN ping, pong, bye   (a login is being checked)
    DEVICE     announce, location, command_result, media, ping, pong, bye
    MONITOR    list, subscribe, unsubscribe, command, talk media, ping, pong, bye
    CLOSED     nothing

A known message in the wrong state gets a C{not_allowed_now} error and
the connection stays; framing violations, a first frame other than hello
and media before login close the connection.
"""

from __future__ import annotations

import enum
import secrets
from typing import TYPE_CHECKING, Any

from OpenSSL import SSL
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from mrs import __version__
from mrs.relay.hub import controlFrame
from mrs.relay.queue import OutboundQueue
from mrs.server.closelog import CLOSE_FORMAT
from mrs.wire import BadMagic, Decoder, InvalidMessage, MediaFrame, WireError

if TYPE_CHECKING:
    from mrs.server.factory import ClientFactory
    from mrs.server.roles import Role

#: Invalid messages a client may send within INVALID_WINDOW seconds before
#: its connection is closed; each one before that gets an error reply.
MAX_INVALID_MESSAGES = 100
INVALID_WINDOW = 10.0


def describeClose(reason: Failure | None, adminPort: int) -> str:
    """
    Describe why a connection closed in words for the log, turning
    OpenSSL's error tuples into the reason and, where one helps, the fix.
    """
    if reason is None:
        return "closed"
    if reason.check(SSL.Error):
        args = getattr(reason.value, "args", ())
        details = [entry[-1] for entry in (args[0] if args else [])
                   if isinstance(entry, tuple) and entry and entry[-1]]
        text = ", ".join(str(d) for d in details) or "no reason given"
        if "http request" in text:
            return (f"TLS handshake failed: the client sent an HTTP request; the admin web "
                    f"UI is on port {adminPort}")
        return f"TLS handshake failed: {text}"
    return reason.getErrorMessage()


class State(enum.Enum):
    HELLO = "hello"
    AUTH = "auth"
    LOGGING_IN = "logging_in"
    DEVICE = "device"
    MONITOR = "monitor"
    CLOSED = "closed"


LEGAL: dict[State, frozenset[str]] = {
    State.HELLO: frozenset({"hello"}),
    State.AUTH: frozenset({"starttls", "login", "ping", "pong", "bye"}),
    State.LOGGING_IN: frozenset({"ping", "pong", "bye"}),
    State.DEVICE: frozenset({"announce", "location", "command_result", "ping", "pong", "bye"}),
    State.MONITOR: frozenset({"list", "subscribe", "unsubscribe", "command", "ping", "pong",
                              "bye"}),
    State.CLOSED: frozenset(),
}


class ClientSession(Protocol):
    """
    One client connection, from the first byte to the close.

    @ivar encrypted: whether the link is TLS (the TLS port, or after
        STARTTLS).
    @ivar role: the role object after login, else L{None}.
    """

    log = Logger()

    def __init__(self, factory: ClientFactory, tlsPort: bool) -> None:
        self.factory = factory
        self.tlsPort = tlsPort
        self.state = State.HELLO
        self.encrypted = tlsPort
        self.sessionId = secrets.token_hex(4)
        self.address = ""
        self.host = ""
        self.role: Role | None = None
        self.helloRole: str | None = None
        self.queue: OutboundQueue | None = None
        self._decoder: Decoder | None = None
        self._loginTimer: Any = None
        self._keepaliveTimer: Any = None
        self._lastReceived = 0.0
        self._lastSent = 0.0
        self._openedAt = 0.0
        #: Why the server closed a connection that had not logged in.
        self._closeReason: str | None = None
        self._invalidTimes: list[float] = []
        self._suppressedInvalid = 0
        self._lastInvalidWarning = float("-inf")
        self._closing = False
        self._closeTimer: Any = None
        self.principal: Any = None
        #: The client closed on purpose with C{bye}.
        self.sentBye = False
        #: Fires when the connection has closed.
        self.closed: Deferred[None] = Deferred()

    # Connection events

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()  # type: ignore[union-attr]
        host = getattr(peer, "host", "?")
        port = getattr(peer, "port", 0)
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.host = host
        settings = self.factory.settings
        clock = self.factory.reactor
        self._lastReceived = self._lastSent = clock.seconds()
        self._decoder = Decoder(settings.maxFrameSize, expectPreamble=True)
        self.queue = OutboundQueue(
            self.transport, clock, settings.queueLimit, settings.congestionTimeout,
            self._stalled, label=f"{self.sessionId} {self.address}",
        )
        self._loginTimer = clock.callLater(settings.loginTimeout, self._loginTimedOut)
        self._keepaliveTimer = clock.callLater(settings.keepaliveInterval, self._keepalive)
        self._openedAt = self._lastReceived
        self.factory.sessionOpened(self)

    def connectionLost(self, reason: Failure | None = None) -> None:
        previous = self.state
        self.state = State.CLOSED
        for timer in (self._loginTimer, self._keepaliveTimer, self._closeTimer):
            if timer is not None and timer.active():
                timer.cancel()
        if self.queue is not None:
            self.queue.stopProducing()
        if self.role is not None:
            self.role.connectionLost()
        self.factory.sessionClosed(self)
        # One line per connection, written when it ends; the login line
        # marks the start of each logged-in session.  Lines of connections
        # that never logged in are rationed (see mrs.server.closelog).
        port = "TLS" if self.tlsPort else "plaintext"
        duration = self.factory.reactor.seconds() - self._openedAt
        if self._closeReason is not None:
            closeText = self._closeReason
        else:
            closeText = describeClose(reason, self.factory.settings.adminPortNumber)
        if self.principal is None:
            self.factory.earlyCloses.closed(self.sessionId, self.address, self.host, port,
                                            duration, previous.value, closeText)
        else:
            self.log.info(CLOSE_FORMAT, session=self.sessionId, address=self.address,
                          port=port, duration=duration, state=previous.value,
                          reason=closeText)
        self.closed.callback(None)

    # Input

    def dataReceived(self, data: bytes) -> None:
        if self.state is State.CLOSED or self._closing:
            return
        self._lastReceived = self.factory.reactor.seconds()
        assert self._decoder is not None
        try:
            items = self._decoder.feed(data)
        except BadMagic as e:
            self._rejectForeign(e)
            return
        except WireError as e:
            self._reportClose(f"protocol violation: {e}",
                              "connection {session} from {address}: protocol violation: {error}",
                              error=str(e))
            self.fatal(e.code, str(e))
            return
        for index, item in enumerate(items):
            if self._closing:
                return
            if isinstance(item, MediaFrame):
                self._mediaReceived(item)
            elif isinstance(item, InvalidMessage):
                self._invalidMessage(item)
            else:
                upgrading = self._messageReceived(item.toDict())
                if upgrading and (index + 1 < len(items) or self._decoder.bufferedBytes):
                    # Bytes sent in plaintext after STARTTLS could have been
                    # injected by an attacker in the path; never use them.
                    self.fatal("bad_frame", "data followed starttls before the TLS handshake")
                    return

    def _invalidMessage(self, item: InvalidMessage) -> None:
        reply = item.reply().toDict()
        if self.state is State.HELLO:
            self.fatal(reply["code"], reply["message"])
            return
        now = self.factory.reactor.seconds()
        recent = [t for t in self._invalidTimes if t > now - INVALID_WINDOW]
        recent.append(now)
        self._invalidTimes = recent
        if len(recent) > MAX_INVALID_MESSAGES:
            self._reportClose(
                f"sent {len(recent)} invalid messages in {INVALID_WINDOW:g} s",
                "connection {session} from {address} sent {count} invalid messages in "
                "{window:g} s; closing", count=len(recent), window=INVALID_WINDOW)
            self.fatal("bad_frame", f"more than {MAX_INVALID_MESSAGES} invalid messages in "
                                    f"{INVALID_WINDOW:g} seconds")
            return
        if now - self._lastInvalidWarning >= 1.0:
            self.log.warn("connection {session} from {address} sent an invalid message: "
                          "{error} ({suppressed} more since the last warning)",
                          session=self.sessionId, address=self.address,
                          error=reply["message"], suppressed=self._suppressedInvalid)
            self._lastInvalidWarning = now
            self._suppressedInvalid = 0
        else:
            self._suppressedInvalid += 1
        self.sendMessage(reply)

    def _rejectForeign(self, error: BadMagic) -> None:
        if error.kind == "tls":
            port = self.factory.authenticator.tlsPortNumber
            self._reportClose(
                f"sent a TLS ClientHello to the plaintext port.  TLS clients must use the TLS "
                f"port {port}, or send starttls here first",
                "connection {session} from {address} sent a TLS ClientHello to the plaintext "
                "port; closing.  TLS clients must use the TLS port {port}, or send starttls "
                "here first", port=port)
        elif error.kind == "http":
            self._reportClose("sent an HTTP request to the client port",
                              "connection {session} from {address} sent an HTTP request to the "
                              "client port; closing")
            body = (
                "This port speaks the MRS media relay protocol, not HTTP. "
                f"The admin web UI is at https://<server>:{self.factory.settings.adminPortNumber}"
                "/admin\n"
            ).encode()
            self.transport.write(  # type: ignore[union-attr]
                b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n"
                b"Connection: close\r\nContent-Length: " + str(len(body)).encode()
                + b"\r\n\r\n" + body
            )
        else:
            self._reportClose("did not start with the MRS preamble",
                              "connection {session} from {address} did not start with the MRS "
                              "preamble; closing")
            self._writeFrame(controlFrame({"type": "error", "code": error.code,
                                           "message": str(error)}))
        self.closeConnection()

    def _mediaReceived(self, frame: MediaFrame) -> None:
        if self.role is None or not self.role.acceptsMedia:
            self.fatal("not_allowed_now", f"a media frame is not allowed in state "
                                          f"{self.state.value}")
            return
        self.role.mediaReceived(frame)

    def _messageReceived(self, message: dict[str, Any]) -> bool:
        kind = message["type"]
        if self.state is State.HELLO and kind != "hello":
            self.fatal("not_allowed_now", f"the first message must be hello, not {kind}")
            return False
        if kind not in LEGAL[self.state]:
            self.sendError("not_allowed_now",
                           f"{kind} is not allowed in state {self.state.value}", message)
            return False
        if kind == "ping":
            reply: dict[str, Any] = {"type": "pong"}
            if "id" in message:
                reply["id"] = message["id"]
            self.sendMessage(reply)
        elif kind == "pong":
            pass
        elif kind == "bye":
            self.sentBye = True
            self.log.info("connection {session} from {address} said bye: {reason}",
                          session=self.sessionId, address=self.address,
                          reason=message.get("reason", ""))
            self.closeConnection()
        elif kind == "hello":
            self._hello(message)
        elif kind == "starttls":
            return self._startTLS(message)
        elif kind == "login":
            self._login(message)
        else:
            assert self.role is not None
            self.role.messageReceived(message)
        return False

    # Hello and STARTTLS

    def _hello(self, message: dict[str, Any]) -> None:
        offered = message.get("versions", [])
        if 1 not in offered:
            self.fatal("unsupported_version",
                       f"this server speaks protocol version 1; the client offered {offered}")
            return
        self.helloRole = message.get("role")
        self.state = State.AUTH
        settings = self.factory.settings
        self.sendMessage({
            "type": "welcome", "version": 1, "server": f"mrs/{__version__}",
            "starttls": not self.encrypted and self.factory.tlsCreator is not None,
            "encrypted": self.encrypted,
            "limits": {
                "max_frame_size": settings.maxFrameSize,
                "keepalive_interval": settings.keepaliveInterval,
                "idle_timeout": settings.idleTimeout,
                "login_timeout": settings.loginTimeout,
            },
        })

    def _startTLS(self, message: dict[str, Any]) -> bool:
        if self.encrypted:
            self.sendError("already_encrypted", "this link is already encrypted", message)
            return False
        if self.factory.tlsCreator is None:
            self.sendError("not_allowed_now", "TLS is not available on this server", message)
            return False
        self.sendMessage({"type": "starttls_ok"})
        self.transport.startTLS(self.factory.tlsCreator)  # type: ignore[union-attr]
        self.encrypted = True
        self.log.info("connection {session} from {address} upgraded with STARTTLS",
                      session=self.sessionId, address=self.address)
        return True

    # Login

    def _login(self, message: dict[str, Any]) -> None:
        from mrs.server.auth import LoginFailed

        role = "device" if "device" in message else "monitor"
        if self.helloRole is not None and self.helloRole != role:
            self.sendError("bad_message", f"this connection said hello as a {self.helloRole} "
                                          f"but logged in as a {role}", message)
            return
        self.state = State.LOGGING_IN
        d = self.factory.authenticator.authenticate(self, role, message)

        def succeeded(principal: Any) -> None:
            if self.state is not State.LOGGING_IN:
                return
            self._loggedIn(principal, message)

        def failed(failure: Failure) -> None:
            if self.state is not State.LOGGING_IN:
                return
            self.state = State.AUTH
            if failure.check(LoginFailed):
                error: LoginFailed = failure.value  # type: ignore[assignment]
                self.sendError(error.code, error.message, message)
                if error.fatal:
                    self.closeConnection()
            else:
                self.log.failure("login check failed for connection {session}", failure,
                                 session=self.sessionId)
                self.sendError("internal_error", "the login could not be checked; try again",
                               message)

        d.addCallbacks(succeeded, failed).addErrback(
            lambda f: self.log.failure("handling a login result failed", f))

    def _loggedIn(self, principal: Any, message: dict[str, Any]) -> None:
        from mrs.server.roles import DeviceRole, MonitorRole

        if self._loginTimer is not None and self._loginTimer.active():
            self._loginTimer.cancel()
        self.principal = principal
        self.factory.sessionLoggedIn(self, principal.role)
        info = self.linkInfo()
        reply: dict[str, Any] = {"type": "login_ok", "role": principal.role,
                                 "name": principal.name, "session": self.sessionId}
        if "id" in message:
            reply["id"] = message["id"]
        if principal.role == "device":
            self.state = State.DEVICE
            self.sendMessage(reply)
            self.role = DeviceRole(self, principal, info)
        else:
            self.state = State.MONITOR
            token, expires = self.factory.authenticator.issueToken(principal)
            reply["token"] = token
            reply["token_expires"] = expires
            self.sendMessage(reply)
            self.role = MonitorRole(self, principal, info)
        self.log.info(
            "login: {role} {name} from {address} on connection {session}, "
            "{link}", role=principal.role, name=principal.name, address=self.address,
            session=self.sessionId, link=self.describeLink(info))

    def linkInfo(self) -> dict[str, Any]:
        """
        Describe the link for the dashboard: address, encryption, TLS version
        and cipher.
        """
        info: dict[str, Any] = {"address": self.address, "encrypted": self.encrypted,
                                "tlsVersion": None, "cipher": None, "session": self.sessionId}
        if self.encrypted and ISSLTransport.providedBy(self.transport):
            try:
                handle = self.transport.getHandle()  # type: ignore[union-attr, attr-defined]
                info["tlsVersion"] = handle.get_protocol_version_name()
                info["cipher"] = handle.get_cipher_name()
            except Exception:
                self.log.failure("reading the TLS parameters of {session} failed",
                                 session=self.sessionId)
        return info

    @staticmethod
    def describeLink(info: dict[str, Any]) -> str:
        if not info["encrypted"]:
            return "unencrypted"
        return f"encrypted with {info['tlsVersion']} {info['cipher']}"

    # Timers

    def _loginTimedOut(self) -> None:
        self._loginTimer = None
        if self.state in (State.HELLO, State.AUTH, State.LOGGING_IN):
            timeout = self.factory.settings.loginTimeout
            self._reportClose(f"did not log in within {timeout:g} s",
                              "connection {session} from {address} did not log in within "
                              "{timeout} s; closing", timeout=timeout)
            self.fatal("login_timeout", "no login within "
                       f"{self.factory.settings.loginTimeout:g} seconds")

    def _keepalive(self) -> None:
        settings = self.factory.settings
        clock = self.factory.reactor
        self._keepaliveTimer = None
        if self.state is State.CLOSED:
            return
        now = clock.seconds()
        silent = now - self._lastReceived
        if silent >= settings.idleTimeout:
            self._reportClose(f"sent nothing for {silent:.0f} s",
                              "connection {session} from {address} sent nothing for "
                              "{silent:.0f} s; closing", silent=silent)
            self.fatal("idle_timeout", f"nothing received for {settings.idleTimeout:g} seconds",
                       abort=True)
            return
        # Ping a quiet client so that it sends a pong.  Ping a busy device that
        # gets nothing else from us too, or its own idle check would drop us.
        quiet = max(silent, now - self._lastSent)
        if quiet >= settings.keepaliveInterval and self.state is not State.HELLO:
            self.sendMessage({"type": "ping"})
        self._keepaliveTimer = clock.callLater(settings.keepaliveInterval, self._keepalive)

    def _stalled(self) -> None:
        timeout = self.factory.settings.congestionTimeout
        self._reportClose(f"has not read for {timeout:g} s",
                          "connection {session} from {address} has not read for {timeout} s; "
                          "disconnecting it", timeout=timeout)
        self.fatal("congested", "this connection read too slowly and was disconnected",
                   abort=True)

    # Output

    def sendMessage(self, message: dict[str, Any]) -> None:
        """
        Queue a control message for the client.
        """
        self._writeFrame(controlFrame(message))

    def sendFrame(self, data: bytes) -> None:
        """
        Queue an encoded frame for the client.
        """
        self._writeFrame(data)

    def _writeFrame(self, data: bytes) -> None:
        if self.state is State.CLOSED:
            return
        self._lastSent = self.factory.reactor.seconds()
        if self.queue is not None:
            self.queue.sendControl(data)
        else:
            self.transport.write(data)  # type: ignore[union-attr]

    def sendError(self, code: str, message: str, request: dict[str, Any] | None = None) -> None:
        """
        Send an error that does not end the session.
        """
        error: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if request is not None:
            if "id" in request:
                error["id"] = request["id"]
            error["ref"] = request.get("type")
        self.sendMessage(error)

    def fatal(self, code: str, message: str, abort: bool = False,
              closeTimeout: float | None = None) -> None:
        """
        Send an error and close the connection.

        @param abort: close at once, without sending the error.
        @param closeTimeout: seconds the peer has to take the error and
            finish closing before the connection is aborted; the session
            settings' default when L{None}.
        """
        if self._closing or self.state is State.CLOSED:
            return
        if self.principal is None:
            self._noteCloseReason(f"closed by the server: {code}: {message}")
        else:
            # "message" would clash with the key of Twisted's legacy log events.
            self.log.info("closing connection {session} from {address}: {code}: {detail}",
                          session=self.sessionId, address=self.address, code=code,
                          detail=message)
        if not abort:
            self.sendError(code, message)
        self.closeConnection(abort=abort, timeout=closeTimeout)

    def _reportClose(self, reason: str, format: str, **fields: Any) -> None:
        """
        Log why the server is about to close this connection, as a warning
        with C{format} and C{fields}.  Before login, C{reason} goes into the
        connection's close line instead, which L{mrs.server.closelog}
        rations, so that a flood of misbehaving connections cannot flood
        the log.
        """
        if self.principal is None:
            self._noteCloseReason(reason)
        else:
            self.log.warn(format, session=self.sessionId, address=self.address, **fields)

    def _noteCloseReason(self, reason: str) -> None:
        # The first reason is the cause; later ones (the error sent after a
        # warning) only restate it.
        if self._closeReason is None:
            self._closeReason = reason

    def disconnect(self, code: str, message: str) -> None:
        """
        Close the connection with a reason; used by the hub.  A replaced
        device connection is usually half open (a cellular link that went
        away), so it gets little time to take the reason.
        """
        self.fatal(code, message, closeTimeout=0.5 if code == "replaced" else None)

    def closeConnection(self, abort: bool = False, timeout: float | None = None) -> None:
        self._closing = True
        if self.queue is not None and not abort:
            # Queued frames go out first; the transport closes after them.
            self.queue.close()
        transport = self.transport
        if transport is None:
            return
        if abort:
            transport.abortConnection()  # type: ignore[attr-defined]
        else:
            transport.loseConnection()
            if timeout is None:
                timeout = self.factory.settings.closeTimeout
            self._closeTimer = self.factory.reactor.callLater(timeout, self._abortIfOpen)

    def _abortIfOpen(self) -> None:
        if self.state is not State.CLOSED and self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]
