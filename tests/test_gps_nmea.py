"""
Tests for L{mrs.media.nmea} on real receiver logs and on crafted input.

The counts asserted for each GPSD log were measured by running the reader
over the file.  They agree with what a reading of the logs shows: every
GGA of firefly-II.log has a wrong checksum, gpsdf.log has 838 PGLOR
sentences of which 46 fail their checksum, and telit-he910.log opens with
37 no-fix epochs.
"""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime
from functools import reduce
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from mrs.media.nmea import Fix, NmeaCounters, NmeaParser, NmeaReader

GPS = Path(__file__).parent / "data" / "gps"

# 2026-12-05 00:00:01 UTC, the "server clock just after midnight" case.
AFTER_MIDNIGHT = datetime(2026, 12, 5, 0, 0, 1, tzinfo=UTC).timestamp()


def sentence(body: str) -> bytes:
    """
    Return C{body} as an NMEA sentence with a correct checksum and CRLF.
    """
    checksum = reduce(lambda value, character: value ^ ord(character), body, 0)
    return f"${body}*{checksum:02X}\r\n".encode("ascii")


def readLog(name: str, **options: object) -> tuple[list[Fix], NmeaCounters]:
    with (GPS / name).open("rb") as source:
        reader = NmeaReader(source, clock=lambda: AFTER_MIDNIGHT, **options)  # type: ignore[arg-type]
        fixes = list(reader)
    return fixes, reader.counters


def parseAll(
    data: bytes, clock: float = AFTER_MIDNIGHT, **options: object
) -> tuple[list[Fix], NmeaParser]:
    parser = NmeaParser(clock=lambda: clock, **options)  # type: ignore[arg-type]
    fixes = parser.feed(data) + parser.end()
    return fixes, parser


