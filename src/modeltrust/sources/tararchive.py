"""A bounded reader of (uncompressed) tar headers that lists what Python's
`tarfile` lists: members become windows on the archive, nothing is extracted.

`tarfile` (what `torch.load` uses for the oldest checkpoints, and what
`extractall` users run) decides everything this module reproduces:

- a header is valid when its checksum matches the unsigned *or* the signed
  byte sum; number fields are octal text cut at the first NUL, or base-256
  when the first byte is 0x80 (positive) or 0xFF (negative); no magic needed;
- the name is the ustar prefix + '/' + name whenever the prefix field is set
  (any format); a regular file with a trailing '/' is a directory;
- GNU 'L'/'K' records and PAX 'x' records rename the member that follows (the
  first record in the stream wins), a PAX 'size' changes both the member's
  size and where the next header is; PAX 'g' records apply to every later
  member's attributes, not to where its data ends;
- only regular files (and unknown types) are followed by data blocks: a
  symlink or directory header with a size has no data after it;
- the listing ends at the first all-zero block, or silently at the first
  invalid header after the first one.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from typing import NamedTuple

from ..reader import ByteReader

BLOCK = 512
# Extension records longer than this are not read (a name never is).
MAX_RECORD = 1 << 20
# Chained extension headers (L, K, x, g) before one member.
MAX_CHAIN = 64

_REGULAR = {b"0", b"\x00", b"7", b"S"}
_SUPPORTED = {b"0", b"\x00", b"1", b"2", b"5", b"6", b"7", b"3", b"4", b"L", b"K", b"S"}
_GNU = {b"L", b"K", b"S"}
_PAX = {b"x", b"g", b"X"}
_TYPES = {b"0": "file", b"\x00": "file", b"7": "file", b"5": "dir", b"2": "symlink", b"1": "hardlink"}
_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")
_HDRCHARSET = re.compile(rb"\d+ hdrcharset=([^\n]+)\n")


class TarFormatError(Exception):
    pass


class _HeaderError(Exception):
    """tarfile's InvalidHeaderError/TruncatedHeaderError/EOFHeaderError."""


class _EndOfArchive(_HeaderError):
    pass


class TarMember(NamedTuple):
    name: str
    type: str
    """'file', 'dir', 'symlink', 'hardlink' or 'other'."""
    size: int
    data_offset: int
    link_target: str = ""


class _Info:
    __slots__ = ("data", "link", "name", "size", "typeflag")

    def __init__(self, name: str, typeflag: bytes, size: int, link: str, data: int) -> None:
        self.name = name
        self.typeflag = typeflag
        self.size = size
        self.link = link
        self.data = data

    def has_data(self) -> bool:
        return self.typeflag in _REGULAR or self.typeflag not in _SUPPORTED

    def is_dir(self) -> bool:
        return self.typeflag == b"5"


def nts(field: bytes) -> str:
    """tarfile.nts: up to the first NUL, UTF-8 (undecodable bytes kept as escapes)."""
    end = field.find(b"\x00")
    return (field if end < 0 else field[:end]).decode("utf-8", "surrogateescape")


def nti(field: bytes) -> int:
    """tarfile.nti: base-256 after 0x80/0xFF, else octal text (Python's int())."""
    if field[:1] in (b"\x80", b"\xff"):
        value = int.from_bytes(field[1:], "big")
        return value - 256 ** (len(field) - 1) if field[0] == 0xFF else value
    end = field.find(b"\x00")
    try:
        text = (field if end < 0 else field[:end]).decode("ascii")
        return int(text.strip() or "0", 8)
    except ValueError:  # UnicodeDecodeError is one too
        raise _HeaderError("invalid number field") from None


def checksums(header: bytes) -> tuple[int, int]:
    """The unsigned and signed byte sums, the checksum field counted as spaces."""
    unsigned = 256 + sum(header[:148]) + sum(header[156:512])
    signed = 256 + sum(struct.unpack_from("148b8x356b", header))
    return unsigned, signed


def header_is_valid(header: bytes) -> bool:
    """Would tarfile accept this 512-byte block as a header?"""
    if len(header) < BLOCK or not header.strip(b"\x00"):
        return False
    try:
        return nti(header[148:156]) in checksums(header)
    except _HeaderError:
        return False


