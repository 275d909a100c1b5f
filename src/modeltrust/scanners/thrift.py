"""A bounded reader of Thrift's compact protocol (the encoding of a Parquet footer).

Nothing is generated from an IDL: a caller passes a *shape*, a mapping from the
field ids it wants to keep to the shape of their value (None for a scalar or a
string, another mapping for a struct; lists take the shape of their elements).
Every other field is parsed and dropped, so a footer with a million column
chunks costs a walk, not a million dicts. Structs decode to `{field id: value}`,
lists to Python lists, strings and binaries to bytes, maps to lists of pairs.
Depth, element counts and the total number of values read are bounded; any
inconsistency raises `ThriftError`.
"""

from __future__ import annotations

import struct
from typing import TypeAlias

Shape: TypeAlias = "dict[int, Shape] | None"

STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT, UUID = range(14)
MAX_DEPTH = 64


def _check_depth(depth: int, offset: int) -> None:
    """Lists, sets and maps nest no deeper than structs may (a list of lists of
    lists... recursed until Python's stack ran out: found by bench/fuzz.py)."""
    if depth > MAX_DEPTH:
        raise ThriftError(f"values nest deeper than {MAX_DEPTH} levels", offset)


class ThriftError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte {offset})")
        self.offset = offset


class ThriftLimit(ThriftError):
    """Past a bound (depth, value count) rather than corrupt."""


class CompactReader:
    def __init__(self, data: bytes, max_values: int = 20_000_000) -> None:
        self.data = data
        self.pos = 0
        self.budget = max_values

    # --- primitives ----------------------------------------------------------------

    def _byte(self) -> int:
        if self.pos >= len(self.data):
            raise ThriftError("data ends inside a value", self.pos)
        value = self.data[self.pos]
        self.pos += 1
        return value

    def _varint(self) -> int:
        result = shift = 0
        while True:
            b = self._byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ThriftError("varint longer than 10 bytes", self.pos)

    def _zigzag(self) -> int:
        n = self._varint()
        return (n >> 1) ^ -(n & 1)

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ThriftError(f"a {n}-byte value runs past the end", self.pos)
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        return value

    def _spend(self, n: int = 1) -> None:
        self.budget -= n
        if self.budget < 0:
            raise ThriftLimit("too many values to verify", self.pos)

    # --- values ----------------------------------------------------------------------

    def struct(self, shape: dict[int, Shape], depth: int = 0) -> dict[int, object]:
        if depth > MAX_DEPTH:
            raise ThriftError("structs nest too deeply (Thrift's own limit is 64)", self.pos)
        result: dict[int, object] = {}
        last_id = 0
        while True:
            header = self._byte()
            kind = header & 0x0F
            if kind == STOP:
                return result
            delta = header >> 4
            field_id = last_id + delta if delta else self._zigzag()
            last_id = field_id
            if field_id in shape:
                result[field_id] = self.value(kind, shape[field_id], depth + 1)
            else:
                self.skip(kind, depth + 1)

    def value(self, kind: int, shape: Shape, depth: int) -> object:
        self._spend()
        _check_depth(depth, self.pos)
        if kind == TRUE:
            return True
        if kind == FALSE:
            return False
        if kind == BYTE:
            return self._byte()
        if kind in (I16, I32, I64):
            return self._zigzag()
        if kind == DOUBLE:
            return float(struct.unpack("<d", self._take(8))[0])
        if kind == BINARY:
            return self._take(self._varint())
        if kind == UUID:
            return self._take(16)
        if kind in (LIST, SET):
            count, element = self._list_header()
            if element in (TRUE, FALSE):  # booleans in a list are one byte each
                return [self._byte() == TRUE for _ in range(self._counted(count))]
            return [self.value(element, shape, depth + 1) for _ in range(self._counted(count))]
        if kind == MAP:
            count = self._varint()
            if not count:
                return []
            types = self._byte()
            key_kind, value_kind = types >> 4, types & 0x0F
            return [
                (self.value(key_kind, None, depth + 1), self.value(value_kind, None, depth + 1))
                for _ in range(self._counted(count))
            ]
        if kind == STRUCT:
            return self.struct(shape or {}, depth)
        raise ThriftError(f"unknown compact type {kind}", self.pos - 1)

    def skip(self, kind: int, depth: int) -> None:
        """Parse a value without keeping it (strings are stepped over)."""
        self._spend()
        _check_depth(depth, self.pos)
        if kind in (TRUE, FALSE):
            return
        if kind == BYTE:
            self._take(1)
        elif kind in (I16, I32, I64):
            self._varint()
        elif kind == DOUBLE:
            self._take(8)
        elif kind == BINARY:
            n = self._varint()
            if self.pos + n > len(self.data):
                raise ThriftError(f"a {n}-byte string runs past the end", self.pos)
            self.pos += n
        elif kind == UUID:
            self._take(16)
        elif kind in (LIST, SET):
            count, element = self._list_header()
            for _ in range(self._counted(count)):
                if element in (TRUE, FALSE):
                    self._byte()
                else:
                    self.skip(element, depth + 1)
        elif kind == MAP:
            count = self._varint()
            if count:
                types = self._byte()
                for _ in range(self._counted(count)):
                    self.skip(types >> 4, depth + 1)
                    self.skip(types & 0x0F, depth + 1)
        elif kind == STRUCT:
            self.struct({}, depth)
        else:
            raise ThriftError(f"unknown compact type {kind}", self.pos - 1)

    def _list_header(self) -> tuple[int, int]:
        header = self._byte()
        count = header >> 4
        if count == 15:
            count = self._varint()
        return count, header & 0x0F

    def _counted(self, count: int) -> int:
        # Every element takes at least one byte: a larger count is corrupt.
        if count > len(self.data) - self.pos:
            raise ThriftError(f"a collection of {count} elements cannot fit", self.pos)
        return count
