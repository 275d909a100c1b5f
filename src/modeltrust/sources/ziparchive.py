"""A zip reader that sees what torch.load sees.

Python's zipfile refuses members with the encryption flag and checks CRCs;
torch's reader (miniz) does neither. Attackers have used exactly that gap to
hide a pickle from scanners that torch still loads. So this reader:
- finds members through the central directory, as miniz does, reading
  their data offset from the local header;
- ignores flag bits and CRCs for access, and reports them as findings instead;
- reads only the directory and the members a scanner asks for.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from ..reader import ByteReader, CountingReader, SliceReader, SpooledReader, iter_chunks

_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"

_EOCD_STRUCT = struct.Struct("<4sHHHHIIH")
_EOCD64_LOCATOR_STRUCT = struct.Struct("<4sIQI")
_EOCD64_STRUCT = struct.Struct("<4sQHHIIQQQQ")
_CENTRAL_STRUCT = struct.Struct("<4sHHHHHHIIIHHHHHII")
_LOCAL_STRUCT = struct.Struct("<4sHHHHHIIIHH")

STORED = 0
INPUT_CHUNK = 16 << 10
"""Compressed bytes fed per call, so a ratio check on the output is that fine."""
LZMA_MAX_DICT = 128 << 20
StreamBound = Callable[[Iterator[bytes], CountingReader], Iterator[bytes]]
DEFLATED = 8
BZIP2 = 12
LZMA = 14


class ZipFormatError(Exception):
    """The archive's directory cannot be read."""


class ZipMember(NamedTuple):
    """A central-directory entry (a NamedTuple: checkpoints have 100k of them)."""

    name: str
    method: int
    flags: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & 0x1)

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


@dataclass
class ZipArchive:
    reader: ByteReader
    members: list[ZipMember]
    problems: list[str] = field(default_factory=list)
    """Inconsistencies found while reading the directory (not fatal)."""

    def names(self) -> list[str]:
        return [m.name for m in self.members]

    def data_offset(self, member: ZipMember) -> int:
        """Where the member's data starts, from its local header (read on demand,
        so members nobody opens, like tensor payload, cost nothing)."""
        local = self.reader.read_at(member.header_offset, _LOCAL_STRUCT.size)
        if len(local) < _LOCAL_STRUCT.size or local[:4] != _LOCAL:
            raise ZipFormatError(f"no local header at offset {member.header_offset}")
        fields = _LOCAL_STRUCT.unpack(local)
        name_len: int = fields[9]
        extra_len: int = fields[10]
        local_name = _decode_name(
            self.reader.read_at(member.header_offset + _LOCAL_STRUCT.size, name_len), fields[2]
        )
        if local_name != member.name:
            self.problems.append(f"member {member.name!r} is named {local_name!r} in its local header")
        return member.header_offset + _LOCAL_STRUCT.size + name_len + extra_len

    def open_member(self, member: ZipMember, limit: int, bound: StreamBound | None = None) -> ByteReader:
        """A reader over the member's uncompressed bytes.

        Stored members are a window on the archive (no copy); deflated ones are
        inflated into a temp file of at most `limit` bytes, through `bound`
        (which sees the output and how much compressed input it came from).
        """
        raw = SliceReader(self.reader, self.data_offset(member), member.compressed_size)
        if member.method == STORED:
            return raw
        source = CountingReader(raw)
        if member.method == DEFLATED:
            chunks = _inflate(source)
        elif member.method in (BZIP2, LZMA):
            # Python's zipfile (so np.load of .npz) reads these; torch does not.
            chunks = _decompress_stream(source, member.method)
        else:
            raise ZipFormatError(f"member {member.name!r} uses compression method {member.method}")
        return SpooledReader(chunks if bound is None else bound(chunks, source), limit)


def _inflate(raw: ByteReader) -> Iterator[bytes]:
    inflater = zlib.decompressobj(-15)
    for chunk in iter_chunks(raw, chunk=INPUT_CHUNK):
        out = inflater.decompress(chunk, 1 << 20)
        while out:
            yield out
            out = inflater.decompress(inflater.unconsumed_tail, 1 << 20)
        if inflater.eof:
            return
    tail = inflater.flush()
    if tail:
        yield tail


