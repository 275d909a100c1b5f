"""UBJSON files (XGBoost `save_model("*.ubj")` and `Booster.save_raw()`): a structural check.

XGBoost's binary model format is Universal Binary JSON (draft 12): the same
document as its `.json` models, with big-endian numbers and typed arrays for
the trees. Loading one runs nothing (no custom objective or callback is
stored); what could go wrong is a file the native parser reads differently or
that is built to exhaust it. The walk reads one value to its end with an
explicit stack: depth bounded, every count and length checked against the
bytes left, typed-array payloads stepped over by offset (never read).
"""

from __future__ import annotations

import struct

from ..findings import Location
from ..reader import ByteReader
from .base import ScanContext
from .flatbuf import Buffer

SCANNER = "ubjson"
MAX_DEPTH = 512
# Value markers with a fixed payload size.
_FIXED = {b"Z": 0, b"T": 0, b"F": 0, b"i": 1, b"U": 1, b"I": 2, b"l": 4, b"L": 8, b"d": 4, b"D": 8, b"C": 1}
# Integer markers a length or count may use, and how to read them.
_INTS = {b"i": ">b", b"U": ">B", b"I": ">h", b"l": ">i", b"L": ">q"}
_CLOSE = {b"[": b"]", b"{": b"}"}


class UbjsonError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte {offset})")


class _Frame:
    """An open array or object: items left (None: until its closing marker),
    the marker of a typed container, and whether an object key comes next."""

    __slots__ = ("close", "left", "needs_key", "typed")

    def __init__(self, close: bytes, left: int | None, typed: bytes | None, is_object: bool) -> None:
        self.close = close
        self.left = left
        self.typed = typed
        self.needs_key = is_object


class _Walk:
    def __init__(self, buf: Buffer, end: int) -> None:
        self.buf = buf
        self.end = end

    def _byte(self, pos: int) -> bytes:
        if pos >= self.end:
            raise UbjsonError("data ends inside a value", pos)
        return self.buf.read(pos, 1)

    def _int(self, pos: int, what: str) -> tuple[int, int]:
        """A length or count: an integer marker and its payload; returns (value, end)."""
        marker = self._byte(pos)
        fmt = _INTS.get(marker)
        if fmt is None:
            raise UbjsonError(f"{what} has marker {marker!r}, not an integer", pos)
        size = struct.calcsize(fmt)
        if pos + 1 + size > self.end:
            raise UbjsonError(f"data ends inside a {what}", pos)
        value = int(struct.unpack(fmt, self.buf.read(pos + 1, size))[0])
        if value < 0:
            raise UbjsonError(f"negative {what} {value}", pos)
        return value, pos + 1 + size

    def _skip(self, pos: int, length: int) -> int:
        if length > self.end - pos:
            raise UbjsonError(f"a {length}-byte payload runs past the end", pos)
        return pos + length

    def _payload(self, marker: bytes, pos: int) -> int:
        """Step over the payload of a scalar value; returns where it ends."""
        if marker in _FIXED:
            return self._skip(pos, _FIXED[marker])
        if marker in (b"S", b"H"):
            length, pos = self._int(pos, "string length")
            return self._skip(pos, length)
        raise UbjsonError(f"marker {marker!r} starts no UBJSON value", pos - 1)

    def _open(self, marker: bytes, pos: int, stack: list[_Frame]) -> int:
        """Read an optimised container header ($type, #count); push its frame."""
        if len(stack) >= MAX_DEPTH:
            raise UbjsonError(f"containers nest deeper than {MAX_DEPTH}", pos)
        typed: bytes | None = None
        left: int | None = None
        if self._byte(pos) == b"$":
            typed = self._byte(pos + 1)
            if typed not in _FIXED and typed not in (b"S", b"H", b"[", b"{"):
                raise UbjsonError(f"typed container of marker {typed!r}", pos + 1)
            pos += 2
            if self._byte(pos) != b"#":
                raise UbjsonError("a typed container has no count", pos)
        if self._byte(pos) == b"#":
            left, pos = self._int(pos + 1, "container count")
            width = _FIXED.get(typed, 1) if typed is not None else 1
            # every item takes at least a byte (an object key too), except zero-size typed ones
            per_item = width + (1 if marker == b"{" else 0)
            if per_item and left > (self.end - pos) // per_item:
                raise UbjsonError(f"a container of {left} items cannot fit", pos)
            if typed in _FIXED and marker == b"[":
                return self._skip(pos, left * _FIXED[typed])  # a typed scalar array: skipped whole
        stack.append(_Frame(_CLOSE[marker], left, typed, marker == b"{"))
        return pos

    def one_value(self, pos: int) -> int:
        """Walk one value from `pos`; returns where it ends."""
        stack: list[_Frame] = []
        while True:
            frame = stack[-1] if stack else None
            if frame is not None:
                if frame.left == 0:
                    stack.pop()
                    if not stack:
                        return pos
                    continue
                if frame.left is None and self._byte(pos) == frame.close:
                    stack.pop()
                    pos += 1
                    if not stack:
                        return pos
                    continue
                if frame.needs_key:
                    length, pos = self._int(pos, "object key length")
                    pos = self._skip(pos, length)
                if frame.left is not None:
                    frame.left -= 1
                marker = frame.typed
            else:
                marker = None
            if marker is None:
                marker = self._byte(pos)
                pos += 1
                while marker == b"N":  # no-op padding
                    marker = self._byte(pos)
                    pos += 1
            pos = self._open(marker, pos, stack) if marker in _CLOSE else self._payload(marker, pos)
            if not stack:
                return pos


def walk(reader: ByteReader) -> int:
    """Walk the file's one UBJSON value; returns its end offset (UbjsonError if malformed)."""
    return _Walk(Buffer(reader), reader.size).one_value(0)


class UbjsonScanner:
    name = SCANNER
    formats = ("ubjson",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            end = walk(reader)
            if end != reader.size:
                raise UbjsonError(f"{reader.size - end} bytes follow the value", end)
        except UbjsonError as exc:
            ctx.report("ubjson-malformed", location, f"UBJSON: {exc}", self.name)
