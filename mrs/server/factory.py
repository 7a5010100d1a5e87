"""
The client factory: one per client port, sharing the hub, the
authenticator and the settings.

Devices and monitors use the same ports and the same session class.  The
role is chosen at login, so one factory per port reads cleaner than a
factory per role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory

from mrs.server.closelog import EarlyCloseLog
from mrs.server.session import ClientSession


@dataclass
class SessionSettings:
    """
    Limits and timeouts of client sessions, in bytes and seconds.  One
    instance is shared by the factories of all client ports, so a value
    changed at run time (C{congestionTimeout}) applies to every new session.
    """

    maxFrameSize: int = 8 * 1024 * 1024
    keepaliveInterval: float = 10.0
    idleTimeout: float = 30.0
    loginTimeout: float = 15.0
    queueLimit: int = 8 * 1024 * 1024
    congestionTimeout: float = 20.0
    #: Seconds a closing connection may take to flush before it is aborted.
    closeTimeout: float = 5.0
    adminPortNumber: int = 12654

    @classmethod
    def fromConfig(cls, config: Any) -> SessionSettings:
        return cls(
            maxFrameSize=config.max_frame_size,
            keepaliveInterval=config.keepalive_interval,
            idleTimeout=config.idle_timeout,
            loginTimeout=config.login_timeout,
            queueLimit=config.queue_limit,
            congestionTimeout=config.congestion_timeout,
            adminPortNumber=portNumber(config.admin_port),
        )


def portNumber(description: str) -> int:
    """
    Return the port number of a TCP endpoint description such as
    C{tcp:12650:interface=127.0.0.1}.
    """
    for part in description.split(":")[1:]:
        if part.isdigit():
            return int(part)
        if part.startswith("port="):
            return int(part[5:])
    return 0


class ClientFactory(Factory):
    """
    Builds L{ClientSession}s for one client port.

    @ivar sessions: the open sessions of every port sharing C{registry}.
    """

    def __init__(self, reactor: IReactorTime, hub: Any, authenticator: Any,
                 settings: SessionSettings, tlsCreator: Any, *, tlsPort: bool,
                 registry: set[ClientSession] | None = None, metrics: Any = None,
                 earlyCloses: EarlyCloseLog | None = None) -> None:
        self.reactor = reactor
        self.hub = hub
        self.authenticator = authenticator
        self.settings = settings
        self.tlsCreator = tlsCreator
        self.tlsPort = tlsPort
        self.metrics = metrics
        self.sessions: set[ClientSession] = registry if registry is not None else set()
        #: Logs connections that close before login; shared by the ports.
        self.earlyCloses = (earlyCloses if earlyCloses is not None
                            else EarlyCloseLog(reactor, metrics=metrics))

    def stopFactory(self) -> None:
        self.earlyCloses.flush()

    def buildProtocol(self, addr: Any) -> ClientSession:
        return ClientSession(self, self.tlsPort)

    def sessionOpened(self, session: ClientSession) -> None:
        self.sessions.add(session)

    def sessionLoggedIn(self, session: ClientSession, role: str) -> None:
        if self.metrics is not None:
            self.metrics.connectionOpened(role, session.encrypted)

    def sessionClosed(self, session: ClientSession) -> None:
        self.sessions.discard(session)
        if self.metrics is not None and session.principal is not None:
            self.metrics.connectionClosed(session.principal.role, session.encrypted)
