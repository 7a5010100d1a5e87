"""
GPS replays through the real server: receiver logs without a fix, bad
checksums, repeated and out-of-order positions, and times without a date.
Each test replays files with C{mrs device stream} and checks what
C{mrs monitor} saved.
"""

from __future__ import annotations

import random
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mrs.demo import locationValues, readAll, readNdjson, relayedLocations
from mrs.media.nmea import Fix, NmeaReader, nearestDateTime
from tests.test_e2e import GPS, E2ETestCase

COLDBOOT = GPS / "gp-320fw-2019-04-07-coldboot.log"
LAKE = GPS / "cerknicko-jezero.gpx"
QUECTEL = GPS / "quectel-l76k-nmea.log"


def sentence(body: str) -> str:
    """
    Return an NMEA sentence with its checksum and line end.
    """
    checksum = 0
    for byte in body.encode("ascii"):
        checksum ^= byte
    return f"${body}*{checksum:02X}\r\n"


def _coordinate(value: float, width: int) -> str:
    degrees = int(abs(value))
    minutes = (abs(value) - degrees) * 60
    return f"{degrees:0{width}d}{minutes:07.4f}"


def rmc(when: datetime, lat: float, lon: float) -> str:
    return sentence(f"GPRMC,{when:%H%M%S}.00,A,{_coordinate(lat, 2)},N,"
                    f"{_coordinate(lon, 3)},E,0.0,0.0,{when:%d%m%y},,,A")


def gga(when: datetime, lat: float, lon: float) -> str:
    return sentence(f"GPGGA,{when:%H%M%S}.00,{_coordinate(lat, 2)},N,{_coordinate(lon, 3)},E,"
                    f"1,08,0.9,300.0,M,45.0,M,,")


