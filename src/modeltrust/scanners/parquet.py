"""Parquet files: the footer only (Thrift compact FileMetaData), never column data.

What a reader acts on is in the footer's key-value metadata: `ARROW:schema`
(a base64 Arrow IPC schema that pyarrow rebuilds types from, extension types
included, so a pickled `PyExtensionType` runs when the file is opened with
pyarrow < 14.0.1) and the pandas metadata. Column chunks that point to other
files (`file_path`, used by `_metadata` summary files) are checked for paths
that leave the dataset folder. A footer that cannot be read is a finding: a
reader that disagrees with this one may still load it.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct

from ..findings import DataColumn, DataFile, Location
from ..reader import ByteReader
from . import arrow
from .base import ScanContext
from .thrift import CompactReader, Shape, ThriftError, ThriftLimit

SCANNER = "parquet"
MAGIC = b"PAR1"
ENCRYPTED_MAGIC = b"PARE"
MAX_FOOTER_BYTES = 64 << 20
ARROW_SCHEMA_KEY = "ARROW:schema"

# FileMetaData fields kept: schema (names, types), num_rows, row groups (their
# rows and each column chunk's file_path), key-value metadata, created_by.
_SCHEMA_ELEMENT: dict[int, Shape] = {1: None, 4: None, 5: None, 6: None}
_FOOTER_SHAPE: dict[int, Shape] = {
    2: _SCHEMA_ELEMENT,
    3: None,
    4: {1: {1: None}, 3: None},
    5: {1: None, 2: None},
    6: None,
}
_PHYSICAL = ["bool", "int32", "int64", "int96", "float", "double", "binary", "fixed_len_byte_array"]
_CONVERTED = {0: "string", 1: "map", 3: "list", 4: "enum", 5: "decimal", 6: "date32"}
_BASE64_PREFIX = re.compile(rb"[A-Za-z0-9+/]*")


class ParquetFormatError(Exception):
    pass


class ParquetLimitError(ParquetFormatError):
    """The footer is past a bound; `mentions_arrow_schema` says whether it names ARROW:schema."""

    def __init__(self, message: str, mentions_arrow_schema: bool) -> None:
        super().__init__(message)
        self.mentions_arrow_schema = mentions_arrow_schema


def read_footer(reader: ByteReader) -> dict[int, object]:
    size = reader.size
    tail = reader.read_at(size - 8, 8) if size >= 12 else b""
    if len(tail) < 8:
        raise ParquetFormatError("file too short for a Parquet footer")
    if tail[4:] == ENCRYPTED_MAGIC:
        raise ParquetFormatError("the footer is encrypted; its metadata cannot be read without the key")
    if tail[4:] != MAGIC:
        raise ParquetFormatError("the file does not end with the PAR1 magic (truncated or not Parquet)")
    (length,) = struct.unpack_from("<I", tail)
    if length == 0 or length > size - 12:
        raise ParquetFormatError(f"footer length {length} does not fit the {size}-byte file")
    if length > MAX_FOOTER_BYTES:
        mentions = _mentions(reader, size - 8 - length, length, ARROW_SCHEMA_KEY.encode())
        raise ParquetLimitError(f"footer of {length} bytes is over the limit of {MAX_FOOTER_BYTES}", mentions)
    data = reader.read_at(size - 8 - length, length)
    try:
        return CompactReader(data).struct(_FOOTER_SHAPE)
    except ThriftLimit as exc:
        raise ParquetLimitError(
            f"footer is over the bounds: {exc}", ARROW_SCHEMA_KEY.encode() in data
        ) from None
    except ThriftError as exc:
        raise ParquetFormatError(f"footer is corrupt: {exc}") from None


def _mentions(reader: ByteReader, start: int, length: int, needle: bytes, chunk: int = 16 << 20) -> bool:
    """Whether the bytes [start, start+length) contain `needle` (read in chunks)."""
    pos, end = start, start + length
    while pos < end:
        data = reader.read_at(pos, min(chunk + len(needle), end - pos))
        if not data:
            return False
        if needle in data:
            return True
        pos += chunk
    return False


def arrow_decode_base64(text: bytes) -> bytes:
    """What Arrow's base64_decode yields: the longest prefix of alphabet
    characters (it stops at '=' or at any other byte), decoded."""
    match = _BASE64_PREFIX.match(text)
    prefix = match.group(0) if match else b""
    usable = len(prefix) - (1 if len(prefix) % 4 == 1 else 0)
    prefix = prefix[:usable]
    return base64.b64decode(prefix + b"=" * (-len(prefix) % 4))


def _decodings(text: bytes) -> list[bytes]:
    """Arrow's reading and a lenient one (readers differ on odd input)."""
    found = [arrow_decode_base64(text)]
    try:
        lenient = base64.b64decode(text)
    except (binascii.Error, ValueError):
        lenient = b""
    if lenient and lenient not in found:
        found.append(lenient)
    return found


