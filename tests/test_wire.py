"""
Tests for L{mrs.wire}: frames, messages, the decoder and its errors.
"""

# The credentials in these tests are made up, so ruff's hardcoded-password
# check does not apply.
# ruff: noqa: S106

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from mrs import wire
from mrs.wire import (
    PREAMBLE,
    Announce,
    Announced,
    BadFrame,
    BadMagic,
    BadMessage,
    Bye,
    Command,
    CommandResult,
    Decoder,
    DeviceInfo,
    Devices,
    ErrorMessage,
    Event,
    FrameTooLarge,
    Hello,
    InvalidJSON,
    InvalidMessage,
    Limits,
    ListDevices,
    Location,
    Login,
    LoginOk,
    MediaFrame,
    Message,
    OutOfRange,
    Ping,
    Pong,
    Revoked,
    Start,
    StartTLS,
    StartTLSOk,
    Stop,
    Subscribe,
    Subscribed,
    TrackSpec,
    TruncatedFrame,
    UnknownMessageType,
    Unsubscribe,
    Unsubscribed,
    UnsupportedVersion,
    Welcome,
    WireError,
    chooseVersion,
    encodeMessage,
    parseMessage,
)

TIME = datetime(2019, 4, 7, 10, 11, 12, 500000, tzinfo=UTC)
LIMITS = Limits(8388608, 10.0, 30.0, 15.0)


def controlFrame(payload: bytes) -> bytes:
    """
    Return a control frame around C{payload}, whatever it contains.
    """
    return struct.pack(">BBHI", 1, 0, 0, len(payload)) + payload


def jsonFrame(obj: Any) -> bytes:
    return controlFrame(json.dumps(obj).encode("utf-8"))


def decodeOne(obj: Any) -> Any:
    """
    Decode one control frame holding C{obj} and return the only event.
    """
    events = Decoder(1 << 20, expectPreamble=False).feed(jsonFrame(obj))
    assert len(events) == 1, events
    return events[0]


# Each message with the JSON object it encodes to.
EXAMPLES: list[tuple[Message, dict[str, Any]]] = [
    (Hello((1,), "device", "cam-fw/2.1"),
     {"type": "hello", "versions": [1], "role": "device", "client": "cam-fw/2.1"}),
    (Hello((2, 1), "monitor"), {"type": "hello", "versions": [2, 1], "role": "monitor"}),
    (Welcome(1, "mrs/0.1.0", True, False, LIMITS),
     {"type": "welcome", "version": 1, "server": "mrs/0.1.0", "starttls": True,
      "encrypted": False,
      "limits": {"max_frame_size": 8388608, "keepalive_interval": 10.0,
                 "idle_timeout": 30.0, "login_timeout": 15.0}}),
    (StartTLS(), {"type": "starttls"}),
    (StartTLSOk(), {"type": "starttls_ok"}),
    (Login(device="cam-01", secret="s3cret"),
     {"type": "login", "device": "cam-01", "secret": "s3cret"}),
    (Login(user="alice", password="pw", id=1),
     {"type": "login", "user": "alice", "password": "pw", "id": 1}),
    (Login(token="tok"), {"type": "login", "token": "tok"}),
    (LoginOk("monitor", "alice", "s-1", "tok", TIME),
     {"type": "login_ok", "role": "monitor", "name": "alice", "session": "s-1",
      "token": "tok", "token_expires": "2019-04-07T10:11:12.500Z"}),
    (LoginOk("device", "cam-01", "s-2"),
     {"type": "login_ok", "role": "device", "name": "cam-01", "session": "s-2"}),
    (Ping(), {"type": "ping"}),
    (Ping(id="p1"), {"type": "ping", "id": "p1"}),
    (Pong(id=5), {"type": "pong", "id": 5}),
    (Bye("shutting down"), {"type": "bye", "reason": "shutting down"}),
    (ErrorMessage("not_allowed_now", "subscribe is not allowed before login",
                  id="r1", ref="subscribe"),
     {"type": "error", "code": "not_allowed_now",
      "message": "subscribe is not allowed before login", "id": "r1", "ref": "subscribe"}),
    (Announce((TrackSpec("video", "h264"), TrackSpec("audio", "aac"),
               TrackSpec("location"))),
     {"type": "announce", "tracks": [{"track": "video", "codec": "h264"},
                                     {"track": "audio", "codec": "aac"},
                                     {"track": "location"}]}),
    (Announced(), {"type": "announced"}),
    (Location(52.52, 13.405, TIME, alt=34.0, speed=1.5, heading=270.0, accuracy=4.0,
              satellites=9, fixQuality=1, valid=True),
     {"type": "location", "lat": 52.52, "lon": 13.405, "time": "2019-04-07T10:11:12.500Z",
      "alt": 34.0, "speed": 1.5, "heading": 270.0, "accuracy": 4.0, "satellites": 9,
      "fix_quality": 1, "valid": True}),
    (Location(-90.0, 180.0, TIME, device="cam-01", source=3),
     {"type": "location", "lat": -90.0, "lon": 180.0, "time": "2019-04-07T10:11:12.500Z",
      "device": "cam-01", "source": 3}),
    (Start("video"), {"type": "start", "track": "video"}),
    (Stop("audio"), {"type": "stop", "track": "audio"}),
    (Command(7, "zoom", {"level": 2}, sender="alice"),
     {"type": "command", "id": 7, "name": "zoom", "args": {"level": 2}, "from": "alice"}),
    (Command("c1", "reboot", device="cam-01"),
     {"type": "command", "id": "c1", "name": "reboot", "args": {}, "device": "cam-01"}),
    (CommandResult(7, True, {"level": 2}),
     {"type": "command_result", "id": 7, "ok": True, "result": {"level": 2}}),
    (CommandResult("c1", False, error="busy", device="cam-01"),
     {"type": "command_result", "id": "c1", "ok": False, "error": "busy",
      "device": "cam-01"}),
    (ListDevices(id=3), {"type": "list", "id": 3}),
    (Devices((DeviceInfo("cam-01", "Front door", True, 1, (TrackSpec("video", "mjpeg"),),
                         ("video", "location"), Location(1.0, 2.0, TIME), 2.5),
              DeviceInfo("cam-02", "", False, 2)), id=3),
     {"type": "devices",
      "devices": [
          {"device": "cam-01", "name": "Front door", "online": True, "source": 1,
           "tracks": [{"track": "video", "codec": "mjpeg"}], "rights": ["video", "location"],
           "location": {"lat": 1.0, "lon": 2.0, "time": "2019-04-07T10:11:12.500Z"},
           "location_age": 2.5},
          {"device": "cam-02", "name": "", "online": False, "source": 2, "tracks": [],
           "rights": []}],
      "id": 3}),
    (Subscribe("cam-01", ("video", "audio")),
     {"type": "subscribe", "device": "cam-01", "tracks": ["video", "audio"]}),
    (Subscribed("cam-01", 1, ("video",), ("audio",)),
     {"type": "subscribed", "device": "cam-01", "source": 1, "tracks": ["video"],
      "denied": ["audio"]}),
    (Unsubscribe("cam-01"), {"type": "unsubscribe", "device": "cam-01"}),
    (Unsubscribe("cam-01", ("audio",)),
     {"type": "unsubscribe", "device": "cam-01", "tracks": ["audio"]}),
    (Unsubscribed("cam-01", ("video", "audio")),
     {"type": "unsubscribed", "device": "cam-01", "tracks": ["video", "audio"]}),
    (Event("device_reconnecting", "cam-01", source=1),
     {"type": "event", "event": "device_reconnecting", "device": "cam-01", "source": 1}),
    (Event("tracks_changed", "cam-01", tracks=(TrackSpec("video", "h265"),)),
     {"type": "event", "event": "tracks_changed", "device": "cam-01",
      "tracks": [{"track": "video", "codec": "h265"}]}),
    (Revoked("cam-01", ("audio",), "rule 4 removed"),
     {"type": "revoked", "device": "cam-01", "tracks": ["audio"], "reason": "rule 4 removed"}),
]