def _block(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _parse(reader: ByteReader, pos: int) -> _Info:
    header = reader.read_at(pos, BLOCK)
    if len(header) < BLOCK:
        raise _HeaderError("empty header" if not header else "truncated header")
    if header.count(0) == BLOCK:
        raise _EndOfArchive("end of archive")
    if nti(header[148:156]) not in checksums(header):
        raise _HeaderError(f"bad checksum in the header at offset {pos}")
    for start, end in ((100, 108), (108, 116), (116, 124), (136, 148), (329, 337), (337, 345)):
        nti(header[start:end])  # tarfile parses these too; a bad one ends the listing
    typeflag = header[156:157]
    name = nts(header[0:100])
    if typeflag == b"\x00" and name.endswith("/"):
        typeflag = b"5"  # a V7 directory
    if typeflag == b"5":
        name = name.rstrip("/")
    prefix = nts(header[345:500])
    if prefix and typeflag not in _GNU:
        name = prefix + "/" + name
    return _Info(name, typeflag, nti(header[124:136]), nts(header[157:257]), pos + BLOCK)


def _pax_records(data: bytes, records: dict[str, str]) -> None:
    """tarfile._proc_pax's record loop (stops at the first unparsable record)."""
    pos = 0
    while True:
        match = _PAX_RECORD.match(data, pos)
        if match is None:
            return
        length = int(match.group(1))
        if length == 0:
            raise _HeaderError("pax record of length 0")
        value = data[match.end(2) + 1 : match.start(1) + length - 1]
        key = match.group(2).decode("utf-8", "surrogateescape")
        records[key] = value.decode("utf-8", "surrogateescape")
        pos += length


def _apply_pax(info: _Info, records: dict[str, str]) -> None:
    for key, value in records.items():
        if key == "path":
            info.name = value.rstrip("/")
        elif key == "linkpath":
            info.link = value
        elif key in ("size", "GNU.sparse.size", "GNU.sparse.realsize"):
            try:
                info.size = int(value)
            except ValueError:
                info.size = 0


class _Reader:
    def __init__(self, reader: ByteReader) -> None:
        self.reader = reader
        self.global_pax: dict[str, str] = {}
        self.problems: list[str] = []

    def member(self, pos: int, depth: int = 0) -> tuple[_Info, int]:
        """tarfile.TarInfo.fromtarfile: the member at `pos` and the next header's offset."""
        if depth > MAX_CHAIN:
            raise _HeaderError(f"more than {MAX_CHAIN} extension headers in a row")
        info = _parse(self.reader, pos)
        flag = info.typeflag
        if flag in (b"L", b"K") or flag in _PAX:
            if info.size > MAX_RECORD:
                raise _HeaderError(f"extension record of {info.size} bytes")
            body = self.reader.read_at(info.data, _block(info.size))
            if flag == b"g":
                _pax_records(body, self.global_pax)  # in place: every later member
            local = dict(self.global_pax)
            if flag in (b"x", b"X"):
                _pax_records(body, local)
            nxt, next_pos = self.member(info.data + _block(info.size), depth + 1)
            if flag == b"L":
                nxt.name = nts(body).removesuffix("/") if nxt.is_dir() else nts(body)
            elif flag == b"K":
                nxt.link = nts(body)
            elif flag in (b"x", b"X"):
                _apply_pax(nxt, local)
                if "size" in local:
                    next_pos = nxt.data + (_block(nxt.size) if nxt.has_data() else 0)
            return nxt, next_pos
        if flag == b"S" or any(k.startswith("GNU.sparse.") for k in self.global_pax):
            self.problems.append(f"GNU sparse member {info.name!r}: its data layout is not modelled")
        next_pos = info.data + (_block(info.size) if info.has_data() else 0)
        _apply_pax(info, self.global_pax)
        if info.is_dir():
            info.name = info.name.rstrip("/")
        return info, next_pos


def read_tar(reader: ByteReader, max_members: int) -> tuple[list[TarMember], list[str]]:
    """The members tarfile lists, and problems (where the listing stopped early)."""
    state = _Reader(reader)
    members: list[TarMember] = []
    pos = 0
    while True:
        try:
            info, next_pos = state.member(pos)
        except _EndOfArchive:
            break
        except (_HeaderError, RecursionError) as exc:
            if pos == 0:
                raise TarFormatError(f"not a tar archive tarfile reads: {exc}") from None
            state.problems.append(f"listing ends at offset {pos}: {exc} (tarfile stops there too)")
            break
        if len(members) >= max_members:
            raise TarFormatError(f"more than {max_members} members")
        kind = _TYPES.get(info.typeflag, "file" if info.has_data() else "other")
        size = info.size if info.has_data() else 0
        members.append(TarMember(info.name, kind, max(size, 0), info.data, info.link))
        pos = next_pos
    return members, state.problems


def iter_tar(reader: ByteReader, max_members: int) -> Iterator[TarMember]:
    yield from read_tar(reader, max_members)[0]
