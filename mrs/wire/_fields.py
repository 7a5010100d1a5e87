"""
Field checks shared by the control messages.

A check takes the message type, the field's wire name and a value, and
returns the value in its Python form (a tuple for a JSON list, an aware
C{datetime} for a time) or raises L{BadMessage} for a wrong type and
L{OutOfRange} for a value outside the field's range.  Each check accepts
both the JSON form and the Python form, so the same check runs when a
message is parsed and when code constructs one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from mrs.wire.errors import BadMessage, MessageError, OutOfRange

#: User, device and group names: 1 to 64 ASCII letters, digits and
#: C{. _ @ -}, starting with a letter or digit.  The same rule as
#: C{mrs.store.models.validateName}, repeated here so that the codec does
#: not depend on the store.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
NAME_RULE = ("use 1 to 64 characters: letters, digits, '.', '_', '@' or '-', "
             "starting with a letter or digit")

#: Error codes, event names, message types: lower-case words joined by C{_}.
CODE_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")

_TIME_PATTERN = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z"
)
TIME_EXPECTED = "an ISO 8601 UTC time such as \"2019-04-07T10:11:12.500Z\""

# JSON nesting allowed in command arguments and results.
_MAX_JSON_DEPTH = 32


class Check:
    """
    One field check: a function and the description of what it accepts.

    @ivar expected: the text that follows "expected" in a L{BadMessage}.
    """

    def __init__(self, expected: str, function: Callable[[str, str, Any], Any]) -> None:
        self.expected = expected
        self.function = function

    def __call__(self, owner: str, name: str, value: Any) -> Any:
        return self.function(owner, name, value)


def string(
    maxLength: int,
    minLength: int = 1,
    pattern: re.Pattern[str] | None = None,
    rule: str | None = None,
) -> Check:
    """
    Check a string of C{minLength} to C{maxLength} characters that is valid
    Unicode (JSON escapes can produce lone surrogates, which UTF-8 cannot
    encode) and, when given, matches C{pattern} in full.
    """

    def check(owner: str, name: str, value: Any) -> str:
        if type(value) is not str:
            raise BadMessage(owner, name, "a string", value)
        if not minLength <= len(value) <= maxLength:
            raise OutOfRange(owner, name, value,
                             f"use {minLength} to {maxLength} characters")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise OutOfRange(owner, name, value,
                                 "use valid Unicode text without lone surrogates")
        if pattern is not None and not pattern.fullmatch(value):
            raise OutOfRange(owner, name, value, rule or f"match {pattern.pattern}")
        return value

    return Check("a string", check)


def name() -> Check:
    """
    Check a user, device or group name; see L{NAME_PATTERN}.
    """
    return string(64, pattern=NAME_PATTERN, rule=NAME_RULE)


def choice(options: Collection[str]) -> Check:
    """
    Check a string that is one of C{options}.
    """
    listed = ", ".join(repr(o) for o in options)
    expected = f"one of {listed}"

    def check(owner: str, name: str, value: Any) -> str:
        if type(value) is not str:
            raise BadMessage(owner, name, expected, value)
        if value not in options:
            raise OutOfRange(owner, name, value, f"use one of {listed}")
        return value

    return Check(expected, check)


def integer(low: int, high: int) -> Check:
    """
    Check an integer from C{low} to C{high} inclusive.  A JSON number with a
    fraction is rejected, and so are booleans.
    """

    def check(owner: str, name: str, value: Any) -> int:
        if type(value) is not int:
            raise BadMessage(owner, name, "an integer", value)
        if not low <= value <= high:
            raise OutOfRange(owner, name, value, f"use {low} to {high}")
        return value

    return Check("an integer", check)


def number(low: float | None, high: float | None, unit: str = "") -> Check:
    """
    Check a finite number from C{low} to C{high} inclusive (C{None} for no
    bound) and return it as a float.
    """
    if low is not None and high is not None:
        rule = f"use {_numberText(low)} to {_numberText(high)}{unit}"
    elif low is not None:
        rule = f"use {_numberText(low)} or more{unit}"
    else:
        rule = "use a finite number"

    def check(owner: str, name: str, value: Any) -> float:
        if type(value) is not float and type(value) is not int:
            raise BadMessage(owner, name, "a number", value)
        if (low is not None and value < low) or (high is not None and value > high):
            raise OutOfRange(owner, name, value, rule)
        try:
            result = float(value)
        except OverflowError:
            raise OutOfRange(owner, name, value, rule)
        if not math.isfinite(result):
            raise OutOfRange(owner, name, value, rule)
        return result

    return Check("a number", check)


def boolean() -> Check:
    """
    Check C{true} or C{false}.
    """

    def check(owner: str, name: str, value: Any) -> bool:
        if type(value) is not bool:
            raise BadMessage(owner, name, "true or false", value)
        return value

    return Check("true or false", check)


def messageId() -> Check:
    """
    Check a request id: a string of 1 to 64 characters or an integer from
    0 to 2**53 - 1.
    """
    text = string(64)
    expected = "a string or an integer"

    def check(owner: str, name: str, value: Any) -> str | int:
        if type(value) is int:
            if not 0 <= value <= 2**53 - 1:
                raise OutOfRange(owner, name, value,
                                 "use an integer from 0 to 9007199254740991 "
                                 "or a string of 1 to 64 characters")
            return value
        if type(value) is not str:
            raise BadMessage(owner, name, expected, value)
        return text(owner, name, value)  # type: ignore[no-any-return]

    return Check(expected, check)


def time() -> Check:
    """
    Check a time in the form C{2019-04-07T10:11:12.500Z} (UTC, 0 to 6
    fraction digits) and return an aware C{datetime} in UTC.  An aware
    C{datetime} is accepted and converted to UTC.
    """

    def check(owner: str, name: str, value: Any) -> datetime:
        if isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                raise BadMessage(owner, name, "an aware datetime", value)
            return value.astimezone(UTC)
        if type(value) is not str:
            raise BadMessage(owner, name, TIME_EXPECTED, value)
        match = _TIME_PATTERN.fullmatch(value)
        if match is None:
            raise BadMessage(owner, name, TIME_EXPECTED, value)
        year, month, day, hour, minute, second, fraction = match.groups()
        microsecond = int((fraction or "0").ljust(6, "0"))
        try:
            return datetime(int(year), int(month), int(day), int(hour), int(minute),
                            int(second), microsecond, tzinfo=UTC)
        except ValueError as e:
            raise OutOfRange(owner, name, value, f"use a real date and time ({e})")

    return Check(TIME_EXPECTED, check)


def formatTime(value: datetime) -> str:
    """
    Format an aware C{datetime} the way the protocol writes times: UTC,
    with 3 fraction digits when the microseconds are a whole number of
    milliseconds and 6 otherwise, and a C{Z}.
    """
    value = value.astimezone(UTC)
    microsecond = value.microsecond
    if microsecond % 1000 == 0:
        fraction = f"{microsecond // 1000:03d}"
    else:
        fraction = f"{microsecond:06d}"
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{fraction}Z"
    )


def listOf(
    item: Check,
    minItems: int = 0,
    maxItems: int = 64,
    unique: bool = False,
) -> Check:
    """
    Check a list of C{minItems} to C{maxItems} items that each pass
    C{item}, and return it as a tuple.
    """
    expected = f"a list of {item.expected}"

    def check(owner: str, name: str, value: Any) -> tuple[Any, ...]:
        if type(value) is not list and type(value) is not tuple:
            raise BadMessage(owner, name, expected, value)
        if not minItems <= len(value) <= maxItems:
            raise OutOfRange(owner, name, value,
                             f"use {minItems} to {maxItems} items")
        result = tuple(item(owner, f"{name}[{i}]", v) for i, v in enumerate(value))
        if unique and len(set(result)) != len(result):
            raise OutOfRange(owner, name, value, "list each item only once")
        return result

    return Check(expected, check)


def record(cls: Any) -> Check:
    """
    Check a JSON object holding the fields of the record class C{cls}
    (or an instance of it) and return an instance.  Errors name the nested
    field, for example C{tracks[0].codec}.
    """

    def check(owner: str, name: str, value: Any) -> Any:
        if isinstance(value, cls):
            return value
        if type(value) is not dict:
            raise BadMessage(owner, name, "an object", value)
        try:
            return cls.fromDict(value)
        except MessageError as e:
            raise nestedError(e, owner, name)

    return Check("an object", check)


def nestedError(error: MessageError, owner: str, prefix: str) -> MessageError:
    """
    Return a copy of C{error}, raised by a nested record, that names the
    enclosing message and the full path of the field.
    """
    if isinstance(error, BadMessage):
        return BadMessage(owner, f"{prefix}.{error.field}", error.expected, error.value,
                          missing=error.missing)
    if isinstance(error, OutOfRange):
        return OutOfRange(owner, f"{prefix}.{error.field}", error.value, error.rule)
    return error


def jsonObject() -> Check:
    """
    Check a JSON object with string keys and JSON values.
    """

    def check(owner: str, name: str, value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise BadMessage(owner, name, "an object", value)
        _checkJSON(owner, name, value, 0)
        return value

    return Check("an object", check)


def anyJSON() -> Check:
    """
    Check any JSON value: an object, list, string, number, boolean or null.
    """

    def check(owner: str, name: str, value: Any) -> Any:
        _checkJSON(owner, name, value, 0)
        return value

    return Check("a JSON value", check)


def _checkJSON(owner: str, name: str, value: Any, depth: int) -> None:
    """
    Raise unless C{value} can be encoded as JSON text in UTF-8, with at most
    L{_MAX_JSON_DEPTH} levels of nesting.
    """
    if depth > _MAX_JSON_DEPTH:
        raise OutOfRange(owner, name, value,
                         f"nest objects and lists at most {_MAX_JSON_DEPTH} levels deep")
    kind = type(value)
    if kind is str:
        string(2**31, minLength=0)(owner, name, value)
    elif kind is float:
        if not math.isfinite(value):
            raise OutOfRange(owner, name, value, "use a finite number")
    elif kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise BadMessage(owner, name, "an object with string keys", value)
            _checkJSON(owner, f"{name}.{key[:32]}", item, depth + 1)
    elif kind is list or kind is tuple:
        for i, item in enumerate(value):
            _checkJSON(owner, f"{name}[{i}]", item, depth + 1)
    elif value is not None and kind is not bool and kind is not int:
        raise BadMessage(owner, name, "a JSON value", value)


def _numberText(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