class MessageRoundTripTests(SynchronousTestCase):
    """
    Every message type encodes to its documented JSON and decodes back.
    """

    def test_everyTypeCovered(self) -> None:
        """
        The examples cover every message type.
        """
        covered = {type(message).TYPE for message, _ in EXAMPLES}
        self.assertEqual(covered, set(wire.MESSAGE_TYPES))

    def test_toDict(self) -> None:
        """
        C{toDict} returns the wire form, with C{"type"} first.
        """
        for message, expected in EXAMPLES:
            result = message.toDict()
            self.assertEqual(result, expected)
            self.assertEqual(next(iter(result)), "type")

    def test_parseMessage(self) -> None:
        """
        C{parseMessage} of the wire form returns an equal message.
        """
        for message, obj in EXAMPLES:
            self.assertEqual(parseMessage(obj), message)

    def test_encodeDecode(self) -> None:
        """
        C{encodeMessage} produces a control frame with compact JSON that
        the decoder turns back into an equal message.
        """
        for message, obj in EXAMPLES:
            frame = encodeMessage(message)
            payload = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
            self.assertEqual(frame, controlFrame(payload))
            self.assertEqual(Decoder(1 << 20, expectPreamble=False).feed(frame), [message])

    def test_nonASCIIUnescaped(self) -> None:
        """
        Text outside ASCII is sent as UTF-8, not as C{\\u} escapes.
        """
        frame = encodeMessage(Bye("Straße"))
        self.assertEqual(frame[8:], '{"type":"bye","reason":"Straße"}'.encode())

    def test_unknownFieldsIgnored(self) -> None:
        """
        Fields a message type lacks are ignored, for forward compatibility.
        """
        self.assertEqual(parseMessage({"type": "ping", "future": [1, 2]}), Ping())

    def test_nullIsAbsent(self) -> None:
        """
        JSON null in an optional field means the field is absent.
        """
        self.assertEqual(parseMessage({"type": "hello", "versions": [1], "role": "device",
                                       "client": None}), Hello((1,), "device"))

    def test_integerNumbersBecomeFloats(self) -> None:
        """
        Number fields accept JSON integers and store floats.
        """
        location = parseMessage({"type": "location", "lat": 52, "lon": -1,
                                 "time": "2019-04-07T10:11:12Z"})
        self.assertEqual(location, Location(52.0, -1.0, TIME.replace(microsecond=0)))
        assert isinstance(location, Location)
        self.assertIs(type(location.lat), float)

    def test_frozen(self) -> None:
        """
        Messages are immutable.
        """
        hello = Hello((1,), "device")
        self.assertRaises(AttributeError, setattr, hello, "role", "monitor")

    def test_listsBecomeTuples(self) -> None:
        """
        List fields given as lists are stored as tuples.
        """
        self.assertEqual(Hello([1], "device").versions, (1,))  # type: ignore[arg-type]


class LocationTimeTests(SynchronousTestCase):
    """
    Times are ISO 8601 in UTC with a C{Z}, parsed to aware datetimes.
    """

    def parseTime(self, text: str) -> datetime:
        location = parseMessage({"type": "location", "lat": 0, "lon": 0, "time": text})
        assert isinstance(location, Location)
        return location.time

    def test_milliseconds(self) -> None:
        """
        Three fraction digits are milliseconds and encode back unchanged.
        """
        self.assertEqual(self.parseTime("2019-04-07T10:11:12.500Z"), TIME)
        self.assertEqual(Location(0, 0, TIME).toDict()["time"], "2019-04-07T10:11:12.500Z")

    def test_microseconds(self) -> None:
        """
        Six fraction digits keep microsecond precision.
        """
        value = self.parseTime("2019-04-07T10:11:12.123456Z")
        self.assertEqual(value, datetime(2019, 4, 7, 10, 11, 12, 123456, tzinfo=UTC))
        self.assertEqual(Location(0, 0, value).toDict()["time"], "2019-04-07T10:11:12.123456Z")

    def test_otherFractionLengths(self) -> None:
        """
        No fraction, or 1 to 6 digits, are accepted; the encoder writes the
        canonical form with 3 or 6 digits.
        """
        self.assertEqual(self.parseTime("2019-04-07T10:11:12Z"),
                         datetime(2019, 4, 7, 10, 11, 12, tzinfo=UTC))
        self.assertEqual(self.parseTime("2019-04-07T10:11:12.5Z"), TIME)
        self.assertEqual(self.parseTime("2019-04-07T10:11:12.12345Z").microsecond, 123450)
        value = self.parseTime("2019-04-07T10:11:12Z")
        self.assertEqual(Location(0, 0, value).toDict()["time"], "2019-04-07T10:11:12.000Z")

    def test_aware(self) -> None:
        """
        The parsed time is aware and in UTC.
        """
        self.assertEqual(self.parseTime("2019-04-07T10:11:12.500Z").tzinfo, UTC)

    def test_otherZoneConverted(self) -> None:
        """
        An aware datetime in another zone is converted to UTC.
        """
        plusTwo = timezone(timedelta(hours=2))
        location = Location(0, 0, datetime(2019, 4, 7, 12, 11, 12, 500000, tzinfo=plusTwo))
        self.assertEqual(location.toDict()["time"], "2019-04-07T10:11:12.500Z")
        self.assertEqual(location.time.tzinfo, UTC)

    def test_naiveRejected(self) -> None:
        """
        A naive datetime is rejected.
        """
        error = self.assertRaises(BadMessage, Location, 0, 0, datetime(2019, 4, 7))
        self.assertEqual(
            str(error),
            "field 'time' of location: expected an aware datetime, "
            "got datetime.datetime(2019, 4, 7, 0, 0)",
        )

    def test_invalidForms(self) -> None:
        """
        Offsets, missing C{Z}, spaces and more than 6 fraction digits are
        rejected with C{bad_message}.
        """
        for text in ("2019-04-07T10:11:12+00:00", "2019-04-07T10:11:12", "2019-04-07 10:11:12Z",
                     "2019-04-07T10:11:12.1234567Z", "2019-4-7T10:11:12Z", "", "now"):
            error = self.assertRaises(BadMessage, self.parseTime, text)
            self.assertEqual(
                str(error),
                "field 'time' of location: expected an ISO 8601 UTC time such as "
                f'"2019-04-07T10:11:12.500Z", got {text!r}',
            )

    def test_impossibleDate(self) -> None:
        """
        A well-formed but impossible date is out of range.
        """
        error = self.assertRaises(OutOfRange, self.parseTime, "2019-02-30T10:11:12Z")
        self.assertEqual(
            str(error),
            "field 'time' of location: '2019-02-30T10:11:12Z' is out of range; "
            "use a real date and time (day is out of range for month)",
        )


