"""
C{make demo}: a server, a device and a monitor on this machine, and a
check that every track arrived intact.

The demo starts C{twistd mrs} on a temporary data directory with free
ports on 127.0.0.1, adds a device and a user with the C{mrs} command,
streams the sample video, audio and GPS track from C{tests/data/} over
TLS (trusting the server's self-signed certificate as the CA file) to a
monitor that saves them, and compares per track what was sent with what
arrived.  It exits with 1 on a mismatch.

L{ServerProcess} and the comparison functions are also what the
end-to-end tests use.  Everything here blocks; it runs no reactor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrs.client.sources import ItemReader, identify
from mrs.media.gpx import parseNdjsonLine
from mrs.media.nmea import Fix
from mrs.server.locations import LocationPolicy
from mrs.wire import Location, MessageError

#: The sample files, in the source tree.
SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "data"

DEMO_VIDEO = SAMPLES / "media" / "testsrc_640x360_25fps_gop50_baseline.h264"
DEMO_AUDIO = SAMPLES / "media" / "sine_1kHz_48k_mono.aac"
DEMO_TRACK = SAMPLES / "gps" / "cerknicko-jezero.gpx"

#: Location fields compared between what a device sent and what a monitor
#: saved; the wire protocol carries no HDOP.
LOCATION_FIELDS = ("time", "lat", "lon", "alt", "speed", "heading", "accuracy", "satellites",
                   "fixQuality", "valid")


def freePort() -> int:
    """
    Return a TCP port on 127.0.0.1 that was free a moment ago.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerError(Exception):
    """
    The server did not start, or an C{mrs} command failed.
    """


class ServerProcess:
    """
    C{twistd -n mrs} in a subprocess, on a data directory of its own and
    free ports on 127.0.0.1.

    @ivar clientPort: the plaintext port (STARTTLS).
    @ivar tlsPort: the TLS port.
    @ivar logPath: the server's log file.
    """

    def __init__(self, directory: Path, *, reconnectGrace: float = 0.0,
                 extraOptions: tuple[str, ...] = ()) -> None:
        self.directory = directory
        self.dataDir = directory / "var"
        self.logPath = directory / "server.log"
        self.clientPort = freePort()
        self.tlsPort = freePort()
        self.adminPort = freePort()
        self.reconnectGrace = reconnectGrace
        self.extraOptions = extraOptions
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def caFile(self) -> Path:
        """
        The server's self-signed certificate, which clients trust as CA.
        """
        return self.dataDir / "tls" / "server.crt"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self, timeout: float = 60.0) -> None:
        """
        Start the server and wait until its TLS port accepts connections.

        @raise ServerError: when it exits or does not listen in time.
        """
        command = [
            sys.executable, "-c",
            "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()",
            "-n", "--pidfile=", f"--logfile={self.logPath}", "mrs",
            "--data-dir", str(self.dataDir),
            "--client-port", f"tcp:{self.clientPort}:interface=127.0.0.1",
            "--client-tls-port", f"tcp:{self.tlsPort}:interface=127.0.0.1",
            "--admin-port", f"tcp:{self.adminPort}:interface=127.0.0.1",
            # Devices send location only while a monitor watches it, so a
            # monitor that subscribes first receives every position.  A
            # device that leaves goes offline at once, which ends the watch.
            "--location-always-on", "false",
            "--reconnect-grace", str(self.reconnectGrace),
            *self.extraOptions,
        ]
        # Every subprocess here runs this Python with fixed arguments.
        self.process = subprocess.Popen(command, cwd=self.directory, env=self.environment(),  # noqa: S603
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"the server exited with status {self.process.returncode}; "
                                  f"its log:\n{self.logTail()}")
            if self.caFile.exists() and _accepts(self.tlsPort) and _accepts(self.clientPort):
                return
            time.sleep(0.1)
        self.stop()
        raise ServerError(f"the server did not listen within {timeout:g} s; its log:\n"
                          f"{self.logTail()}")

    def logTail(self, lines: int = 30) -> str:
        try:
            text = self.logPath.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log(self) -> str:
        try:
            return self.logPath.read_text(errors="replace")
        except OSError:
            return ""

    def mrs(self, *args: str, input: str | None = None) -> str:
        """
        Run C{mrs --data-dir DATA_DIR ARGS...} and return its output.

        @raise ServerError: when it fails.
        """
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "mrs.cli", "--data-dir", str(self.dataDir), *args],
            input=input, capture_output=True, text=True, cwd=self.directory,
            env=self.environment(), timeout=60)
        if result.returncode != 0:
            raise ServerError(f"mrs {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def addDevice(self, deviceId: str, secret: str) -> None:
        self.mrs("device", "add", deviceId, input=f"{secret}\n")

    def addUser(self, name: str, password: str, rights: tuple[str, ...] = ("all",),
                devices: tuple[str, ...] = ()) -> None:
        self.mrs("user", "add", name, input=f"{password}\n")
        for device in devices:
            self.mrs("grant", name, device, *rights)

    def addAccounts(self, devices: dict[str, str],
                    users: dict[str, tuple[str, tuple[str, ...]]]) -> None:
        """
        Add devices (id to secret) and operators (name to password and
        the devices they get every right on) straight through the store,
        in one process: much faster than one C{mrs} command each.
        """
        spec = json.dumps({"devices": devices, "users": users})
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-c", _ADD_ACCOUNTS, str(self.dataDir / "mrs.sqlite3"), spec],
            capture_output=True, text=True, cwd=self.directory, env=self.environment(),
            timeout=120)
        if result.returncode != 0:
            raise ServerError(f"adding accounts failed: {result.stderr.strip()}")

    def clientCommand(self, *args: str) -> list[str]:
        """
        Return the command line of C{mrs ARGS...} for a client.
        """
        return [sys.executable, "-m", "mrs.cli", *args]

    def stop(self) -> None:
        """
        Stop the server and wait for it to exit.
        """
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_ADD_ACCOUNTS = """
import json, sys
from pathlib import Path
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react
from mrs.passwords import hashPassword
from mrs.store.sqlite import SQLiteStore

RIGHTS = ["video", "audio", "location", "control", "talk"]

async def main(reactor):
    spec = json.loads(sys.argv[2])
    store = SQLiteStore(Path(sys.argv[1]), reactor=reactor)
    await store.open()
    for device, secret in spec["devices"].items():
        await store.addDevice(device, device, hashPassword(secret), "test")
    for user, (password, devices) in spec["users"].items():
        await store.addUser(user, "operator", hashPassword(password), "test")
        for device in devices:
            await store.addRule("user", user, "device", device, RIGHTS, "test")
    store.close()

react(lambda reactor: ensureDeferred(main(reactor)))
"""


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# Comparing what was sent with what arrived


