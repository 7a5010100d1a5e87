"""
Control messages: one frozen dataclass per message type of version 1.

Constructing a message checks every field, whether the values come from
L{parseMessage} or from code, so an instance always encodes to a message
the protocol allows.  Python names are camelCase; on the wire the same
fields are snake_case (C{fixQuality} is C{fix_quality}), and C{sender} of
L{Command} is C{from}.  Optional fields are C{None} when absent; absent
fields and JSON C{null} are the same on the wire.  Unknown fields are
ignored when parsing, so newer peers can add fields.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar, Self

from mrs.wire import _fields as f
from mrs.wire.constants import (
    ANNOUNCE_TRACKS,
    CODEC_NAMES,
    CODEC_NUMBERS,
    FRAME_CONTROL,
    FRAME_HEADER,
    MAX_UINT32,
    RIGHTS,
    ROLES,
    SUBSCRIBE_TRACKS,
    SUPPORTED_VERSIONS,
    TRACK_CODECS,
    TRACK_NUMBERS,
)
from mrs.wire.errors import (
    BadMessage,
    InvalidJSON,
    OutOfRange,
    UnknownMessageType,
    UnsupportedVersion,
)

#: A request id: a string of 1 to 64 characters or an integer from 0 to
#: 2**53 - 1.
MessageId = str | int

# Maximum lengths of free-text fields, in characters.
_MAX_TEXT = 2048
_MAX_SECRET = 1024
_MAX_LABEL = 256

_ID = f.messageId()
_NAME = f.name()
_SOURCE = f.integer(1, MAX_UINT32)


def _field(check: f.Check, *, wire: str | None = None, default: Any = MISSING,
           factory: Any = MISSING) -> Any:
    """
    Declare a message field with its check and, when it differs from the
    Python name, its wire name.
    """
    metadata = {"check": check, "wire": wire}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _optional(check: f.Check, *, wire: str | None = None) -> Any:
    return _field(check, wire=wire, default=None)


class _Spec:
    """
    One field of a record: Python name, wire name, check, required or not.
    """

    __slots__ = ("name", "wire", "check", "required")

    def __init__(self, name: str, wire: str, check: f.Check, required: bool) -> None:
        self.name = name
        self.wire = wire
        self.check = check
        self.required = required


_TABLES: dict[type, tuple[_Spec, ...]] = {}


def _snakeCase(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _table(cls: type) -> tuple[_Spec, ...]:
    table = _TABLES.get(cls)
    if table is None:
        table = tuple(
            _Spec(
                each.name,
                each.metadata["wire"] or _snakeCase(each.name),
                each.metadata["check"],
                each.default is MISSING and each.default_factory is MISSING,
            )
            for each in fields(cls)
        )
        _TABLES[cls] = table
    return table


def _dump(value: Any) -> Any:
    """
    Convert a checked field value to its JSON form.
    """
    if isinstance(value, Record):
        return value.fieldsDict()
    if isinstance(value, tuple):
        return [_dump(item) for item in value]
    if isinstance(value, datetime):
        return f.formatTime(value)
    return value


class Record:
    """
    Base class of messages and of the objects nested in them.

    Subclasses are frozen dataclasses whose fields are declared with
    L{_field}; L{__post_init__} runs each field's check.
    """

    #: The name errors use for this record when it is not a message.
    LABEL: ClassVar[str] = "object"

    def __post_init__(self) -> None:
        owner = self._owner()
        for spec in _table(type(self)):
            value = getattr(self, spec.name)
            if value is None:
                if spec.required:
                    raise BadMessage(owner, spec.wire, spec.check.expected, None)
                continue
            checked = spec.check(owner, spec.wire, value)
            if checked is not value:
                object.__setattr__(self, spec.name, checked)
        self._checkTogether(owner)

    @classmethod
    def _owner(cls) -> str:
        return cls.LABEL

    def _checkTogether(self, owner: str) -> None:
        """
        Check rules that involve several fields; the default has none.
        """

    @classmethod
    def fromDict(cls, obj: dict[str, Any]) -> Self:
        """
        Build an instance from the JSON object C{obj}, ignoring unknown keys.

        @raise BadMessage: for a missing required field or a wrong type.
        @raise OutOfRange: for a value outside its field's range.
        """
        values = {}
        for spec in _table(cls):
            if spec.wire in obj:
                value = obj[spec.wire]
                if value is None and not spec.required:
                    continue
                values[spec.name] = value
            elif spec.required:
                raise BadMessage(cls._owner(), spec.wire, spec.check.expected, missing=True)
        return cls(**values)

    def fieldsDict(self) -> dict[str, Any]:
        """
        Return the fields as a JSON object, leaving out absent ones.
        """
        result = {}
        for spec in _table(type(self)):
            value = getattr(self, spec.name)
            if value is not None:
                result[spec.wire] = _dump(value)
        return result


class Message(Record):
    """
    Base class of the control messages.

    @cvar TYPE: the value of the message's C{"type"} field.
    """

    TYPE: ClassVar[str]

    @classmethod
    def _owner(cls) -> str:
        return cls.TYPE

    def toDict(self) -> dict[str, Any]:
        """
        Return the message as a JSON object, C{"type"} first.
        """
        return {"type": self.TYPE, **self.fieldsDict()}


# Session start.

@dataclass(frozen=True)
class Hello(Message):
    """
    The client's first message: the protocol versions it speaks and its role.
    """

    TYPE: ClassVar[str] = "hello"
    versions: tuple[int, ...] = _field(f.listOf(f.integer(1, 65535), 1, 16))
    role: str = _field(f.choice(ROLES))
    client: str | None = _optional(f.string(_MAX_LABEL))
    id: MessageId | None = _optional(_ID)


@dataclass(frozen=True)
class Limits(Record):
    """
    The server's limits, announced in L{Welcome}.  Times are in seconds.
    """

    LABEL: ClassVar[str] = "limits"
    maxFrameSize: int = _field(f.integer(1, MAX_UINT32))
    keepaliveInterval: float = _field(f.number(0, None, " seconds"))
    idleTimeout: float = _field(f.number(0, None, " seconds"))
    loginTimeout: float = _field(f.number(0, None, " seconds"))


@dataclass(frozen=True)
class Welcome(Message):
    """
    The server's answer to L{Hello}: the chosen version and the server's
    limits, and whether the link is encrypted or can be upgraded.
    """

    TYPE: ClassVar[str] = "welcome"
    version: int = _field(f.integer(1, 65535))
    server: str = _field(f.string(_MAX_LABEL))
    starttls: bool = _field(f.boolean())
    encrypted: bool = _field(f.boolean())
    limits: Limits = _field(f.record(Limits))
    id: MessageId | None = _optional(_ID)


def chooseVersion(offered: tuple[int, ...] | list[int],
                  supported: tuple[int, ...] = SUPPORTED_VERSIONS) -> int:
    """
    Return the highest protocol version in both C{offered} and C{supported}.

    @raise UnsupportedVersion: when they have none in common.
    """
    common = set(offered) & set(supported)
    if not common:
        raise UnsupportedVersion(tuple(offered), tuple(supported))
    return max(common)


@dataclass(frozen=True)
class StartTLS(Message):
    """
    The client's request to upgrade the link to TLS.
    """

    TYPE: ClassVar[str] = "starttls"
    id: MessageId | None = _optional(_ID)


@dataclass(frozen=True)
class StartTLSOk(Message):
    """
    The server's last plaintext frame: both sides start TLS after it.
    """

    TYPE: ClassVar[str] = "starttls_ok"
    id: MessageId | None = _optional(_ID)


_SECRET_FIELDS = frozenset({"secret", "password", "token"})


@dataclass(frozen=True, repr=False)
class Login(Message):
    """
    Credentials: C{device} and C{secret} for a device; C{user} and
    C{password}, or C{token}, for a monitor.  Exactly one of the three
    forms is allowed.  The repr hides the secret, password and token.
    """

    TYPE: ClassVar[str] = "login"
    device: str | None = _optional(_NAME)
    secret: str | None = _optional(f.string(_MAX_SECRET))
    user: str | None = _optional(_NAME)
    password: str | None = _optional(f.string(_MAX_SECRET))
    token: str | None = _optional(f.string(_MAX_SECRET))
    id: MessageId | None = _optional(_ID)

    def _checkTogether(self, owner: str) -> None:
        forms = (("device", "secret"), ("user", "password"), ("token",))
        present = {name for name in ("device", "secret", "user", "password", "token")
                   if getattr(self, name) is not None}
        rule = "give device and secret, user and password, or token"
        for form in forms:
            if form[0] in present:
                for needed in form:
                    if needed not in present:
                        raise BadMessage(owner, needed, "a string", missing=True)
                for extra in sorted(present - set(form)):
                    raise BadMessage(owner, extra, "a string", getattr(self, extra),
                                     text=f"not allowed with {form[0]!r}; {rule}")
                return
        if present:
            lone = sorted(present)[0]
            raise BadMessage(owner, lone, "a string", text=f"not allowed alone; {rule}")
        raise BadMessage(owner, "device", "a string", missing=True,
                         text=f"no credentials; {rule}")

    def __repr__(self) -> str:
        parts = []
        for spec in _table(type(self)):
            value = getattr(self, spec.name)
            if value is None:
                continue
            shown = "<hidden>" if spec.name in _SECRET_FIELDS else repr(value)
            parts.append(f"{spec.name}={shown}")
        return f"Login({', '.join(parts)})"


@dataclass(frozen=True, repr=False)
class LoginOk(Message):
    """
    A successful login.  Monitors get a C{token} for logging in again until
    C{tokenExpires}.  The repr hides the token.
    """

    TYPE: ClassVar[str] = "login_ok"
    role: str = _field(f.choice(ROLES))
    name: str = _field(_NAME)
    session: str = _field(f.string(64))
    token: str | None = _optional(f.string(_MAX_SECRET))
    tokenExpires: datetime | None = _optional(f.time())
    id: MessageId | None = _optional(_ID)

    def __repr__(self) -> str:
        token = "<hidden>" if self.token is not None else None
        return (f"LoginOk(role={self.role!r}, name={self.name!r}, "
                f"session={self.session!r}, token={token}, "
                f"tokenExpires={self.tokenExpires!r}, id={self.id!r})")


# Any state.

@dataclass(frozen=True)
class Ping(Message):
    """
    A keepalive request, which the peer answers with L{Pong} and the same id.
    """

    TYPE: ClassVar[str] = "ping"
    id: MessageId | None = _optional(_ID)


@dataclass(frozen=True)
class Pong(Message):
    """
    The answer to L{Ping}.
    """

    TYPE: ClassVar[str] = "pong"
    id: MessageId | None = _optional(_ID)


@dataclass(frozen=True)
class Bye(Message):
    """
    The sender is closing the connection.
    """

    TYPE: ClassVar[str] = "bye"
    reason: str | None = _optional(f.string(_MAX_TEXT, minLength=0))
    id: MessageId | None = _optional(_ID)


@dataclass(frozen=True)
class ErrorMessage(Message):
    """
    An error report.  C{ref} is the type of the message it answers, and
    C{id} that message's id.  Clients treat unknown codes as request
    errors.
    """

    TYPE: ClassVar[str] = "error"
    code: str = _field(f.string(64, pattern=f.CODE_PATTERN,
                                rule="use lower-case letters, digits and '_'"))
    message: str = _field(f.string(_MAX_TEXT, minLength=0))
    id: MessageId | None = _optional(_ID)
    ref: str | None = _optional(f.string(64, pattern=f.CODE_PATTERN,
                                         rule="use a message type"))


# Devices.

@dataclass(frozen=True)
class TrackSpec(Record):
    """
    One track a device offers: C{video} or C{audio} with a codec name from
    L{CODEC_NAMES}, C{location} without one, or C{talk} with the audio codec
    the device plays back.
    """

    LABEL: ClassVar[str] = "track"
    track: str = _field(f.choice(ANNOUNCE_TRACKS))
    codec: str | None = _optional(f.choice(tuple(CODEC_NAMES.values())))

    def _checkTogether(self, owner: str) -> None:
        if self.track == "location":
            if self.codec is not None:
                raise OutOfRange(owner, "codec", self.codec,
                                 "leave it out for the location track")
            return
        if self.codec is None:
            raise BadMessage(owner, "codec", "a codec name", missing=True)
        legal = TRACK_CODECS[TRACK_NUMBERS[self.track]]
        if CODEC_NUMBERS[self.codec] not in legal:
            names = ", ".join(CODEC_NAMES[n] for n in sorted(legal))
            raise OutOfRange(owner, "codec", self.codec,
                             f"use one of {names} on the {self.track} track")


def _trackSpecs(maxItems: int = 8) -> f.Check:
    items = f.listOf(f.record(TrackSpec), 0, maxItems)

    def check(owner: str, name: str, value: Any) -> tuple[TrackSpec, ...]:
        specs: tuple[TrackSpec, ...] = items(owner, name, value)
        kinds = [spec.track for spec in specs]
        if len(set(kinds)) != len(kinds):
            raise OutOfRange(owner, name, value, "list each track only once")
        return specs

    return f.Check(items.expected, check)


@dataclass(frozen=True)
class Announce(Message):
    """
    The list of tracks a device can send and play back.
    """

    TYPE: ClassVar[str] = "announce"
    tracks: tuple[TrackSpec, ...] = _field(_trackSpecs())
    id: MessageId | None = _optional(_ID)


@dataclass(frozen=True)
class Announced(Message):
    """
    The server accepted an L{Announce}.
    """

    TYPE: ClassVar[str] = "announced"
    id: MessageId | None = _optional(_ID)


@dataclass(frozen=True, repr=False)
class Location(Message):
    """
    One position fix.  The repr leaves out the position, so that logging a
    message never logs a fix.

    From a device, C{device} and C{source} are absent; from the server to a
    monitor, they name the device.  Inside L{DeviceInfo} the same fields
    appear without C{"type"}.

    @ivar lat: latitude in degrees, -90 to 90.
    @ivar lon: longitude in degrees, -180 to 180.
    @ivar time: the time of the fix, an aware C{datetime} in UTC.
    @ivar alt: altitude above mean sea level in metres.
    @ivar speed: speed over ground in metres per second, 0 or more.
    @ivar heading: course over ground in degrees from true north, 0 to 360.
    @ivar accuracy: estimated horizontal error in metres, 0 or more.
    @ivar satellites: satellites used in the fix, 0 to 255.
    @ivar fixQuality: the NMEA GGA fix quality, 0 (no fix) to 8.
    @ivar valid: whether the receiver considers the fix valid.
    """

    TYPE: ClassVar[str] = "location"
    lat: float = _field(f.number(-90, 90, " degrees"))
    lon: float = _field(f.number(-180, 180, " degrees"))
    time: datetime = _field(f.time())
    alt: float | None = _optional(f.number(None, None))
    speed: float | None = _optional(f.number(0, None, " m/s"))
    heading: float | None = _optional(f.number(0, 360, " degrees"))
    accuracy: float | None = _optional(f.number(0, None, " metres"))
    satellites: int | None = _optional(f.integer(0, 255))
    fixQuality: int | None = _optional(f.integer(0, 8))
    valid: bool | None = _optional(f.boolean())
    device: str | None = _optional(_NAME)
    source: int | None = _optional(_SOURCE)
    id: MessageId | None = _optional(_ID)

    def __repr__(self) -> str:
        return (f"Location(<position hidden>, time={f.formatTime(self.time)!r}, "
                f"device={self.device!r}, source={self.source!r}, id={self.id!r})")


_ON_DEMAND_TRACK = f.choice(("video", "audio", "location"))


@dataclass(frozen=True)
class Start(Message):
    """
    The server's request that a device start sending a track.
    """

    TYPE: ClassVar[str] = "start"
    track: str = _field(_ON_DEMAND_TRACK)
    id: MessageId | None = _optional(_ID)


@dataclass(frozen=True)
class Stop(Message):
    """
    The server's request that a device stop sending a track.
    """

    TYPE: ClassVar[str] = "stop"
    track: str = _field(_ON_DEMAND_TRACK)
    id: MessageId | None = _optional(_ID)


_COMMAND_NAME = f.string(64, pattern=f.NAME_PATTERN, rule=f.NAME_RULE)


@dataclass(frozen=True)
class Command(Message):
    """
    A command for a device.  From a monitor, C{device} names the target;
    from the server to the device, C{sender} (C{"from"} on the wire) names
    the user who sent it.
    """

    TYPE: ClassVar[str] = "command"
    id: MessageId = _field(_ID)
    name: str = _field(_COMMAND_NAME)
    args: dict[str, Any] = _field(f.jsonObject(), factory=dict)
    device: str | None = _optional(_NAME)
    sender: str | None = _optional(_NAME, wire="from")


@dataclass(frozen=True)
class CommandResult(Message):
    """
    The answer to a L{Command}, with the same C{id}.  From the server to a
    monitor, C{device} names the device that answered.
    """

    TYPE: ClassVar[str] = "command_result"
    id: MessageId = _field(_ID)
    ok: bool = _field(f.boolean())
    result: Any = _optional(f.anyJSON())
    error: str | None = _optional(f.string(_MAX_TEXT, minLength=0))
    device: str | None = _optional(_NAME)


# Monitors.

@dataclass(frozen=True)
class ListDevices(Message):
    """
    A monitor's request for the devices it may see, answered by L{Devices}.
    """

    TYPE: ClassVar[str] = "list"
    id: MessageId | None = _optional(_ID)


_TRACK_NAMES = f.listOf(f.choice(SUBSCRIBE_TRACKS), 0, len(SUBSCRIBE_TRACKS), unique=True)


@dataclass(frozen=True)
class DeviceInfo(Record):
    """
    One entry of L{Devices}.

    @ivar device: the device id.
    @ivar name: the display name.
    @ivar source: the number that media frames and locations from this
        device carry.
    @ivar tracks: the tracks the device announced (empty when offline).
    @ivar rights: what the monitor's user may do with the device.
    @ivar location: the latest location, when the user has the right.
    @ivar locationAge: seconds since that location was received.
    """

    LABEL: ClassVar[str] = "device"
    device: str = _field(_NAME)
    name: str = _field(f.string(_MAX_LABEL, minLength=0))
    online: bool = _field(f.boolean())
    source: int = _field(_SOURCE)
    tracks: tuple[TrackSpec, ...] = _field(_trackSpecs(), factory=tuple)
    rights: tuple[str, ...] = _field(f.listOf(f.choice(RIGHTS), 0, len(RIGHTS), unique=True),
                                     factory=tuple)
    location: Location | None = _optional(f.record(Location))
    locationAge: float | None = _optional(f.number(0, None, " seconds"))


@dataclass(frozen=True)
class Devices(Message):
    """
    The answer to L{ListDevices}.
    """

    TYPE: ClassVar[str] = "devices"
    devices: tuple[DeviceInfo, ...] = _field(f.listOf(f.record(DeviceInfo), 0, 100_000))
    id: MessageId | None = _optional(_ID)


@dataclass(frozen=True)
class Subscribe(Message):
    """
    A monitor's request for tracks of a device.
    """

    TYPE: ClassVar[str] = "subscribe"
    device: str = _field(_NAME)
    tracks: tuple[str, ...] = _field(f.listOf(f.choice(SUBSCRIBE_TRACKS), 1,
                                              len(SUBSCRIBE_TRACKS), unique=True))
    id: MessageId | None = _optional(_ID)


@dataclass(frozen=True)
class Subscribed(Message):
    """
    The answer to L{Subscribe}: the tracks granted and those denied.
    """

    TYPE: ClassVar[str] = "subscribed"
    device: str = _field(_NAME)
    source: int = _field(_SOURCE)
    tracks: tuple[str, ...] = _field(_TRACK_NAMES)
    denied: tuple[str, ...] = _field(_TRACK_NAMES, factory=tuple)
    id: MessageId | None = _optional(_ID)


@dataclass(frozen=True)
class Unsubscribe(Message):
    """
    A monitor drops tracks of a device, or all of them when C{tracks} is
    absent.
    """

    TYPE: ClassVar[str] = "unsubscribe"
    device: str = _field(_NAME)
    tracks: tuple[str, ...] | None = _optional(f.listOf(f.choice(SUBSCRIBE_TRACKS), 1,
                                                        len(SUBSCRIBE_TRACKS), unique=True))
    id: MessageId | None = _optional(_ID)


@dataclass(frozen=True)
class Unsubscribed(Message):
    """
    The answer to L{Unsubscribe}: the tracks that ended.
    """

    TYPE: ClassVar[str] = "unsubscribed"
    device: str = _field(_NAME)
    tracks: tuple[str, ...] = _field(_TRACK_NAMES)
    id: MessageId | None = _optional(_ID)


@dataclass(frozen=True)
class Event(Message):
    """
    Something happened to a device.  C{event} is one of L{EVENT_NAMES};
    clients ignore names they do not know, so the check only requires
    the form of a name.
    """

    TYPE: ClassVar[str] = "event"
    event: str = _field(f.string(64, pattern=f.CODE_PATTERN,
                                 rule="use lower-case letters, digits and '_'"))
    device: str = _field(_NAME)
    source: int | None = _optional(_SOURCE)
    tracks: tuple[TrackSpec, ...] | None = _optional(_trackSpecs())
    reason: str | None = _optional(f.string(_MAX_TEXT, minLength=0))
    id: MessageId | None = _optional(_ID)


@dataclass(frozen=True)
class Revoked(Message):
    """
    The server ended subscriptions because a right was revoked.
    """

    TYPE: ClassVar[str] = "revoked"
    device: str = _field(_NAME)
    tracks: tuple[str, ...] = _field(_TRACK_NAMES)
    reason: str = _field(f.string(_MAX_TEXT, minLength=0))
    id: MessageId | None = _optional(_ID)


#: Every message class by its C{"type"}.
MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Hello, Welcome, StartTLS, StartTLSOk, Login, LoginOk, Ping, Pong, Bye,
        ErrorMessage, Announce, Announced, Location, Start, Stop, Command,
        CommandResult, ListDevices, Devices, Subscribe, Subscribed, Unsubscribe,
        Unsubscribed, Event, Revoked,
    )
}


def parseMessage(obj: object) -> Message:
    """
    Build the message that the JSON object C{obj} describes.

    @raise InvalidJSON: when C{obj} is not a dict.
    @raise BadMessage: for a missing or mistyped C{"type"} or field.
    @raise UnknownMessageType: for a C{"type"} not in L{MESSAGE_TYPES}.
    @raise OutOfRange: for a value outside its field's range.
    """
    if type(obj) is not dict:
        raise InvalidJSON(f"a control message must be a JSON object, got {_jsonKind(obj)}")
    if "type" not in obj:
        raise BadMessage(None, "type", "a string", missing=True)
    typeName = obj["type"]
    if type(typeName) is not str:
        raise BadMessage(None, "type", "a string", typeName)
    cls = MESSAGE_TYPES.get(typeName)
    if cls is None:
        raise UnknownMessageType(typeName)
    return cls.fromDict(obj)


def encodeMessage(message: Message) -> bytes:
    """
    Return the whole control frame for C{message}: the 8-byte frame header
    and compact UTF-8 JSON.
    """
    payload = json.dumps(
        message.toDict(), ensure_ascii=False, separators=(",", ":"), allow_nan=False,
    ).encode("utf-8")
    return FRAME_HEADER.pack(FRAME_CONTROL, 0, 0, len(payload)) + payload


def _jsonKind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null"
    return type(value).__name__
