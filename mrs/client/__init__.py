"""
Twisted clients of the MRS protocol: a capture device that streams files
(L{DeviceClient}) and a monitor that receives and saves them
(L{MonitorClient}).  Both reconnect with backoff until stopped; the
C{mrs device stream} and C{mrs monitor} commands drive them.
"""

from mrs.client.connection import (
    DEFAULT_PORT,
    DEFAULT_TLS_PORT,
    SECURITY_PLAINTEXT,
    SECURITY_STARTTLS,
    SECURITY_TLS,
    BaseClient,
    ClientError,
    ClientSession,
    ConnectOptions,
    ServerAddress,
    parseServer,
)
from mrs.client.device import DeviceClient, TrackStreamer
from mrs.client.monitor import MonitorClient, RequestFailed, describeEvent
from mrs.client.sources import InputError, InputFile, ItemReader, identify

__all__ = [
    "DEFAULT_PORT", "DEFAULT_TLS_PORT", "SECURITY_PLAINTEXT", "SECURITY_STARTTLS",
    "SECURITY_TLS", "BaseClient", "ClientError", "ClientSession", "ConnectOptions",
    "ServerAddress", "parseServer", "DeviceClient", "TrackStreamer", "MonitorClient",
    "RequestFailed", "describeEvent", "InputError", "InputFile", "ItemReader", "identify",
]