@dataclass(frozen=True)
class TrackResult:
    """
    The frames (or positions) and bytes sent and received on one track,
    and whether they match.
    """

    track: str
    sentFrames: int
    sentBytes: int
    receivedFrames: int
    receivedBytes: int
    identical: bool
    detail: str = ""

    def line(self) -> str:
        verdict = "identical" if self.identical else "DIFFERENT"
        if self.detail:
            verdict += f" ({self.detail})"
        if self.track == "location":
            return (f"location: sent {self.sentFrames} positions; received "
                    f"{self.receivedFrames} positions: {verdict}")
        return (f"{self.track}: sent {self.sentFrames} frames, {self.sentBytes} bytes; "
                f"received {self.receivedFrames} frames, {self.receivedBytes} bytes: {verdict}")


def readAll(path: Path, clock: Any = time.time, includeInvalid: bool = False) -> list[Any]:
    """
    Read every sample or fix of a file with the readers the device uses.
    """
    reader = ItemReader(identify(path), clock=clock, includeInvalid=includeInvalid)
    items: list[Any] = []
    while True:
        batch, ended = reader.take(1000)
        items.extend(batch)
        if ended:
            return items


def compareMedia(track: str, sent: Path, received: Path) -> TrackResult:
    """
    Compare a sent and a received media file: byte for byte for Annex-B,
    MJPEG and ADTS; packet data and timestamps for Ogg Opus, whose page
    layout the monitor chooses itself.
    """
    sentItems = [s for s in readAll(sent) if not s.config]
    receivedItems = [s for s in readAll(received) if not s.config] if received.exists() else []
    sentBytes = sum(len(s.data) for s in sentItems)
    receivedBytes = sum(len(s.data) for s in receivedItems)
    if identify(sent).format == "opus":
        same = ([(s.data, s.timestamp) for s in sentItems]
                == [(s.data, s.timestamp) for s in receivedItems]
                and [s.data for s in readAll(sent) if s.config][:2]
                == [s.data for s in readAll(received) if s.config][:2])
        detail = "" if same else "Opus packets or timestamps differ"
    else:
        same = received.exists() and sent.read_bytes() == received.read_bytes()
        detail = "" if same else "the files differ"
    return TrackResult(track, len(sentItems), sentBytes, len(receivedItems), receivedBytes,
                       same, detail)


def relayedLocations(fixes: list[Fix], deviceId: str = "device") -> list[Fix]:
    """
    Return the fixes the server relays of C{fixes} sent in order: its
    location policy drops invalid ones, repeats and older ones.
    """
    policy = LocationPolicy()

    class Entry:
        pass

    entry = Entry()
    entry.deviceId = deviceId  # type: ignore[attr-defined]
    now = time.time()
    result = []
    for fix in fixes:
        # The same message the device client sends for this fix.
        try:
            message = Location(**fix.locationFields()).toDict()
        except MessageError:
            continue
        if policy(entry, message, now) is None:
            result.append(fix)
    return result


def locationValues(fix: Any) -> tuple[Any, ...]:
    return tuple(getattr(fix, name, None) for name in LOCATION_FIELDS)


def readNdjson(path: Path) -> list[Fix]:
    if not path.exists():
        return []
    return [parseNdjsonLine(line)[1] for line in path.read_bytes().splitlines() if line]