class RealLogTests(SynchronousTestCase):
    """
    Every GPSD log parses without an exception, with exact counts.
    """

    def assertCounters(self, counters: NmeaCounters, **expected: int) -> None:
        actual = {name: getattr(counters, name) for name in expected}
        self.assertEqual(actual, expected)

    def test_april6(self) -> None:
        """
        april6_2019.log: the RMC with date C{2208-1} is malformed, the
        empty RMC is a no-fix epoch, and the last gives a 1999-08-22 fix
        (the receiver's week-rollover date, kept as sent).
        """
        fixes, counters = readLog("april6_2019.log")
        self.assertCounters(
            counters, sentences=3, badChecksum=0, malformed=1, noFix=1, fixes=1, used=2
        )
        self.assertEqual(fixes[0].time, datetime(1999, 8, 22, 0, 2, 31, 420000, tzinfo=UTC))
        self.assertAlmostEqual(fixes[0].lat, 48 + 29.0005 / 60)
        self.assertAlmostEqual(fixes[0].lon, 22.0016 / 60)

    def test_firefly(self) -> None:
        """
        firefly-II.log: all 23 GGA are rejected for their checksum, and
        the 23 good RMC (with ZDA) still give 23 fixes, without altitude.
        """
        fixes, counters = readLog("firefly-II.log")
        self.assertCounters(
            counters,
            sentences=69,
            badChecksum=23,
            missingChecksum=0,
            malformed=0,
            noFix=0,
            fixes=23,
            used=46,
        )
        self.assertEqual(len(fixes), 23)
        self.assertEqual(fixes[0].time, datetime(2010, 7, 8, 0, 59, 47, tzinfo=UTC))
        self.assertEqual(fixes[-1].time, datetime(2010, 7, 8, 1, 0, 9, tzinfo=UTC))
        self.assertAlmostEqual(fixes[0].lat, 37 + 15.6616 / 60)
        self.assertAlmostEqual(fixes[0].lon, -(121 + 57.6709 / 60))
        self.assertEqual({fix.alt for fix in fixes}, {None})
        self.assertEqual({fix.valid for fix in fixes}, {True})

    def test_coldboot(self) -> None:
        """
        gp-320fw-2019-04-07-coldboot.log: 41 broken or missing checksums,
        glued fragments rejected as malformed, the V-status and 0,0 epochs
        are no fixes, and only the two real fixes before the restart come
        out.
        """
        fixes, counters = readLog("gp-320fw-2019-04-07-coldboot.log")
        self.assertCounters(
            counters,
            sentences=139,
            badChecksum=41,
            missingChecksum=8,
            malformed=5,
            unsupported=27,
            used=66,
            noFix=18,
            fixes=2,
            proprietary=0,
        )
        self.assertEqual(
            [fix.time for fix in fixes],
            [
                datetime(2019, 4, 7, 0, 3, 43, 30000, tzinfo=UTC),
                datetime(2019, 4, 7, 0, 3, 45, 30000, tzinfo=UTC),
            ],
        )
        self.assertEqual(fixes[0].alt, 460.0)
        self.assertEqual(fixes[0].satellites, 4)
        self.assertEqual(fixes[0].hdop, 1.4)
        self.assertEqual(fixes[0].fixQuality, 1)

    def test_coldbootInvalidFixesFlagged(self) -> None:
        """
        With C{includeInvalid}, the 18 no-fix epochs that have a time and a
        position come out with C{valid=False}, all at 0,0.
        """
        fixes, counters = readLog("gp-320fw-2019-04-07-coldboot.log", includeInvalid=True)
        invalid = [fix for fix in fixes if not fix.valid]
        self.assertEqual(len(invalid), 18)
        self.assertEqual({(fix.lat, fix.lon) for fix in invalid}, {(0.0, 0.0)})
        self.assertEqual(counters.noFix, 18)
        self.assertEqual(counters.fixes, 20)

    def test_gpsdf(self) -> None:
        """
        gpsdf.log: 792 good PGLOR sentences are ignored as proprietary,
        the 46 bad ones are counted as bad checksums, and 51 fixes come out.
        """
        fixes, counters = readLog("gpsdf.log")
        self.assertCounters(
            counters,
            sentences=1501,
            badChecksum=46,
            malformed=0,
            proprietary=792,
            unsupported=255,
            used=408,
            noFix=0,
            fixes=51,
        )
        self.assertEqual(fixes[0].time, datetime(2020, 2, 2, 0, 1, 45, tzinfo=UTC))
        self.assertEqual(fixes[0].satellites, 15)

    def test_quectel(self) -> None:
        """
        quectel-l76k-nmea.log: the 5 Hz GN talker stream gives one fix per
        0.2 s time of day: 151, because GGA and RMC of one time of day come
        in different bursts.
        """
        fixes, counters = readLog("quectel-l76k-nmea.log")
        self.assertCounters(
            counters,
            sentences=2280,
            badChecksum=0,
            malformed=0,
            unsupported=1080,
            used=1200,
            noFix=0,
            fixes=151,
        )
        times = [fix.time for fix in fixes]
        self.assertEqual(times[0], datetime(2026, 8, 5, 5, 52, 34, tzinfo=UTC))
        self.assertEqual(times[1], datetime(2026, 8, 5, 5, 52, 34, 200000, tzinfo=UTC))
        self.assertEqual(times[-1], datetime(2026, 8, 5, 5, 53, 4, tzinfo=UTC))
        self.assertEqual(times, sorted(set(times)))
        # A fix from both GGA and RMC has altitude and speed.
        self.assertEqual(fixes[1].alt, 76.5)
        self.assertEqual(fixes[1].speed, 0.0)
        self.assertEqual(fixes[1].satellites, 14)

    def test_mr350p(self) -> None:
        """
        mr-350p.log (scenario 14) has GGA and ZDA only.  The date comes from
        ZDA, also for the first GGA whose ZDA follows it, and never from the
        reference clock.
        """
        fixes, counters = readLog("mr-350p.log")
        self.assertCounters(counters, sentences=42, badChecksum=0, malformed=0, used=42, fixes=14)
        self.assertEqual(fixes[0].time, datetime(2012, 7, 4, 5, 11, 33, tzinfo=UTC))
        self.assertEqual(fixes[-1].time, datetime(2012, 7, 4, 5, 11, 46, tzinfo=UTC))
        self.assertEqual({fix.time.date() for fix in fixes}, {datetime(2012, 7, 4).date()})

    def test_telit(self) -> None:
        """
        telit-he910.log (scenario 14): 37 no-fix epochs, then 187 fixes
        dated by RMC.
        """
        fixes, counters = readLog("telit-he910.log")
        self.assertCounters(
            counters,
            sentences=1558,
            badChecksum=0,
            malformed=0,
            unsupported=438,
            used=1120,
            noFix=37,
            fixes=187,
        )
        self.assertEqual(fixes[0].time, datetime(2019, 3, 12, 10, 51, 53, 710000, tzinfo=UTC))
        self.assertEqual(fixes[-1].time, datetime(2019, 3, 12, 10, 54, 59, 408000, tzinfo=UTC))

    def test_streamingEqualsWhole(self) -> None:
        """
        Feeding a log in random small pieces gives the same fixes and
        counters as feeding it whole.
        """
        data = (GPS / "gp-320fw-2019-04-07-coldboot.log").read_bytes()
        whole, wholeParser = parseAll(data, includeInvalid=True)
        parser = NmeaParser(clock=lambda: AFTER_MIDNIGHT, includeInvalid=True)
        pieces: list[Fix] = []
        randomness = random.Random(7)
        position = 0
        while position < len(data):
            size = randomness.randint(1, 40)
            pieces += parser.feed(data[position : position + size])
            position += size
        pieces += parser.end()
        self.assertEqual(pieces, whole)
        self.assertEqual(parser.counters, wholeParser.counters)