def _decompress_stream(raw: ByteReader, method: int) -> Iterator[bytes]:
    """bzip2 or zip-LZMA (4-byte header, LZMA1 properties, raw stream), with
    output bounded per call so a small input cannot balloon in memory."""
    import bz2
    import lzma

    offset = 0
    if method == BZIP2:
        engine: bz2.BZ2Decompressor | lzma.LZMADecompressor = bz2.BZ2Decompressor()
    else:
        header = raw.read_at(0, 4)
        if len(header) < 4:
            raise ZipFormatError("LZMA member header is truncated")
        props_size = int.from_bytes(header[2:4], "little")
        props = raw.read_at(4, props_size)
        lzma_filter = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
        if lzma_filter.get("dict_size", 0) > LZMA_MAX_DICT:  # raw decoders take no memlimit
            raise ZipFormatError(f"LZMA member asks for a {lzma_filter['dict_size']}-byte dictionary")
        engine = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[lzma_filter])
        offset = 4 + props_size
    for chunk in iter_chunks(raw, offset=offset, chunk=INPUT_CHUNK):
        out = engine.decompress(chunk, 1 << 20)
        while True:
            if out:
                yield out
            if engine.eof or engine.needs_input:
                break
            out = engine.decompress(b"", 1 << 20)
        if engine.eof:
            return


def _find_eocd(reader: ByteReader) -> int:
    """Offset of the end-of-central-directory record: the last one in the
    final 64 KiB + 22 bytes, as miniz and zipfile search."""
    size = reader.size
    tail_start = max(0, size - (0xFFFF + _EOCD_STRUCT.size))
    tail = reader.read_at(tail_start, size - tail_start)
    pos = tail.rfind(_EOCD)
    while pos >= 0:
        if len(tail) - pos >= _EOCD_STRUCT.size:
            return tail_start + pos
        pos = tail.rfind(_EOCD, 0, pos)
    raise ZipFormatError("no end-of-central-directory record")


class Directory(NamedTuple):
    """A central directory some loader reads: where it starts, and by how
    much that loader shifts the local-header offsets its entries give."""

    entries: int
    size: int
    start: int
    shift: int


def _directory_bounds(reader: ByteReader, eocd_offset: int) -> list[Directory]:
    """Every central directory a loader may read, the one miniz (torch) reads first.

    Whenever a zip64 locator sits right before the end record, miniz and
    zipfile read a zip64 record instead of the 32-bit fields, whatever those
    say: miniz the record the locator points to, zipfile the one right before
    the locator. zipfile then reads the directory that ends where that record
    begins (and shifts member offsets by the difference, for archives behind a
    prefix); miniz reads it where the record says. A file can make these
    disagree; then every one of them is scanned."""
    fields = _EOCD_STRUCT.unpack(reader.read_at(eocd_offset, _EOCD_STRUCT.size))
    count, cd_size, cd_offset = fields[4], fields[5], fields[6]
    saturated = count == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF
    found: list[Directory] = []

    def add(directory: Directory) -> None:
        if directory.start >= 0 and directory not in found:
            found.append(directory)

    zipfile_end = eocd_offset  # where the directory zipfile reads ends
    zipfile_bounds: tuple[int, int, int] | None = None if saturated else (count, cd_size, cd_offset)
    loc_at = eocd_offset - _EOCD64_LOCATOR_STRUCT.size
    loc = reader.read_at(loc_at, _EOCD64_LOCATOR_STRUCT.size) if loc_at >= 0 else b""
    if len(loc) == _EOCD64_LOCATOR_STRUCT.size and loc[:4] == _EOCD64_LOCATOR:
        pointed = _zip64_record(reader, _EOCD64_LOCATOR_STRUCT.unpack(loc)[2])
        if pointed is not None:  # miniz
            add(Directory(pointed[0], pointed[1], pointed[2], 0))
        adjacent_at = loc_at - _EOCD64_STRUCT.size
        adjacent = _zip64_record(reader, adjacent_at)
        if adjacent is not None:  # zipfile
            zipfile_end, zipfile_bounds = adjacent_at, adjacent
    if zipfile_bounds is not None:
        n, size, offset = zipfile_bounds
        if not found:  # no zip64 record: miniz reads the 32-bit fields as they are
            add(Directory(n, size, offset, 0))
        add(Directory(n, size, zipfile_end - size, zipfile_end - size - offset))
    if not found:
        raise ZipFormatError("zip64 sizes without a zip64 end record")
    return found


