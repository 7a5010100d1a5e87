"""
End to end: the real server (C{twistd -n mrs}) in a subprocess, and the
C{mrs device stream} and C{mrs monitor} commands as subprocesses, over the
TLS port and over STARTTLS on 127.0.0.1.

One server serves every test of this module and the GPS scenario module;
it starts with the first test and stops when the test process exits.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from mrs.demo import (
    SAMPLES,
    ServerProcess,
    compareMedia,
    locationValues,
    readAll,
    readNdjson,
    relayedLocations,
)
from mrs.media.ogg import splitPackets

MEDIA = SAMPLES / "media"
GPS = SAMPLES / "gps"
BASELINE = MEDIA / "testsrc_640x360_25fps_gop50_baseline.h264"
SLICED = MEDIA / "testsrc_160x90_25fps_slices3_aud.h264"
HEVC = MEDIA / "testsrc_160x90_25fps_gop25.h265"
MJPEG = MEDIA / "testsrc_640x360_25fps.mjpeg"
AAC = MEDIA / "sine_1kHz_48k_mono.aac"
OPUS = MEDIA / "sine_440Hz_48k_mono.opus"

#: Devices of these tests, each with its own secret; a device id is used
#: by one test only, because the server remembers each device's latest
#: position.
DEVICES = (
    "cam-tls", "cam-starttls", "cam-mjpeg", "cam-sliced", "gps-exact-1", "gps-exact-2",
    "cam-truncated", "gps-coldboot", "gps-lake", "gps-quectel", "gps-mr350", "gps-telit",
    "gps-nodate", "gps-firefly", "gps-coldboot-2", "gps-android", "cam-stdout",
)
USER = "watcher"
PASSWORD = "watcher-password"

_shared: dict[str, Any] = {}


def sharedServer() -> ServerProcess:
    """
    Start the module's server on first use, with the test accounts.
    """
    server = _shared.get("server")
    if server is not None:
        return server
    directory = Path(tempfile.mkdtemp(prefix="mrs-e2e-"))
    # A generous queue, so that no monitor drops media while the devices
    # send as fast as they can.
    server = ServerProcess(directory, extraOptions=("--queue-limit", str(256 * 1024 * 1024)))
    server.start()
    atexit.register(_cleanUp, server, directory)
    server.addAccounts({device: f"{device}-secret" for device in DEVICES},
                       {USER: (PASSWORD, DEVICES), "outsider": ("outsider-password", ())})
    # The server polls the store for changes once a second; give it two
    # polls after the last change.
    time.sleep(2.5)
    _shared["server"] = server
    return server


def _cleanUp(server: ServerProcess, directory: Path) -> None:
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Run:
    """
    One device and one monitor run: their exit codes, outputs and files.
    """

    device: subprocess.CompletedProcess[str]
    monitor: subprocess.CompletedProcess[str]
    files: dict[str, Path]


class E2ETestCase(SynchronousTestCase):
    """
    Helpers to run devices and monitors against the shared server.
    """

    def setUp(self) -> None:
        self.server = sharedServer()
        self.work = Path(self.mktemp()).absolute()
        self.work.mkdir(parents=True)
        passwordFile = self.work / "password"
        passwordFile.write_text(f"{PASSWORD}\n")
        self.passwordFile = passwordFile

    def connection(self, security: str = "tls") -> list[str]:
        server = self.server
        if security == "tls":
            return ["--server", f"127.0.0.1:{server.tlsPort}", "--ca-file", str(server.caFile)]
        return ["--server", f"127.0.0.1:{server.clientPort}", "--starttls", "--ca-file",
                str(server.caFile)]

    def startMonitor(self, device: str, security: str = "tls", extra: tuple[str, ...] = (),
                     tracks: str | None = None) -> tuple[subprocess.Popen[str], dict[str, Path]]:
        files = {kind: self.work / f"{device}.{kind}" for kind in ("video", "audio", "gpx",
                                                                    "ndjson")}
        command = self.server.clientCommand(
            "monitor", *self.connection(security), "--user", USER, "--password-file",
            str(self.passwordFile), "--device", device, "--video-out", str(files["video"]),
            "--audio-out", str(files["audio"]), "--gpx-out", str(files["gpx"]),
            "--ndjson-out", str(files["ndjson"]), "--duration", "60", *extra)
        if tracks is not None:
            command += ["--tracks", tracks]
        monitor = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, cwd=self.work,
                                   env=self.server.environment())
        return monitor, files

    def runDevice(self, device: str, paths: list[Path], security: str = "tls",
                  extra: tuple[str, ...] = ("--no-pace",)) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.server.clientCommand("device", "stream", *self.connection(security),
                                      "--device", device, *extra, *map(str, paths)),
            input=f"{device}-secret\n", capture_output=True, text=True, cwd=self.work,
            env=self.server.environment(), timeout=30)

    def stream(self, device: str, paths: list[Path], security: str = "tls",
               deviceExtra: tuple[str, ...] = ("--no-pace",)) -> Run:
        """
        Start a monitor for C{device}, stream C{paths} as that device and
        wait for both to finish.
        """
        monitor, files = self.startMonitor(device, security)
        try:
            result = self.runDevice(device, paths, security, deviceExtra)
        finally:
            if monitor.poll() is not None:
                out, err = monitor.communicate()
                self.assertEqual(monitor.returncode, 0, err)
        out, err = monitor.communicate(timeout=60)
        monitorResult = subprocess.CompletedProcess(monitor.args, monitor.returncode, out, err)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(monitor.returncode, 0, err)
        return Run(result, monitorResult, files)

    def assertLocationsExact(self, sent: Path, received: Path, **read: Any) -> None:
        expected = relayedLocations(readAll(sent, **read))
        arrived = readNdjson(received)
        self.assertEqual([locationValues(f) for f in arrived],
                         [locationValues(f) for f in expected])


def ffprobeFrames(path: Path, codec: str) -> int:
    if shutil.which("ffprobe") is None:
        raise SkipTest("ffprobe is not installed (apt-get install ffmpeg)")
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-f", codec, "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=60, check=True)
    return int(result.stdout.strip())


class StreamingTests(E2ETestCase):
    def test_tlsPort(self) -> None:
        """
        H.264, AAC and a GPX track over the TLS port arrive byte for byte;
        ffprobe counts the same 250 frames in the received video.
        """
        run = self.stream("cam-tls", [BASELINE, AAC, GPS / "cerknicko-jezero.gpx"])
        self.assertEqual(run.files["video"].read_bytes(), BASELINE.read_bytes())
        self.assertEqual(run.files["audio"].read_bytes(), AAC.read_bytes())
        self.assertEqual(ffprobeFrames(run.files["video"], "h264"), 250)
        self.assertIn("logged in to 127.0.0.1", run.device.stderr)
        self.assertIn("(TLS)", run.device.stderr)
        self.assertIn("stopped: device cam-tls went offline", run.monitor.stderr)
        self.assertIn("video: 250 frames, 736276 bytes", run.monitor.stderr)
        self.assertIn("audio: 470 frames, 83738 bytes", run.monitor.stderr)
        # Sent in one burst with the video, positions may be thinned out
        # to the newest while the monitor's link is busy, never changed.
        expected = [locationValues(f) for f in relayedLocations(
            readAll(GPS / "cerknicko-jezero.gpx"))]
        arrived = [locationValues(f) for f in readNdjson(run.files["ndjson"])]
        remaining = iter(expected)
        self.assertTrue(all(value in remaining for value in arrived))
        self.assertEqual(arrived[-1], expected[-1])

    def test_startTLS(self) -> None:
        """
        H.265 and Ogg Opus over STARTTLS: the video arrives byte for byte,
        the Opus packets and their timestamps value for value.
        """
        run = self.stream("cam-starttls", [HEVC, OPUS], security="starttls")
        self.assertEqual(run.files["video"].read_bytes(), HEVC.read_bytes())
        self.assertEqual(ffprobeFrames(run.files["video"], "hevc"), 50)
        sent = splitPackets(OPUS.read_bytes())
        received = splitPackets(run.files["audio"].read_bytes())
        self.assertEqual([(p.data, p.timestamp, p.config) for p in received],
                         [(p.data, p.timestamp, p.config) for p in sent])
        self.assertEqual(len([p for p in received if not p.config]), 501)
        result = compareMedia("audio", OPUS, run.files["audio"])
        self.assertTrue(result.identical)

    def test_mjpeg(self) -> None:
        run = self.stream("cam-mjpeg", [MJPEG])
        self.assertEqual(run.files["video"].read_bytes(), MJPEG.read_bytes())
        self.assertIn("video: 250 frames, 1997850 bytes", run.monitor.stderr)

    def test_slicedH264(self) -> None:
        """
        An H.264 stream with three slices per picture and access unit
        delimiters arrives whole over STARTTLS.
        """
        run = self.stream("cam-sliced", [SLICED], security="starttls")
        self.assertEqual(run.files["video"].read_bytes(), SLICED.read_bytes())
        self.assertEqual(ffprobeFrames(run.files["video"], "h264"), 50)

    def test_locationsExact(self) -> None:
        """
        Paced GPS logs arrive position for position, equal to what the
        readers parse from the files.
        """
        first, firstFiles = self.startMonitor("gps-exact-1")
        second, secondFiles = self.startMonitor("gps-exact-2", security="starttls")
        quectel = GPS / "quectel-l76k-nmea.log"
        telit = GPS / "telit-he910.log"
        firstRun = self.runDevice("gps-exact-1", [quectel], extra=("--speed", "30"))
        secondRun = self.runDevice("gps-exact-2", [telit], security="starttls",
                             extra=("--speed", "200"))
        self.assertEqual((firstRun.returncode, secondRun.returncode), (0, 0),
                         firstRun.stderr + secondRun.stderr)
        first.communicate(timeout=60)
        second.communicate(timeout=60)
        self.assertLocationsExact(quectel, firstFiles["ndjson"])
        self.assertLocationsExact(telit, secondFiles["ndjson"])
        gpx = secondFiles["gpx"].read_text()
        self.assertTrue(gpx.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<gpx '))
        self.assertEqual(gpx.count("<trkpt "), len(readNdjson(secondFiles["ndjson"])))

    def test_truncatedH264(self) -> None:
        """
        An H.264 file cut inside a start code streams every complete
        access unit, and the device warns about the incomplete rest.  (A
        cut inside a NAL unit looks the same as a short last slice.)
        """
        data = BASELINE.read_bytes()
        end = data.find(b"\x00\x00\x01", 300_000) + 3
        cut = self.work / "cut.h264"
        cut.write_bytes(data[:end])
        run = self.stream("cam-truncated", [cut])
        received = run.files["video"].read_bytes()
        # The start code's leading zero bytes belong to the cut part.
        self.assertEqual(received, data[:end - 3].rstrip(b"\x00"))
        self.assertIn(f"warning: cut.h264: H.264 stream is truncated: it ends inside a start "
                      f"code at offset {len(received)}; the incomplete part "
                      f"({end - len(received)} bytes) was not sent", run.device.stderr)


class StandardOutputTests(E2ETestCase):
    def test_stdoutAndFrameLimit(self) -> None:
        """
        --stdout writes only the video stream to standard output, and
        --frames stops after that many video frames.
        """
        device = subprocess.Popen(
            self.server.clientCommand("device", "stream", *self.connection(), "--device",
                                      "cam-stdout", "--loop", str(SLICED)),
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, cwd=self.work, env=self.server.environment())
        try:
            assert device.stdin is not None
            device.stdin.write("cam-stdout-secret\n")
            device.stdin.flush()
            monitor = subprocess.run(
                self.server.clientCommand("monitor", *self.connection(), "--user", USER,
                                          "--password-file", str(self.passwordFile),
                                          "--device", "cam-stdout", "--tracks", "video",
                                          "--stdout", "--frames", "25"),
                capture_output=True, cwd=self.work, env=self.server.environment(),
                timeout=30)
        finally:
            device.terminate()
            device.communicate(timeout=30)
        self.assertEqual(monitor.returncode, 0, monitor.stderr)
        samples = readAll(SLICED)
        self.assertEqual(monitor.stdout, b"".join(s.data for s in samples[:25]))
        self.assertIn(b"stopped: received 25 video frames", monitor.stderr)


class FailureTests(E2ETestCase):
    def monitor(self, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.server.clientCommand("monitor", *args), input=f"{password}\n",
            capture_output=True, text=True, cwd=self.work, env=self.server.environment(),
            timeout=60)

    def test_wrongPassword(self) -> None:
        result = self.monitor(*self.connection(), "--user", USER, "--list", password="nope")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr, "mrs: error: login failed: invalid credentials\n")

    def test_plaintextRejected(self) -> None:
        """
        A plaintext login on a server that requires TLS stops at once with
        the server's reason and the options that fix it.
        """
        result = self.monitor("--server", f"127.0.0.1:{self.server.clientPort}", "--plaintext",
                              "--user", USER, "--list")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(
            result.stderr,
            f"mrs: error: login failed: this server does not accept logins on an unencrypted "
            f"link; send starttls first or connect to the TLS port {self.server.tlsPort} (use "
            f"--starttls, or the TLS port without --plaintext)\n")

    def test_untrustedCertificate(self) -> None:
        """
        Without the server's certificate as CA file, the monitor stops at
        once and names the options that fix it.
        """
        result = self.monitor("--server", f"127.0.0.1:{self.server.tlsPort}", "--user", USER,
                              "--list")
        self.assertEqual(result.returncode, 1)
        self.assertTrue(result.stderr.startswith(
            "mrs: error: TLS verification failed: The server certificate for 127.0.0.1 is not "
            "trusted: OpenSSL reports 'self-signed certificate'"), result.stderr)
        self.assertIn("with --ca-file, or pin the server's certificate with --fingerprint.",
                      result.stderr)
        self.assertEqual(result.stderr.count("\n"), 1)

    def test_listAndCommand(self) -> None:
        """
        --list prints the visible devices.  --command reaches an online
        device, which replies to ping with pong and to unknown commands
        with an error.
        """
        listing = self.monitor(*self.connection(), "--user", USER, "--list")
        self.assertEqual(listing.returncode, 0, listing.stderr)
        header = listing.stdout.splitlines()[0].split()
        self.assertEqual(header, ["DEVICE", "NAME", "STATUS", "SOURCE", "TRACKS", "RIGHTS",
                                  "LOCATION"])
        self.assertIn("cam-mjpeg", listing.stdout)
        outsider = self.monitor(*self.connection(), "--user", "outsider", "--list",
                                password="outsider-password")
        self.assertEqual(outsider.stdout.splitlines()[1:], [])

        device = subprocess.Popen(
            self.server.clientCommand("device", "stream", *self.connection(), "--device",
                                      "cam-sliced", "--loop", str(SLICED)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=self.work, env=self.server.environment())
        try:
            assert device.stdin is not None
            device.stdin.write("cam-sliced-secret\n")
            device.stdin.flush()
            ping = self._retryCommand("ping")
            self.assertEqual((ping.returncode, ping.stdout), (0, 'ping: ok "pong"\n'))
            unknown = self._retryCommand("reboot", "--args", '{"now": true}')
            self.assertEqual((unknown.returncode, unknown.stdout), (
                1, "reboot: failed: unknown command 'reboot'; this device answers ping, "
                   "status\n"))
        finally:
            device.terminate()
            _, deviceErr = device.communicate(timeout=30)
        self.assertIn('command reboot {"now": true} from watcher', deviceErr)

    def _retryCommand(self, *command: str) -> subprocess.CompletedProcess[str]:
        # The device needs a moment to log in.
        for _ in range(50):
            result = self.monitor(*self.connection(), "--user", USER, "--device", "cam-sliced",
                                  "--command", *command)
            if "offline" not in result.stderr:
                return result
            time.sleep(0.2)
        return result
