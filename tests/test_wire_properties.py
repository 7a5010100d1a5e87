"""
Property tests for L{mrs.wire}: round trips and stream splitting.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from mrs import wire
from tests.wire_strategies import MESSAGES, encodeEvent, events, mediaFrames

_settings = settings(max_examples=150, deadline=None)


def _roundTripTest(cls: type[wire.Message]) -> Any:
    @_settings
    @given(MESSAGES[cls])
    def test(self: SynchronousTestCase, message: wire.Message) -> None:
        frame = wire.encodeMessage(message)
        self.assertEqual(wire.Decoder(1 << 24, expectPreamble=False).feed(frame), [message])
        self.assertEqual(wire.parseMessage(message.toDict()), message)

    test.__name__ = f"test_{cls.__name__}"
    test.__doc__ = f"A random {cls.__name__} survives encoding and decoding unchanged."
    return test


class MessageRoundTripProperties(SynchronousTestCase):
    """
    Every message type, with random field values, round-trips.
    """

    locals().update({f"test_{cls.__name__}": _roundTripTest(cls) for cls in MESSAGES})

    def test_strategiesCoverEveryType(self) -> None:
        """
        There is a strategy for every message type.
        """
        self.assertEqual({cls.TYPE for cls in MESSAGES}, set(wire.MESSAGE_TYPES))


class MediaFrameProperties(SynchronousTestCase):
    """
    Media frames round-trip and keep their fields.
    """

    @_settings
    @given(mediaFrames(maxData=2000))
    def test_roundTrip(self, frame: wire.MediaFrame) -> None:
        """
        A random media frame decodes to an equal frame with bytes data.
        """
        [decoded] = wire.Decoder(4096, expectPreamble=False).feed(frame.encode())
        self.assertEqual(decoded, frame)
        assert isinstance(decoded, wire.MediaFrame)
        self.assertIs(type(decoded.data), bytes)

    @_settings
    @given(mediaFrames(), st.integers(0, 2**32 - 1))
    def test_withSource(self, frame: wire.MediaFrame, source: int) -> None:
        """
        C{withSource} changes bytes 12 to 15 of the encoded frame only.
        """
        original = frame.encode()
        changed = frame.withSource(source).encode()
        self.assertEqual(changed[:12] + changed[16:], original[:12] + original[16:])
        self.assertEqual(int.from_bytes(changed[12:16], "big"), source)


class StreamSplitProperties(SynchronousTestCase):
    """
    How the stream is cut into pieces does not change what is decoded.
    """

    @_settings
    @given(st.lists(events, min_size=1, max_size=8), st.data())
    def test_anySplit(self, items: list[Any], data: st.DataObject) -> None:
        """
        Feeding a stream of frames in random pieces gives the same events as
        feeding it whole, and the same as the frames encoded.
        """
        stream = wire.PREAMBLE + b"".join(encodeEvent(item) for item in items)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
        whole = wire.Decoder(1 << 20).feed(stream)
        self.assertEqual(whole, items)

        decoder = wire.Decoder(1 << 20)
        pieces: list[Any] = []
        start = 0
        for cut in cuts + [len(stream)]:
            pieces.extend(decoder.feed(stream[start:cut]))
            start = cut
        self.assertEqual(pieces, items)
        self.assertEqual(decoder.bufferedBytes, 0)
        decoder.end()

    @_settings
    @given(st.lists(events, min_size=1, max_size=4), st.data())
    def test_truncatedStreamEnd(self, items: list[Any], data: st.DataObject) -> None:
        """
        A stream cut inside a frame makes C{end} raise L{TruncatedFrame}.
        """
        stream = b"".join(encodeEvent(item) for item in items)
        cut = data.draw(st.integers(1, len(stream) - 1))
        boundaries = set()
        position = 0
        for item in items:
            position += len(encodeEvent(item))
            boundaries.add(position)
        decoder = wire.Decoder(1 << 20, expectPreamble=False)
        decoder.feed(stream[:cut])
        if cut in boundaries:
            decoder.end()
        else:
            self.assertRaises(wire.TruncatedFrame, decoder.end)


class FrameLimitProperties(SynchronousTestCase):
    """
    The size limit is enforced from the header alone.
    """

    @_settings
    @given(st.integers(16, 2**23), st.integers(1, 2**32 - 1), st.sampled_from((1, 2)))
    def test_oversizedHeader(self, limit: int, excess: int, frameType: int) -> None:
        """
        A header claiming more than the limit raises L{FrameTooLarge} as soon
        as its 8 bytes arrive, and nothing stays buffered.
        """
        claimed = min(limit + excess, 2**32 - 1)
        if claimed <= limit:
            return
        decoder = wire.Decoder(limit, expectPreamble=False)
        header = bytes([frameType, 0, 0, 0]) + claimed.to_bytes(4, "big")
        self.assertEqual(decoder.feed(header[:7]), [])
        error = self.assertRaises(wire.FrameTooLarge, decoder.feed, header[7:])
        self.assertEqual((error.size, error.limit), (claimed, limit))
        self.assertEqual(decoder.bufferedBytes, 0)
