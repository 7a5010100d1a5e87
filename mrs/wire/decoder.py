"""
The stream decoder: bytes in, control messages and media frames out.

The decoder does no I/O.  The caller feeds it whatever the transport
delivered and acts on the events it returns, in order.  Errors come in two
kinds, as L{WireError.fatal} indicates:

  - A framing error (bad preamble, unknown frame type, nonzero reserved
    bits, a frame over the limit) is raised from L{Decoder.feed}; the
    stream cannot be parsed further, and every later call raises the same
    error again.
  - An invalid message inside a well-formed frame (bad JSON, an unknown
    type, a missing field, a value out of range, a media frame with an
    unknown codec) becomes an L{InvalidMessage} event, and decoding goes on
    with the next frame.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from mrs.wire.constants import (
    FRAME_CONTROL,
    FRAME_HEADER,
    FRAME_HEADER_SIZE,
    FRAME_MEDIA,
    KNOWN_FLAGS,
    MEDIA_FRAME_HEADER,
    MEDIA_FRAME_HEADER_SIZE,
    MEDIA_HEADER_SIZE,
    PREAMBLE,
)
from mrs.wire.errors import (
    BadFrame,
    BadMagic,
    FrameTooLarge,
    InvalidJSON,
    MessageError,
    TruncatedFrame,
    WireError,
)
from mrs.wire.media import MediaFrame
from mrs.wire.messages import ErrorMessage, Message, MessageId, parseMessage

#: Request methods whose request line identifies an HTTP client.
HTTP_METHODS: tuple[bytes, ...] = (
    b"GET ", b"POST ", b"HEAD ", b"PUT ", b"OPTIONS ", b"DELETE ", b"CONNECT ", b"PRI ",
)
# Longest prefix L{classifyPreamble} may need to tell HTTP from garbage.
_CLASSIFY_LENGTH = max(len(m) for m in HTTP_METHODS)

_REF_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")

_unpackHeader = FRAME_HEADER.unpack_from
_unpackMediaFrame = MEDIA_FRAME_HEADER.unpack_from


def looksLikeTLS(data: bytes) -> bool:
    """
    Tell whether C{data} starts like a TLS record carrying a handshake
    message (content type 0x16, major version 3), as a ClientHello does.
    """
    return data[:2] == b"\x16\x03"


def looksLikeHTTP(data: bytes) -> bool:
    """
    Tell whether C{data} starts with an HTTP request method and a space.
    """
    return data.startswith(HTTP_METHODS)


def classifyPreamble(data: bytes) -> str | None:
    """
    Classify the first bytes of a stream that does not start with the MRS
    preamble.

    @return: C{"tls"}, C{"http"} or C{"unknown"}, or C{None} when C{data}
        is too short to tell (it could still become a TLS record or an HTTP
        request line).
    """
    if looksLikeTLS(data):
        return "tls"
    if looksLikeHTTP(data):
        return "http"
    if len(data) < 2 and b"\x16\x03".startswith(data):
        return None
    if len(data) < _CLASSIFY_LENGTH and any(m.startswith(data) for m in HTTP_METHODS):
        return None
    return "unknown"


@dataclass(frozen=True)
class InvalidMessage:
    """
    A frame that was well formed but did not hold a valid message.

    @ivar error: what was wrong; C{error.code} is the code to report.
    @ivar type: the C{"type"} of the control message, C{"media"} for a media
        frame, or C{None} when unknown.
    @ivar id: the message's C{"id"} when it had a valid one, else C{None}.
    """

    error: MessageError
    type: str | None = None
    id: MessageId | None = None

    def reply(self) -> ErrorMessage:
        """
        Return the L{ErrorMessage} that reports this error to the peer.
        """
        ref = self.type if self.type is not None and _REF_PATTERN.fullmatch(self.type) else None
        return ErrorMessage(self.error.code, str(self.error), id=self.id, ref=ref)


#: An item of the list that L{Decoder.feed} returns.
DecoderEvent = Message | MediaFrame | InvalidMessage


class Decoder:
    """
    Incremental decoder for one direction of one connection.

    @ivar maxFrameSize: the largest payload accepted, in bytes.  A client
        may raise it to the value the server announces in its welcome.
    """

    def __init__(self, maxFrameSize: int, expectPreamble: bool = True) -> None:
        """
        @param maxFrameSize: the largest frame payload accepted, in bytes.
        @param expectPreamble: C{True} on the server side, where the stream
            starts with L{PREAMBLE}; C{False} on the client side.
        """
        if maxFrameSize < MEDIA_HEADER_SIZE:
            raise ValueError(
                f"maxFrameSize {maxFrameSize} is too small; use at least "
                f"{MEDIA_HEADER_SIZE} bytes"
            )
        self.maxFrameSize = maxFrameSize
        self._buffer = bytearray()
        self._awaitingPreamble = expectPreamble
        self._failure: WireError | None = None
        # Total bytes the buffer must hold before parsing can progress.
        self._needed = 0

    @property
    def bufferedBytes(self) -> int:
        """
        The number of bytes received but not yet decoded.
        """
        return len(self._buffer)

    def feed(self, data: bytes) -> list[DecoderEvent]:
        """
        Decode as much as possible of the stream after adding C{data}.

        @return: the complete messages, media frames and invalid messages,
            in the order they arrived; an empty list when C{data} completes
            no frame.
        @raise WireError: a fatal framing error.  The decoder is unusable
            afterwards and raises the same error from every later call.
        """
        if self._failure is not None:
            raise self._failure
        try:
            return self._feed(data)
        except WireError as e:
            self._failure = e
            self._buffer = bytearray()
            raise

    def end(self) -> None:
        """
        Tell the decoder that the stream has ended.

        @raise TruncatedFrame: when the stream ended inside the preamble or
            a frame.
        @raise BadMagic: when the stream ended before the decoder could
            classify a wrong preamble.
        """
        if self._failure is not None:
            raise self._failure
        buffered = bytes(self._buffer)
        if not buffered:
            return
        if self._awaitingPreamble:
            if PREAMBLE.startswith(buffered):
                raise TruncatedFrame("preamble", len(buffered), len(PREAMBLE))
            raise BadMagic(buffered, classifyPreamble(buffered) or "unknown")
        if len(buffered) < FRAME_HEADER_SIZE:
            raise TruncatedFrame("frame header", len(buffered), FRAME_HEADER_SIZE)
        frameType, _, _, length = _unpackHeader(buffered)
        kind = "control frame" if frameType == FRAME_CONTROL else "media frame"
        raise TruncatedFrame(kind, len(buffered), FRAME_HEADER_SIZE + length)

    def _feed(self, data: bytes) -> list[DecoderEvent]:
        buffer = self._buffer
        if self._awaitingPreamble:
            buffer += data
            if not self._checkPreamble():
                return []
            data = b""
        if not buffer:
            # Nothing is buffered, so frames are decoded straight from the
            # new data and only an incomplete tail is copied.
            view = memoryview(data)
            try:
                events, used = self._decodeFrames(view)
            finally:
                view.release()
            if used < len(data):
                buffer += data[used:]
            return events
        buffer += data
        if len(buffer) < self._needed:
            return []
        view = memoryview(buffer)
        try:
            events, used = self._decodeFrames(view)
        finally:
            # A bytearray cannot be resized while a view of it exists.
            view.release()
        del buffer[:used]
        return events

    def _checkPreamble(self) -> bool:
        """
        Consume the preamble once the buffer contains it.

        @return: C{True} when the preamble has been consumed.
        @raise BadMagic: when the buffer cannot start with the preamble.
        """
        buffer = self._buffer
        head = bytes(buffer[:len(PREAMBLE)])
        if head == PREAMBLE[:len(head)]:
            if len(head) < len(PREAMBLE):
                return False
            del buffer[:len(PREAMBLE)]
            self._awaitingPreamble = False
            return True
        start = bytes(buffer[:_CLASSIFY_LENGTH])
        kind = classifyPreamble(start)
        if kind is None:
            return False
        raise BadMagic(bytes(buffer[:16]), kind)

    def _decodeFrames(self, view: memoryview) -> tuple[list[DecoderEvent], int]:
        """
        Decode every complete frame in C{view}.

        @return: the events and the number of bytes consumed.
        """
        events: list[DecoderEvent] = []
        position = 0
        end = len(view)
        limit = self.maxFrameSize
        while end - position >= FRAME_HEADER_SIZE:
            frameType, reservedFlags, reserved, length = _unpackHeader(view, position)
            if reservedFlags or reserved:
                raise BadFrame(
                    f"reserved header bytes 1 to 3 are {reservedFlags:02x} "
                    f"{reserved >> 8:02x} {reserved & 0xFF:02x}; they must be 0"
                )
            if length > limit:
                raise FrameTooLarge(length, limit)
            frameEnd = position + FRAME_HEADER_SIZE + length
            if frameType == FRAME_MEDIA:
                if length < MEDIA_HEADER_SIZE:
                    raise BadFrame(
                        f"media frame payload of {length} bytes is shorter than "
                        f"the {MEDIA_HEADER_SIZE}-byte media header"
                    )
                if frameEnd > end:
                    self._needed = frameEnd - position
                    break
                events.append(self._decodeMedia(view, position, frameEnd))
            elif frameType == FRAME_CONTROL:
                if frameEnd > end:
                    self._needed = frameEnd - position
                    break
                # Copied, so that no view of the buffer outlives this call.
                payload = view[position + FRAME_HEADER_SIZE:frameEnd].tobytes()
                events.append(_decodeControl(payload))
            else:
                raise BadFrame(
                    f"unknown frame type 0x{frameType:02x}; use 0x01 (control) "
                    f"or 0x02 (media)"
                )
            position = frameEnd
        else:
            self._needed = FRAME_HEADER_SIZE
        return events, position

    def _decodeMedia(self, view: memoryview, position: int,
                     frameEnd: int) -> MediaFrame | InvalidMessage:
        (_, _, _, _, track, codec, flags, reserved,
         source, timestamp) = _unpackMediaFrame(view, position)
        if reserved:
            raise BadFrame(f"reserved media header byte 3 is {reserved:02x}; it must be 0")
        if flags & ~KNOWN_FLAGS:
            raise BadFrame(
                f"media flags {flags:02x} set reserved bits {flags & ~KNOWN_FLAGS:02x}; "
                f"only 01 (keyframe), 02 (config) and 04 (discontinuity) are defined"
            )
        data = view[position + MEDIA_FRAME_HEADER_SIZE:frameEnd].tobytes()
        try:
            return MediaFrame(track, codec, flags, source, timestamp, data)
        except MessageError as e:
            return InvalidMessage(e, "media")


class _DuplicateKey(ValueError):
    pass


def _rejectDuplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(f"duplicate key {key[:64]!r}")
            seen.add(key)
    return result


def _rejectConstant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _parseFloat(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is too large for a double")
    return value


#: Digits of the longest integer accepted in a control message; no field
#: needs more than 2**64 (20 digits).
MAX_INTEGER_DIGITS = 32


def _parseInt(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"a number with {len(text)} digits is too long; numbers have at "
                         f"most {MAX_INTEGER_DIGITS} digits")
    return int(text)


def loadJSON(payload: bytes | memoryview) -> object:
    """
    Parse the payload of a control frame as UTF-8 JSON text.

    Duplicate keys, C{NaN}, C{Infinity} and numbers that overflow a double
    are rejected.

    @raise InvalidJSON: naming the problem.
    """
    try:
        text = str(payload, "utf-8")
    except UnicodeDecodeError as e:
        raise InvalidJSON(
            f"control frame is not valid UTF-8: {e.reason} at byte {e.start}"
        )
    try:
        return json.loads(
            text,
            object_pairs_hook=_rejectDuplicates,
            parse_constant=_rejectConstant,
            parse_float=_parseFloat,
            parse_int=_parseInt,
        )
    except RecursionError:
        raise InvalidJSON("control frame is not valid JSON: nested too deeply")
    except ValueError as e:
        raise InvalidJSON(f"control frame is not valid JSON: {e}")


def _decodeControl(payload: bytes) -> Message | InvalidMessage:
    try:
        obj = loadJSON(payload)
    except InvalidJSON as e:
        return InvalidMessage(e)
    try:
        return parseMessage(obj)
    except MessageError as e:
        return _invalid(e, obj)


def _invalid(error: MessageError, obj: object) -> InvalidMessage:
    """
    Wrap C{error} with the type and id of C{obj} when they are valid.
    """
    if type(obj) is not dict:
        return InvalidMessage(error)
    typeName = obj.get("type")
    if type(typeName) is not str:
        typeName = None
    messageId = obj.get("id")
    if type(messageId) is int:
        if not 0 <= messageId <= 2**53 - 1:
            messageId = None
    elif type(messageId) is str:
        if not 1 <= len(messageId) <= 64:
            messageId = None
        elif not messageId.isascii():
            try:
                messageId.encode("utf-8")
            except UnicodeEncodeError:
                messageId = None
    else:
        messageId = None
    return InvalidMessage(error, typeName, messageId)
