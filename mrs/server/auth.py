"""
Client login: credentials, the plaintext policy, throttling and tokens.

Every failed login is answered after the same delay, counted per source
address, and given one generic reason, whether the name is unknown or the
password is wrong.  An address over its failure budget is answered
C{throttled} without checking anything.  Nothing of a credential is logged.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, inlineCallbacks, returnValue
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger

from mrs.passwords import verifyPasswordInThread
from mrs.throttle import LoginThrottle

if TYPE_CHECKING:
    from mrs.server.session import ClientSession

#: Verified against when the account does not exist, so that a missing
#: account costs the same time as a wrong password.
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$NivZczclQ0bj8B4DtmwAHQ$"
    "vLtykzvye6L+UvuNiV/0PysN74/RPIWiMwmWEehX1LM"
)

GENERIC_FAILURE = "invalid credentials"


class LoginFailed(Exception):
    def __init__(self, code: str, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fatal = fatal


@dataclass(frozen=True)
class Principal:
    """
    The identity a session logged in with.
    """

    role: str
    name: str
    credentialsVersion: int
    isAdmin: bool = False


class Authenticator:
    """
    Checks client logins against the store.
    """

    log = Logger()

    def __init__(self, store: Any, reactor: IReactorTime, *, allowPlaintext: bool,
                 failureDelay: float, failuresPerMinute: int, tokenLifetime: float,
                 tlsPortNumber: int, metrics: Any = None,
                 verify: Callable[[str, str], Deferred[bool]] = verifyPasswordInThread) -> None:
        self.store = store
        self.verify = verify
        self.reactor = reactor
        self.allowPlaintext = allowPlaintext
        self.failureDelay = failureDelay
        self.throttle = LoginThrottle(reactor, failuresPerMinute, window=60.0)
        self.tokenLifetime = tokenLifetime
        self.tlsPortNumber = tlsPortNumber
        self.metrics = metrics
        #: SHA-256 of a token -> (user, expiry time, credentials version)
        self._tokens: dict[str, tuple[str, float, int]] = {}

    def issueToken(self, principal: Principal) -> tuple[str, str]:
        """
        Create a token with which C{principal} may log in again until it
        expires; return the token and its expiry as ISO 8601 UTC text.
        """
        now = self.reactor.seconds()
        self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
        token = secrets.token_urlsafe(32)
        expires = now + self.tokenLifetime
        self._tokens[_digest(token)] = (principal.name, expires, principal.credentialsVersion)
        text = datetime.fromtimestamp(expires, UTC).isoformat().replace("+00:00", "Z")
        return token, text

    def authenticate(self, session: ClientSession, role: str,
                     message: dict[str, Any]) -> Deferred[Principal]:
        """
        Check a login message; fire with a L{Principal} or fail with
        L{LoginFailed}.
        """
        return self._authenticate(session, role, message)

    @inlineCallbacks
    def _authenticate(self, session, role, message):  # type: ignore[no-untyped-def]
        address = session.host
        started = self.reactor.seconds()
        if self.throttle.blocked(address):
            self.log.warn("login from {address} throttled: too many failed logins",
                          address=session.address)
            yield self._delay(started)
            raise LoginFailed("throttled", "too many failed logins from this address; "
                                           "wait a minute and try again", fatal=True)
        if role == "device":
            principal = yield self._device(session, message)
        else:
            principal = yield self._monitor(session, message)
        if principal is None:
            self.throttle.failed(address)
            if self.metrics is not None:
                self.metrics.login(role, False)
            self.log.warn("login failed: {role} {name} from {address} ({link})", role=role,
                          name=_claimedName(message), address=session.address,
                          link="encrypted" if session.encrypted else "unencrypted")
            yield self._delay(started)
            raise LoginFailed("auth_failed", GENERIC_FAILURE)
        if self.metrics is not None:
            self.metrics.login(role, True)
        returnValue(principal)

    def _delay(self, started: float) -> Deferred[None]:
        remaining = max(0.0, self.failureDelay - (self.reactor.seconds() - started))
        return deferLater(self.reactor, remaining, lambda: None)  # type: ignore[arg-type]

    def _tlsRequired(self) -> LoginFailed:
        return LoginFailed(
            "tls_required",
            "this server does not accept logins on an unencrypted link; send starttls "
            f"first or connect to the TLS port {self.tlsPortNumber}",
        )

    @inlineCallbacks
    def _device(self, session, message):  # type: ignore[no-untyped-def]
        deviceId = message.get("device")
        secret = message.get("secret")
        if not isinstance(deviceId, str) or not isinstance(secret, str):
            raise LoginFailed("bad_message", "a device login needs the fields device and secret")
        device = yield self.store.getDevice(deviceId)
        if not session.encrypted and not self.allowPlaintext:
            if device is None or not device.allowPlaintext:
                raise self._tlsRequired()
        if device is None or not device.enabled:
            yield self.verify(_DUMMY_HASH, secret)
            return None
        ok = yield self.verify(device.secretHash, secret)
        if not ok:
            return None
        return Principal("device", device.deviceId, device.credentialsVersion)

    @inlineCallbacks
    def _monitor(self, session, message):  # type: ignore[no-untyped-def]
        if not session.encrypted and not self.allowPlaintext:
            raise self._tlsRequired()
        token = message.get("token")
        if isinstance(token, str):
            entry = self._tokens.get(_digest(token))
            if entry is None or entry[1] <= self.reactor.seconds():
                return None
            user = yield self.store.getUser(entry[0])
            if user is None or not user.enabled or user.credentialsVersion != entry[2]:
                return None
            return Principal("monitor", user.name, user.credentialsVersion,
                             user.role == "admin")
        name = message.get("user")
        password = message.get("password")
        if not isinstance(name, str) or not isinstance(password, str):
            raise LoginFailed("bad_message",
                              "a monitor login needs user and password, or token")
        user = yield self.store.getUser(name)
        if user is None or not user.enabled:
            yield self.verify(_DUMMY_HASH, password)
            return None
        ok = yield self.verify(user.passwordHash, password)
        if not ok:
            return None
        return Principal("monitor", user.name, user.credentialsVersion, user.role == "admin")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _claimedName(message: dict[str, Any]) -> str:
    name = message.get("device") or message.get("user")
    if isinstance(name, str):
        return repr(name[:64])
    return "(token)" if "token" in message else "(none)"