class LocationReprTests(SynchronousTestCase):
    """
    The repr of a location leaves out the position, which must not be
    logged.
    """

    def test_reprHidesPosition(self) -> None:
        location = Location(52.52, 13.405, TIME, alt=34.0, device="cam-01", source=3)
        self.assertEqual(repr(location),
                         "Location(<position hidden>, time='2019-04-07T10:11:12.500Z', "
                         "device='cam-01', source=3, id=None)")

    def test_nestedReprHidesPosition(self) -> None:
        info = DeviceInfo("cam-01", "Front door", True, 1, location=Location(52.52, 13.405, TIME))
        self.assertNotIn("52.52", repr(info))


class LoginTests(SynchronousTestCase):
    """
    L{Login} allows exactly one form of credentials and hides them.
    """

    def test_reprHidesSecrets(self) -> None:
        """
        The repr shows which fields are present but not the secret,
        password or token.
        """
        self.assertEqual(repr(Login(device="cam-01", secret="s3cret")),
                         "Login(device='cam-01', secret=<hidden>)")
        self.assertEqual(repr(Login(user="alice", password="pw", id=1)),
                         "Login(user='alice', password=<hidden>, id=1)")
        self.assertEqual(repr(Login(token="tok")), "Login(token=<hidden>)")
        self.assertNotIn("s3cret", str(Login(device="cam-01", secret="s3cret")))

    def test_loginOkReprHidesToken(self) -> None:
        """
        The repr of L{LoginOk} hides the token.
        """
        self.assertEqual(
            repr(LoginOk("monitor", "alice", "s-1", "tok")),
            "LoginOk(role='monitor', name='alice', session='s-1', token=<hidden>, "
            "tokenExpires=None, id=None)",
        )

    def test_missingPartner(self) -> None:
        """
        A device without a secret, or a user without a password, is missing
        a field.
        """
        error = self.assertRaises(BadMessage, Login, device="cam-01")
        self.assertEqual(str(error), "missing field 'secret' of login: expected a string")
        error = self.assertRaises(BadMessage, Login, user="alice")
        self.assertEqual(str(error), "missing field 'password' of login: expected a string")

    def test_mixedForms(self) -> None:
        """
        Fields of two forms together are rejected, naming the extra field.
        """
        error = self.assertRaises(BadMessage, Login, device="cam-01", secret="s", token="t")
        self.assertEqual(
            str(error),
            "field 'token' of login: not allowed with 'device'; give device and secret, "
            "user and password, or token",
        )
        self.assertEqual(error.code, "bad_message")

    def test_loneSecret(self) -> None:
        """
        A secret or password without its name is rejected.
        """
        error = self.assertRaises(BadMessage, Login, password="pw")
        self.assertEqual(
            str(error),
            "field 'password' of login: not allowed alone; give device and secret, "
            "user and password, or token",
        )

    def test_noCredentials(self) -> None:
        """
        A login without credentials is rejected.
        """
        error = self.assertRaises(BadMessage, parseMessage, {"type": "login"})
        self.assertEqual(
            str(error),
            "field 'device' of login: no credentials; give device and secret, "
            "user and password, or token",
        )

    def test_nameRule(self) -> None:
        """
        Device and user names follow the store's name rule.
        """
        for name in ("cam-01", "a", "A.b_c@d-e", "9" * 64):
            self.assertEqual(Login(device=name, secret="s").device, name)
        for name in ("", "-cam", "cam 01", "ca/m", "é", "x" * 65, "cam\n", ".cam"):
            error = self.assertRaises(OutOfRange, Login, device=name, secret="s")
            self.assertEqual(error.field, "device")

    def test_nameRuleMatchesStore(self) -> None:
        """
        The codec's name rule accepts what the store's C{validateName}
        accepts.
        """
        from mrs.store.errors import InvalidValue
        from mrs.store.models import validateName

        for name in ("cam-01", "a", "A.b_c@d-e", "9" * 64, "", "-cam", "cam 01",
                     "é", "x" * 65, ".cam", "a@b.c"):
            try:
                validateName("device", name)
            except InvalidValue:
                storeAccepts = False
            else:
                storeAccepts = True
            try:
                Login(device=name, secret="s")
            except OutOfRange:
                wireAccepts = False
            else:
                wireAccepts = True
            self.assertEqual((name, wireAccepts), (name, storeAccepts))


