"""
Check the worked examples in docs/protocol.rst against the codec.

Each example is an reStructuredText comment C{.. example: NAME (KIND)}
followed by a source block and a hex dump block.  KIND is C{json} (a
message as compact JSON), C{python} (an expression over the names of
L{mrs.wire}, such as a L{MediaFrame}, or C{PREAMBLE}) or C{header} (a
frame header the server rejects as too large; no source block).

After a deliberate change to the protocol, rewrite the hex dumps from the
codec with::

    .venv/bin/python -m tests.test_wire_docs --update
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from mrs import wire

PROTOCOL_DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.rst"

_MARKER = re.compile(r"^\.\. example: (?P<name>\S+) \((?P<kind>json|python|header)\)\s*$")
_DIRECTIVE = re.compile(r"^\.\. code-block:: (?P<language>\w+)\s*$")


@dataclass
class Example:
    """
    One worked example: its name, kind, source text and hex dump, and the
    line range of the dump in the document.
    """

    name: str
    kind: str
    source: str
    dump: str
    dumpStart: int
    dumpEnd: int


def _readBlock(lines: list[str], start: int) -> tuple[str, int, int, int]:
    """
    Find the next C{code-block} at or after line C{start}.

    @return: the block's text without its indentation, the index of its
        first and one past its last content line, and the line to continue
        from.
    """
    index = start
    while not _DIRECTIVE.match(lines[index]):
        if _MARKER.match(lines[index]):
            raise ValueError(f"line {index + 1}: example has too few code blocks")
        index += 1
    index += 1
    while index < len(lines) and not lines[index].strip():
        index += 1
    first = index
    while index < len(lines) and (lines[index].startswith("   ") or not lines[index].strip()):
        index += 1
    last = index
    while last > first and not lines[last - 1].strip():
        last -= 1
    text = "\n".join(line[3:] for line in lines[first:last])
    return text, first, last, index


def extractExamples(text: str) -> list[Example]:
    """
    Return every worked example in the reStructuredText C{text}.
    """
    lines = text.splitlines()
    examples = []
    for index, line in enumerate(lines):
        match = _MARKER.match(line)
        if match is None:
            continue
        kind = match["kind"]
        source = ""
        position = index + 1
        if kind != "header":
            source, _, _, position = _readBlock(lines, position)
        dump, first, last, _ = _readBlock(lines, position)
        examples.append(Example(match["name"], kind, source, dump, first, last))
    return examples


def parseHexDump(dump: str) -> bytes:
    """
    Return the bytes of a hex dump: each line has an offset, hex byte pairs
    and an optional ASCII column between bars.
    """
    result = bytearray()
    for line in dump.splitlines():
        hexPart = line.split("|", 1)[0].split()
        if not hexPart:
            continue
        offset = int(hexPart[0], 16)
        if offset != len(result):
            raise ValueError(f"hex dump line {line!r} has offset {offset:04x}, "
                             f"expected {len(result):04x}")
        result += bytes.fromhex("".join(hexPart[1:]))
    return bytes(result)


def formatHexDump(data: bytes) -> str:
    """
    Format C{data} as the documentation writes hex dumps.
    """
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset:offset + 16]
        pairs = [f"{byte:02x}" for byte in chunk]
        left = " ".join(pairs[:8])
        right = " ".join(pairs[8:])
        hexText = f"{left}  {right}" if right else left
        ascii = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{offset:04x}  {hexText:<48}  |{ascii}|")
    return "\n".join(lines)


_NAMESPACE: dict[str, Any] = {name: getattr(wire, name) for name in wire.__all__}
_NAMESPACE["bytes"] = bytes


def exampleBytes(example: Example) -> bytes:
    """
    Return the bytes the codec produces for C{example}.
    """
    if example.kind == "json":
        message = wire.parseMessage(json.loads(example.source))
        return wire.encodeMessage(message)
    if example.kind == "python":
        value = eval(example.source, {"__builtins__": {}}, _NAMESPACE)  # noqa: S307
        if isinstance(value, wire.MediaFrame):
            return value.encode()
        if isinstance(value, bytes):
            return value
        raise TypeError(f"example {example.name} evaluates to {type(value).__name__}")
    return parseHexDump(example.dump)


class ProtocolDocExampleTests(SynchronousTestCase):
    """
    The worked examples in docs/protocol.rst match the codec byte for byte.
    """

    def setUp(self) -> None:
        self.examples = extractExamples(PROTOCOL_DOC.read_text("utf-8"))

    def test_examplesFound(self) -> None:
        """
        The document has examples, with unique names, for every kind.
        """
        names = [example.name for example in self.examples]
        self.assertEqual(len(names), len(set(names)))
        self.assertEqual({example.kind for example in self.examples},
                         {"json", "python", "header"})
        self.assertGreater(len(self.examples), 20)

    def test_hexMatchesCodec(self) -> None:
        """
        Each hex dump holds exactly the bytes the codec produces, in the
        canonical dump format.
        """
        for example in self.examples:
            expected = exampleBytes(example)
            self.assertEqual((example.name, parseHexDump(example.dump).hex(" ")),
                             (example.name, expected.hex(" ")))
            self.assertEqual((example.name, example.dump),
                             (example.name, formatHexDump(expected)))

    def test_jsonIsCanonical(self) -> None:
        """
        The JSON of each example is what the codec writes, so readers can
        copy it.
        """
        for example in self.examples:
            if example.kind != "json":
                continue
            encoded = wire.encodeMessage(wire.parseMessage(json.loads(example.source)))
            self.assertEqual((example.name, encoded[8:].decode("utf-8")),
                             (example.name, example.source))

    def test_decodesBack(self) -> None:
        """
        Decoding each example's bytes gives its message or frame back.
        """
        for example in self.examples:
            data = parseHexDump(example.dump)
            if example.kind == "json":
                expected = wire.parseMessage(json.loads(example.source))
                decoded = wire.Decoder(1 << 20, expectPreamble=False).feed(data)
                self.assertEqual((example.name, decoded), (example.name, [expected]))
            elif example.kind == "python" and data != wire.PREAMBLE:
                decoded = wire.Decoder(1 << 20, expectPreamble=False).feed(data)
                self.assertEqual(len(decoded), 1)
                self.assertEqual(decoded[0].encode(), data)  # type: ignore[union-attr]

    def test_headerRejected(self) -> None:
        """
        Header examples are rejected as too large by a decoder with the
        default limit, from the 8 header bytes alone.
        """
        for example in self.examples:
            if example.kind != "header":
                continue
            decoder = wire.Decoder(wire.DEFAULT_MAX_FRAME_SIZE, expectPreamble=False)
            self.assertRaises(wire.FrameTooLarge, decoder.feed, parseHexDump(example.dump))


class HexDumpTests(SynchronousTestCase):
    """
    The hex dump helpers read what they write.
    """

    def test_roundTrip(self) -> None:
        data = bytes(range(40))
        self.assertEqual(parseHexDump(formatHexDump(data)), data)

    def test_format(self) -> None:
        self.assertEqual(formatHexDump(b"\x89MRS"),
                         "0000  89 4d 52 53" + " " * 39 + "|.MRS|")

    def test_wrongOffset(self) -> None:
        error = self.assertRaises(ValueError, parseHexDump, "0000  01 02\n0004  03")
        self.assertEqual(str(error), "hex dump line '0004  03' has offset 0004, expected 0002")


def updateDocument(path: Path = PROTOCOL_DOC) -> int:
    """
    Rewrite every hex dump in the document from the codec.

    @return: the number of dumps changed.
    """
    text = path.read_text("utf-8")
    lines = text.splitlines()
    changed = 0
    for example in reversed(extractExamples(text)):
        dump = formatHexDump(exampleBytes(example))
        if dump != example.dump:
            lines[example.dumpStart:example.dumpEnd] = ["   " + line for line in
                                                        dump.splitlines()]
            changed += 1
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return changed


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python -m tests.test_wire_docs --update")
    print(f"{updateDocument()} hex dumps rewritten in {PROTOCOL_DOC}")