class DateTests(SynchronousTestCase):
    """
    How fixes without a date in their epoch get one (scenario 14).
    """

    def test_loneGgaBeforeMidnight(self) -> None:
        """
        A lone GGA at 23:59:59 with the reference clock at 00:00:01 UTC
        gets yesterday's date, not today's (which would be 24 h ahead).
        """
        data = sentence("GPGGA,235959.00,4744.6977,N,12206.7277,W,1,05,1.9,136.4,M,-17.1,M,,")
        fixes, _ = parseAll(data)
        self.assertEqual(
            [fix.time for fix in fixes], [datetime(2026, 12, 4, 23, 59, 59, tzinfo=UTC)]
        )

    def test_loneGgaAfterMidnight(self) -> None:
        """
        A GGA at 00:00:00 with the reference clock at 23:59:30 gets the
        next day's date.
        """
        clock = datetime(2026, 12, 4, 23, 59, 30, tzinfo=UTC).timestamp()
        data = sentence("GPGGA,000000.00,4744.6977,N,12206.7277,W,1,05,1.9,136.4,M,-17.1,M,,")
        fixes, _ = parseAll(data, clock=clock)
        self.assertEqual([fix.time for fix in fixes], [datetime(2026, 12, 5, 0, 0, tzinfo=UTC)])

    def test_rolloverWithoutDate(self) -> None:
        """
        GGA-only fixes crossing midnight advance the date, although the
        reference clock stays before midnight.
        """
        clock = datetime(2026, 12, 4, 23, 59, 58, tzinfo=UTC).timestamp()
        data = b"".join(
            sentence(f"GPGGA,{time},4744.6977,N,12206.7277,W,1,05,1.9,136.4,M,-17.1,M,,")
            for time in ("235958", "235959", "000000", "000001")
        )
        fixes, _ = parseAll(data, clock=clock)
        self.assertEqual(
            [fix.time for fix in fixes],
            [
                datetime(2026, 12, 4, 23, 59, 58, tzinfo=UTC),
                datetime(2026, 12, 4, 23, 59, 59, tzinfo=UTC),
                datetime(2026, 12, 5, 0, 0, 0, tzinfo=UTC),
                datetime(2026, 12, 5, 0, 0, 1, tzinfo=UTC),
            ],
        )

    def test_ggaOnlyNeverADayOff(self) -> None:
        """
        mr-350p.log without its ZDA sentences, replayed against reference
        clocks all around the day, always gives fixes within 12 h of the
        reference.
        """
        lines = (GPS / "mr-350p.log").read_bytes().splitlines(keepends=True)
        data = b"".join(line for line in lines if b"ZDA" not in line)
        for hour in range(0, 24, 3):
            reference = datetime(2012, 7, 4, hour, 0, 1, tzinfo=UTC)
            fixes, _ = parseAll(data, clock=reference.timestamp())
            self.assertEqual(len(fixes), 14)
            for fix in fixes:
                self.assertLessEqual(abs((fix.time - reference).total_seconds()), 12 * 3600)

    def test_rmcDateWins(self) -> None:
        """
        A date from RMC of the same time of day beats the reference clock.
        """
        data = sentence(
            "GPGGA,120000.00,4744.6977,N,12206.7277,W,1,05,1.9,136.4,M,,M,,"
        ) + sentence("GPRMC,120000.00,A,4744.6977,N,12206.7277,W,1.0,90.0,010203,,,A")
        fixes, _ = parseAll(data)
        self.assertEqual([fix.time for fix in fixes], [datetime(2003, 2, 1, 12, tzinfo=UTC)])
        self.assertAlmostEqual(fixes[0].speed or 0.0, 1852 / 3600)
        self.assertEqual(fixes[0].heading, 90.0)
        self.assertEqual(fixes[0].alt, 136.4)