def _zip64_record(reader: ByteReader, offset: int) -> tuple[int, int, int] | None:
    if offset < 0:
        return None
    rec = reader.read_at(offset, _EOCD64_STRUCT.size)
    if len(rec) < _EOCD64_STRUCT.size or rec[:4] != _EOCD64:
        return None
    f64 = _EOCD64_STRUCT.unpack(rec)
    count: int = f64[7]
    cd_size: int = f64[8]
    cd_offset: int = f64[9]
    return count, cd_size, cd_offset


def _zip64_extra(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if tag == 0x0001:
            values = list(struct.unpack_from(f"<{len(body) // 8}Q", body))
            if usize == 0xFFFFFFFF and values:
                usize = values.pop(0)
            if csize == 0xFFFFFFFF and values:
                csize = values.pop(0)
            if offset == 0xFFFFFFFF and values:
                offset = values.pop(0)
            break
        pos += 4 + length
    return usize, csize, offset


def _decode_name(raw: bytes, flags: int) -> str:
    if flags & 0x800:
        return raw.decode("utf-8", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp437")


def read_zip(reader: ByteReader, max_members: int = 1_000_000) -> ZipArchive:
    """Read the central directory (and each member's local header). When the
    end records lead loaders to different directories, members of every one
    are listed (the first is the one torch reads) and a problem says so."""
    eocd = _find_eocd(reader)
    candidates = _directory_bounds(reader, eocd)
    members: list[ZipMember] = []
    problems: list[str] = []
    seen: set[tuple[str, int]] = set()
    readable = 0
    last_error = "no central directory"
    for directory in candidates:
        try:
            listed = _read_directory(reader, directory, max_members, problems)
        except ZipFormatError as exc:
            last_error = str(exc)
            continue
        readable += 1
        for member in listed:
            if (member.name, member.header_offset) not in seen:
                seen.add((member.name, member.header_offset))
                members.append(member)
        if len(members) > max_members:
            raise ZipFormatError(f"more than {max_members} members")
    if not readable:
        raise ZipFormatError(last_error)
    if readable > 1:
        problems.append(
            f"the end records lead loaders to {readable} different central directories (zip64 "
            "locator, zip64 record, 32-bit record); all were scanned"
        )
    return ZipArchive(reader, members, problems)


def _read_directory(
    reader: ByteReader, directory: Directory, max_members: int, problems: list[str]
) -> list[ZipMember]:
    count, cd_size, start, shift = directory
    if count > max_members:
        raise ZipFormatError(f"{count} members is over the limit of {max_members}")
    if count and reader.read_at(start, 4) != _CENTRAL:
        raise ZipFormatError("central directory not found where the end record points")
    if shift:
        problems.append(f"archive starts {shift} bytes into the file")
    data = reader.read_at(start, cd_size)
    members: list[ZipMember] = []
    pos = 0
    for _ in range(count):
        if data[pos : pos + 4] != _CENTRAL or pos + _CENTRAL_STRUCT.size > len(data):
            problems.append(f"central directory ends after {len(members)} of {count} entries")
            break
        f = _CENTRAL_STRUCT.unpack_from(data, pos)
        flags, method, crc, csize, usize = f[3], f[4], f[7], f[8], f[9]
        name_len, extra_len, comment_len, header_offset = f[10], f[11], f[12], f[16]
        pos += _CENTRAL_STRUCT.size
        name = _decode_name(data[pos : pos + name_len], flags)
        extra = data[pos + name_len : pos + name_len + extra_len]
        pos += name_len + extra_len + comment_len
        if 0xFFFFFFFF in (usize, csize, header_offset):
            usize, csize, header_offset = _zip64_extra(extra, usize, csize, header_offset)
        header_offset += shift
        if header_offset + csize > reader.size:
            problems.append(f"member {name!r} extends past the end of the file")
        members.append(ZipMember(name, method, flags, crc, csize, usize, header_offset))
    if len(members) < count and not problems:
        problems.append(f"only {len(members)} of {count} directory entries are readable")
    return members


def crc_matches(reader: ByteReader, expected: int) -> bool:
    crc = 0
    for chunk in iter_chunks(reader):
        crc = zlib.crc32(chunk, crc)
    return crc == expected


__all__ = [
    "ZipArchive",
    "ZipFormatError",
    "ZipMember",
    "crc_matches",
    "read_zip",
]
