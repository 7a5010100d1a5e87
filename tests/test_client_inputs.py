"""
The messages of C{mrs device stream} and C{mrs monitor} for bad input
before and while connecting: missing and unknown files, files with nothing to
stream, bad options, and a server that is down.
"""

from __future__ import annotations

import argparse
import io
import re
import socket
from datetime import UTC, datetime
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase, TestCase

from mrs.cli import runCommand
from mrs.client.sources import InputError, ItemReader, identify

DATA = Path(__file__).parent / "data"
H264 = DATA / "media" / "testsrc_160x90_25fps_slices3_aud.h264"


class Input(io.StringIO):
    def isatty(self) -> bool:
        return False


def sentence(body: str) -> str:
    checksum = 0
    for byte in body.encode("ascii"):
        checksum ^= byte
    return f"${body}*{checksum:02X}\r\n"


def closedPort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class InputFileTests(SynchronousTestCase):
    def test_missingFile(self) -> None:
        with self.assertRaises(InputError) as caught:
            identify("/nonexistent/clip.h264")
        self.assertEqual(str(caught.exception), "cannot read '/nonexistent/clip.h264': No such "
                                                "file or directory; check the path")

    def test_unknownFormat(self) -> None:
        path = Path(self.mktemp())
        path.write_bytes(b"hello, world\n")
        with self.assertRaises(InputError) as caught:
            identify(path)
        self.assertEqual(str(caught.exception),
                         f"unknown format of '{path}': its first bytes are 68 65 6c 6c 6f 2c "
                         f"20 77; supported formats are h264, h265, mjpeg, aac, opus, nmea, gpx "
                         f"(H.264/H.265 Annex-B, MJPEG, AAC in ADTS, Opus in Ogg, NMEA 0183, "
                         f"GPX)")

    def test_emptyFile(self) -> None:
        path = Path(self.mktemp())
        path.write_bytes(b"")
        with self.assertRaises(InputError) as caught:
            identify(path)
        self.assertEqual(str(caught.exception),
                         f"'{path}' is empty; give a media or GPS file with content")

    def test_nmeaWithoutFix(self) -> None:
        """
        A log in which every position is marked "no fix" fails before connecting,
        with the counts and the option that sends such positions anyway.
        """
        path = Path(self.mktemp() + ".log")
        path.write_text(sentence("GPRMC,000102.00,V,,,,,,,070419,,,N")
                        + sentence("GPRMC,000103.00,V,0000.0000,N,00000.0000,E,,,070419,,,N")
                        + sentence("GPGGA,000104.00,,,,,0,00,99.99,,,,,,")
                        + "$GPRMC,000105.00,V,,,,,,,070419,,,N*00\r\n")
        reader = ItemReader(identify(path))
        with self.assertRaises(InputError) as caught:
            reader.probe()
        self.assertEqual(
            str(caught.exception),
            f"'{path}' has no NMEA sentence with a position fix (4 sentences; skipped 1 with "
            f"a bad or missing checksum, 0 malformed, 3 epochs without a valid fix); record "
            f"the log after the receiver has a fix, or pass --include-invalid to send the "
            f"positions marked invalid")

    def test_gpxWithoutTimes(self) -> None:
        path = Path(self.mktemp() + ".gpx")
        path.write_text('<?xml version="1.0"?>\n<gpx version="1.1" '
                        'xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>\n'
                        '<trkpt lat="46.1" lon="14.5"><ele>300</ele></trkpt>\n'
                        '</trkseg></trk></gpx>\n')
        reader = ItemReader(identify(path))
        with self.assertRaises(InputError) as caught:
            reader.probe()
        self.assertTrue(str(caught.exception).startswith(f"cannot stream '{path}': "))
        self.assertIn("no <time>", str(caught.exception))

    def test_gpxWithoutTrackPoints(self) -> None:
        path = Path(self.mktemp() + ".gpx")
        path.write_text('<?xml version="1.0"?>\n<gpx version="1.1" '
                        'xmlns="http://www.topografix.com/GPX/1/1">'
                        '<wpt lat="46.1" lon="14.5"><time>2020-01-01T00:00:00Z</time></wpt>'
                        '</gpx>\n')
        with self.assertRaises(InputError) as caught:
            ItemReader(identify(path)).probe()
        self.assertEqual(str(caught.exception),
                         f"cannot stream '{path}': {path} has no points (<trkpt>); it has 1 "
                         f"<wpt>, which the caller did not request")

    def test_timeWithoutDate(self) -> None:
        """
        A GGA at 23:59:59 with no date anywhere, read at 00:00:01 UTC, is
        dated the day before, not a day ahead.
        """
        path = Path(self.mktemp() + ".log")
        path.write_text(sentence("GPGGA,235959.00,4603.0000,N,01430.0000,E,1,08,0.9,300.0,M,"
                                 "45.0,M,,"))
        clock = datetime(2026, 3, 1, 0, 0, 1, tzinfo=UTC).timestamp()
        reader = ItemReader(identify(path), clock=lambda: clock)
        [fix], ended = reader.take(10)
        self.assertTrue(ended)
        self.assertEqual(fix.time, datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC))

    def test_summaryCountsPasses(self) -> None:
        reader = ItemReader(identify(H264))
        for _ in range(2):
            while not reader.take(100)[1]:
                pass
        self.assertEqual(reader.summary(), "testsrc_160x90_25fps_slices3_aud.h264: 100 access "
                                           "units read (4 keyframes), 22982 bytes, 2 passes")


