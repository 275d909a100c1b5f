"""A minimal protobuf wire-format walker over a ByteReader.

ONNX and TensorFlow files are protobuf messages whose bulk is tensor bytes.
Walking the wire format directly (no generated classes, no onnx/tensorflow
import) lets a scanner read node names and paths while skipping every
length-delimited payload it does not need, so memory stays flat and a 2 GB
model costs a walk over its structure, not its weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from ..reader import ByteReader

VARINT, I64, LEN, I32 = 0, 1, 2, 5
WINDOW = 1 << 20


class WireError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class Field(NamedTuple):
    number: int
    wire_type: int
    value: int
    """The varint or fixed value, or for LEN fields the payload length."""
    offset: int
    """Where the payload starts (LEN) or the value's bytes start."""


class _Window:
    """Reads through a sliding window so small fields cost no syscalls."""

    def __init__(self, reader: ByteReader) -> None:
        self.reader = reader
        self.base = 0
        self.buf = b""

    def byte(self, pos: int) -> int:
        if not self.base <= pos < self.base + len(self.buf):
            self.base = pos
            self.buf = self.reader.read_at(pos, WINDOW)
            if not self.buf:
                raise WireError("message ends inside a field", pos)
        return self.buf[pos - self.base]

    def read(self, pos: int, n: int) -> bytes:
        if self.base <= pos and pos + n <= self.base + len(self.buf):
            return self.buf[pos - self.base : pos - self.base + n]
        return self.reader.read_at(pos, n)


class Message:
    """A message (or sub-message) spanning [start, end) of a reader."""

    def __init__(self, source: ByteReader | _Window, start: int = 0, end: int | None = None) -> None:
        self.window = source if isinstance(source, _Window) else _Window(source)
        self.start = start
        self.end = self.window.reader.size if end is None else end

    def _varint(self, pos: int) -> tuple[int, int]:
        result = shift = 0
        while True:
            if pos >= self.end:
                raise WireError("varint runs past the end of its message", pos)
            b = self.window.byte(pos)
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result, pos
            shift += 7
            if shift > 63:
                raise WireError("varint longer than 10 bytes", pos)

    def fields(self) -> Iterator[Field]:
        pos = self.start
        while pos < self.end:
            key, pos = self._varint(pos)
            number, wire_type = key >> 3, key & 7
            if number == 0:
                raise WireError("field number 0", pos)
            if wire_type == VARINT:
                value, new = self._varint(pos)
                yield Field(number, wire_type, value, pos)
                pos = new
            elif wire_type == I64:
                yield Field(number, wire_type, 0, pos)
                pos += 8
            elif wire_type == I32:
                yield Field(number, wire_type, 0, pos)
                pos += 4
            elif wire_type == LEN:
                length, pos = self._varint(pos)
                if pos + length > self.end:
                    raise WireError(f"field {number} of {length} bytes runs past its message", pos)
                yield Field(number, wire_type, length, pos)
                pos += length
            else:
                raise WireError(f"unsupported wire type {wire_type} (field {number})", pos)
        if pos > self.end:
            raise WireError("last field runs past the end of its message", self.end)

    def sub(self, field: Field) -> Message:
        return Message(self.window, field.offset, field.offset + field.value)

    def text(self, field: Field, limit: int = 4096) -> str:
        return self.window.read(field.offset, min(field.value, limit)).decode("utf-8", "replace")
