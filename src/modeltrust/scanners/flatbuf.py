"""A small, bounded FlatBuffers reader over a ByteReader (no generated code).

Arrow IPC schemas and TFLite models are FlatBuffers. Only the few tables a
scanner needs are read, by field index, through a small page cache (a TFLite
file's weights are never read), and every offset is checked against the
buffer before it is followed: a corrupt or hostile buffer raises `FlatError`,
never an IndexError or a read outside the buffer. Child tables always lie
after their parent (offsets are unsigned and must point forward), so walks
terminate; callers still bound their own depth and counts.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from ..reader import ByteReader, BytesReader

PAGE = 1 << 16
MAX_PAGES = 256
MAX_RAW = 64 << 20


class Buffer:
    """Random access to a reader's bytes, a few cached pages at a time."""

    __slots__ = ("_pages", "reader", "size")

    def __init__(self, reader: ByteReader | bytes) -> None:
        self.reader = BytesReader(reader) if isinstance(reader, bytes) else reader
        self.size = self.reader.size
        self._pages: dict[int, bytes] = {}

    def read(self, pos: int, length: int) -> bytes:
        first, last = pos // PAGE, (pos + length - 1) // PAGE
        if length <= 0:
            return b""
        if first != last:
            return self.reader.read_at(pos, length)
        page = self._pages.get(first)
        if page is None:
            if len(self._pages) >= MAX_PAGES:
                self._pages.clear()
            page = self._pages[first] = self.reader.read_at(first * PAGE, PAGE)
        start = pos - first * PAGE
        return page[start : start + length]

    def unpack(self, fmt: str, pos: int) -> int | float:
        size = struct.calcsize(fmt)
        _need(self, pos, size, "value")
        value: int | float = struct.unpack("<" + fmt, self.read(pos, size))[0]
        return value

    def u32(self, pos: int) -> int:
        return int(self.unpack("I", pos))


class FlatError(Exception):
    """The buffer is not a well-formed FlatBuffer where it was read."""


class Table:
    """A table at `pos` of `buf`, read field by field through its vtable."""

    __slots__ = ("_vtable", "_vtable_size", "buf", "pos")

    def __init__(self, buf: Buffer, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        vtable = pos - int(buf.unpack("i", pos))
        size = int(buf.unpack("H", vtable))
        if size < 4 or size % 2:
            raise FlatError(f"vtable at {vtable} has an invalid size {size}")
        _need(buf, vtable, size, "vtable")
        self._vtable = vtable
        self._vtable_size = size

    def _field(self, index: int) -> int:
        """Absolute position of field `index`, or 0 when absent."""
        slot = 4 + 2 * index
        if slot + 2 > self._vtable_size:
            return 0
        offset = int(self.buf.unpack("H", self._vtable + slot))
        return self.pos + offset if offset else 0

    def has(self, index: int) -> bool:
        return self._field(index) != 0

    def scalar(self, index: int, fmt: str, default: int | float = 0) -> int | float:
        pos = self._field(index)
        if not pos:
            return default
        return self.buf.unpack(fmt, pos)

    def integer(self, index: int, fmt: str = "i", default: int = 0) -> int:
        return int(self.scalar(index, fmt, default))

    def _target(self, index: int) -> int:
        pos = self._field(index)
        if not pos:
            return 0
        target = pos + self.buf.u32(pos)
        if target <= pos:
            raise FlatError(f"offset at {pos} does not point forward")
        return target

    def table(self, index: int) -> Table | None:
        target = self._target(index)
        return Table(self.buf, target) if target else None

    def raw(self, index: int) -> bytes | None:
        """A string or a byte vector, as bytes."""
        target = self._target(index)
        if not target:
            return None
        length = self.buf.u32(target)
        _need(self.buf, target + 4, length, "vector")
        if length > MAX_RAW:
            raise FlatError(f"string or byte vector of {length} bytes is over the limit")
        return self.buf.read(target + 4, length)

    def string(self, index: int) -> str | None:
        data = self.raw(index)
        return None if data is None else data.decode("utf-8", "replace")

    def vector(self, index: int, element_size: int = 4) -> tuple[int, int]:
        """(start, count) of a vector field's elements; (0, 0) when absent."""
        target = self._target(index)
        if not target:
            return 0, 0
        count = self.buf.u32(target)
        _need(self.buf, target + 4, count * element_size, "vector")
        return target + 4, count

    def tables(self, index: int, limit: int) -> Iterator[Table]:
        """The tables of a vector-of-tables field (at most `limit` of them)."""
        start, count = self.vector(index)
        if count > limit:
            raise FlatError(f"vector of {count} tables is over the limit of {limit}")
        for i in range(count):
            pos = start + 4 * i
            yield Table(self.buf, pos + self.buf.u32(pos))

    def scalars(self, index: int, fmt: str, limit: int) -> list[int]:
        size = struct.calcsize(fmt)
        start, count = self.vector(index, size)
        if count > limit:
            raise FlatError(f"vector of {count} values is over the limit of {limit}")
        return [int(self.buf.unpack(fmt, start + size * i)) for i in range(count)]


def _need(buf: Buffer, pos: int, length: int, what: str) -> None:
    if pos < 0 or length < 0 or pos + length > buf.size:
        raise FlatError(f"{what} at {pos} (+{length}) lies outside the {buf.size}-byte buffer")


def root(data: ByteReader | bytes, identifier: bytes | None = None) -> Table:
    """The root table; with `identifier`, the 4-byte file identifier must match."""
    buf = Buffer(data)
    _need(buf, 0, 8 if identifier else 4, "root offset")
    if identifier is not None and buf.read(4, 4) != identifier:
        raise FlatError(f"file identifier {buf.read(4, 4)!r} is not {identifier!r}")
    return Table(buf, buf.u32(0))
