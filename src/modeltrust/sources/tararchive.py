"""A bounded reader of (uncompressed) tar headers: members become windows on
the archive, so nothing is extracted or copied."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from ..reader import ByteReader

BLOCK = 512


class TarFormatError(Exception):
    pass


class TarMember(NamedTuple):
    name: str
    type: str
    """'file', 'dir', 'symlink', 'hardlink' or 'other'."""
    size: int
    data_offset: int
    link_target: str = ""


def _octal(field: bytes) -> int:
    field = field.rstrip(b"\x00 ").lstrip(b" ")
    if not field:
        return 0
    if field[0] & 0x80:  # GNU base-256 for large sizes
        return int.from_bytes(field[1:], "big")
    try:
        return int(field, 8)
    except ValueError:
        raise TarFormatError(f"bad octal number {field[:12]!r} in tar header") from None


def _text(field: bytes) -> str:
    return field.split(b"\x00", 1)[0].decode("utf-8", "replace")


def _pax_records(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            break
        if length <= 0:
            break
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        pos += length
    return records


_TYPES = {b"0": "file", b"\x00": "file", b"7": "file", b"5": "dir", b"2": "symlink", b"1": "hardlink"}


def iter_tar(reader: ByteReader, max_members: int) -> Iterator[TarMember]:
    pos = 0
    count = 0
    long_name: str | None = None
    long_link: str | None = None
    while pos + BLOCK <= reader.size:
        header = reader.read_at(pos, BLOCK)
        if header == b"\x00" * BLOCK:
            return
        checksum = _octal(header[148:156])
        actual = sum(header[:148]) + 8 * 32 + sum(header[156:])
        if checksum != actual:
            raise TarFormatError(f"tar header checksum mismatch at offset {pos}")
        size = _octal(header[124:136])
        typeflag = header[156:157]
        data_offset = pos + BLOCK
        pos = data_offset + (size + BLOCK - 1) // BLOCK * BLOCK
        if typeflag in (b"L", b"K", b"x", b"g"):
            body = reader.read_at(data_offset, min(size, 1 << 20))
            if typeflag == b"L":
                long_name = _text(body)
            elif typeflag == b"K":
                long_link = _text(body)
            elif typeflag == b"x":
                pax = _pax_records(body)
                long_name = pax.get("path", long_name)
                long_link = pax.get("linkpath", long_link)
            continue
        count += 1
        if count > max_members:
            raise TarFormatError(f"more than {max_members} members")
        # Only POSIX ustar has a name prefix; GNU tar keeps other fields there.
        prefix = _text(header[345:500]) if header[257:263] == b"ustar\x00" else ""
        name = long_name or _join(prefix, _text(header[0:100]))
        link = long_link or _text(header[157:257])
        long_name = long_link = None
        yield TarMember(name, _TYPES.get(typeflag, "other"), size, data_offset, link)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name