class RangeTests(SynchronousTestCase):
    """
    Out-of-range values raise L{OutOfRange} with the field and the rule.
    """

    def assertOutOfRange(self, obj: dict[str, Any], expected: str) -> None:
        error = self.assertRaises(OutOfRange, parseMessage, obj)
        self.assertEqual(str(error), expected)
        self.assertEqual(error.code, "out_of_range")

    def location(self, **fields: Any) -> dict[str, Any]:
        obj: dict[str, Any] = {"type": "location", "lat": 0, "lon": 0,
                               "time": "2019-04-07T10:11:12.500Z"}
        obj.update(fields)
        return obj

    def test_latitude(self) -> None:
        self.assertOutOfRange(self.location(lat=95),
                              "field 'lat' of location: 95 is out of range; "
                              "use -90 to 90 degrees")
        self.assertOutOfRange(self.location(lat=-90.5),
                              "field 'lat' of location: -90.5 is out of range; "
                              "use -90 to 90 degrees")

    def test_longitude(self) -> None:
        self.assertOutOfRange(self.location(lon=180.01),
                              "field 'lon' of location: 180.01 is out of range; "
                              "use -180 to 180 degrees")

    def test_heading(self) -> None:
        self.assertOutOfRange(self.location(heading=361),
                              "field 'heading' of location: 361 is out of range; "
                              "use 0 to 360 degrees")
        self.assertOutOfRange(self.location(heading=-1),
                              "field 'heading' of location: -1 is out of range; "
                              "use 0 to 360 degrees")

    def test_negatives(self) -> None:
        self.assertOutOfRange(self.location(speed=-0.1),
                              "field 'speed' of location: -0.1 is out of range; "
                              "use 0 or more m/s")
        self.assertOutOfRange(self.location(accuracy=-3),
                              "field 'accuracy' of location: -3 is out of range; "
                              "use 0 or more metres")

    def test_satellites(self) -> None:
        self.assertOutOfRange(self.location(satellites=256),
                              "field 'satellites' of location: 256 is out of range; "
                              "use 0 to 255")

    def test_fixQuality(self) -> None:
        self.assertOutOfRange(self.location(fix_quality=9),
                              "field 'fix_quality' of location: 9 is out of range; "
                              "use 0 to 8")

    def test_hugeNumber(self) -> None:
        """
        An integer too large for a float is out of range, not a crash.
        """
        self.assertOutOfRange(self.location(speed=10**400),
                              "field 'speed' of location: an integer of 1329 bits is "
                              "out of range; use 0 or more m/s")

    def test_nonFinite(self) -> None:
        """
        Code cannot construct a location with NaN or infinity.
        """
        error = self.assertRaises(OutOfRange, Location, float("nan"), 0, TIME)
        self.assertEqual(str(error), "field 'lat' of location: nan is out of range; "
                                     "use -90 to 90 degrees")
        error = self.assertRaises(OutOfRange, Location, 0, 0, TIME, alt=float("inf"))
        self.assertEqual(str(error), "field 'alt' of location: inf is out of range; "
                                     "use a finite number")

    def test_idTooLong(self) -> None:
        self.assertOutOfRange({"type": "ping", "id": "x" * 65},
                              f"field 'id' of ping: {'x' * 65!r} is out of range; "
                              "use 1 to 64 characters")

    def test_idInteger(self) -> None:
        self.assertOutOfRange({"type": "ping", "id": -1},
                              "field 'id' of ping: -1 is out of range; use an integer from "
                              "0 to 9007199254740991 or a string of 1 to 64 characters")
        self.assertEqual(parseMessage({"type": "ping", "id": 2**53 - 1}), Ping(id=2**53 - 1))

    def test_unknownTrack(self) -> None:
        self.assertOutOfRange({"type": "subscribe", "device": "cam-01", "tracks": ["smell"]},
                              "field 'tracks[0]' of subscribe: 'smell' is out of range; "
                              "use one of 'video', 'audio', 'location'")

    def test_duplicateTracks(self) -> None:
        self.assertOutOfRange(
            {"type": "subscribe", "device": "cam-01", "tracks": ["video", "video"]},
            "field 'tracks' of subscribe: a list of 2 items is out of range; "
            "list each item only once")

    def test_codecForTrack(self) -> None:
        self.assertOutOfRange(
            {"type": "announce", "tracks": [{"track": "audio", "codec": "h264"}]},
            "field 'tracks[0].codec' of announce: 'h264' is out of range; "
            "use one of aac, opus, pcmu, pcma on the audio track")

    def test_unknownCodec(self) -> None:
        self.assertOutOfRange(
            {"type": "announce", "tracks": [{"track": "audio", "codec": "mp3"}]},
            "field 'tracks[0].codec' of announce: 'mp3' is out of range; use one of "
            "'h264', 'h265', 'mjpeg', 'aac', 'opus', 'pcmu', 'pcma'")

    def test_sourceZero(self) -> None:
        """
        Source 0 means "from a device" and is never a device's number.
        """
        self.assertOutOfRange(
            {"type": "subscribed", "device": "cam-01", "source": 0, "tracks": []},
            "field 'source' of subscribed: 0 is out of range; use 1 to 4294967295")

    def test_loneSurrogate(self) -> None:
        """
        A JSON escape for half a surrogate pair cannot be encoded as UTF-8
        and is rejected.
        """
        self.assertOutOfRange({"type": "bye", "reason": "\ud800"},
                              "field 'reason' of bye: '\\ud800' is out of range; "
                              "use valid Unicode text without lone surrogates")

    def test_versions(self) -> None:
        self.assertOutOfRange({"type": "hello", "versions": [], "role": "device"},
                              "field 'versions' of hello: a list of 0 items is out of "
                              "range; use 1 to 16 items")


