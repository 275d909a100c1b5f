"""NumPy .npy files (and .npz members): the header is a Python literal; object
arrays carry a pickle after it, which is analysed like any other pickle.

Whether the dtype holds objects is answered with numpy's own rules
(npdtype.py: 'object', '(1,)O', 'f8,O', nested structs all do). A header this
scanner cannot read - over its size limit, which numpy lifts when
allow_pickle=True, or in a form it does not parse - does not end the scan:
the data after it is walked as the pickle numpy may read there."""

from __future__ import annotations

import struct

from ..findings import Location
from ..reader import ByteReader
from .base import ScanContext
from .loadable import walk_as_loaded
from .npdtype import npy_descr_has_objects
from .pickle_file import scan_pickle_reader

SCANNER = "numpy"
_MAGIC = b"\x93NUMPY"


def _header_bounds(reader: ByteReader) -> tuple[int, int, int]:
    """(format major version, header length, offset of the array data)."""
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
    return major, length, start + length


def _parse_header(reader: ByteReader, major: int, data_offset: int, length: int) -> dict[str, object]:
    raw = reader.read_at(data_offset - length, length)
    if len(raw) < length:
        raise ValueError("header runs past the end of the file")
    text = raw.decode("utf-8" if major == 3 else "latin-1")
    import ast

    # literal_eval parses literals only; it never calls or imports anything.
    header = ast.literal_eval(text)
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= set(header):
        raise ValueError("header is not a dict with descr, fortran_order and shape")
    return header


class NumpyScanner:
    name = SCANNER
    formats = ("numpy",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            major, length, data_offset = _header_bounds(reader)
        except (ValueError, struct.error) as exc:
            ctx.report("numpy-malformed", location, f"NumPy header: {exc}", SCANNER)
            return  # numpy.load refuses it too: nothing is read
        if length > ctx.limits.max_header_bytes:
            # numpy.load(allow_pickle=True) lifts its own header limit.
            problem = f"header of {length} bytes is over the limit of {ctx.limits.max_header_bytes}"
            self._unknown_dtype(reader, location, ctx, data_offset, problem)
            return
        try:
            header = _parse_header(reader, major, data_offset, length)
        except (ValueError, SyntaxError, MemoryError, RecursionError, UnicodeDecodeError) as exc:
            self._unknown_dtype(reader, location, ctx, data_offset, str(exc))
            return
        descr = header["descr"]
        if not npy_descr_has_objects(descr):
            return  # numpy reads plain data: nothing executes on load
        ctx.report(
            "numpy-object-array",
            location,
            f"array of dtype {descr!r} stores a pickle at offset {data_offset}",
            SCANNER,
            subject=str(descr)[:200],
        )
        scan_pickle_reader(reader, location, ctx, start=data_offset, max_pickles=1)

    @staticmethod
    def _unknown_dtype(
        reader: ByteReader, location: Location, ctx: ScanContext, offset: int, problem: str
    ) -> None:
        """The dtype could not be read here, but numpy may read a pickle after
        the header: walk the data as one and report what a load would run."""
        ctx.report("numpy-malformed", location, f"NumPy header: {problem}; data walked as a pickle", SCANNER)
        walk_as_loaded(reader, location, ctx, start=offset)
