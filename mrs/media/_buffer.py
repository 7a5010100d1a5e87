"""
A growable read buffer over a binary file object, for the streaming readers.
"""

from __future__ import annotations

from typing import BinaryIO


class ReadBuffer:
    """
    Bytes read ahead from a file object, with the stream offset of the
    first buffered byte.

    @ivar data: the buffered bytes; index 0 is stream offset C{offset}.
    @ivar offset: the stream offset of C{data[0]}.
    @ivar eof: the file object returned no more data.
    """

    def __init__(self, source: BinaryIO, chunkSize: int) -> None:
        self.source = source
        self.chunkSize = chunkSize
        self.data = bytearray()
        self.offset = 0
        self.eof = False

    def fill(self, size: int) -> bool:
        """
        Read until at least C{size} bytes are buffered or the input ends.

        @return: whether C{size} bytes are buffered.
        """
        while len(self.data) < size and not self.eof:
            self.readMore()
        return len(self.data) >= size

    def readMore(self) -> bool:
        """
        Read one more chunk.

        @return: whether any bytes were added.
        """
        if self.eof:
            return False
        chunk = self.source.read(self.chunkSize)
        if not chunk:
            self.eof = True
            return False
        self.data += chunk
        return True

    def take(self, size: int) -> bytes:
        """
        Remove and return the first C{size} buffered bytes.
        """
        taken = bytes(self.data[:size])
        del self.data[:size]
        self.offset += size
        return taken
