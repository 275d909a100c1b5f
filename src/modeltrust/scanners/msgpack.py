"""msgpack files (Flax `flax_model.msgpack` checkpoints): a structural check.

msgpack runs nothing; what could go wrong is a file no parser agrees on or
one built to exhaust the reader. The walk reads one object to its end with an
explicit stack (depth and element counts bounded, each count checked against
the bytes left), steps over string, binary and extension payloads by offset
(weights are never read), looks inside Flax's array extensions (codes 1 and 3
wrap a msgpack (shape, dtype, buffer) tuple), and reports other extension
codes, which Flax hands back as raw `ExtType` values.
"""

from __future__ import annotations

import struct

from ..findings import Location
from ..reader import ByteReader
from .base import ScanContext
from .flatbuf import Buffer

SCANNER = "msgpack"
MAX_DEPTH = 512
FLAX_EXTENSIONS = {1: "ndarray", 2: "native complex", 3: "numpy scalar"}
# Fixed-size headers: byte -> (length-field size or payload size, kind)
_SIZED = {
    0xC4: (1, "bin"), 0xC5: (2, "bin"), 0xC6: (4, "bin"),
    0xD9: (1, "str"), 0xDA: (2, "str"), 0xDB: (4, "str"),
    0xC7: (1, "ext"), 0xC8: (2, "ext"), 0xC9: (4, "ext"),
}  # fmt: skip
_FIXED = {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,
          0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}  # fmt: skip
_FIXEXT = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}
_UINT = {1: ">B", 2: ">H", 4: ">I"}


class MsgpackError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte {offset})")


class _Walk:
    def __init__(self, buf: Buffer, end: int) -> None:
        self.buf = buf
        self.end = end
        self.extensions: dict[int, int] = {}

    def _uint(self, pos: int, size: int) -> int:
        if pos + size > self.end:
            raise MsgpackError("data ends inside a length", pos)
        return int(struct.unpack(_UINT[size], self.buf.read(pos, size))[0])

    def _skip(self, pos: int, length: int) -> int:
        if pos + length > self.end:
            raise MsgpackError(f"a {length}-byte payload runs past the end", pos)
        return pos + length

    def one_object(self, pos: int, depth: int = 0) -> int:
        """Walk one object from `pos`; returns where it ends."""
        pending = [1]  # items still expected per open container
        while pending:
            if pending[-1] == 0:
                pending.pop()
                continue
            pending[-1] -= 1
            if pos >= self.end:
                raise MsgpackError("data ends inside an object", pos)
            tag = self.buf.read(pos, 1)[0]
            pos += 1
            count = -1
            if tag <= 0x7F or tag >= 0xE0:
                continue
            if 0x80 <= tag <= 0x8F:
                count = 2 * (tag & 0x0F)
            elif 0x90 <= tag <= 0x9F:
                count = tag & 0x0F
            elif 0xA0 <= tag <= 0xBF:
                pos = self._skip(pos, tag & 0x1F)
            elif tag in _FIXED:
                pos = self._skip(pos, _FIXED[tag])
            elif tag in _SIZED:
                size, kind = _SIZED[tag]
                length = self._uint(pos, size)
                pos += size
                if kind == "ext":
                    pos = self._extension(pos, length, depth + len(pending))
                else:
                    pos = self._skip(pos, length)
            elif tag in _FIXEXT:
                pos = self._extension(pos, _FIXEXT[tag], depth + len(pending))
            elif tag in (0xDC, 0xDD):
                size = 2 if tag == 0xDC else 4
                count, pos = self._uint(pos, size), pos + size
            elif tag in (0xDE, 0xDF):
                size = 2 if tag == 0xDE else 4
                count, pos = 2 * self._uint(pos, size), pos + size
            else:
                raise MsgpackError(f"byte 0x{tag:02x} starts no msgpack object", pos - 1)
            if count > 0:
                if count > self.end - pos:  # every element takes at least one byte
                    raise MsgpackError(f"a container of {count} items cannot fit", pos)
                if depth + len(pending) >= MAX_DEPTH:
                    raise MsgpackError(f"containers nest deeper than {MAX_DEPTH}", pos)
                pending.append(count)
        return pos

    def _extension(self, pos: int, length: int, depth: int) -> int:
        if pos + 1 + length > self.end:
            raise MsgpackError(f"a {length}-byte extension runs past the end", pos)
        code = struct.unpack(">b", self.buf.read(pos, 1))[0]
        self.extensions[code] = self.extensions.get(code, 0) + 1
        start, end = pos + 1, pos + 1 + length
        if code in (1, 3) and length:  # Flax: a msgpack (shape, dtype, buffer) inside
            inner = _Walk(self.buf, end)
            inner.extensions = self.extensions
            if inner.one_object(start, depth + 1) != end:
                raise MsgpackError(f"Flax extension {code} has bytes after its tuple", start)
        return end


class MsgpackScanner:
    name = SCANNER
    formats = ("msgpack",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        walk = _Walk(Buffer(reader), reader.size)
        try:
            end = walk.one_object(0)
            if end != reader.size:
                raise MsgpackError(f"{reader.size - end} bytes follow the object (msgpack refuses them)", end)
        except MsgpackError as exc:
            ctx.report("msgpack-malformed", location, f"msgpack: {exc}", self.name)
        other = {c: n for c, n in walk.extensions.items() if c not in FLAX_EXTENSIONS}
        if other:
            codes = ", ".join(f"{c} x{n}" for c, n in sorted(other.items()))
            ctx.report("msgpack-extension", location, f"extension type codes Flax does not define: {codes}; "
                       "they are returned as raw bytes", self.name, subject=codes)  # fmt: skip
