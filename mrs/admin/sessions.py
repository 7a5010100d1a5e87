"""
Server-side admin web sessions, CSRF tokens and login throttling.

Session ids are random (L{secrets.token_urlsafe}) and live only in the
browser's cookie; the server keeps the SHA-256 digest of each id, so a
memory dump or a debug log of the session table cannot be replayed as a
cookie.  Sessions are kept in memory: a server restart signs everyone out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from twisted.internet.interfaces import IReactorTime

#: Failed logins allowed for one account from one address inside
#: L{THROTTLE_WINDOW}.  The count is per address so that strangers cannot
#: lock an administrator out by failing on purpose from elsewhere.
ACCOUNT_FAILURE_LIMIT = 5
#: Failed logins allowed from one address inside L{THROTTLE_WINDOW}.
ADDRESS_FAILURE_LIMIT = 20
#: Seconds over which failed logins are counted.
THROTTLE_WINDOW = 15 * 60.0
#: Sessions kept at most; the least recently used one ends first.
MAX_SESSIONS = 1000


def digest(token: str) -> str:
    """
    Return the SHA-256 hex digest of a session id or API token.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokensEqual(expected: str, given: str | None) -> bool:
    """
    Compare two secrets in constant time; a missing C{given} never matches.
    """
    if not given or not expected:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


@dataclass
class AdminSession:
    """
    One signed-in administrator.

    @ivar credentialsVersion: the user's credentials version at sign-in; a
        password change or a disabled account bumps the stored one and so
        ends this session.
    """

    user: str
    csrfToken: str
    created: float
    lastSeen: float
    credentialsVersion: int
    key: str = field(default="", repr=False)


class SessionManager:
    """
    In-memory session table keyed by the digest of the session id.

    A session ends after C{idleTimeout} seconds without a request, or
    C{maxAge} seconds after sign-in, whichever comes first.
    """

    def __init__(self, clock: IReactorTime, idleTimeout: float, maxAge: float) -> None:
        self._clock = clock
        self.idleTimeout = idleTimeout
        self.maxAge = maxAge
        self._sessions: dict[str, AdminSession] = {}

    def create(self, user: str, credentialsVersion: int) -> tuple[str, AdminSession]:
        """
        Start a session and return its id (for the cookie) and the session.
        """
        self._prune()
        now = self._clock.seconds()
        sessionId = secrets.token_urlsafe(32)
        session = AdminSession(
            user=user,
            csrfToken=secrets.token_urlsafe(32),
            created=now,
            lastSeen=now,
            credentialsVersion=credentialsVersion,
            key=digest(sessionId),
        )
        self._sessions[session.key] = session
        return sessionId, session

    def get(self, sessionId: str | None) -> AdminSession | None:
        """
        Return the live session for a cookie value and note the activity,
        or L{None} for an unknown or expired session (which is removed).
        """
        if not sessionId:
            return None
        key = digest(sessionId)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self._clock.seconds()
        if self._expired(session, now):
            del self._sessions[key]
            return None
        session.lastSeen = now
        return session

    def isLive(self, session: AdminSession) -> bool:
        """
        Tell whether C{session} is still live, without counting this as
        activity (the dashboard's event stream must not keep it alive).
        """
        if self._sessions.get(session.key) is not session:
            return False
        if self._expired(session, self._clock.seconds()):
            del self._sessions[session.key]
            return False
        return True

    def end(self, session: AdminSession) -> None:
        """
        End one session.
        """
        self._sessions.pop(session.key, None)

    def endAllFor(self, user: str, keep: AdminSession | None = None) -> None:
        """
        End every session of C{user} except C{keep}.
        """
        for key, session in list(self._sessions.items()):
            if session.user == user and session is not keep:
                del self._sessions[key]

    def __len__(self) -> int:
        return len(self._sessions)

    def _expired(self, session: AdminSession, now: float) -> bool:
        return (
            now - session.lastSeen >= self.idleTimeout
            or now - session.created >= self.maxAge
        )

    def _prune(self) -> None:
        now = self._clock.seconds()
        for key, session in list(self._sessions.items()):
            if self._expired(session, now):
                del self._sessions[key]
        while len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions.values(), key=lambda s: s.lastSeen)
            del self._sessions[oldest.key]