class BadMessageTests(SynchronousTestCase):
    """
    Missing and mistyped fields raise L{BadMessage} naming the field, the
    expected type and the value received.
    """

    def assertBad(self, obj: Any, expected: str) -> BadMessage:
        error = self.assertRaises(BadMessage, parseMessage, obj)
        self.assertEqual(str(error), expected)
        self.assertEqual(error.code, "bad_message")
        return error

    def test_missingType(self) -> None:
        self.assertBad({"lat": 1}, "missing field 'type': expected a string")

    def test_typeNotString(self) -> None:
        self.assertBad({"type": 5}, "field 'type': expected a string, got 5")

    def test_missingField(self) -> None:
        error = self.assertBad({"type": "hello", "role": "device"},
                               "missing field 'versions' of hello: expected a list of "
                               "an integer")
        self.assertEqual(error.field, "versions")
        self.assertEqual(error.messageType, "hello")
        self.assertTrue(error.missing)

    def test_wrongType(self) -> None:
        error = self.assertBad(
            {"type": "location", "lat": "52.5", "lon": 0, "time": "2019-04-07T10:11:12Z"},
            "field 'lat' of location: expected a number, got '52.5'")
        self.assertEqual(error.value, "52.5")
        self.assertFalse(error.missing)

    def test_booleanIsNotANumber(self) -> None:
        self.assertBad({"type": "location", "lat": True, "lon": 0,
                        "time": "2019-04-07T10:11:12Z"},
                       "field 'lat' of location: expected a number, got true")

    def test_fractionIsNotAnInteger(self) -> None:
        self.assertBad({"type": "location", "lat": 0, "lon": 0, "satellites": 3.5,
                        "time": "2019-04-07T10:11:12Z"},
                       "field 'satellites' of location: expected an integer, got 3.5")

    def test_requiredNull(self) -> None:
        self.assertBad({"type": "start", "track": None},
                       "field 'track' of start: expected one of 'video', 'audio', "
                       "'location', got null")

    def test_nestedMissing(self) -> None:
        self.assertBad({"type": "announce", "tracks": [{"codec": "h264"}]},
                       "missing field 'tracks[0].track' of announce: expected one of "
                       "'video', 'audio', 'location', 'talk'")

    def test_nestedNotObject(self) -> None:
        self.assertBad({"type": "welcome", "version": 1, "server": "x", "starttls": False,
                        "encrypted": True, "limits": [1]},
                       "field 'limits' of welcome: expected an object, got a list of 1 items")

    def test_argsNotObject(self) -> None:
        self.assertBad({"type": "command", "id": 1, "name": "zoom", "args": "2"},
                       "field 'args' of command: expected an object, got '2'")

    def test_codecMissing(self) -> None:
        self.assertBad({"type": "announce", "tracks": [{"track": "video"}]},
                       "missing field 'tracks[0].codec' of announce: expected a codec name")

    def test_listValueDescribed(self) -> None:
        """
        A list is described by its length, not shown.
        """
        error = self.assertBad({"type": "start", "track": ["x"] * 3},
                               "field 'track' of start: expected one of 'video', 'audio', "
                               "'location', got a list of 3 items")
        self.assertEqual(error.value, ["x", "x", "x"])

    def test_longValueShortened(self) -> None:
        """
        A long value is cut to 80 characters in the message.
        """
        error = self.assertRaises(OutOfRange, parseMessage, {"type": "start", "track": "v" * 300})
        self.assertEqual(str(error), "field 'track' of start: '" + "v" * 76 + "... is out of "
                                     "range; use one of 'video', 'audio', 'location'")


class ParseMessageTests(SynchronousTestCase):
    """
    L{parseMessage} rejects what is not a message at all.
    """

    def test_notObject(self) -> None:
        error = self.assertRaises(InvalidJSON, parseMessage, [1, 2])
        self.assertEqual(str(error), "a control message must be a JSON object, got a list")
        self.assertEqual(error.code, "bad_json")

    def test_unknownType(self) -> None:
        error = self.assertRaises(UnknownMessageType, parseMessage, {"type": "teleport"})
        self.assertEqual(str(error), "unknown message type 'teleport'")
        self.assertEqual(error.code, "unknown_type")
        self.assertEqual(error.messageType, "teleport")


class ChooseVersionTests(SynchronousTestCase):
    """
    L{chooseVersion} picks the highest common version.
    """

    def test_common(self) -> None:
        self.assertEqual(chooseVersion([1]), 1)
        self.assertEqual(chooseVersion([3, 1, 2], (1, 2)), 2)

    def test_none(self) -> None:
        error = self.assertRaises(UnsupportedVersion, chooseVersion, [2, 3])
        self.assertEqual(
            str(error),
            "no common protocol version: the client offers [2, 3], the server supports [1]",
        )
        self.assertEqual(error.code, "unsupported_version")
        self.assertTrue(error.fatal)


class MediaFrameTests(SynchronousTestCase):
    """
    L{MediaFrame} encodes its header in one piece and checks its fields.
    """

    def test_encode(self) -> None:
        frame = MediaFrame(wire.TRACK_VIDEO, wire.CODEC_H264, wire.FLAG_KEYFRAME, 0,
                           1_000_000, b"\x00\x00\x00\x01\x65")
        self.assertEqual(
            frame.encode().hex(" "),
            "02 00 00 00 00 00 00 15 "
            "01 01 01 00 00 00 00 00 00 00 00 00 00 0f 42 40 "
            "00 00 00 01 65",
        )

    def test_decode(self) -> None:
        frame = MediaFrame(wire.TRACK_AUDIO, wire.CODEC_OPUS,
                           wire.FLAG_CONFIG | wire.FLAG_DISCONTINUITY, 7, 2**64 - 1, b"Opus")
        self.assertEqual(Decoder(100, expectPreamble=False).feed(frame.encode()), [frame])

    def test_flags(self) -> None:
        frame = MediaFrame(1, 1, wire.FLAG_KEYFRAME | wire.FLAG_DISCONTINUITY, 0, 0, b"")
        self.assertTrue(frame.keyframe)
        self.assertFalse(frame.config)
        self.assertTrue(frame.discontinuity)
        self.assertEqual((frame.trackName, frame.codecName), ("video", "h264"))

    def test_withSource(self) -> None:
        frame = MediaFrame(1, 3, 1, 0, 5, b"jpeg")
        self.assertEqual(frame.withSource(9), MediaFrame(1, 3, 1, 9, 5, b"jpeg"))
        self.assertEqual(frame.source, 0)

    def test_withFlags(self) -> None:
        frame = MediaFrame(1, 3, 1, 0, 5, b"jpeg")
        self.assertEqual(frame.withFlags(5).flags, 5)

    def test_reprHidesData(self) -> None:
        frame = MediaFrame(1, 1, 3, 2, 5, b"x" * 1000)
        self.assertEqual(repr(frame), "MediaFrame(track=video, codec=h264, flags=keyframe|config, "
                                      "source=2, timestamp=5, data=<1000 bytes>)")

    def test_invalidFields(self) -> None:
        cases = [
            ((4, 1, 0, 0, 0, b""),
             "field 'track' of media: 4 is out of range; use 1 (video), 2 (audio) or 3 (talk)"),
            ((1, 16, 0, 0, 0, b""),
             "field 'codec' of media: 16 is out of range; use one of 1 (h264), 2 (h265), "
             "3 (mjpeg) on the video track"),
            ((3, 1, 0, 0, 0, b""),
             "field 'codec' of media: 1 is out of range; use one of 16 (aac), 17 (opus), "
             "18 (pcmu), 19 (pcma) on the talk track"),
            ((1, 1, 8, 0, 0, b""),
             "field 'flags' of media: 8 is out of range; use a combination of 1 (keyframe), "
             "2 (config) and 4 (discontinuity)"),
            ((1, 1, 0, 2**32, 0, b""),
             "field 'source' of media: 4294967296 is out of range; use 0 to 4294967295"),
            ((1, 1, 0, 0, 2**64, b""),
             "field 'timestamp' of media: 18446744073709551616 is out of range; "
             "use 0 to 18446744073709551615 microseconds"),
            ((1, 1, 0, 0, -1, b""),
             "field 'timestamp' of media: -1 is out of range; "
             "use 0 to 18446744073709551615 microseconds"),
        ]
        for args, expected in cases:
            error = self.assertRaises(OutOfRange, MediaFrame, *args)
            self.assertEqual(str(error), expected)

    def test_wrongTypes(self) -> None:
        error = self.assertRaises(BadMessage, MediaFrame, True, 1, 0, 0, 0, b"")
        self.assertEqual(str(error), "field 'track' of media: expected an integer, got true")
        error = self.assertRaises(BadMessage, MediaFrame, 1, 1, 0, 0, 0, "text")
        self.assertEqual(str(error), "field 'data' of media: expected bytes, got 'str'")


