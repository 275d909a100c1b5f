"""GGUF (llama.cpp): the header, every metadata value and every tensor info,
checked against the file's bounds the way a careful C parser would (the
format's known heap overflows come from trusting counts and lengths), and the
chat template checked for template injection. Tensor data is never read."""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..findings import Location
from ..reader import ByteReader
from .base import ScanContext

SCANNER = "gguf"
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_COUNT = 1 << 24  # tensors or metadata entries: far beyond any real model
MAX_STRING = 64 << 20
# value type -> (struct code, size) for fixed-size types
_FIXED = {0: ("B", 1), 1: ("b", 1), 2: ("H", 2), 3: ("h", 2), 4: ("I", 4), 5: ("i", 4), 6: ("f", 4),
          7: ("?", 1), 10: ("Q", 8), 11: ("q", 8), 12: ("d", 8)}  # fmt: skip
_STRING, _ARRAY = 8, 9
# ggml type -> (block size in elements, bytes per block)
_GGML_TYPES = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
    16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110),
    22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8),
    29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66), 39: (32, 17),
}  # fmt: skip


class GGUFError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class _Cursor:
    """Sequential reads over a ByteReader through a 1 MiB window."""

    def __init__(self, reader: ByteReader, pos: int) -> None:
        self.reader = reader
        self.pos = pos
        self.order = "<"
        """Byte order of every number after the magic ('>' for files converted with --bigendian)."""
        self._base = 0
        self._buf = b""

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.reader.size:
            raise GGUFError(f"a field of {n} bytes runs past the end of the file", self.pos)
        start = self.pos - self._base
        if start < 0 or start + n > len(self._buf):
            self._base = self.pos
            self._buf = self.reader.read_at(self.pos, max(n, 1 << 20))
            start = 0
        self.pos += n
        return self._buf[start : start + n]

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > self.reader.size:
            raise GGUFError(f"a field of {n} bytes runs past the end of the file", self.pos)
        self.pos += n

    def unpack(self, code: str, size: int) -> int | float | bool:
        value: int | float | bool = struct.unpack(self.order + code, self.take(size))[0]
        return value

    def uint(self, size: int) -> int:
        return int(self.unpack({4: "I", 8: "Q"}[size], size))