def compareLocations(sent: Path, received: Path) -> TrackResult:
    """
    Compare the positions of a GPS file with those a monitor saved as
    NDJSON, after the server's location policy.

    While a monitor's link is busy the server keeps only the newest
    position of each device, so a burst may arrive thinned out.  The
    result is identical when every received position equals a sent one,
    in order, and the last one arrived.  The detail gives how many were
    left out.
    """
    sentFixes = readAll(sent)
    expected = [locationValues(f) for f in relayedLocations(sentFixes)]
    arrived = [locationValues(f) for f in readNdjson(received)]
    result = TrackResult("location", len(sentFixes), 0, len(arrived), 0, True)
    if arrived == expected:
        return result
    remaining = iter(expected)
    inOrder = all(value in remaining for value in arrived)
    if inOrder and arrived and arrived[-1] == expected[-1]:
        return TrackResult(
            "location", len(sentFixes), 0, len(arrived), 0, True,
            f"{len(expected) - len(arrived)} of {len(expected)} positions were replaced by "
            f"newer ones while the monitor's link was busy")
    return TrackResult("location", len(sentFixes), 0, len(arrived), 0, False,
                       f"expected {len(expected)} positions after the server dropped repeats "
                       f"and older fixes; some received positions differ from the sent ones")


# The demo


def _run(directory: Path, out: Any) -> int:
    for sample in (DEMO_VIDEO, DEMO_AUDIO, DEMO_TRACK):
        if not sample.exists():
            out.write(f"demo: sample {sample} is missing; run the demo from the source tree\n")
            return 1
    server = ServerProcess(directory)
    out.write(f"demo: starting the server in {directory} (TLS port {server.tlsPort})\n")
    server.start()
    try:
        return _stream(server, directory, out)
    finally:
        server.stop()


def _stream(server: ServerProcess, directory: Path, out: Any) -> int:
    server.addDevice("demo-cam", "demo-cam-secret")
    server.addUser("demo-viewer", "demo-viewer-password", ("video", "audio", "location"),
                   ("demo-cam",))
    out.write("demo: added device demo-cam and user demo-viewer with video, audio and "
              "location rights\n")
    # The server reloads permission rules within a second.
    time.sleep(1.2)
    received = {name: directory / name for name in ("video.h264", "audio.aac", "track.gpx",
                                                    "track.ndjson")}
    connection = ["--server", f"127.0.0.1:{server.tlsPort}", "--ca-file", str(server.caFile)]
    passwordFile = directory / "demo-viewer.password"
    passwordFile.write_text("demo-viewer-password\n")
    passwordFile.chmod(0o600)
    monitor = subprocess.Popen(  # noqa: S603
        server.clientCommand("monitor", *connection, "--user", "demo-viewer",
                             "--password-file", str(passwordFile), "--device",
                             "demo-cam", "--video-out", str(received["video.h264"]),
                             "--audio-out", str(received["audio.aac"]),
                             "--gpx-out", str(received["track.gpx"]),
                             "--ndjson-out", str(received["track.ndjson"]),
                             "--duration", "120"),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=directory, env=server.environment())
    # The GPS track spans two hours, so the device sends as fast as the
    # link takes it instead of in real time.
    out.write("demo: streaming the samples over TLS as fast as the link takes them\n")
    device = subprocess.run(  # noqa: S603
        server.clientCommand("device", "stream", *connection, "--device", "demo-cam",
                             "--no-pace",
                             str(DEMO_VIDEO), str(DEMO_AUDIO), str(DEMO_TRACK)),
        input="demo-cam-secret\n", capture_output=True, text=True, cwd=directory,
        env=server.environment(), timeout=180)
    monitorOut, monitorErr = monitor.communicate(timeout=180)
    if device.returncode != 0 or monitor.returncode != 0:
        out.write(f"demo: the device exited with {device.returncode}:\n{device.stderr}\n"
                  f"demo: the monitor exited with {monitor.returncode}:\n{monitorErr}\n")
        return 1
    results = [
        compareMedia("video", DEMO_VIDEO, received["video.h264"]),
        compareMedia("audio", DEMO_AUDIO, received["audio.aac"]),
        compareLocations(DEMO_TRACK, received["track.ndjson"]),
    ]
    for result in results:
        out.write(f"demo: {result.line()}\n")
    if all(r.identical for r in results):
        out.write("demo: every track arrived intact\n")
        return 0
    out.write(f"demo: MISMATCH; the files are in {directory}\n")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mrs.demo",
        description="Run a server, a device and a monitor on 127.0.0.1 and check that the "
        "sample video, audio and GPS track arrive intact.")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory with the server log and the "
                        "received files")
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="mrs-demo-"))
    try:
        code = _run(directory, sys.stdout)
    except (ServerError, subprocess.TimeoutExpired) as e:
        sys.stdout.write(f"demo: {e}\n")
        code = 1
    if args.keep or code != 0:
        sys.stdout.write(f"demo: kept {directory}\n")
    else:
        shutil.rmtree(directory, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