class SentenceCheckTests(SynchronousTestCase):
    """
    Checksums, field syntax and ranges, and damaged input.
    """

    def test_fieldRanges(self) -> None:
        """
        Sentences with a correct checksum but a field out of range or of
        the wrong syntax are rejected as malformed.
        """
        bad = [
            "GPRMC,120000.00,A,9100.0000,N,01135.0798,E,0.0,0.0,010203,,,A",
            "GPRMC,120000.00,A,4808.9993,,01135.0798,E,0.0,0.0,010203,,,A",
            "GPRMC,120000.00,A,4808.9993,X,01135.0798,E,0.0,0.0,010203,,,A",
            "GPRMC,120000.00,A,4808.9993,N,18100.0000,E,0.0,0.0,010203,,,A",
            "GPRMC,120000.00,A,4860.0000,N,01135.0798,E,0.0,0.0,010203,,,A",
            "GPRMC,120000.00,A,4808.9993,N,1135.0798,E,0.0,0.0,010203,,,A",
            "GPRMC,246000.00,A,4808.9993,N,01135.0798,E,0.0,0.0,010203,,,A",
            "GPRMC,120000.00,A,4808.9993,N,01135.0798,E,0.0,0.0,320103,,,A",
            "GPRMC,120000.00,X,4808.9993,N,01135.0798,E,0.0,0.0,010203,,,A",
            "GPRMC,120000.00,A,4808.9993,N,01135.0798,E,-1.0,0.0,010203,,,A",
            "GPGGA,120000.00,4808.9993,N,01135.0798,E,9,04,1.4,460.0,M,,M,,",
            "GPGGA,120000.00,4808.9993,N,01135.0798,E,1,x4,1.4,460.0,M,,M,,",
            "GPZDA,120000.00,32,01,2003,,",
        ]
        fixes, parser = parseAll(b"".join(sentence(body) for body in bad))
        self.assertEqual(fixes, [])
        self.assertEqual(parser.counters.malformed, len(bad))
        self.assertEqual(parser.counters.badChecksum, 0)

    def test_badAndMissingChecksum(self) -> None:
        """
        A wrong checksum and a missing one are both rejected and counted.
        """
        good = sentence("GPRMC,120000.00,A,4808.9993,N,01135.0798,E,0.0,0.0,010203,,,A")
        self.assertNotEqual(good[-4:], b"00\r\n")
        wrong = good[:-4] + b"00\r\n"
        missing = good.split(b"*")[0] + b"\r\n"
        fixes, parser = parseAll(wrong + missing)
        self.assertEqual(fixes, [])
        self.assertEqual(parser.counters.badChecksum, 2)
        self.assertEqual(parser.counters.missingChecksum, 1)

    def test_damagedInput(self) -> None:
        """
        NUL bytes, a sentence cut off, sentences joined without a line end,
        LF-only line ends and proprietary sentences do not stop the good
        sentences from being used.
        """
        rmc = sentence("GPRMC,120000.00,A,4808.9993,N,01135.0798,E,0.0,0.0,010203,,,A")
        later = sentence("GPRMC,120001.00,A,4808.9993,N,01135.0798,E,0.0,0.0,010203,,,A")
        data = (
            b"\x00\x00"
            + rmc[:-2]
            + b"\n"
            + b"$GPGGA,120000.00,48\x00\x00\x00   \r\n"
            + sentence("PGLOR,1,SPS,280930179,0,-1,0,0,12,,")
            + b"$GPGSV,3,1,12,20,76"
            + later
        )
        fixes, parser = parseAll(data)
        self.assertEqual(
            [fix.time for fix in fixes],
            [datetime(2003, 2, 1, 12, 0, tzinfo=UTC), datetime(2003, 2, 1, 12, 0, 1, tzinfo=UTC)],
        )
        self.assertEqual(parser.counters.proprietary, 1)
        self.assertEqual(parser.counters.missingChecksum, 2)
        self.assertEqual(parser.counters.sentences, 5)

    def test_zeroZeroNotValid(self) -> None:
        """
        A fix at exactly 0,0 with status A is still not a valid fix.
        """
        data = sentence("GPRMC,120000.00,A,0000.0000,N,00000.0000,E,0.0,0.0,010203,,,A")
        fixes, parser = parseAll(data)
        self.assertEqual(fixes, [])
        self.assertEqual(parser.counters.noFix, 1)
        fixes, _ = parseAll(data, includeInvalid=True)
        self.assertEqual([fix.valid for fix in fixes], [False])

    def test_ggaQualityZero(self) -> None:
        """
        GGA fix quality 0 is no fix.
        """
        data = sentence("GPGGA,120000.00,4808.9993,N,01135.0798,E,0,04,1.4,460.0,M,,M,,")
        fixes, parser = parseAll(data)
        self.assertEqual(fixes, [])
        self.assertEqual(parser.counters.noFix, 1)

    def test_overlongLine(self) -> None:
        """
        A line longer than the limit is discarded and counted; the parser
        goes on with the next line.
        """
        parser = NmeaParser(clock=lambda: AFTER_MIDNIGHT, maxLineLength=100)
        parser.feed(b"$GPGSV," + b"1" * 500)
        parser.feed(b"1" * 500 + b"\r\n")
        fixes = (
            parser.feed(sentence("GPRMC,120000.00,A,4808.9993,N,01135.0798,E,0.0,0.0,010203,,,A"))
            + parser.end()
        )
        self.assertEqual(len(fixes), 1)
        self.assertEqual(parser.counters.overlongLines, 1)

    def test_locationFields(self) -> None:
        """
        L{Fix.locationFields} has the wire location message's field names.
        """
        fix = Fix(time=datetime(2020, 1, 1, tzinfo=UTC), lat=1.0, lon=2.0, alt=3.0)
        self.assertEqual(
            fix.locationFields(),
            {
                "lat": 1.0,
                "lon": 2.0,
                "alt": 3.0,
                "speed": None,
                "heading": None,
                "accuracy": None,
                "time": datetime(2020, 1, 1, tzinfo=UTC),
                "satellites": None,
                "fixQuality": None,
                "valid": True,
            },
        )

    def test_reader(self) -> None:
        """
        L{NmeaReader} reads a file object in chunks and shares the
        parser's counters.
        """
        data = sentence("GPRMC,120000.00,A,4808.9993,N,01135.0798,E,0.0,0.0,010203,,,A") * 3
        reader = NmeaReader(io.BytesIO(data), clock=lambda: AFTER_MIDNIGHT, chunkSize=5)
        self.assertEqual(len(list(reader)), 3)
        self.assertIs(reader.counters, reader.parser.counters)
