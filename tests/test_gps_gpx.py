"""
Tests for L{mrs.media.gpx}: the GPX reader and the GPX and NDJSON writers.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from mrs.media.errors import FormatError
from mrs.media.gpx import (
    XML_PARSER,
    GpxReader,
    GpxWriter,
    NdjsonWriter,
    parseNdjsonLine,
    readGpx,
)
from mrs.media.nmea import Fix

GPS = Path(__file__).parent / "data" / "gps"


class GpxReaderTests(SynchronousTestCase):
    """
    Tests for L{GpxReader} on the real GPX files and crafted ones.
    """

    def test_cerknicko(self) -> None:
        """
        cerknicko-jezero.gpx (GPX 1.0) has 296 timed track points in order,
        in 7 non-empty segments (the first of 8 is empty), and 7 waypoints.
        """
        with (GPS / "cerknicko-jezero.gpx").open("rb") as source:
            reader = GpxReader(source, name="cerknicko-jezero.gpx", chunkSize=1000)
            points = list(reader)
        self.assertEqual(len(points), 296)
        self.assertEqual(reader.counts, {"trkpt": 296, "rtept": 0, "wpt": 7})
        self.assertEqual(sorted({point.segment for point in points}), [1, 2, 3, 4, 5, 6, 7])
        first = points[0]
        self.assertEqual(
            (first.lat, first.lon, first.ele, first.time),
            (45.772175035, 14.357659249, 542.320923, datetime(2010, 8, 5, 14, 23, 59, tzinfo=UTC)),
        )
        self.assertEqual(points[-1].time, datetime(2010, 8, 5, 16, 23, 49, tzinfo=UTC))
        times = [point.time for point in points]
        self.assertEqual(times, sorted(times))  # type: ignore[type-var]

    def test_waypoints(self) -> None:
        """
        Waypoints are read when requested.  Only the first has a time, so
        the others are read only without C{requireTime}.
        """
        data = (GPS / "cerknicko-jezero.gpx").read_bytes()
        error = self.assertRaises(FormatError, readGpx, data, "c.gpx", ("wpt",))
        self.assertEqual(str(error), "c.gpx: the wpt at line 17 has no <time>; cannot pace it")
        waypoints = readGpx(data, kinds=("wpt",), requireTime=False)
        self.assertEqual(len(waypoints), 7)
        self.assertEqual({point.kind for point in waypoints}, {"wpt"})

    def test_mojstrovka(self) -> None:
        """
        Mojstrovka.gpx has 184 points that all carry the signed 32-bit
        Unix minimum as their time, read as it is.
        """
        points = readGpx((GPS / "Mojstrovka.gpx").read_bytes())
        self.assertEqual(len(points), 184)
        self.assertEqual(points[0].time, datetime(1901, 12, 13, 20, 45, 52, 207343, tzinfo=UTC))
        self.assertEqual(min(point.ele or 0 for point in points) // 1, 1614)

    def test_gpx11(self) -> None:
        """
        GPX 1.1 track points, route points, zone offsets and fractional
        seconds are read.
        """
        data = b"""<?xml version="1.0"?>
<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">
<rte><rtept lat="1.5" lon="-2.25"><time>2020-01-01T01:00:00.5+01:00</time></rtept></rte>
<trk><trkseg><trkpt lat="-89.9" lon="179.9"><ele>-3</ele><time>2020-01-01T00:00:00Z</time>
<sat>7</sat><hdop>0.9</hdop></trkpt></trkseg></trk></gpx>"""
        points = readGpx(data, kinds=("trkpt", "rtept"))
        self.assertEqual([point.kind for point in points], ["rtept", "trkpt"])
        self.assertEqual(points[0].time, datetime(2020, 1, 1, 0, 0, 0, 500000, tzinfo=UTC))
        self.assertEqual((points[1].ele, points[1].satellites, points[1].hdop), (-3.0, 7, 0.9))

    def test_outOfRangeOptionalValues(self) -> None:
        """
        Out-of-range optional values are dropped and counted; the point
        stays.
        """
        data = (
            b'<gpx version="1.0" xmlns="http://www.topografix.com/GPX/1/0"><trk><trkseg>'
            b'<trkpt lat="1" lon="2"><time>2020-01-01T00:00:00Z</time><speed>-1</speed>'
            b"<course>400</course><sat>2.5</sat><hdop>-3</hdop></trkpt>"
            b'<trkpt lat="1" lon="2"><time>2020-01-01T00:00:01Z</time><speed>1.5</speed>'
            b"<course>359.5</course><sat>12</sat></trkpt></trkseg></trk></gpx>"
        )
        reader = GpxReader(io.BytesIO(data))
        points = list(reader)
        self.assertEqual(
            [(p.speed, p.course, p.satellites, p.hdop) for p in points],
            [(None, None, None, None), (1.5, 359.5, 12, None)],
        )
        self.assertEqual(reader.droppedValues, 4)
        fix = points[1].toFix()
        self.assertEqual((fix.speed, fix.heading, fix.satellites), (1.5, 359.5, 12))

    def test_noTimes(self) -> None:
        """
        A track without times cannot be paced.
        """
        data = b'<gpx><trk><trkseg><trkpt lat="1" lon="2"/></trkseg></trk></gpx>'
        error = self.assertRaises(FormatError, readGpx, data, "walk.gpx")
        self.assertEqual(str(error), "walk.gpx has no <time> in its track points; cannot pace it")

    def test_laterPointWithoutTime(self) -> None:
        """
        A point without time after timed ones is named with its line.
        """
        data = (
            b'<gpx>\n<trk><trkseg><trkpt lat="1" lon="2"><time>2020-01-01T00:00:00Z</time>'
            b'</trkpt>\n<trkpt lat="1" lon="2"/></trkseg></trk></gpx>'
        )
        error = self.assertRaises(FormatError, readGpx, data, "walk.gpx")
        self.assertEqual(str(error), "walk.gpx: the trkpt at line 3 has no <time>; cannot pace it")

    def test_noPoints(self) -> None:
        """
        A GPX file without the requested points is an error that names the
        kinds it does have.
        """
        data = b'<gpx><wpt lat="1" lon="2"/></gpx>'
        error = self.assertRaises(FormatError, readGpx, data, "w.gpx")
        self.assertEqual(
            str(error),
            "w.gpx has no points (<trkpt>); it has 1 <wpt>, which the caller did not request",
        )

    def test_rangeChecked(self) -> None:
        """
        A latitude out of range is rejected with its line.
        """
        data = b'<gpx>\n<wpt lat="91" lon="2"/></gpx>'
        error = self.assertRaises(FormatError, readGpx, data, "w.gpx", ("wpt",), False)
        self.assertEqual(str(error), "w.gpx: the point at line 2 has lat='91', outside -90..90")

    def test_notGpx(self) -> None:
        """
        XML with another root element, and malformed XML, are rejected.
        """
        error = self.assertRaises(FormatError, readGpx, b"<kml/>", "x.kml")
        self.assertEqual(str(error), "x.kml is not a GPX file: its root element is <kml>")
        error = self.assertRaises(FormatError, readGpx, b"<gpx><trk>", "x.gpx")
        self.assertTrue(str(error).startswith("x.gpx is not well-formed XML: "))

    def test_entitiesRejected(self) -> None:
        """
        Entity declarations (billion laughs) and external entities are
        rejected before anything is expanded or fetched.
        """
        laughs = b"""<?xml version="1.0"?>
