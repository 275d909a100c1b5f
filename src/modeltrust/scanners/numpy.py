"""NumPy .npy files (and .npz members): the header is a Python literal; object
arrays carry a pickle after it, which is analysed like any other pickle."""

from __future__ import annotations

import struct

from ..findings import Location
from ..reader import ByteReader
from .base import ScanContext
from .pickle_file import scan_pickle_reader

SCANNER = "numpy"
_MAGIC = b"\x93NUMPY"


def _parse_header(reader: ByteReader, max_bytes: int) -> tuple[dict[str, object], int]:
    """(header dict, offset of the array data)."""
    head = reader.read_at(0, 12)
    if len(head) < 10 or not head.startswith(_MAGIC):
        raise ValueError("missing NumPy magic")
    major = head[6]
    if major == 1:
        (length,), start = struct.unpack_from("<H", head, 8), 10
    elif major in (2, 3):
        if len(head) < 12:
            raise ValueError("header truncated")
        (length,), start = struct.unpack_from("<I", head, 8), 12
    else:
        raise ValueError(f"unknown format version {major}.{head[7]}")
    if length > max_bytes:
        raise ValueError(f"header of {length} bytes is over the limit of {max_bytes}")
    raw = reader.read_at(start, length)
    if len(raw) < length:
        raise ValueError("header runs past the end of the file")
    text = raw.decode("utf-8" if major == 3 else "latin-1")
    import ast

    # literal_eval parses literals only; it never calls or imports anything.
    header = ast.literal_eval(text)
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= set(header):
        raise ValueError("header is not a dict with descr, fortran_order and shape")
    return header, start + length


def _has_objects(descr: object) -> bool:
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list):
        return any(isinstance(field, tuple) and len(field) >= 2 and _has_objects(field[1]) for field in descr)
    return True  # unknown descr shapes: analyse the data as a pickle to be safe


class NumpyScanner:
    name = SCANNER
    formats = ("numpy",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            header, data_offset = _parse_header(reader, ctx.limits.max_header_bytes)
        except (ValueError, SyntaxError, MemoryError, RecursionError, struct.error) as exc:
            ctx.report("numpy-malformed", location, f"NumPy header: {exc}", SCANNER)
            return
        if not _has_objects(header["descr"]):
            return  # plain numeric data: nothing executes on load
        ctx.report(
            "numpy-object-array",
            location,
            f"array of dtype {header['descr']!r} stores a pickle at offset {data_offset}",
            SCANNER,
            subject=str(header["descr"]),
        )
        scan_pickle_reader(reader, location, ctx, start=data_offset, max_pickles=1)