class _Parser:
    def __init__(self, reader: ByteReader, check_time: Callable[[], None] = lambda: None) -> None:
        self.cur = _Cursor(reader, 4)
        self.check_time = check_time
        """Called every few thousand entries: the file's time budget (raises LimitReached)."""
        self.version = 0
        self.templates: list[tuple[str, str, int]] = []
        self.alignment = 32

    @property
    def length_size(self) -> int:
        return 4 if self.version == 1 else 8

    def string(self, keep: bool = False) -> str:
        at = self.cur.pos
        n = self.cur.uint(self.length_size)
        if n > MAX_STRING:
            raise GGUFError(f"string claims {n} bytes", at)
        if not keep:
            self.cur.skip(n)
            return ""
        return self.cur.take(n).decode("utf-8", "replace")

    def value(self, vtype: int, key: str) -> object:
        if vtype in _FIXED:
            return self.cur.unpack(*_FIXED[vtype])
        if vtype == _STRING:
            return self.string(keep=key.startswith("tokenizer.chat_template") or key == "general.name")
        if vtype == _ARRAY:
            at = self.cur.pos
            etype = self.cur.uint(4)
            count = self.cur.uint(self.length_size)
            if etype in _FIXED:
                self.cur.skip(count * _FIXED[etype][1])
            elif etype == _STRING:
                if count > self.cur.reader.size:
                    raise GGUFError(f"array of {count} strings in a file of {self.cur.reader.size} bytes", at)
                for i in range(count):
                    if not i & 0xFFFF:
                        self.check_time()
                    self.string()
            else:
                raise GGUFError(f"array of unsupported element type {etype}", at)
            return None
        raise GGUFError(f"unknown metadata value type {vtype}", self.cur.pos - 4)

    def parse(self) -> list[tuple[str, int, int]]:
        """Metadata then tensor infos; returns (name, data offset, nbytes) per tensor."""
        self.version = self.cur.uint(4)
        if self.version & 0xFFFF == 0:
            # As gguf's reader decides: a version whose low half is zero was
            # written in the other byte order (convert_hf_to_gguf.py --bigendian).
            self.cur.order = ">"
            self.version = int.from_bytes(self.version.to_bytes(4, "little"), "big")
        if self.version not in (1, 2, 3):
            raise GGUFError(f"unknown GGUF version {self.version}", 4)
        tensors = self.cur.uint(self.length_size)
        entries = self.cur.uint(self.length_size)
        if tensors > MAX_COUNT or entries > MAX_COUNT:
            raise GGUFError(f"header claims {tensors} tensors and {entries} metadata entries", 8)
        for i in range(entries):
            if not i & 0xFFFF:
                self.check_time()
            at = self.cur.pos
            key = self.string(keep=True)
            vtype = self.cur.uint(4)
            value = self.value(vtype, key)
            if key.startswith("tokenizer.chat_template") and isinstance(value, str):
                self.templates.append((key, value, at))
            if key == "general.alignment" and isinstance(value, int):
                if value <= 0 or value & (value - 1):
                    raise GGUFError(f"general.alignment {value} is not a power of two", at)
                self.alignment = value
        infos = []
        for i in range(tensors):
            if not i & 0xFFFF:
                self.check_time()
            infos.append(self.tensor_info())
        return infos

    def tensor_info(self) -> tuple[str, int, int]:
        at = self.cur.pos
        name = self.string(keep=True)
        n_dims = self.cur.uint(4)
        if n_dims > MAX_DIMS:
            raise GGUFError(f"tensor {name!r} has {n_dims} dimensions (ggml allows {MAX_DIMS})", at)
        dims = [self.cur.uint(8) for _ in range(n_dims)]
        ggml_type = self.cur.uint(4)
        offset = self.cur.uint(8)
        elements = 1
        for d in dims:
            elements *= d
        if elements >= 1 << 62:
            raise GGUFError(f"tensor {name!r} has {elements} elements (integer overflow in C)", at)
        block, block_bytes = _GGML_TYPES.get(ggml_type, (0, 0))
        if block == 0:
            raise GGUFError(f"tensor {name!r} has unknown ggml type {ggml_type}", at)
        return name, offset, -(-elements // block) * block_bytes


def has_gguf_header(head: bytes) -> bool:
    """The magic, then a version the readers accept, in either byte order
    (gguf's reader swaps a version whose low half is zero)."""
    if len(head) < 8 or head[:4] != b"GGUF":
        return False
    return int.from_bytes(head[4:8], "little") in (1, 2, 3) or int.from_bytes(head[4:8], "big") in (1, 2, 3)


class GGUFScanner:
    name = SCANNER
    formats = ("gguf",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        if not has_gguf_header(reader.read_at(0, 8)):
            # llama.cpp and gguf's reader refuse a file without the magic and a
            # known version before reading anything else: nothing of it is used.
            message = "named as GGUF, but has no GGUF magic and version (v1-v3); loaders refuse it"
            ctx.report("scan-malformed", location.at(0), message, SCANNER, subject="gguf")
            return
        parser = _Parser(reader, ctx.check_time)
        try:
            tensors = parser.parse()
        except GGUFError as exc:
            ctx.report("gguf-bounds", location.at(exc.offset), f"GGUF header: {exc}", SCANNER)
            return
        except (struct.error, KeyError) as exc:
            ctx.report(
                "gguf-bounds", location.at(parser.cur.pos), f"GGUF header is truncated: {exc}", SCANNER
            )
            return
        data_start = -(-parser.cur.pos // parser.alignment) * parser.alignment
        for name, offset, nbytes in tensors:
            if data_start + offset + nbytes > reader.size:
                ctx.report(
                    "gguf-bounds",
                    location.at(data_start + offset),
                    f"tensor {name!r} ({nbytes} bytes at data offset {offset}) runs past the end of the file",
                    SCANNER,
                    subject=name,
                )
        if parser.templates:
            from .template import check_template

            for _key, template, at in parser.templates:
                check_template(template, location.at(at), ctx, SCANNER)