<!DOCTYPE gpx [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<gpx><wpt lat="1" lon="2"><name>&b;</name></wpt></gpx>"""
        error = self.assertRaises(FormatError, readGpx, laughs, "l.gpx")
        self.assertEqual(
            str(error),
            "l.gpx is rejected: it declares the XML entity 'a'; GPX files need no entities",
        )
        external = b"""<?xml version="1.0"?>
<!DOCTYPE gpx [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<gpx><wpt lat="1" lon="2"><name>&x;</name></wpt></gpx>"""
        error = self.assertRaises(FormatError, readGpx, external, "e.gpx")
        self.assertEqual(
            str(error),
            "e.gpx is rejected: it declares the XML entity 'x'; GPX files need no entities",
        )
        self.assertIn("expat", XML_PARSER)


class WriterTests(SynchronousTestCase):
    """
    Tests for L{GpxWriter} and L{NdjsonWriter}.
    """

    def test_gpxRoundTrip(self) -> None:
        """
        Writing the cerknicko track and reading it back gives the same
        latitude, longitude, elevation and time for every point.
        """
        points = readGpx((GPS / "cerknicko-jezero.gpx").read_bytes())
        writer = GpxWriter()
        output = b"".join(writer.write(point.toFix()) for point in points) + writer.finish()
        copy = readGpx(output)
        self.assertEqual(
            [(p.lat, p.lon, p.ele, p.time) for p in copy],
            [(p.lat, p.lon, p.ele, p.time) for p in points],
        )

    def test_gpxFractionsAndExtremes(self) -> None:
        """
        Microseconds, negative coordinates and floats without a short
        decimal form survive the round trip.
        """
        fixes = [
            Fix(
                time=datetime(1901, 12, 13, 20, 45, 52, 207343, tzinfo=UTC),
                lat=-0.1 - 0.2,
                lon=-180.0,
            ),
            Fix(time=datetime(2030, 1, 1, tzinfo=UTC), lat=89.99999999999, lon=1 / 3, alt=-0.11),
        ]
        writer = GpxWriter(trackName="a & b")
        output = b"".join(writer.write(fix) for fix in fixes) + writer.finish()
        copy = readGpx(output)
        self.assertEqual(
            [(p.lat, p.lon, p.ele, p.time) for p in copy],
            [(f.lat, f.lon, f.alt, f.time) for f in fixes],
        )

    def test_gpxEmpty(self) -> None:
        """
        A writer finished without points still gives a whole document.
        """
        self.assertEqual(
            GpxWriter().finish(),
            b'<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="mrs" '
            b'xmlns="http://www.topografix.com/GPX/1/1">\n<trk><trkseg>\n</trkseg></trk>\n</gpx>\n',
        )

    def test_ndjson(self) -> None:
        """
        NDJSON lines use the wire field names, leave out absent values and
        read back to the same fix.
        """
        fix = Fix(
            time=datetime(2019, 4, 7, 10, 11, 12, 500000, tzinfo=UTC),
            lat=46.05,
            lon=14.5,
            alt=300.25,
            satellites=7,
            fixQuality=1,
        )
        line = NdjsonWriter().write(fix, device="cam-01")
        self.assertEqual(
            line,
            b'{"device":"cam-01","time":"2019-04-07T10:11:12.5Z","lat":46.05,"lon":14.5,'
            b'"alt":300.25,"satellites":7,"fix_quality":1,"valid":true}\n',
        )
        self.assertEqual(parseNdjsonLine(line), ("cam-01", fix))

    def test_ndjsonInvalid(self) -> None:
        """
        A line without a time is not a location.
        """
        self.assertRaises(FormatError, parseNdjsonLine, b'{"lat":1,"lon":2}')
        self.assertRaises(FormatError, parseNdjsonLine, b"not json")
        self.assertRaises(FormatError, parseNdjsonLine, io.BytesIO(b"").read())
