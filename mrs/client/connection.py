"""
The client side of one MRS connection, and reconnecting with backoff.

L{ClientSession} speaks the parts of the protocol every client shares: the
preamble and hello, the optional STARTTLS upgrade, login, keepalive pings
and the dispatch of everything after login to its owner, a L{BaseClient}
subclass.  L{BaseClient} keeps one session alive through
L{twisted.application.internet.ClientService}: it reconnects with
exponential backoff and jitter, prints one line per retry, and gives up
for good on errors that a retry cannot fix (wrong credentials, an
untrusted certificate) or after a set number of failed attempts.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import error as netError
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from mrs import __version__
from mrs.wire import (
    FATAL_ERROR_CODES,
    PREAMBLE,
    SUPPORTED_VERSIONS,
    Bye,
    Decoder,
    ErrorMessage,
    Hello,
    InvalidMessage,
    Login,
    LoginOk,
    MediaFrame,
    Message,
    Ping,
    Pong,
    StartTLS,
    StartTLSOk,
    Welcome,
    WireError,
    encodeMessage,
)

#: The default client ports: plaintext with STARTTLS, and TLS.
DEFAULT_PORT = 12650
DEFAULT_TLS_PORT = 12651

#: Largest frame accepted from the server, in bytes.  The server relays
#: device frames up to its own limit (8 MiB by default) plus headers.
MAX_SERVER_FRAME = 64 * 1024 * 1024

SECURITY_TLS = "tls"
SECURITY_STARTTLS = "starttls"
SECURITY_PLAINTEXT = "plaintext"

#: Error codes in reply to hello or login after which reconnecting
#: cannot help.
LOGIN_PERMANENT_ERRORS = frozenset({
    "auth_failed", "tls_required", "unsupported_version", "account_disabled",
    "credentials_changed", "bad_message",
})

#: Error codes that end a logged-in session for good: another connection
#: took over the device, or an administrator changed the account.
SESSION_PERMANENT_ERRORS = frozenset({"replaced", "account_disabled", "credentials_changed"})


class ClientError(Exception):
    """
    The client stopped for good; the message is one line for the user and
    names the fix where there is one.
    """


@dataclass(frozen=True)
class ServerAddress:
    """
    The host and port of the server.
    """

    host: str
    port: int

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def parseServer(text: str, security: str) -> ServerAddress:
    """
    Parse C{HOST}, C{HOST:PORT}, C{[V6ADDRESS]} or C{[V6ADDRESS]:PORT}.
    Without a port, the TLS port 12651 is used for C{security="tls"} and
    the plaintext port 12650 otherwise.

    @raise ValueError: for an empty host or an invalid port.
    """
    text = text.strip()
    port: str | None = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"invalid server {text!r}; use HOST, HOST:PORT or [IPV6]:PORT")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host = text
    if not host:
        raise ValueError(f"invalid server {text!r}: the host is empty; use HOST or HOST:PORT")
    if port is None:
        return ServerAddress(host, DEFAULT_TLS_PORT if security == SECURITY_TLS else DEFAULT_PORT)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid port {port!r} in server {text!r}; use a number from 1 to 65535")
    return ServerAddress(host, int(port))


@dataclass(frozen=True)
class ConnectOptions:
    """
    How to reach and trust the server.

    @ivar security: L{SECURITY_TLS} (TLS from the first byte),
        L{SECURITY_STARTTLS} (upgrade on the plaintext port) or
        L{SECURITY_PLAINTEXT} (no encryption, only when asked for).
    @ivar caFile: PEM file of the CA (or the server's self-signed
        certificate) to verify the server against.
    @ivar fingerprint: SHA-256 fingerprint of the server certificate to pin.
    @ivar retries: failed connection attempts in a row before giving up;
        L{None} retries forever.
    @ivar initialDelay: seconds before the first retry; each further retry
        waits C{factor} times longer, up to C{maxDelay}, plus up to one
        second of random jitter.
    """

    server: ServerAddress
    security: str = SECURITY_TLS
    caFile: str | None = None
    fingerprint: str | None = None
    clientName: str = f"mrs-client/{__version__}"
    retries: int | None = None
    initialDelay: float = 1.0
    maxDelay: float = 30.0
    factor: float = 2.0
    keepaliveInterval: float = 10.0
    idleTimeout: float = 30.0

    def tlsCreator(self) -> Any:
        """
        Return the client TLS connection creator that verifies the server.

        @raise ValueError: for an invalid fingerprint or an unreadable CA
            file.
        """
        from mrs.tls.client import clientCreator

        return clientCreator(self.server.host, caFile=self.caFile, fingerprint=self.fingerprint)


class State(enum.Enum):
    HELLO = "hello"
    STARTTLS = "starttls"
    AUTH = "auth"
    READY = "ready"
    CLOSED = "closed"


class ClientSession(Protocol):
    """
    One connection to the server, from the preamble to the close.

    @ivar state: the L{State}.
    @ivar encrypted: whether the link is TLS.
    @ivar welcome: the server's L{Welcome}, once received.
    @ivar lostReason: a one-line description of why the connection ended,
        when the protocol has a better reason than the transport.
    """

    log = Logger()

    def __init__(self, owner: BaseClient) -> None:
        self.owner = owner
        self.options = owner.options
        self.reactor = owner.reactor
        self.state = State.HELLO
        self.encrypted = self.options.security == SECURITY_TLS
        self.welcome: Welcome | None = None
        self.lostReason: str | None = None
        self.permanentError: ClientError | None = None
        self._decoder = Decoder(MAX_SERVER_FRAME, expectPreamble=False)
        self._lastReceived = 0.0
        self._lastSent = 0.0
        self._keepaliveTimer: Any = None
        self._pingCount = 0

    # Connection events

    def connectionMade(self) -> None:
        now = self.reactor.seconds()
        self._lastReceived = self._lastSent = now
        hello = Hello(versions=SUPPORTED_VERSIONS, role=self.owner.role,
                      client=self.options.clientName)
        self.transport.write(PREAMBLE + encodeMessage(hello))  # type: ignore[union-attr]
        self._scheduleKeepalive()

    def connectionLost(self, reason: Failure | None = None) -> None:
        if reason is None:
            reason = Failure(netError.ConnectionDone())
        previous = self.state
        self.state = State.CLOSED
        if self._keepaliveTimer is not None and self._keepaliveTimer.active():
            self._keepaliveTimer.cancel()
        self._keepaliveTimer = None
        self.owner.sessionLost(self, reason, previous)

    # Input

    def dataReceived(self, data: bytes) -> None:
        if self.state is State.CLOSED:
            return
        self._lastReceived = self.reactor.seconds()
        try:
            items = self._decoder.feed(data)
        except WireError as e:
            self.log.warn("the server broke the protocol: {error}", error=str(e))
            self.lostReason = f"the server sent an invalid frame: {e}"
            self.abort()
            return
        for item in items:
            if self.state is State.CLOSED:
                return
            if isinstance(item, MediaFrame):
                self.owner.frameReceived(self, item)
            elif isinstance(item, InvalidMessage):
                self.log.warn("ignoring an invalid message from the server: {error}",
                              error=str(item.error))
            else:
                self._messageReceived(item)

    def _messageReceived(self, message: Message) -> None:
        if isinstance(message, Ping):
            self.send(Pong(id=message.id))
        elif isinstance(message, Pong):
            pass
        elif isinstance(message, Bye):
            self.lostReason = f"the server closed the connection: {message.reason or 'bye'}"
        elif isinstance(message, ErrorMessage) and self.state is not State.READY:
            self._errorBeforeLogin(message)
        elif isinstance(message, Welcome) and self.state is State.HELLO:
            self._welcomed(message)
        elif isinstance(message, StartTLSOk) and self.state is State.STARTTLS:
            self._startTLS()
        elif isinstance(message, LoginOk) and self.state is State.AUTH:
            self.state = State.READY
            self.owner.sessionReady(self, message)
        elif self.state is State.READY:
            if isinstance(message, ErrorMessage) and message.code in FATAL_ERROR_CODES:
                self.lostReason = f"the server closed the connection: {message.message}"
                if message.code in SESSION_PERMANENT_ERRORS:
                    self.permanentError = ClientError(
                        f"the server ended the session: {message.message} ({message.code})")
            self.owner.messageReceived(self, message)
        else:
            self.log.warn("ignoring {type} from the server in state {state}",
                          type=message.TYPE, state=self.state.value)

    def _welcomed(self, welcome: Welcome) -> None:
        self.welcome = welcome
        limits = welcome.limits
        if limits.keepaliveInterval > 0:
            self._keepaliveInterval = limits.keepaliveInterval
        security = self.options.security
        if security == SECURITY_STARTTLS and not welcome.encrypted:
            if not welcome.starttls:
                self._fail(ClientError(
                    f"server {self.options.server} does not offer STARTTLS; connect to its "
                    f"TLS port ({DEFAULT_TLS_PORT} by default) without --starttls"))
                return
            self.state = State.STARTTLS
            self.send(StartTLS())
            return
        self._login()

    def _startTLS(self) -> None:
        try:
            creator = self.owner.tlsCreator()
        except ValueError as e:
            self._fail(ClientError(str(e)))
            return
        self.transport.startTLS(creator)  # type: ignore[union-attr]
        self.encrypted = True
        # The login waits in the TLS buffer until the handshake has
        # verified the server, so it never leaves in the clear.
        self._login()

    def _login(self) -> None:
        self.state = State.AUTH
        self.send(Login(**self.owner.credentials))

    def _errorBeforeLogin(self, error: ErrorMessage) -> None:
        if error.code == "auth_failed":
            self._fail(ClientError(f"login failed: {error.message}"))
        elif error.code == "tls_required":
            self._fail(ClientError(
                f"login failed: {error.message} (use --starttls, or the TLS port without "
                f"--plaintext)"))
        elif error.code in LOGIN_PERMANENT_ERRORS:
            self._fail(ClientError(f"login failed: {error.message} ({error.code})"))
        else:
            # throttled, login_timeout, server_shutdown, internal_error: a
            # later attempt may work.
            self.lostReason = f"the server refused the login: {error.message} ({error.code})"
            self.transport.loseConnection()  # type: ignore[union-attr]

    def _fail(self, problem: ClientError) -> None:
        self.permanentError = problem
        self.lostReason = str(problem)
        self.send(Bye(reason="giving up"))
        self.transport.loseConnection()  # type: ignore[union-attr]

    # Output

    def send(self, message: Message) -> None:
        """
        Send one control message.
        """
        if self.state is State.CLOSED or self.transport is None:
            return
        self._lastSent = self.reactor.seconds()
        self.transport.write(encodeMessage(message))

    def sendFrame(self, frame: MediaFrame) -> None:
        """
        Send one media frame.
        """
        if self.state is State.CLOSED or self.transport is None:
            return
        self._lastSent = self.reactor.seconds()
        self.transport.write(frame.encode())

    def close(self, reason: str = "done") -> None:
        """
        Say bye and close the connection after what is queued.
        """
        if self.state is State.CLOSED or self.transport is None:
            return
        self.send(Bye(reason=reason))
        self.transport.loseConnection()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    # Keepalive

    _keepaliveInterval: float = 0.0

    def _scheduleKeepalive(self) -> None:
        interval = self._keepaliveInterval or self.options.keepaliveInterval
        self._keepaliveTimer = self.reactor.callLater(interval, self._keepalive)

    def _keepalive(self) -> None:
        self._keepaliveTimer = None
        if self.state is State.CLOSED:
            return
        now = self.reactor.seconds()
        idleTimeout = self.options.idleTimeout
        if self.welcome is not None:
            idleTimeout = max(idleTimeout, self.welcome.limits.idleTimeout)
        silent = now - self._lastReceived
        if silent >= idleTimeout:
            self.lostReason = f"the server sent nothing for {silent:.0f} s"
            self.log.warn("the server sent nothing for {silent:.0f} s; reconnecting",
                          silent=silent)
            self.abort()
            return
        interval = self._keepaliveInterval or self.options.keepaliveInterval
        if now - self._lastSent >= interval and self.state is not State.HELLO:
            self._pingCount += 1
            self.send(Ping(id=f"k{self._pingCount}"))
        self._scheduleKeepalive()


class _SessionFactory(Factory):
    def __init__(self, owner: BaseClient) -> None:
        self.owner = owner

    def buildProtocol(self, addr: Any) -> ClientSession:
        return ClientSession(self.owner)


@implementer(IStreamClientEndpoint)
class _RecordingEndpoint:
    """
    An endpoint wrapper that remembers why the last attempt failed, for
    the retry message.
    """

    def __init__(self, endpoint: Any, record: Callable[[Failure], None]) -> None:
        self._endpoint = endpoint
        self._record = record

    def connect(self, factory: Any) -> Deferred[Any]:
        d: Deferred[Any] = self._endpoint.connect(factory)

        def failed(failure: Failure) -> Failure:
            self._record(failure)
            return failure

        return d.addErrback(failed)


def describeConnectFailure(failure: Failure) -> str:
    """
    Describe why a connection attempt failed, in a few words.
    """
    if failure.check(netError.ConnectionRefusedError):
        return "connection refused"
    if failure.check(netError.DNSLookupError):
        return "host name not found"
    if failure.check(netError.TimeoutError, netError.TCPTimedOutError):
        return "connection timed out"
    if failure.check(netError.NoRouteError):
        return "no route to host"
    return failure.getErrorMessage()


class BaseClient:
    """
    A client that stays connected and logged in until it is stopped.

    Subclasses set C{role} and C{credentials} and override the session
    callbacks.

    @ivar loggedIn: fires with the first L{LoginOk}.
    @ivar closed: fires with L{None} once the client has stopped, or fails
        with L{ClientError} when it gave up.
    @ivar session: the logged-in L{ClientSession}, or L{None}.
    """

    log = Logger()
    role = ""

    def __init__(self, reactor: Any, options: ConnectOptions,
                 report: Callable[[str], None] = lambda line: None,
                 endpoint: Any = None, jitter: Callable[[], float] = random.random) -> None:
        """
        @param report: called with one line for the user per retry or
            status change (the command line prints them to standard error).
        @param endpoint: the endpoint to connect to instead of the one the
            options describe; tests pass a fake.
        @param jitter: returns the random part of each retry delay, in
            seconds.
        """
        self.reactor = reactor
        self.options = options
        self.report = report
        self.credentials: dict[str, str] = {}
        self.session: ClientSession | None = None
        self.loggedIn: Deferred[LoginOk] = Deferred()
        self.closed: Deferred[None] = Deferred()
        self.logins = 0
        self._observers: dict[str, list[Callable[..., Any]]] = {}
        self._lastProblem: str | None = None
        self._failures = 0
        self._stopping = False
        self._finished = False
        self._policy = backoffPolicy(options.initialDelay, options.maxDelay, options.factor,
                                     jitter)
        if endpoint is None:
            endpoint = self._endpoint()
        self._service = ClientService(
            _RecordingEndpoint(endpoint, self._connectFailed), _SessionFactory(self),
            retryPolicy=self._retryDelay, clock=reactor)

    def _endpoint(self) -> Any:
        server = self.options.server
        endpoint: Any = HostnameEndpoint(self.reactor, server.host, server.port)
        if self.options.security == SECURITY_TLS:
            endpoint = wrapClientTLS(self.tlsCreator(), endpoint)
        return endpoint

    def tlsCreator(self) -> Any:
        """
        Return the TLS connection creator for this client's server.
        """
        return self.options.tlsCreator()

    # Observers, for tests and the command line

    def observe(self, kind: str, callback: Callable[..., Any]) -> None:
        """
        Call C{callback} on each event of C{kind}: C{"message"} (every
        control message after login), C{"frame"}, C{"location"},
        C{"event"}, C{"login"}.
        """
        self._observers.setdefault(kind, []).append(callback)

    def notify(self, kind: str, *args: Any) -> None:
        for callback in self._observers.get(kind, ()):
            try:
                callback(*args)
            except Exception:
                self.log.failure("a {kind} observer failed", kind=kind)

    # Running

    def start(self) -> Deferred[None]:
        """
        Connect, and reconnect whenever the connection drops.

        @return: L{closed}.
        """
        self._service.startService()
        return self.closed

    def stop(self, reason: str = "done") -> Deferred[None]:
        """
        Say bye, close the connection and stop reconnecting.

        @return: L{closed}.
        """
        if not self._stopping:
            self._stopping = True
            if self.session is not None:
                self.session.close(reason)
            d = self._service.stopService()
            d.addCallback(lambda _: self._finish(None))
            d.addErrback(lambda f: self.log.failure("stopping the connection failed", f))
        return self.closed

    def fail(self, problem: ClientError) -> None:
        """
        Stop for good because of C{problem}; L{closed} fails with it.
        """
        if self._stopping:
            return
        self._stopping = True
        d = self._service.stopService()
        d.addCallback(lambda _: self._finish(Failure(problem)))
        d.addErrback(lambda f: self.log.failure("stopping the connection failed", f))

    def _finish(self, result: Failure | None) -> None:
        if self._finished:
            return
        self._finished = True
        # closed fires first, so that a caller waiting on loggedIn finds it
        # fired and can consume its failure.
        if result is None:
            self.closed.callback(None)
        else:
            self.closed.errback(result)
        if not self.loggedIn.called:
            self.loggedIn.errback(result if result is not None else Failure(
                ClientError("the client stopped before it logged in")))

    # Retries

    def _connectFailed(self, failure: Failure) -> None:
        self._lastProblem = (f"server {self.options.server} is not reachable "
                             f"({describeConnectFailure(failure)})")

    def _retryDelay(self, attempt: int) -> float:
        # ClientService counts a TCP connection as a success.  A link that
        # closes before login (a TLS client on the plaintext port, a
        # throttled login) must back off too, so only a login resets the count.
        self._failures += 1
        attempt = self._failures
        delay: float = self._policy(attempt - 1)
        problem = self._lastProblem or f"the connection to server {self.options.server} failed"
        retries = self.options.retries
        if retries is not None and attempt > retries:
            self.reactor.callLater(0, self.fail, ClientError(
                f"{problem}; gave up after {attempt} attempts"))
            return 3600.0
        self.report(f"{problem}; retrying in {delay:.1f} s")
        self.log.info("{problem}; retrying in {delay:.1f} s", problem=problem, delay=delay)
        return delay

    # Session callbacks

    def sessionReady(self, session: ClientSession, loginOk: LoginOk) -> None:
        self.session = session
        self.logins += 1
        self._lastProblem = None
        self._failures = 0
        if not self.loggedIn.called:
            self.loggedIn.callback(loginOk)
        self.notify("login", loginOk)
        self.loginSucceeded(session, loginOk)

    def sessionLost(self, session: ClientSession, reason: Failure, state: State) -> None:
        if self.session is session:
            self.session = None
        self.connectionEnded(session)
        if self._stopping:
            return
        problem = session.permanentError or self._verificationProblem(reason)
        if problem is not None:
            self.fail(problem)
            return
        if session.lostReason is not None:
            self._lastProblem = (f"the connection to server {self.options.server} ended: "
                                 f"{session.lostReason}")
        elif state is State.HELLO and self.options.security == SECURITY_TLS:
            self._lastProblem = (
                f"the TLS connection to server {self.options.server} closed before the "
                f"server responded ({reason.getErrorMessage()}); check that this is its TLS "
                f"port, or use --starttls for the plaintext port")
        else:
            self._lastProblem = (f"the connection to server {self.options.server} was lost "
                                 f"({reason.getErrorMessage()})")

    @staticmethod
    def _verificationProblem(reason: Failure) -> ClientError | None:
        from mrs.tls.client import ServerVerificationError

        if reason.check(ServerVerificationError):
            return ClientError(f"TLS verification failed: {reason.getErrorMessage()}")
        return None

    def loginSucceeded(self, session: ClientSession, loginOk: LoginOk) -> None:
        """
        Called after each successful login; subclasses start their work.
        """

    def connectionEnded(self, session: ClientSession) -> None:
        """
        Called when a connection closes, logged in or not.
        """

    def messageReceived(self, session: ClientSession, message: Message) -> None:
        """
        Called for each control message after login.
        """
        self.notify("message", message)

    def frameReceived(self, session: ClientSession, frame: MediaFrame) -> None:
        """
        Called for each media frame.
        """
        self.notify("frame", frame)