class TerminalOutput(io.StringIO):
    def isatty(self) -> bool:
        return True


class ProgressTests(SynchronousTestCase):
    def test_progressOnTerminal(self) -> None:
        """
        On a terminal the monitor rewrites one progress line in place with
        bytes, frames and bitrate per track.
        """
        from twisted.internet.task import Clock

        from mrs.cli.clients import _Watch
        from mrs.wire import MediaFrame

        clock = Clock()
        err = TerminalOutput()
        args = argparse.Namespace(videoOut=None, audioOut=None, gpxOut=None, ndjsonOut=None,
                                  stdout=False, device="cam-1", frames=None)
        context = argparse.Namespace(reactor=clock, err=err)
        client = argparse.Namespace(deviceOf=lambda frame: "cam-1",
                                    subscriptions={"cam-1": ("video",)})
        watch = _Watch(args, context, client, lambda line: None)  # type: ignore[arg-type]
        assert watch.progress is not None
        watch.progress.start(0.5, now=False)
        watch.frame(MediaFrame(1, 1, 1, 1, 0, b"x" * 125_000))
        clock.advance(1.0)
        self.assertEqual(err.getvalue().split("\r")[-1],
                         "video 1 frames 0.12 MB 1.00 Mbit/s | audio 0 frames 0.00 MB "
                         "0.00 Mbit/s | location 0\x1b[K")
        watch.close()

    def test_noProgressOffTerminal(self) -> None:
        from twisted.internet.task import Clock

        from mrs.cli.clients import _Watch

        args = argparse.Namespace(videoOut=None, audioOut=None, gpxOut=None, ndjsonOut=None,
                                  stdout=False, device="cam-1", frames=None)
        context = argparse.Namespace(reactor=Clock(), err=Input())
        watch = _Watch(args, context, None, lambda line: None)  # type: ignore[arg-type]
        self.assertIsNone(watch.progress)


class CommandTests(TestCase):
    """
    The commands run in this process, on the real reactor.
    """

    def mrs(self, *argv: str, stdin: str = "secret\n") -> Deferred[tuple[int, str, str]]:
        out, err = io.StringIO(), io.StringIO()
        d = runCommand(list(argv), reactor, stdin=Input(stdin), out=out, err=err)
        return d.addCallback(lambda code: (code, out.getvalue(), err.getvalue()))

    async def test_missingFile(self) -> None:
        code, out, err = await self.mrs("device", "stream", "--server", "127.0.0.1:1",
                                        "--device", "cam", "/nonexistent/clip.h264")
        self.assertEqual((code, out), (1, ""))
        self.assertEqual(err, "mrs: error: cannot read '/nonexistent/clip.h264': No such file "
                              "or directory; check the path\n")

    async def test_twoVideoFiles(self) -> None:
        code, _, err = await self.mrs("device", "stream", "--server", "127.0.0.1:1",
                                      "--device", "cam", str(H264), str(H264))
        self.assertEqual(code, 1)
        self.assertTrue(err.endswith(
            "are both video; a device streams one file per track, so run another device for "
            "the other file\n"), err)

    async def test_emptySecret(self) -> None:
        code, _, err = await self.mrs("device", "stream", "--server", "127.0.0.1:1",
                                      "--device", "cam", str(H264), stdin="")
        self.assertEqual(code, 1)
        self.assertEqual(err, "mrs: error: no secret given; pipe it as one line of standard "
                              "input, use a terminal to be prompted, or pass a file\n")

    async def test_badFingerprint(self) -> None:
        code, _, err = await self.mrs("monitor", "--server", "127.0.0.1:1", "--user", "alice",
                                      "--list", "--fingerprint", "12:34")
        self.assertEqual(code, 1)
        self.assertTrue(err.startswith("mrs: error: fingerprint '12:34' is invalid; expected "
                                       "the SHA-256 fingerprint as 64 hex digits"), err)

    async def test_monitorNeedsDevice(self) -> None:
        code, _, err = await self.mrs("monitor", "--server", "127.0.0.1:1", "--user", "alice")
        self.assertEqual((code, err), (1, "mrs: error: give --device ID to watch or command a "
                                          "device, or --list to see the devices\n"))

    async def test_badArgs(self) -> None:
        code, _, err = await self.mrs("monitor", "--server", "127.0.0.1:1", "--user", "alice",
                                      "--device", "cam", "--command", "x", "--args", "[1]")
        self.assertEqual(code, 2)
        self.assertIn("--args '[1]' must be a JSON object", err)

    async def test_serverDown(self) -> None:
        """
        A server that rejects connections is retried with a growing delay
        and one line per attempt, then given up on.
        """
        port = closedPort()
        code, _, err = await self.mrs("monitor", "--server", f"127.0.0.1:{port}", "--user",
                                      "alice", "--list", "--retries", "1")
        self.assertEqual(code, 1)
        lines = err.splitlines()
        self.assertEqual(len(lines), 2, err)
        self.assertRegex(lines[0], "^" + re.escape(
            f"server 127.0.0.1:{port} is not reachable (connection refused); retrying in ")
            + r"[12]\.\d s$")
        self.assertEqual(lines[1], f"mrs: error: server 127.0.0.1:{port} is not reachable "
                                   f"(connection refused); gave up after 2 attempts")