class GpsScenarioTests(E2ETestCase):
    def replay(self, jobs: list[tuple[str, Path, tuple[str, ...]]]
               ) -> dict[str, tuple[subprocess.CompletedProcess[str], list[Fix]]]:
        """
        Replay each (device, file, options) at once, each watched by its
        own monitor; return each device's run and the positions its
        monitor saved.
        """
        monitors = {device: self.startMonitor(device, tracks="location")
                    for device, _, _ in jobs}
        devices = {}
        for device, path, extra in jobs:
            devices[device] = subprocess.Popen(
                self.server.clientCommand("device", "stream", *self.connection(), "--device",
                                          device, *extra, str(path)),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, cwd=self.work, env=self.server.environment())
        results = {}
        for device, process in devices.items():
            out, err = process.communicate(f"{device}-secret\n", timeout=30)
            self.assertEqual(process.returncode, 0, err)
            results[device] = subprocess.CompletedProcess(process.args, 0, out, err)
        saved = {}
        for device, (monitor, files) in monitors.items():
            _, err = monitor.communicate(timeout=30)
            self.assertEqual(monitor.returncode, 0, err)
            saved[device] = (results[device], readNdjson(files["ndjson"]))
        return saved

    def assertRelayed(self, arrived: list[Fix], sent: list[Fix]) -> None:
        self.assertEqual([locationValues(f) for f in arrived],
                         [locationValues(f) for f in relayedLocations(sent)])

    def test_coldBootBesideGpx(self) -> None:
        """
        A receiver log from a cold boot (status V at 0,0, empty fields, NUL
        bytes, cut sentences), sent with its invalid positions, relays only
        valid fixes and keeps its session.  A GPX track replayed at the same
        time arrives unchanged.
        """
        runs = self.replay([
            ("gps-coldboot", COLDBOOT, ("--include-invalid", "--speed", "5")),
            ("gps-lake", LAKE, ("--speed", "3000")),
        ])
        coldRun, coldArrived = runs["gps-coldboot"]
        sent = readAll(COLDBOOT, includeInvalid=True)
        self.assertGreater(len([f for f in sent if not f.valid]), 0)
        self.assertRelayed(coldArrived, sent)
        self.assertTrue(coldArrived)
        for fix in coldArrived:
            self.assertTrue(fix.valid)
            self.assertNotEqual((fix.lat, fix.lon), (0.0, 0.0))
        self.assertEqual(coldRun.stderr.count("logged in to"), 1)

        lakeRun, lakeArrived = runs["gps-lake"]
        self.assertEqual([locationValues(f) for f in lakeArrived],
                         [locationValues(f) for f in readAll(LAKE)])
        self.assertEqual(len(lakeArrived), 296)
        log = self.server.log()
        self.assertNotIn("Traceback", log)
        self.assertNotIn("Unhandled", log)

    def test_repeatsAndOldPositions(self) -> None:
        """
        After a 5 Hz log, the same fix a hundred times arrives once, and
        sixty shuffled positions from five minutes earlier do not replace
        the current one, so none of them reaches the monitor.
        """
        quectel = readAll(QUECTEL)
        last = quectel[-1]
        repeated = last.time + timedelta(seconds=1)
        old = [last.time - timedelta(seconds=300 - i) for i in range(60)]
        random.Random(7).shuffle(old)
        replay = self.work / "replay.log"
        replay.write_bytes(
            QUECTEL.read_bytes()
            + (rmc(repeated, 46.1, 14.6) * 100).encode()
            + "".join(rmc(when, 46.0, 14.4) for when in old).encode())
        runs = self.replay([("gps-quectel", replay, ("--speed", "30"))])
        _, arrived = runs["gps-quectel"]
        self.assertEqual([locationValues(f) for f in arrived[:-1]],
                         [locationValues(f) for f in relayedLocations(quectel)])
        self.assertEqual((arrived[-1].time, arrived[-1].lat, arrived[-1].lon),
                         (repeated, 46.1, 14.6))
        oldTimes = set(old)
        self.assertEqual([f for f in arrived if f.time in oldTimes], [])

    def test_datesFromRmcAndZda(self) -> None:
        """
        A GGA and ZDA log and a GGA and RMC log take their dates from the
        ZDA and RMC sentences.  A lone GGA without any date gets the date
        that puts it nearest to the device's clock.
        """
        now = datetime.now(UTC)
        lone = now - timedelta(seconds=120)
        loneFile = self.work / "lone.log"
        loneFile.write_text(gga(lone, 46.05, 14.5))
        runs = self.replay([
            ("gps-mr350", GPS / "mr-350p.log", ("--speed", "20")),
            ("gps-telit", GPS / "telit-he910.log", ("--speed", "200")),
            ("gps-nodate", loneFile, ()),
        ])
        _, mr350 = runs["gps-mr350"]
        self.assertRelayed(mr350, readAll(GPS / "mr-350p.log"))
        self.assertEqual({f.time.date() for f in mr350}, {datetime(2012, 7, 4).date()})
        _, telit = runs["gps-telit"]
        self.assertRelayed(telit, readAll(GPS / "telit-he910.log"))
        self.assertEqual({f.time.date() for f in telit}, {datetime(2019, 3, 12).date()})
        _, [loneFix] = runs["gps-nodate"]
        expected = nearestDateTime(lone.time().replace(microsecond=0), now)
        self.assertEqual(loneFix.time, expected)
        self.assertLess(abs(loneFix.time - lone), timedelta(seconds=1))

    def test_badChecksums(self) -> None:
        """
        Logs with wrong GGA checksums, broken or joined sentences and
        proprietary sentences without checksums still relay the positions
        of their good sentences, and the device counts what it skipped.
        """
        files = {"gps-firefly": GPS / "firefly-II.log",
                 "gps-coldboot-2": COLDBOOT,
                 "gps-android": GPS / "gpsdf.log"}
        runs = self.replay([(device, path, ("--speed", "20"))
                            for device, path in files.items()])
        for device, path in files.items():
            run, arrived = runs[device]
            sent = readAll(path)
            self.assertTrue(arrived, device)
            self.assertRelayed(arrived, sent)
            with path.open("rb") as f:
                reader = NmeaReader(f)
                fixes = list(reader)
            counters = reader.counters
            self.assertEqual(len(fixes), len(sent))
            self.assertIn(
                f"{path.name}: {len(sent)} positions read from {counters.sentences} sentences; "
                f"skipped {counters.badChecksum} with a bad or missing checksum, "
                f"{counters.malformed} malformed, {counters.noFix} epochs without a valid fix; "
                f"{len(sent)} sent", run.stderr)
        with files["gps-firefly"].open("rb") as f:
            firefly = NmeaReader(f)
            list(firefly)
        ggaLines = [line for line in files["gps-firefly"].read_bytes().splitlines()
                    if line.startswith(b"$GPGGA")]
        self.assertGreaterEqual(firefly.counters.badChecksum, len(ggaLines))
        self.assertNotIn("Traceback", self.server.log())

