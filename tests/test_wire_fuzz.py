"""
Bounded fuzzing of the L{mrs.wire} decoder and message parser.

The decoder must raise nothing but L{WireError} subclasses on any input,
and whatever it accepts must encode back to an equal message.  The number
of examples per test comes from the environment variable
C{MRS_FUZZ_EXAMPLES} (default 1000, which keeps this module well under a
minute on one core); raise it for a longer run::

    MRS_FUZZ_EXAMPLES=200000 .venv/bin/python -m twisted.trial tests.test_wire_fuzz
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from mrs import wire
from mrs.wire.messages import _table
from tests.wire_strategies import encodeEvent, events, jsonValues

FUZZ_EXAMPLES = int(os.environ.get("MRS_FUZZ_EXAMPLES", "1000"))
_fuzzSettings = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Every wire field name of every message and nested record, so that random
# objects hit real fields and not only unknown ones.
_FIELD_NAMES = sorted({
    spec.wire
    for cls in (*wire.MESSAGE_TYPES.values(), wire.Limits, wire.TrackSpec, wire.DeviceInfo)
    for spec in _table(cls)
})

# Values near the edges of the field ranges, plus anything JSON can hold.
_edgeValues: st.SearchStrategy[Any] = st.sampled_from([
    0, -1, 1, 90, 90.0000001, -180, 360, 255, 256, 8, 9, 2**32 - 1, 2**32, 2**53, 2**64,
    -0.0, 1e308, "", "x" * 65, "video", "audio", "location", "talk", "h264", "opus",
    "device", "monitor", "2019-04-07T10:11:12.500Z", "2019-02-30T00:00:00Z", [], [1], {},
    True, False, None, "\ud800", "cam-01",
])
_fieldValues = st.one_of(_edgeValues, jsonValues)


@st.composite
def _messageLikeObjects(draw: st.DrawFn) -> dict[str, Any]:
    obj = draw(st.dictionaries(st.sampled_from(_FIELD_NAMES), _fieldValues, max_size=8))
    obj["type"] = draw(st.sampled_from(sorted(wire.MESSAGE_TYPES)) | st.text(max_size=5))
    if draw(st.booleans()):
        obj["tracks"] = draw(st.lists(
            st.fixed_dictionaries({}, optional={"track": _fieldValues, "codec": _fieldValues}),
            max_size=3))
    return obj


def _control(payload: bytes) -> bytes:
    return struct.pack(">BBHI", 1, 0, 0, len(payload)) + payload


class DecoderFuzz(SynchronousTestCase):
    """
    Arbitrary input never makes the decoder raise anything but L{WireError}.
    """

    def feedAll(self, decoder: wire.Decoder, chunks: list[bytes]) -> list[Any]:
        results: list[Any] = []
        try:
            for chunk in chunks:
                results.extend(decoder.feed(chunk))
            decoder.end()
        except wire.WireError as e:
            self.assertTrue(e.fatal)
            self.assertIn(e.code, wire.ERROR_CODES)
        for event in results:
            if isinstance(event, wire.InvalidMessage):
                self.assertFalse(event.error.fatal)
                # The reply must itself be a valid, encodable message.
                wire.encodeMessage(event.reply())
            elif isinstance(event, wire.MediaFrame):
                self.assertEqual(wire.Decoder(1 << 20, False).feed(event.encode()), [event])
            else:
                self.assertEqual(wire.parseMessage(event.toDict()), event)
                wire.encodeMessage(event)
        return results

    @_fuzzSettings
    @given(st.lists(st.binary(max_size=64), max_size=6), st.booleans())
    def test_randomBytes(self, chunks: list[bytes], preamble: bool) -> None:
        """
        Random bytes, with or without the preamble before them.
        """
        if preamble:
            chunks = [wire.PREAMBLE] + chunks
        self.feedAll(wire.Decoder(256), chunks)

    @_fuzzSettings
    @given(st.lists(st.binary(max_size=48), max_size=6))
    def test_randomFrames(self, payloads: list[bytes]) -> None:
        """
        Random payloads in valid control and media frame headers.
        """
        stream = bytearray(wire.PREAMBLE)
        for payload in payloads:
            frameType = 2 if payload[:1] == b"\x02" else 1
            stream += struct.pack(">BBHI", frameType, 0, 0, len(payload)) + payload
        self.feedAll(wire.Decoder(1024), [bytes(stream)])

    @_fuzzSettings
    @given(st.lists(events, min_size=1, max_size=4), st.data())
    def test_mutatedStream(self, items: list[Any], data: st.DataObject) -> None:
        """
        A valid stream with a few bytes changed, removed or inserted.
        """
        stream = bytearray(wire.PREAMBLE + b"".join(encodeEvent(item) for item in items))
        for _ in range(data.draw(st.integers(1, 4))):
            position = data.draw(st.integers(0, len(stream)))
            action = data.draw(st.sampled_from(("replace", "delete", "insert")))
            if action == "insert" or position == len(stream):
                stream[position:position] = data.draw(st.binary(min_size=1, max_size=4))
            elif action == "replace":
                stream[position] = data.draw(st.integers(0, 255))
            else:
                del stream[position]
        self.feedAll(wire.Decoder(1 << 16), [bytes(stream)])

    @_fuzzSettings
    @given(_messageLikeObjects())
    def test_messageLikeObjects(self, obj: dict[str, Any]) -> None:
        """
        Objects of real message types with real field names and random or
        edge-case values parse to a valid message or an L{InvalidMessage}.
        """
        payload = json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")
        [event] = self.feedAll(wire.Decoder(1 << 20, False), [_control(payload)])
        if isinstance(event, wire.InvalidMessage):
            self.assertIsInstance(event.error, wire.MessageError)

    @_fuzzSettings
    @given(st.text(alphabet='{}[]":,0123456789.eE+-tfnrulasx\\ ', max_size=40))
    def test_jsonLikeText(self, text: str) -> None:
        """
        Text made of JSON punctuation never escapes as anything but an event.
        """
        [event] = self.feedAll(wire.Decoder(1 << 20, False), [_control(text.encode())])
        self.assertIsInstance(event, (wire.Message, wire.InvalidMessage))