def _key_values(footer: dict[int, object]) -> list[tuple[str, bytes]]:
    pairs = []
    for kv in _list(footer.get(5)):
        if isinstance(kv, dict):
            key = kv.get(1, b"")
            value = kv.get(2, b"")
            if isinstance(key, bytes) and isinstance(value, bytes):
                pairs.append((key.decode("utf-8", "replace"), value))
    return pairs


def _is_escaping(path: str) -> bool:
    normalised = path.replace("\\", "/")
    return normalised.startswith("/") or path[1:2] == ":" or ".." in normalised.split("/") or "://" in path


def _check_column_files(footer: dict[int, object], location: Location, ctx: ScanContext) -> None:
    paths: set[str] = set()
    for group in _list(footer.get(4)):
        for chunk in _list(group.get(1)) if isinstance(group, dict) else []:
            path = chunk.get(1) if isinstance(chunk, dict) else None
            if isinstance(path, bytes):
                paths.add(path.decode("utf-8", "replace"))
    for path in sorted(paths)[:100]:
        escaping = _is_escaping(path)
        ctx.report(
            "parquet-external-column" if escaping else "parquet-column-file",
            location,
            f"column data is read from another file: {path!r}"
            + (" (outside the dataset folder)" if escaping else ""),
            SCANNER,
            subject=path,
        )


def _parquet_columns(footer: dict[int, object]) -> tuple[DataColumn, ...]:
    """Top-level columns from the Parquet schema (a flattened tree)."""
    elements = [e for e in _list(footer.get(2)) if isinstance(e, dict)]
    columns: list[DataColumn] = []
    index = 1
    remaining = _int(elements[0].get(5)) if elements else 0
    while index < len(elements) and remaining > 0:
        element = elements[index]
        columns.append(DataColumn(_text(element.get(4)), _parquet_type(element)))
        index = _skip_subtree(elements, index)
        remaining -= 1
    return tuple(columns)


def _skip_subtree(elements: list[dict[int, object]], index: int) -> int:
    pending = 1
    while pending and index < len(elements):
        pending += _int(elements[index].get(5)) - 1
        index += 1
    return index


def _parquet_type(element: dict[int, object]) -> str:
    converted = element.get(6)
    if isinstance(converted, int) and converted in _CONVERTED:
        return _CONVERTED[converted]
    physical = element.get(1)
    if isinstance(physical, int) and 0 <= physical < len(_PHYSICAL):
        return _PHYSICAL[physical]
    return "group" if element.get(5) else "unknown"


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""


class ParquetScanner:
    name = SCANNER
    formats = ("parquet",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            footer = read_footer(reader)
        except ParquetFormatError as exc:
            high = isinstance(exc, ParquetLimitError) and exc.mentions_arrow_schema
            rule = "dataset-limit" if high else "parquet-malformed"
            ctx.report(rule, location, f"Parquet footer unreadable: {exc}", self.name)
            arrow.record_file(ctx, location, "parquet", None, None)
            return
        pairs = _key_values(footer)
        schema = self._check_arrow_schemas(pairs, location, ctx)
        for key, value in pairs:
            if key == "pandas":
                arrow._check_json(key, value, location, ctx, self.name)
        _check_column_files(footer, location, ctx)
        rows = footer.get(3)
        columns = arrow.columns_of(schema) if schema is not None else _parquet_columns(footer)
        created = footer.get(6)
        ctx.data_files.append(
            DataFile(
                path=str(location),
                format="parquet",
                rows=rows if isinstance(rows, int) else None,
                columns=columns,
                created_by=_text(created)[:200],
            )
        )

    def _check_arrow_schemas(
        self, pairs: list[tuple[str, bytes]], location: Location, ctx: ScanContext
    ) -> arrow.ArrowSchema | None:
        where = location.within(ARROW_SCHEMA_KEY)
        seen: list[arrow.ArrowSchema] = []
        for key, value in pairs:
            if key != ARROW_SCHEMA_KEY:
                continue
            for decoded in _decodings(value):
                try:
                    schema = arrow.parse_schema_message(decoded, ctx.check_time)
                except arrow.ArrowFormatError as exc:
                    message = f"embedded Arrow schema unreadable: {exc}"
                    arrow.report_unreadable(ctx, where, message, exc, self.name)
                    continue
                if schema not in seen:
                    seen.append(schema)
                    arrow.check_schema(schema, where, ctx, self.name)
        return seen[0] if seen else None
