"""
Tests for L{mrs.media.location}: server-side validation and the
per-device tracker.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from mrs.media.location import (
    CURRENT,
    DUPLICATE,
    HISTORY,
    LocationTracker,
    TrackerCounters,
    validateLocation,
)
from mrs.media.nmea import Fix, NmeaReader

GPS = Path(__file__).parent / "data" / "gps"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def fixAt(seconds: float = 0.0, lat: float = 46.05, lon: float = 14.5, **fields: object) -> Fix:
    return Fix(time=NOW + timedelta(seconds=seconds), lat=lat, lon=lon, **fields)  # type: ignore[arg-type]


class ValidateLocationTests(SynchronousTestCase):
    """
    Tests for L{validateLocation}.
    """

    def test_valid(self) -> None:
        """
        A fix in range, marked valid, not in the future, passes.
        """
        self.assertEqual(validateLocation(fixAt(), NOW.timestamp()), (True, ""))

    def test_rejections(self) -> None:
        """
        Each out-of-range or invalid field is rejected with a reason that
        names it.
        """
        cases = [
            (fixAt(valid=False), "the device marked the fix as not valid"),
            (fixAt(lat=90.5), "latitude 90.5 is outside -90..90"),
            (fixAt(lat=float("nan")), "latitude nan is outside -90..90"),
            (fixAt(lon=-180.01), "longitude -180.01 is outside -180..180"),
            (fixAt(lat=0.0, lon=0.0), "position 0,0 is a receiver's placeholder, not a fix"),
            (fixAt(speed=-1.0), "speed -1.0 is outside 0..1000"),
            (fixAt(heading=361.0), "heading 361.0 is outside 0..360"),
            (fixAt(fixQuality=0), "fix quality 0 means no fix"),
            (fixAt(satellites=-1), "satellites -1 is outside 0..255"),
            (fixAt(satellites=256), "satellites 256 is outside 0..255"),
        ]
        for fix, reason in cases:
            self.assertEqual(validateLocation(fix, NOW.timestamp()), (False, reason))

    def test_future(self) -> None:
        """
        A fix more than 60 s ahead of the server clock is rejected; the
        limit is configurable.
        """
        self.assertEqual(validateLocation(fixAt(60), NOW.timestamp()), (True, ""))
        self.assertEqual(
            validateLocation(fixAt(61), NOW.timestamp()),
            (
                False,
                "fix time 2026-12-05T12:01:01+00:00 is 61 s ahead of the server clock "
                "(limit 60 s); check the device clock",
            ),
        )
        self.assertEqual(
            validateLocation(fixAt(61), NOW.timestamp(), maxFutureSeconds=120), (True, "")
        )

    def test_maxAge(self) -> None:
        """
        Old fixes pass unless a maximum age is given.
        """
        old = fixAt(-86400)
        self.assertEqual(validateLocation(old, NOW.timestamp()), (True, ""))
        ok, reason = validateLocation(old, NOW.timestamp(), maxAgeSeconds=3600)
        self.assertFalse(ok)
        self.assertEqual(
            reason,
            "fix time 2026-12-04T12:00:00+00:00 is 86400 s behind the server clock (limit 3600 s)",
        )

    def test_coldbootNeverValid(self) -> None:
        """
        Scenario 12: no fix of the cold-boot log at 0,0 or with status V
        passes, even when the reader passes them through as invalid.
        """
        with (GPS / "gp-320fw-2019-04-07-coldboot.log").open("rb") as source:
            fixes = list(NmeaReader(source, clock=NOW.timestamp, includeInvalid=True))
        verdicts = [validateLocation(fix, NOW.timestamp())[0] for fix in fixes]
        self.assertEqual(verdicts.count(True), 2)
        self.assertEqual(verdicts.count(False), 18)


class LocationTrackerTests(SynchronousTestCase):
    """
    Tests for L{LocationTracker} (scenario 13).
    """

    def test_scenario13(self) -> None:
        """
        Every fix of the 5 Hz Quectel log becomes current in turn.  The same
        fix sent 100 times is kept once.  Sixty shuffled fixes from 5 minutes
        before go to history at their own times and leave the current fix
        alone.
        """
        with (GPS / "quectel-l76k-nmea.log").open("rb") as source:
            fixes = list(NmeaReader(source, clock=NOW.timestamp))
        tracker = LocationTracker()
        self.assertEqual({tracker.offer(fix) for fix in fixes}, {CURRENT})
        last = fixes[-1]
        self.assertIs(tracker.current, last)

        repeats = [tracker.offer(replace(last)) for _ in range(100)]
        self.assertEqual(set(repeats), {DUPLICATE})

        old = [
            replace(
                last,
                time=last.time - timedelta(minutes=5, seconds=index),
                lat=last.lat + index * 1e-5,
            )
            for index in range(60)
        ]
        random.Random(13).shuffle(old)
        self.assertEqual({tracker.offer(fix) for fix in old}, {HISTORY})
        self.assertIs(tracker.current, last)
        self.assertEqual(
            tracker.counters,
            TrackerCounters(current=151, history=60, duplicates=100, historyDropped=0),
        )
        self.assertEqual(len(tracker.history), 211)
        times = [fix.time for fix in tracker.history]
        self.assertEqual(times, sorted(times))
        self.assertIs(tracker.history[-1], last)

    def test_oldDuplicate(self) -> None:
        """
        An old fix sent twice goes to history once.
        """
        tracker = LocationTracker()
        tracker.offer(fixAt(10))
        self.assertEqual(tracker.offer(fixAt(0)), HISTORY)
        self.assertEqual(tracker.offer(fixAt(0)), DUPLICATE)

    def test_sameTimeOtherPlace(self) -> None:
        """
        A fix with the current time but another position is not a
        duplicate and replaces the current one.
        """
        tracker = LocationTracker()
        tracker.offer(fixAt(0))
        moved = fixAt(0, lat=46.06)
        self.assertEqual(tracker.offer(moved), CURRENT)
        self.assertIs(tracker.current, moved)

    def test_bounded(self) -> None:
        """
        The history keeps the newest C{maxHistory} fixes by time.
        """
        tracker = LocationTracker(maxHistory=3)
        for second in (5, 1, 4, 2, 3):
            tracker.offer(fixAt(second))
        self.assertEqual([fix.time.second for fix in tracker.history], [3, 4, 5])
        self.assertEqual(tracker.counters.historyDropped, 2)
        self.assertEqual(tracker.current, fixAt(5))
        self.assertEqual(tracker.age(NOW.timestamp() + 10), timedelta(seconds=5))

    def test_invalidMaxHistory(self) -> None:
        """
        A history of size 0 is rejected.
        """
        error = self.assertRaises(ValueError, LocationTracker, 0)
        self.assertEqual(str(error), "invalid maxHistory 0; it must be at least 1")
