"""
The MRS server under test, run as C{twistd -n mrs} in its own process on
127.0.0.1 with a temporary data directory.
"""

from __future__ import annotations

import json
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.populate import ADMIN, VIEWER
from bench.procs import BIN, freePort, raiseFileLimit


def waitForPort(port: int, timeout: float, process: subprocess.Popen[Any]) -> None:
    """
    Wait until something accepts connections on 127.0.0.1 C{port}.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process exited with status {process.returncode} "
                               "before listening; see its log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1 port {port} after {timeout} s")


class MrsServer:
    """
    One server process with its data directory under C{root}.
    """

    def __init__(self, root: Path, keyType: str = "rsa2048", devices: int = 0,
                 options: dict[str, Any] | None = None) -> None:
        self.root = root
        self.dataDir = root / "data"
        self.keyType = keyType
        self.devices = devices
        self.options = options or {}
        self.apiToken = secrets.token_urlsafe(24)
        self.plainPort = freePort()
        self.tlsPort = freePort()
        self.adminPort = freePort()
        self.process: subprocess.Popen[bytes] | None = None
        self.logPath = root / "server.log"
        self.admin = ADMIN
        self.viewer = VIEWER

    @property
    def ca(self) -> str:
        return str(self.dataDir / "tls" / "server.crt")

    @property
    def key(self) -> str:
        return str(self.dataDir / "tls" / "server.key")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        spec = {"devices": self.devices, "prefix": "cam-", "secret": "bench-secret",
                "apiToken": self.apiToken}
        subprocess.run([sys.executable, "-m", "bench.populate", str(self.dataDir),
                        json.dumps(spec)], check=True, cwd=Path(__file__).parent.parent)
        argv = [str(BIN / "twistd"), "-n", "--pidfile=", "-l", str(self.logPath), "mrs",
                "--data-dir", str(self.dataDir),
                "--client-port", f"tcp:{self.plainPort}:interface=127.0.0.1",
                "--client-tls-port", f"tcp:{self.tlsPort}:interface=127.0.0.1",
                "--admin-port", f"tcp:{self.adminPort}:interface=127.0.0.1",
                "--server-name", "127.0.0.1", "--key-type", self.keyType]
        for key, value in self.options.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        self.process = subprocess.Popen(argv, preexec_fn=raiseFileLimit, cwd=self.root)
        waitForPort(self.tlsPort, 60, self.process)
        waitForPort(self.adminPort, 60, self.process)

    def spec(self, **values: Any) -> dict[str, Any]:
        """
        The connection part of a load generator's spec.
        """
        return {"host": "127.0.0.1", "port": self.tlsPort, "ca": self.ca, **values}

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