def header(frameType: int, length: int, flags: int = 0, reserved: int = 0) -> bytes:
    return struct.pack(">BBHI", frameType, flags, reserved, length)


class DecoderTests(SynchronousTestCase):
    """
    L{Decoder} splits a byte stream into events and raises framing errors.
    """

    def test_preamble(self) -> None:
        decoder = Decoder(1024)
        self.assertEqual(decoder.feed(PREAMBLE[:2]), [])
        self.assertEqual(decoder.feed(PREAMBLE[2:] + encodeMessage(Ping())), [Ping()])

    def test_preambleValue(self) -> None:
        self.assertEqual(PREAMBLE, bytes([0x89, 0x4D, 0x52, 0x53]))

    def test_noPreamble(self) -> None:
        """
        With C{expectPreamble=False} the first bytes are a frame header.
        """
        self.assertEqual(Decoder(1024, expectPreamble=False).feed(encodeMessage(Ping())),
                         [Ping()])

    def test_badMagic(self) -> None:
        error = self.assertRaises(BadMagic, Decoder(1024).feed, b"MRS1xxxx")
        self.assertEqual(str(error),
                         "expected the MRS preamble 89 4d 52 53, got 4d 52 53 31 78 78 78 78")
        self.assertEqual(error.code, "bad_magic")
        self.assertEqual(error.kind, "unknown")
        self.assertTrue(error.fatal)

    def test_badMagicEarly(self) -> None:
        """
        A first byte that starts neither the preamble, TLS nor HTTP fails at
        once.
        """
        error = self.assertRaises(BadMagic, Decoder(1024).feed, b"\x00")
        self.assertEqual(str(error), "expected the MRS preamble 89 4d 52 53, got 00")

    def test_badMagicTLS(self) -> None:
        clientHello = bytes.fromhex("16030100f4010000f00303")
        error = self.assertRaises(BadMagic, Decoder(1024).feed, clientHello)
        self.assertEqual(error.kind, "tls")
        self.assertEqual(str(error), "expected the MRS preamble 89 4d 52 53, got "
                                     "16 03 01 00 f4 01 00 00 f0 03 03 (a TLS ClientHello)")

    def test_badMagicHTTP(self) -> None:
        """
        An HTTP request is recognised even when its first bytes arrive one
        at a time.
        """
        decoder = Decoder(1024)
        for byte in b"OPTIONS":
            self.assertEqual(decoder.feed(bytes([byte])), [])
        error = self.assertRaises(BadMagic, decoder.feed, b" * HTTP/1.1\r\n")
        self.assertEqual(error.kind, "http")
        self.assertEqual(error.data, b"OPTIONS * HTTP/1")

    def test_badMagicAtEnd(self) -> None:
        """
        A stream that ends while its first bytes could still be HTTP is
        reported as bad magic.
        """
        decoder = Decoder(1024)
        decoder.feed(b"GE")
        error = self.assertRaises(BadMagic, decoder.end)
        self.assertEqual(error.kind, "unknown")

    def test_truncatedPreamble(self) -> None:
        decoder = Decoder(1024)
        decoder.feed(PREAMBLE[:3])
        error = self.assertRaises(TruncatedFrame, decoder.end)
        self.assertEqual(str(error), "stream ended inside the preamble: received 3 of 4 bytes")
        self.assertEqual(error.code, "bad_frame")

    def test_truncatedHeader(self) -> None:
        decoder = Decoder(1024, expectPreamble=False)
        decoder.feed(b"\x01\x00\x00")
        error = self.assertRaises(TruncatedFrame, decoder.end)
        self.assertEqual(str(error),
                         "stream ended inside the frame header: received 3 of 8 bytes")

    def test_truncatedPayload(self) -> None:
        decoder = Decoder(1024, expectPreamble=False)
        frame = encodeMessage(Ping())
        decoder.feed(frame[:-1])
        self.assertEqual(decoder.bufferedBytes, len(frame) - 1)
        error = self.assertRaises(TruncatedFrame, decoder.end)
        self.assertEqual(str(error),
                         "stream ended inside the control frame: received 22 of 23 bytes")
        media = MediaFrame(1, 1, 0, 0, 0, b"abc").encode()
        decoder = Decoder(1024, expectPreamble=False)
        decoder.feed(media[:10])
        error = self.assertRaises(TruncatedFrame, decoder.end)
        self.assertEqual(str(error),
                         "stream ended inside the media frame: received 10 of 27 bytes")

    def test_endClean(self) -> None:
        """
        C{end} after whole frames, or after nothing, raises nothing.
        """
        decoder = Decoder(1024, expectPreamble=False)
        decoder.feed(encodeMessage(Ping()))
        decoder.end()
        Decoder(1024).end()

    def test_frameTooLarge(self) -> None:
        """
        A header claiming 4 GiB fails after its 8 bytes, with nothing
        allocated for the payload.
        """
        decoder = Decoder(8 * 1024 * 1024)
        error = self.assertRaises(FrameTooLarge, decoder.feed,
                                  PREAMBLE + header(2, 2**32 - 1))
        self.assertEqual(str(error), "frame payload of 4294967295 bytes exceeds the maximum "
                                     "frame size of 8388608 bytes")
        self.assertEqual((error.size, error.limit), (2**32 - 1, 8388608))
        self.assertEqual(error.code, "frame_too_large")
        self.assertEqual(decoder.bufferedBytes, 0)

    def test_frameAtLimit(self) -> None:
        """
        A payload of exactly the limit is accepted.
        """
        frame = MediaFrame(1, 3, 0, 0, 0, b"x" * 84)
        self.assertEqual(Decoder(100, expectPreamble=False).feed(frame.encode()), [frame])
        self.assertRaises(FrameTooLarge, Decoder(99, expectPreamble=False).feed, frame.encode())

    def test_unknownFrameType(self) -> None:
        error = self.assertRaises(BadFrame, Decoder(1024, False).feed, header(3, 0))
        self.assertEqual(str(error),
                         "unknown frame type 0x03; use 0x01 (control) or 0x02 (media)")
        self.assertEqual(error.code, "bad_frame")

    def test_reservedHeaderBits(self) -> None:
        error = self.assertRaises(BadFrame, Decoder(1024, False).feed, header(1, 0, flags=0x80))
        self.assertEqual(str(error), "reserved header bytes 1 to 3 are 80 00 00; they must be 0")
        error = self.assertRaises(BadFrame, Decoder(1024, False).feed,
                                  header(1, 0, reserved=0x0102))
        self.assertEqual(str(error), "reserved header bytes 1 to 3 are 00 01 02; they must be 0")

    def test_shortMediaPayload(self) -> None:
        error = self.assertRaises(BadFrame, Decoder(1024, False).feed, header(2, 15))
        self.assertEqual(str(error), "media frame payload of 15 bytes is shorter than "
                                     "the 16-byte media header")

    def test_reservedMediaByte(self) -> None:
        frame = bytearray(MediaFrame(1, 1, 0, 0, 0, b"").encode())
        frame[11] = 1
        error = self.assertRaises(BadFrame, Decoder(1024, False).feed, bytes(frame))
        self.assertEqual(str(error), "reserved media header byte 3 is 01; it must be 0")

    def test_reservedMediaFlags(self) -> None:
        frame = bytearray(MediaFrame(1, 1, 0, 0, 0, b"").encode())
        frame[10] = 0x81
        error = self.assertRaises(BadFrame, Decoder(1024, False).feed, bytes(frame))
        self.assertEqual(str(error), "media flags 81 set reserved bits 80; only 01 (keyframe), "
                                     "02 (config) and 04 (discontinuity) are defined")

    def test_unusableAfterError(self) -> None:
        """
        After a framing error every call raises the same error.
        """
        decoder = Decoder(1024, False)
        error = self.assertRaises(BadFrame, decoder.feed, header(9, 0))
        self.assertIs(self.assertRaises(BadFrame, decoder.feed, encodeMessage(Ping())), error)
        self.assertIs(self.assertRaises(BadFrame, decoder.end), error)

    def test_unknownCodecContinues(self) -> None:
        """
        A media frame with an unknown codec becomes an L{InvalidMessage} and
        decoding continues.
        """
        frame = bytearray(MediaFrame(1, 1, 0, 0, 0, b"").encode())
        frame[9] = 99
        events = Decoder(1024, False).feed(bytes(frame) + encodeMessage(Ping()))
        self.assertEqual(len(events), 2)
        invalid = events[0]
        assert isinstance(invalid, InvalidMessage)
        self.assertEqual(invalid.type, "media")
        self.assertEqual(str(invalid.error),
                         "field 'codec' of media: 99 is out of range; use one of 1 (h264), "
                         "2 (h265), 3 (mjpeg) on the video track")
        self.assertEqual(events[1], Ping())

    def test_invalidMessageContinues(self) -> None:
        """
        An invalid control message becomes an L{InvalidMessage} carrying its
        type and id, and the next frame is decoded.
        """
        bad = jsonFrame({"type": "subscribe", "device": "cam-01", "id": "r7"})
        events = Decoder(1024, False).feed(bad + encodeMessage(Ping()))
        self.assertEqual(events[1], Ping())
        invalid = events[0]
        assert isinstance(invalid, InvalidMessage)
        self.assertEqual((invalid.type, invalid.id), ("subscribe", "r7"))
        self.assertEqual(
            invalid.reply(),
            ErrorMessage("bad_message",
                         "missing field 'tracks' of subscribe: expected a list of one of "
                         "'video', 'audio', 'location'", id="r7", ref="subscribe"))

    def test_invalidIdNotEchoed(self) -> None:
        """
        An id that is itself invalid is not echoed.
        """
        invalid = decodeOne({"type": "ping", "id": "x" * 65})
        self.assertIsNone(invalid.id)
        invalid = decodeOne({"type": "ping", "id": [1]})
        self.assertIsNone(invalid.id)

    def test_unknownTypeReply(self) -> None:
        invalid = decodeOne({"type": "teleport", "id": 4})
        self.assertEqual(invalid.reply(), ErrorMessage(
            "unknown_type", "unknown message type 'teleport'", id=4, ref="teleport"))

    def test_oddTypeNotReferenced(self) -> None:
        """
        A type that is not a plausible message type is left out of C{ref}.
        """
        invalid = decodeOne({"type": "Tele port"})
        self.assertIsNone(invalid.reply().ref)

    def test_invalidJSON(self) -> None:
        cases = [
            (b"", "control frame is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
            (b"{", "control frame is not valid JSON: Expecting property name enclosed in "
                   "double quotes: line 1 column 2 (char 1)"),
            (b"\xff{}", "control frame is not valid UTF-8: invalid start byte at byte 0"),
            (b'{"type":"ping","type":"pong"}',
             "control frame is not valid JSON: duplicate key 'type'"),
            (b'{"type":"location","lat":NaN}',
             "control frame is not valid JSON: NaN is not a JSON number"),
            (b'{"lat":-Infinity}',
             "control frame is not valid JSON: -Infinity is not a JSON number"),
            (b'{"lat":1e400}',
             "control frame is not valid JSON: number 1e400 is too large for a double"),
            (b"[" * 100_000, "control frame is not valid JSON: nested too deeply"),
            (b'"text"', "a control message must be a JSON object, got a string"),
            (b"null", "a control message must be a JSON object, got null"),
        ]
        for payload, expected in cases:
            events = Decoder(1 << 20, False).feed(controlFrame(payload))
            self.assertEqual(len(events), 1)
            invalid = events[0]
            assert isinstance(invalid, InvalidMessage)
            self.assertEqual((payload[:20], str(invalid.error)), (payload[:20], expected))
            self.assertEqual(invalid.error.code, "bad_json")
            self.assertFalse(invalid.error.fatal)

    def test_byteAtATime(self) -> None:
        """
        Feeding one byte at a time gives the same events as feeding all.
        """
        stream = (PREAMBLE + encodeMessage(Hello((1,), "device"))
                  + MediaFrame(1, 1, 1, 0, 10, b"abc").encode()
                  + encodeMessage(Ping(id=1)))
        whole = Decoder(1024).feed(stream)
        decoder = Decoder(1024)
        pieces: list[Any] = []
        for i in range(len(stream)):
            pieces.extend(decoder.feed(stream[i:i + 1]))
        self.assertEqual(pieces, whole)
        self.assertEqual(len(whole), 3)
        self.assertEqual(decoder.bufferedBytes, 0)

    def test_bufferedBytes(self) -> None:
        decoder = Decoder(1024, False)
        frame = MediaFrame(1, 1, 1, 0, 10, b"abcdef").encode()
        decoder.feed(frame + frame[:5])
        self.assertEqual(decoder.bufferedBytes, 5)
        self.assertEqual(len(decoder.feed(frame[5:])), 1)
        self.assertEqual(decoder.bufferedBytes, 0)

    def test_raiseLimit(self) -> None:
        """
        A client may raise C{maxFrameSize} after the welcome.
        """
        decoder = Decoder(100, False)
        decoder.maxFrameSize = 1000
        frame = MediaFrame(1, 1, 0, 0, 0, b"x" * 500)
        self.assertEqual(decoder.feed(frame.encode()), [frame])

    def test_tinyLimitRejected(self) -> None:
        error = self.assertRaises(ValueError, Decoder, 15)
        self.assertEqual(str(error), "maxFrameSize 15 is too small; use at least 16 bytes")


class ClassificationTests(SynchronousTestCase):
    """
    L{looksLikeTLS} and L{looksLikeHTTP} recognise what clients send by
    mistake on the plaintext port.
    """

    def test_tls(self) -> None:
        self.assertTrue(wire.looksLikeTLS(b"\x16\x03\x01\x02\x00"))
        self.assertTrue(wire.looksLikeTLS(b"\x16\x03"))
        self.assertFalse(wire.looksLikeTLS(b"\x16"))
        self.assertFalse(wire.looksLikeTLS(b"\x17\x03\x03"))
        self.assertFalse(wire.looksLikeTLS(PREAMBLE))

    def test_http(self) -> None:
        for method in (b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS", b"DELETE", b"CONNECT",
                       b"PRI"):
            self.assertTrue(wire.looksLikeHTTP(method + b" / HTTP/1.1\r\n"))
        self.assertFalse(wire.looksLikeHTTP(b"GET"))
        self.assertFalse(wire.looksLikeHTTP(b"get / HTTP/1.1"))
        self.assertFalse(wire.looksLikeHTTP(PREAMBLE))

    def test_classify(self) -> None:
        self.assertEqual(wire.classifyPreamble(b"\x16\x03\x01"), "tls")
        self.assertEqual(wire.classifyPreamble(b"PRI * HTTP/2.0"), "http")
        self.assertEqual(wire.classifyPreamble(b"SSH-2.0"), "unknown")
        self.assertIsNone(wire.classifyPreamble(b"\x16"))
        self.assertIsNone(wire.classifyPreamble(b"DELE"))


class ErrorCodeTests(SynchronousTestCase):
    """
    Every error class carries a protocol error code from the table.
    """

    def test_codesKnown(self) -> None:
        classes: list[type[WireError]] = [
            BadMagic, UnsupportedVersion, FrameTooLarge, TruncatedFrame, BadFrame,
            UnknownMessageType, InvalidJSON, BadMessage, OutOfRange,
        ]
        for cls in classes:
            self.assertIn(cls.code, wire.ERROR_CODES)
            self.assertEqual((cls.__name__, cls.fatal),
                             (cls.__name__, wire.ERROR_CODES[cls.code]))

    def test_errorMessageCode(self) -> None:
        error = self.assertRaises(OutOfRange, ErrorMessage, "Bad Code", "x")
        self.assertEqual(str(error), "field 'code' of error: 'Bad Code' is out of range; "
                                     "use lower-case letters, digits and '_'")

    def test_fatalCodes(self) -> None:
        self.assertEqual(
            wire.FATAL_ERROR_CODES,
            {"bad_magic", "unsupported_version", "frame_too_large", "bad_frame", "throttled",
             "login_timeout", "idle_timeout", "replaced", "account_disabled",
             "credentials_changed", "logged_out", "congested", "server_shutdown"})


class CommandTests(SynchronousTestCase):
    """
    Command arguments and results must be JSON values.
    """

    def test_argsNotJSON(self) -> None:
        error = self.assertRaises(BadMessage, Command, 1, "zoom", {"level": object()})
        self.assertTrue(str(error).startswith(
            "field 'args.level' of command: expected a JSON value, got <object object at"))

    def test_resultNonFinite(self) -> None:
        error = self.assertRaises(OutOfRange, CommandResult, 1, True, [1.0, float("nan")])
        self.assertEqual(str(error), "field 'result[1]' of command_result: nan is out of "
                                     "range; use a finite number")

    def test_tooDeep(self) -> None:
        value: Any = 1
        for _ in range(40):
            value = [value]
        error = self.assertRaises(OutOfRange, CommandResult, 1, True, value)
        self.assertIn("nest objects and lists at most 32 levels deep", str(error))

    def test_senderIsFrom(self) -> None:
        self.assertEqual(parseMessage({"type": "command", "id": 1, "name": "zoom",
                                       "from": "alice"}).sender, "alice")  # type: ignore[attr-defined]


class LongNumberTests(SynchronousTestCase):
    def test_longIntegerRejected(self) -> None:
        """
        A 5000-digit number is invalid JSON with a message about its
        length, not Python's conversion limit.
        """
        from mrs.wire import loadJSON

        with self.assertRaises(InvalidJSON) as caught:
            loadJSON(b'{"type":"ping","id":' + b"9" * 5000 + b"}")
        self.assertEqual(str(caught.exception),
                         "control frame is not valid JSON: a number with 5000 digits is too "
                         "long; numbers have at most 32 digits")
