"""
Hypothesis strategies for the messages and frames of L{mrs.wire}.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from mrs import wire
from mrs.wire import _fields

names = st.from_regex(_fields.NAME_PATTERN, fullmatch=True)
# Valid Unicode text: no lone surrogates, which UTF-8 cannot encode.
_characters = st.characters(blacklist_categories=["Cs"])
texts = st.text(_characters, max_size=40)
nonEmptyTexts = st.text(_characters, min_size=1, max_size=40)
ids = st.one_of(st.integers(0, 2**53 - 1), st.text(_characters, min_size=1, max_size=64))
optionalIds = st.none() | ids
times = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59),
                     timezones=st.just(UTC))
sources = st.integers(1, 2**32 - 1)
codes = st.from_regex(_fields.CODE_PATTERN, fullmatch=True)


def _finite(low: float | None = None, high: float | None = None) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


jsonValues = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | _finite() | texts,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)
jsonObjects = st.dictionaries(texts, jsonValues, max_size=4)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def trackSpecs(draw: st.DrawFn) -> wire.TrackSpec:
    track = draw(st.sampled_from(wire.ANNOUNCE_TRACKS))
    if track == "location":
        return wire.TrackSpec(track)
    number = wire.TRACK_NUMBERS[track]
    codec = draw(st.sampled_from(sorted(wire.TRACK_CODECS[number])))
    return wire.TrackSpec(track, wire.CODEC_NAMES[codec])


trackSpecLists = st.lists(trackSpecs(), max_size=4, unique_by=lambda spec: spec.track).map(tuple)
subscribeTracks = st.lists(st.sampled_from(wire.SUBSCRIBE_TRACKS), max_size=3,
                           unique=True).map(tuple)
nonEmptySubscribeTracks = st.lists(st.sampled_from(wire.SUBSCRIBE_TRACKS), min_size=1,
                                   max_size=3, unique=True).map(tuple)
limits = st.builds(wire.Limits, st.integers(1, 2**32 - 1), _finite(0), _finite(0), _finite(0))

locations = st.builds(
    wire.Location,
    lat=_finite(-90, 90),
    lon=_finite(-180, 180),
    time=times,
    alt=_optional(_finite()),
    speed=_optional(_finite(0)),
    heading=_optional(_finite(0, 360)),
    accuracy=_optional(_finite(0)),
    satellites=_optional(st.integers(0, 255)),
    fixQuality=_optional(st.integers(0, 8)),
    valid=_optional(st.booleans()),
    device=_optional(names),
    source=_optional(sources),
    id=optionalIds,
)
# A location inside a device list entry carries no device, source or id.
plainLocations = st.builds(
    wire.Location, lat=_finite(-90, 90), lon=_finite(-180, 180), time=times,
    speed=_optional(_finite(0)), satellites=_optional(st.integers(0, 255)),
)

deviceInfos = st.builds(
    wire.DeviceInfo,
    device=names,
    name=texts,
    online=st.booleans(),
    source=sources,
    tracks=trackSpecLists,
    rights=st.lists(st.sampled_from(wire.RIGHTS), unique=True).map(tuple),
    location=_optional(plainLocations),
    locationAge=_optional(_finite(0)),
)


@st.composite
def logins(draw: st.DrawFn) -> wire.Login:
    form = draw(st.sampled_from(("device", "user", "token")))
    messageId = draw(optionalIds)
    if form == "device":
        return wire.Login(device=draw(names), secret=draw(nonEmptyTexts), id=messageId)
    if form == "user":
        return wire.Login(user=draw(names), password=draw(nonEmptyTexts), id=messageId)
    return wire.Login(token=draw(nonEmptyTexts), id=messageId)


#: One strategy per message class.
MESSAGES: dict[type[wire.Message], st.SearchStrategy[Any]] = {
    wire.Hello: st.builds(wire.Hello, st.lists(st.integers(1, 65535), min_size=1,
                                               max_size=16).map(tuple),
                          st.sampled_from(wire.ROLES), _optional(nonEmptyTexts), optionalIds),
    wire.Welcome: st.builds(wire.Welcome, st.integers(1, 65535), nonEmptyTexts, st.booleans(),
                            st.booleans(), limits, optionalIds),
    wire.StartTLS: st.builds(wire.StartTLS, optionalIds),
    wire.StartTLSOk: st.builds(wire.StartTLSOk, optionalIds),
    wire.Login: logins(),
    wire.LoginOk: st.builds(wire.LoginOk, st.sampled_from(wire.ROLES), names, nonEmptyTexts,
                            _optional(nonEmptyTexts), _optional(times), optionalIds),
    wire.Ping: st.builds(wire.Ping, optionalIds),
    wire.Pong: st.builds(wire.Pong, optionalIds),
    wire.Bye: st.builds(wire.Bye, _optional(texts), optionalIds),
    wire.ErrorMessage: st.builds(wire.ErrorMessage, codes, texts, optionalIds,
                                 _optional(codes)),
    wire.Announce: st.builds(wire.Announce, trackSpecLists, optionalIds),
    wire.Announced: st.builds(wire.Announced, optionalIds),
    wire.Location: locations,
    wire.Start: st.builds(wire.Start, st.sampled_from(wire.SUBSCRIBE_TRACKS), optionalIds),
    wire.Stop: st.builds(wire.Stop, st.sampled_from(wire.SUBSCRIBE_TRACKS), optionalIds),
    wire.Command: st.builds(wire.Command, ids, names, jsonObjects, _optional(names),
                            _optional(names)),
    wire.CommandResult: st.builds(wire.CommandResult, ids, st.booleans(), jsonValues,
                                  _optional(texts), _optional(names)),
    wire.ListDevices: st.builds(wire.ListDevices, optionalIds),
    wire.Devices: st.builds(wire.Devices, st.lists(deviceInfos, max_size=3).map(tuple),
                            optionalIds),
    wire.Subscribe: st.builds(wire.Subscribe, names, nonEmptySubscribeTracks, optionalIds),
    wire.Subscribed: st.builds(wire.Subscribed, names, sources, subscribeTracks,
                               subscribeTracks, optionalIds),
    wire.Unsubscribe: st.builds(wire.Unsubscribe, names, _optional(nonEmptySubscribeTracks),
                                optionalIds),
    wire.Unsubscribed: st.builds(wire.Unsubscribed, names, subscribeTracks, optionalIds),
    wire.Event: st.builds(wire.Event, st.sampled_from(wire.EVENT_NAMES) | codes, names,
                          _optional(sources), _optional(trackSpecLists), _optional(texts),
                          optionalIds),
    wire.Revoked: st.builds(wire.Revoked, names, subscribeTracks, texts, optionalIds),
}

messages = st.one_of(*MESSAGES.values())


@st.composite
def mediaFrames(draw: st.DrawFn, maxData: int = 64) -> wire.MediaFrame:
    track = draw(st.sampled_from(sorted(wire.TRACK_CODECS)))
    codec = draw(st.sampled_from(sorted(wire.TRACK_CODECS[track])))
    return wire.MediaFrame(
        track, codec,
        draw(st.integers(0, wire.FLAG_KEYFRAME | wire.FLAG_CONFIG | wire.FLAG_DISCONTINUITY)),
        draw(st.integers(0, 2**32 - 1)),
        draw(st.integers(0, 2**64 - 1)),
        draw(st.binary(max_size=maxData)),
    )


events = st.one_of(messages, mediaFrames())


def encodeEvent(event: wire.Message | wire.MediaFrame) -> bytes:
    if isinstance(event, wire.MediaFrame):
        return event.encode()
    return wire.encodeMessage(event)
