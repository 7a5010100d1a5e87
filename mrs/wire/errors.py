"""
Errors raised by the MRS wire codec.

Every error carries C{code}, the protocol error code that the receiver sends
back in an C{error} message, and a message that names the offending value.
L{WireError.fatal} indicates whether the stream can continue: framing errors
are fatal because the receiver no longer knows where the next frame starts,
while an invalid message inside a well-formed frame is not.
"""

from __future__ import annotations

from typing import Any


class WireError(Exception):
    """
    Base class of every error the codec raises.

    @ivar code: the protocol error code, such as C{"bad_frame"}.
    @ivar fatal: C{True} when the connection must be closed after the error
        is reported, because the byte stream can no longer be parsed.
    """

    code: str = "bad_frame"
    fatal: bool = True


class BadMagic(WireError):
    """
    The first bytes of the stream are not the MRS preamble.

    @ivar data: the bytes received, at most the first 16.
    @ivar kind: what the bytes look like: C{"tls"} for a TLS ClientHello,
        C{"http"} for an HTTP request line, C{"unknown"} otherwise.
    """

    code = "bad_magic"

    def __init__(self, data: bytes, kind: str) -> None:
        self.data = bytes(data[:16])
        self.kind = kind
        description = {
            "tls": " (a TLS ClientHello)",
            "http": " (an HTTP request)",
        }.get(kind, "")
        super().__init__(
            f"expected the MRS preamble 89 4d 52 53, got {self.data.hex(' ')}"
            f"{description}"
        )


class UnsupportedVersion(WireError):
    """
    The client and the server have no protocol version in common.
    """

    code = "unsupported_version"

    def __init__(self, offered: tuple[int, ...], supported: tuple[int, ...]) -> None:
        self.offered = offered
        self.supported = supported
        super().__init__(
            f"no common protocol version: the client offers "
            f"{_listText(offered)}, the server supports {_listText(supported)}"
        )


class FrameTooLarge(WireError):
    """
    A frame header claims a payload longer than the maximum frame size.

    Raised from the header alone, before any of the payload is buffered.
    """

    code = "frame_too_large"

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"frame payload of {size} bytes exceeds the maximum frame size of "
            f"{limit} bytes"
        )


class TruncatedFrame(WireError):
    """
    The stream ended inside the preamble, a frame header or a payload.
    """

    code = "bad_frame"

    def __init__(self, part: str, received: int, expected: int) -> None:
        self.part = part
        self.received = received
        self.expected = expected
        super().__init__(
            f"stream ended inside the {part}: received {received} of "
            f"{expected} bytes"
        )


class BadFrame(WireError):
    """
    A frame header or a media header is invalid: an unknown frame type,
    nonzero reserved bits or a media payload shorter than its header.
    """

    code = "bad_frame"


class MessageError(WireError):
    """
    Base class of errors in the content of one frame.

    The framing is intact, so the stream can continue after the error is
    reported; the decoder delivers these inside L{InvalidMessage} events.

    @ivar messageType: the C{"type"} of the offending message, or C{None}
        when it is unknown.
    """

    fatal = False
    messageType: str | None = None


class UnknownMessageType(MessageError):
    """
    A control message has a C{"type"} this version of the protocol lacks.
    """

    code = "unknown_type"

    def __init__(self, messageType: str) -> None:
        self.messageType = messageType
        super().__init__(f"unknown message type {_valueText(messageType)}")


class InvalidJSON(MessageError):
    """
    A control frame is not UTF-8, not valid JSON, or not a JSON object.
    """

    code = "bad_json"


class BadMessage(MessageError):
    """
    A field is missing or has the wrong JSON type.

    @ivar field: the field name as it appears on the wire; a field of a
        nested object is written C{"tracks[0].codec"}.
    @ivar expected: what the field should contain, such as C{"a string"}.
    @ivar value: the value received, or C{None} when the field is missing.
    @ivar missing: C{True} when the field is absent.
    """

    code = "bad_message"

    def __init__(
        self,
        messageType: str | None,
        field: str,
        expected: str,
        value: Any = None,
        missing: bool = False,
        text: str | None = None,
    ) -> None:
        self.messageType = messageType
        self.field = field
        self.expected = expected
        self.value = value
        self.missing = missing
        owner = f" of {messageType}" if messageType else ""
        if text is not None:
            text = f"field {field!r}{owner}: {text}"
        elif missing:
            text = f"missing field {field!r}{owner}: expected {expected}"
        else:
            text = f"field {field!r}{owner}: expected {expected}, got {_valueText(value)}"
        super().__init__(text)


class OutOfRange(MessageError):
    """
    A field has the right type but a value outside its legal range.

    @ivar field: the field name as it appears on the wire.
    """

    code = "out_of_range"

    def __init__(self, messageType: str | None, field: str, value: Any, rule: str) -> None:
        self.messageType = messageType
        self.field = field
        self.value = value
        self.rule = rule
        owner = f" of {messageType}" if messageType else ""
        super().__init__(f"field {field!r}{owner}: {_valueText(value)} is out of range; {rule}")


def _valueText(value: Any) -> str:
    """
    Describe a received value for an error message, shortened to stay
    readable when a peer sends something huge.
    """
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, dict):
        text = "an object"
    elif isinstance(value, (list, tuple)):
        text = f"a list of {len(value)} items"
    elif isinstance(value, int) and value.bit_length() > 128:
        # repr() of a huge int can exceed Python's digit limit and raise.
        text = f"an integer of {value.bit_length()} bits"
    else:
        text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return text


def _listText(values: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"
