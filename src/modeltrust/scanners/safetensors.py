"""safetensors: the 8-byte header length, the JSON header, and the layout it
declares. Only the header is read (O(header), not O(file)); bytes past the
last tensor, which safetensors forbids, are scanned as a file of their own
because they are how polyglot files hide a second payload."""

from __future__ import annotations

import json
import struct
from typing import Any

from ..findings import Location
from ..reader import ByteReader, SliceReader
from .base import ScanContext

SCANNER = "safetensors"
# The safetensors library refuses headers over 100 MB; we parse up to a smaller
# bound in memory and call larger ones unverifiable.
LIBRARY_MAX_HEADER = 100_000_000
MAX_METADATA_VALUE = 8 << 20
"""Sized to real files: kohya LoRA training metadata (ss_tag_frequency,
ss_dataset_dirs) runs to hundreds of KiB."""

# Bits per element; sub-byte types pack densely.
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "C64": 64,
    "I64": 64, "U64": 64, "F64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen[key] = value
    return seen


class SafetensorsScanner:
    name = SCANNER
    formats = ("safetensors",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        head = reader.read_at(0, 8)
        if len(head) < 8:
            ctx.report(
                "safetensors-malformed", location, "file is shorter than the 8-byte header length", SCANNER
            )
            return
        (length,) = struct.unpack("<Q", head)
        if length > LIBRARY_MAX_HEADER or 8 + length > reader.size:
            ctx.report(
                "safetensors-header-bomb",
                location.at(0),
                f"header claims {length} bytes (file has {reader.size}; loaders allow {LIBRARY_MAX_HEADER})",
                SCANNER,
                subject="header length",
            )
            return
        if length > ctx.limits.max_json_header_bytes:
            ctx.report(
                "scan-unverified",
                location.at(8),
                f"header of {length} bytes is over the {ctx.limits.max_json_header_bytes}-byte parsing limit",
                SCANNER,
            )
            return
        header = self._parse(reader.read_at(8, length), location, ctx)
        if header is not None:
            _check_layout(header, reader, 8 + length, location, ctx)

    @staticmethod
    def _parse(raw: bytes, location: Location, ctx: ScanContext) -> dict[str, Any] | None:
        from .jsontop import MAX_CONTAINERS, too_many_containers

        containers = too_many_containers(raw)
        if containers is not None:
            message = (
                f"header holds ~{containers} objects and arrays (limit {MAX_CONTAINERS}); it was not parsed"
            )
            ctx.report("scan-limit", location.at(8), message, SCANNER)
            return None
        try:
            header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
        except _Duplicate as exc:
            ctx.report(
                "safetensors-duplicate-key",
                location.at(8),
                f"header names {exc.args[0]!r} twice; parsers disagree on which entry wins",
                SCANNER,
                subject=str(exc.args[0]),
            )
            return None
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            ctx.report("safetensors-malformed", location.at(8), f"header is not valid JSON: {exc}", SCANNER)
            return None
        if not isinstance(header, dict):
            ctx.report("safetensors-malformed", location.at(8), "header is not a JSON object", SCANNER)
            return None
        return header


def _check_metadata(metadata: object, location: Location, ctx: ScanContext) -> None:
    if not isinstance(metadata, dict):
        ctx.report("safetensors-metadata", location, "__metadata__ is not an object of strings", SCANNER)
        return
    for key, value in metadata.items():
        if not isinstance(value, str):
            ctx.report(
                "safetensors-metadata",
                location,
                f"__metadata__[{key!r}] is a {type(value).__name__}, not a string (loaders reject it)",
                SCANNER,
                subject=str(key),
            )
        elif len(value) > MAX_METADATA_VALUE:
            ctx.report(
                "safetensors-metadata",
                location,
                f"__metadata__[{key!r}] holds {len(value)} characters; metadata is for short labels",
                SCANNER,
                subject=str(key),
            )


def _offsets(info: object) -> tuple[int, int] | None:
    offsets = info.get("data_offsets") if isinstance(info, dict) else None
    if (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    ):
        return offsets[0], offsets[1]
    return None


def _short(value: object) -> str:
    """A header value for a message, cut short (it comes from the file)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_shape(shape: object) -> bool:
    return isinstance(shape, list) and all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    )


def _entry_problem(info: object) -> str | None:
    """Why an entry is not a well-formed tensor, or None."""
    # Extra keys are tolerated, as the library does; missing ones are not.
    if not isinstance(info, dict):
        return "is not a tensor entry (dtype, shape, data_offsets)"
    dtype, shape = info.get("dtype"), info.get("shape")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:  # a list or dict cannot be looked up
        return f"has unknown dtype {_short(dtype)}"
    if not _is_shape(shape):
        return "has a shape that is not a list of non-negative integers"
    span = _offsets(info)
    if span is None:
        return f"has invalid data_offsets {_short(info.get('data_offsets'))}"
    assert isinstance(shape, list)
    elements = _element_count(shape)
    if elements is None:
        return f"has shape {_short(shape)}, more elements than any file can hold"
    expected = -(-elements * DTYPE_BITS[dtype] // 8)  # integer ceil
    if span[1] - span[0] != expected:
        return f"spans {span[1] - span[0]} bytes but {dtype}{_short(shape)} needs {expected}"
    return None


def _element_count(shape: list[int]) -> int | None:
    """The product of the dimensions, or None past 2**64 (the product of a
    crafted shape can have millions of digits)."""
    if 0 in shape:
        return 0
    count = 1
    for dim in shape:
        count *= dim
        if count > 1 << 64:
            return None
    return count


def _check_layout(
    header: dict[str, Any], reader: ByteReader, data_start: int, location: Location, ctx: ScanContext
) -> None:
    if "__metadata__" in header:
        _check_metadata(header.pop("__metadata__"), location.at(8), ctx)
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        problem = _entry_problem(info)
        if problem is not None:
            ctx.report(
                "safetensors-layout", location.at(8), f"tensor {name!r} {problem}", SCANNER, subject=name
            )
        span = _offsets(info)
        if span is not None:  # still counts for coverage, so one bad entry is one finding
            spans.append((span[0], span[1], name))
    data_size = reader.size - data_start
    spans.sort()
    cursor = 0
    for begin, end, name in spans:
        if end > data_size:
            ctx.report(
                "safetensors-layout",
                location.at(data_start + begin),
                f"tensor {name!r} ends at {end}, past the {data_size} bytes of data",
                SCANNER,
                subject=name,
            )
        elif begin < cursor:
            ctx.report(
                "safetensors-layout",
                location.at(data_start + begin),
                f"tensor {name!r} overlaps the tensor before it",
                SCANNER,
                subject=name,
            )
        elif begin > cursor:
            ctx.report(
                "safetensors-layout",
                location.at(data_start + cursor),
                f"{begin - cursor} bytes before tensor {name!r} belong to no tensor",
                SCANNER,
                subject=name,
            )
        cursor = max(cursor, end)
    if cursor < data_size:
        _scan_trailing(reader, data_start + cursor, location, ctx)


def _scan_trailing(reader: ByteReader, offset: int, location: Location, ctx: ScanContext) -> None:
    size = reader.size - offset
    ctx.report(
        "safetensors-trailing-data",
        location.at(offset),
        f"{size} bytes after the last tensor belong to no tensor (a polyglot file hides content there); "
        "they were scanned as a file of their own",
        SCANNER,
    )
    ctx.scan_member(
        SliceReader(reader, offset, size), location.within(f"<bytes after tensors @{offset}>"), SCANNER
    )
