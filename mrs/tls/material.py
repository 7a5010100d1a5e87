"""
The TLS material service: the server's current key and certificate, shared
by every TLS listener and replaced live.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives import serialization
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredLock, fail, succeed
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from mrs.tls.generate import (
    KEY_TYPES,
    SubjectFields,
    certificateRequest,
    generatePrivateKey,
    selfSignedCertificate,
)
from mrs.tls.options import ServedPair, ServerConnectionCreator, minVersionWarning
from mrs.tls.storage import FileState, TLSFiles
from mrs.tls.validate import EXPIRY_WARNING_DAYS, Report, checkPair

T = TypeVar("T")

POLL_INTERVAL = 2.0
"""
Seconds between checks of the key and certificate files for changes made
by another process, such as C{mrs tls install}.
"""

EXPIRY_CHECK_INTERVAL = 86400.0


class InstallRejected(Exception):
    """
    A key and certificate pair failed validation; nothing was changed.

    @ivar report: the L{Report} with the errors.
    """

    def __init__(self, report: Report) -> None:
        self.report = report
        super().__init__(" ".join(p.message for p in report.errors))


class NotReady(Exception):
    """
    A TLS handshake or query arrived before the key and certificate were
    loaded.
    """


@dataclass(frozen=True)
class GenerateResult:
    """
    The output of L{TLSMaterial.generate}: the report of the installed
    self-signed pair, or the PEM of a CSR whose key waits in the data
    directory for the signed certificate.
    """

    report: Report | None = None
    requestPem: bytes | None = None


class TLSMaterial(Service):
    """
    Hold the server's key and certificate and hand them to every TLS listener.

    On start it loads C{tls/server.key} and C{tls/server.crt} from the data
    directory, or on first start generates a key of C{keyType} and a
    self-signed certificate for C{serverNames}.  Installed pairs apply to
    the next handshake on every listener; open connections keep the pair
    they started with.  Every 2 seconds it checks whether another process
    (C{mrs tls install}) changed the files and loads them, keeping the
    current pair if the new files are invalid.  Once a day it logs a
    warning when the certificate expires within 30 days.

    File and crypto work runs in threads; pass C{runInThread} to run it
    some other way in tests.
    """

    log = Logger()

    def __init__(
        self,
        dataDir: Path,
        serverNames: Sequence[str],
        minVersion: str,
        keyType: str,
        store: Any,
        reactor: Any,
        *,
        runInThread: Callable[..., Deferred[Any]] | None = None,
        pollInterval: float = POLL_INTERVAL,
    ) -> None:
        if keyType not in KEY_TYPES:
            raise ValueError(f"key type {keyType!r} is invalid; use one of: {', '.join(KEY_TYPES)}")
        if minVersion not in ("1.0", "1.1", "1.2", "1.3"):
            raise ValueError(
                f"minimum TLS version {minVersion!r} is invalid; use 1.0, 1.1, 1.2 or 1.3"
            )
        self.files = TLSFiles(Path(dataDir))
        self.serverNames = tuple(serverNames)
        self.minVersion = minVersion
        self.keyType = keyType
        self.minVersionWarning = minVersionWarning(minVersion)
        self._store = store
        self._reactor = reactor
        self._runInThread = runInThread or self._deferToThread
        self._pollInterval = pollInterval
        self._current: ServedPair | None = None
        self._alpnLists: set[tuple[bytes, ...]] = set()
        self._fileState: FileState | None = None
        self._lock = DeferredLock()
        self._waiters: list[Deferred[ServedPair]] = []
        self._startFailure: Failure | None = None
        self._polling = False
        self._pollLoop: LoopingCall | None = None
        self._expiryLoop: LoopingCall | None = None

    def _deferToThread(self, f: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        return deferToThreadPool(self._reactor, self._reactor.getThreadPool(), f, *args, **kwargs)

    def now(self) -> datetime:
        """
        Return the reactor's current time as a UTC datetime.
        """
        return datetime.fromtimestamp(self._reactor.seconds(), UTC)

    # Service

    def startService(self) -> None:
        super().startService()
        if self.minVersionWarning:
            self.log.warn("{message}", message=self.minVersionWarning)
        d = self._lock.run(lambda: Deferred.fromCoroutine(self._loadOrCreate()))
        d.addCallbacks(self._started, self._failedToStart)

    def _started(self, pair: ServedPair) -> None:
        self._pollLoop = LoopingCall(self._poll)
        self._pollLoop.clock = self._reactor
        self._pollLoop.start(self._pollInterval, now=False).addErrback(
            lambda f: self.log.failure("TLS file polling stopped", f)
        )
        self._expiryLoop = LoopingCall(self._checkExpiry)
        self._expiryLoop.clock = self._reactor
        self._expiryLoop.start(EXPIRY_CHECK_INTERVAL, now=True).addErrback(
            lambda f: self.log.failure("TLS expiry check stopped", f)
        )
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(pair)

    def _failedToStart(self, failure: Failure) -> None:
        self.log.failure(
            "Cannot load or create the TLS key and certificate in {directory}",
            failure,
            directory=str(self.files.directory),
        )
        self._startFailure = failure
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.errback(failure)

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        for loop in (self._pollLoop, self._expiryLoop):
            if loop is not None and loop.running:
                loop.stop()
        self._pollLoop = self._expiryLoop = None
        # Wait for a load or install in progress, so no thread outlives the service.
        return self._lock.run(lambda: None)  # type: ignore[return-value]

    def whenReady(self) -> Deferred[ServedPair]:
        """
        Return a L{Deferred} that fires with the current pair once the key
        and certificate are loaded or generated, or fails if they cannot be.
        """
        if self._current is not None:
            return succeed(self._current)
        if self._startFailure is not None:
            return fail(self._startFailure)
        waiter: Deferred[ServedPair] = Deferred()
        self._waiters.append(waiter)
        return waiter

    # Access for listeners and the admin page

    @property
    def current(self) -> ServedPair:
        """
        The pair new handshakes use.

        @raise NotReady: before L{whenReady} has fired.
        """
        if self._current is None:
            raise NotReady(
                "the TLS key and certificate are not loaded yet; wait for TLSMaterial.whenReady()"
            )
        return self._current

    def serverCreator(self, alpn: Sequence[bytes]) -> ServerConnectionCreator:
        """
        Return the connection creator for a TLS listener (C{TLSMemoryBIOFactory},
        C{wrapClientTLS} or C{transport.startTLS}) offering the ALPN
        protocols C{alpn}, such as C{[b"mrs/1"]} or C{[b"http/1.1"]}.
        """
        self._alpnLists.add(tuple(alpn))
        return ServerConnectionCreator(lambda: self.current, alpn)

    def daysToExpiry(self) -> float:
        """
        Days until the current certificate expires; negative once expired.
        """
        return self.current.info.daysToExpiry(self.now())

    # Check, install, generate

    def check(
        self,
        keyPem: bytes,
        certPem: bytes,
        chainPem: bytes = b"",
        passphrase: bytes | str | None = None,
    ) -> Deferred[Report]:
        """
        Validate a pair in a thread, without installing it.  An empty
        C{keyPem} means the key of the pending CSR, if there is one.
        """
        return Deferred.fromCoroutine(self._check(keyPem, certPem, chainPem, passphrase))

    async def _check(
        self, keyPem: bytes, certPem: bytes, chainPem: bytes, passphrase: bytes | str | None
    ) -> Report:
        return await self._runInThread(
            self._checkInThread, keyPem, certPem, chainPem, passphrase, self.now()
        )

    def _checkInThread(
        self,
        keyPem: bytes,
        certPem: bytes,
        chainPem: bytes,
        passphrase: bytes | str | None,
        now: datetime,
    ) -> Report:
        if not keyPem.strip():
            pending = self.files.readPending()
            if pending is not None:
                keyPem = pending[0]
        return checkPair(keyPem, certPem, chainPem, passphrase, self.serverNames, now)

    def install(
        self,
        keyPem: bytes,
        certPem: bytes,
        chainPem: bytes = b"",
        passphrase: bytes | str | None = None,
        actor: str = "admin",
    ) -> Deferred[Report]:
        """
        Validate a pair, store it, audit-log it and serve it from the next
        handshake on.

        An empty C{keyPem} means the key of the pending CSR.  The key is
        stored without its passphrase, because the server must start
        unattended.

        @return: a L{Deferred} firing with the L{Report} (its warnings are
            worth showing), or failing with L{InstallRejected} when the pair
            has errors.  If anything fails, the served pair and the files
            stay as they were.
        """
        return self._lock.run(
            lambda: Deferred.fromCoroutine(
                self._install(keyPem, certPem, chainPem, passphrase, actor, "tls.install")
            )
        )

    async def _install(
        self,
        keyPem: bytes,
        certPem: bytes,
        chainPem: bytes,
        passphrase: bytes | str | None,
        actor: str,
        action: str,
        auditRequired: bool = True,
    ) -> Report:
        report = await self._check(keyPem, certPem, chainPem, passphrase)
        if not report.accepted:
            raise InstallRejected(report)
        pair = await self._runInThread(self._preparePair, report, list(self._alpnLists))
        now = self.now()
        backup = await self._runInThread(self._writeFiles, report, now)
        if self._store is not None:
            try:
                await self._store.audit(actor, action, "tls", _auditDetail(pair, self._current))
            except BaseException:
                if not auditRequired:
                    # First start: the store may still be opening, and a
                    # server without a certificate would serve nothing.
                    self.log.failure("Cannot audit-log the generated TLS certificate")
                else:
                    await self._runInThread(self.files.restore, backup)
                    self._fileState = await self._runInThread(self.files.state)
                    raise
        self._current = pair
        self.log.info(
            "{actor} installed the TLS certificate {subject} (SHA-256 {fingerprint}, "
            "expires {notAfter})",
            actor=actor,
            subject=pair.info.subject,
            fingerprint=pair.info.sha256,
            notAfter=pair.info.notAfter.isoformat(),
        )
        for problem in report.warnings:
            self.log.warn("TLS certificate warning: {message}", message=problem.message)
        return report

    def _preparePair(self, report: Report, alpnLists: list[tuple[bytes, ...]]) -> ServedPair:
        """
        Build the pair's TLS contexts for every listener now, so OpenSSL's
        own checks run before anything is stored and no handshake pays for
        loading the key.
        """
        assert report.privateKey is not None
        pair = ServedPair(
            report.privateKey, report.certificates, self.minVersion, report.certificatePem()
        )
        for alpn in alpnLists or [(b"mrs/1",)]:
            pair.context(alpn)
        return pair

    def _writeFiles(self, report: Report, now: datetime) -> Path | None:
        backup = self.files.write(report.keyPem(), report.certificatePem(), now)
        pending = self.files.readPending()
        if pending is not None and _sameKey(pending[0], report):
            self.files.removePending()
        self._fileState = self.files.state()
        return backup

    def generate(
        self,
        keyType: str | None = None,
        selfSigned: bool = True,
        subject: SubjectFields | None = None,
        actor: str = "admin",
        days: int | None = None,
    ) -> Deferred[GenerateResult]:
        """
        Generate a key of C{keyType} (default: the configured key type) in
        a thread, and either install it with a self-signed certificate for
        the server names, or keep it as the pending key and return a CSR.

        @return: a L{Deferred} firing with a L{GenerateResult}.
        """
        keyType = keyType or self.keyType
        if keyType not in KEY_TYPES:
            raise ValueError(f"key type {keyType!r} is invalid; use one of: {', '.join(KEY_TYPES)}")
        return self._lock.run(
            lambda: Deferred.fromCoroutine(
                self._generate(keyType, selfSigned, subject, actor, days)
            )
        )

    async def _generate(
        self,
        keyType: str,
        selfSigned: bool,
        subject: SubjectFields | None,
        actor: str,
        days: int | None,
    ) -> GenerateResult:
        now = self.now()
        if selfSigned:
            keyPem, certPem = await self._runInThread(
                _makeSelfSigned, keyType, self.serverNames, now, subject, days
            )
            report = await self._install(keyPem, certPem, b"", None, actor, "tls.generate")
            return GenerateResult(report=report)
        keyPem, requestPem = await self._runInThread(
            _makeRequest, keyType, self.serverNames, subject
        )
        await self._runInThread(self.files.writePending, keyPem, requestPem)
        if self._store is not None:
            await self._store.audit(actor, "tls.request", "tls", f"key type {keyType}")
        self.log.info("{actor} made a CSR with a new {keyType} key", actor=actor, keyType=keyType)
        return GenerateResult(requestPem=requestPem)

    def pendingRequest(self) -> Deferred[bytes | None]:
        """
        Return the PEM of the CSR whose key waits for its certificate, or L{None}.
        """
        d: Deferred[tuple[bytes, bytes] | None] = self._runInThread(self.files.readPending)
        return d.addCallback(lambda pending: pending[1] if pending else None)

    # Loading, polling, expiry

    async def _loadOrCreate(self) -> ServedPair:
        exists = await self._runInThread(self.files.exists)
        if not exists:
            now = self.now()
            self.log.info(
                "No TLS key in {directory}; generating a {keyType} key and a self-signed "
                "certificate for {names}",
                directory=str(self.files.directory),
                keyType=self.keyType,
                names=", ".join(self.serverNames),
            )
            keyPem, certPem = await self._runInThread(
                _makeSelfSigned, self.keyType, self.serverNames, now, None, None
            )
            await self._install(
                keyPem, certPem, b"", None, "system", "tls.generate", auditRequired=False
            )
            return self.current
        pair = await self._runInThread(self._loadFiles, list(self._alpnLists))
        self._current = pair
        self.log.info(
            "Serving the TLS certificate {subject} (SHA-256 {fingerprint}, expires {notAfter})",
            subject=pair.info.subject,
            fingerprint=pair.info.sha256,
            notAfter=pair.info.notAfter.isoformat(),
        )
        return pair

    def _loadFiles(self, alpnLists: list[tuple[bytes, ...]]) -> ServedPair:
        """
        Read the stored pair and build its TLS contexts.

        A pair that was valid when installed may since have expired or
        stopped covering the server names.  It is still served, with its
        problems logged, because serving it beats serving nothing.  Only a
        pair that TLS cannot use at all is rejected.
        """
        self._fileState = self.files.state()
        keyPem, certPem = self.files.read()
        report = checkPair(keyPem, certPem, b"", None, self.serverNames, self.now())
        if report.privateKey is None or not report.certificates or not report.keyMatches:
            messages = " ".join(p.message for p in report.errors)
            raise ValueError(
                f"{self.files.keyPath} and {self.files.certificatePath} are not a usable pair: "
                f"{messages}"
            )
        for problem in report.problems:
            self.log.warn(
                "TLS certificate {severity} in {path}: {message}",
                severity=problem.severity,
                path=str(self.files.certificatePath),
                message=problem.message,
            )
        return self._preparePair(report, alpnLists)

    def _poll(self) -> Deferred[None] | None:
        if self._polling or self._lock.locked:
            return None
        self._polling = True
        d = self._runInThread(self.files.state)
        d.addCallback(self._reloadIfChanged)
        d.addErrback(lambda f: self.log.failure("Checking the TLS files failed", f))

        def done(result: object) -> None:
            self._polling = False

        d.addBoth(done)
        return None

    def _reloadIfChanged(self, state: FileState) -> Deferred[None] | None:
        if state == self._fileState:
            return None
        if state.key is None or state.certificate is None:
            self._fileState = state
            self.log.warn(
                "The TLS files in {directory} are incomplete; still serving {fingerprint}",
                directory=str(self.files.directory),
                fingerprint=self._current.info.sha256 if self._current else "nothing",
            )
            return None
        return self._lock.run(self._reload)

    def _reload(self) -> Deferred[None]:
        d: Deferred[ServedPair] = self._runInThread(self._loadFiles, list(self._alpnLists))

        def loaded(pair: ServedPair) -> None:
            if self._current is not None and pair.info.sha256 == self._current.info.sha256:
                return
            self._current = pair
            self.log.info(
                "Loaded the TLS certificate {subject} (SHA-256 {fingerprint}) changed in "
                "{directory}",
                subject=pair.info.subject,
                fingerprint=pair.info.sha256,
                directory=str(self.files.directory),
            )

        def failed(failure: Failure) -> None:
            self.log.warn(
                "The changed TLS files in {directory} are not usable, so the server keeps "
                "serving {fingerprint}: {error}",
                directory=str(self.files.directory),
                fingerprint=self._current.info.sha256 if self._current else "nothing",
                error=failure.getErrorMessage(),
            )

        return d.addCallback(loaded).addErrback(failed)

    def _checkExpiry(self) -> None:
        if self._current is None:
            return
        days = self.daysToExpiry()
        info = self._current.info
        if days < 0:
            self.log.error(
                "The TLS certificate {subject} expired on {notAfter}; clients will refuse "
                "it. Install a new one on the admin page or with mrs tls install.",
                subject=info.subject,
                notAfter=info.notAfter.isoformat(),
            )
        elif days <= EXPIRY_WARNING_DAYS:
            self.log.warn(
                "The TLS certificate {subject} expires in {days} days, on {notAfter}. Install "
                "a new one on the admin page or with mrs tls install.",
                subject=info.subject,
                days=int(days),
                notAfter=info.notAfter.isoformat(),
            )


def _makeSelfSigned(
    keyType: str,
    serverNames: Sequence[str],
    now: datetime,
    subject: SubjectFields | None,
    days: int | None,
) -> tuple[bytes, bytes]:
    key = generatePrivateKey(keyType)
    extra = {"days": days} if days else {}
    certificate = selfSignedCertificate(key, serverNames, now, subject, **extra)
    return _pkcs8(key), certificate.public_bytes(serialization.Encoding.PEM)


def _makeRequest(
    keyType: str, serverNames: Sequence[str], subject: SubjectFields | None
) -> tuple[bytes, bytes]:
    key = generatePrivateKey(keyType)
    request = certificateRequest(key, serverNames, subject)
    return _pkcs8(key), request.public_bytes(serialization.Encoding.PEM)


def _pkcs8(key: Any) -> bytes:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _sameKey(keyPem: bytes, report: Report) -> bool:
    try:
        pending = serialization.load_pem_private_key(keyPem, password=None)
    except (ValueError, TypeError):
        return False
    return report.keyPem() == _pkcs8(pending)


def _auditDetail(pair: ServedPair, previous: ServedPair | None) -> str:
    info = pair.info
    detail = (
        f"subject={info.subject}; sans={', '.join(info.sans) or '(none)'}; "
        f"sha256={info.sha256}; notAfter={info.notAfter.isoformat()}; "
        f"key={info.keyDescription}"
    )
    if previous is not None:
        detail += f"; previous sha256={previous.info.sha256}"
    return detail
