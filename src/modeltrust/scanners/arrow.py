"""Arrow IPC files and streams, Feather v2, and the Arrow schema that Parquet
files embed: the schema message (FlatBuffers) and every field's metadata,
never a record batch.

The danger is in the schema. A field whose extension type is
`arrow.py_extension_type` (pyarrow's `PyExtensionType`) carries a pickle in
`ARROW:extension:metadata`, and pyarrow < 14.0.1 unpickles it as soon as the
file is opened (CVE-2023-47248). That pickle is walked with the pickle engine;
any call in it is critical. Other extension types are named (info); metadata
of an unknown extension type that is itself a pickle is walked too, since the
library that registered the type may unpickle it.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import NamedTuple

from ..findings import DataColumn, DataFile, Location, Severity
from ..reader import ByteReader, BytesReader
from .base import ScanContext
from .flatbuf import FlatError, Table, root

SCANNER = "arrow"
FILE_MAGIC = b"ARROW1"
CONTINUATION = 0xFFFFFFFF
CheckTime = Callable[[], None]
"""Raises LimitReached when the file's time budget is spent (ScanContext.check_time)."""
MAX_SCHEMA_BYTES = 64 << 20
MAX_FIELDS = 1_000_000
MAX_DEPTH = 128  # pyarrow 26 reads structs nested 124 deep and no deeper
MAX_METADATA = 10_000

EXT_NAME = "ARROW:extension:name"
EXT_METADATA = "ARROW:extension:metadata"
PY_EXTENSION = "arrow.py_extension_type"
# Extension types whose *column values* are pickles that the reading library
# unpickles when the data is converted (ray.data's pickled-object columns).
PICKLED_VALUES = {"ray.data.arrow_pickled_object"}
# Registered by pyarrow, pandas or datasets with JSON or empty metadata.
KNOWN_EXTENSIONS = {
    "arrow.uuid",
    "arrow.json",
    "arrow.bool8",
    "arrow.opaque",
    "arrow.fixed_shape_tensor",
    "arrow.variable_shape_tensor",
    "pandas.period",
    "pandas.interval",
}

_TYPE_NAMES = {
    1: "null", 4: "binary", 5: "string", 6: "bool", 13: "struct", 14: "union", 17: "map",
    19: "large_binary", 20: "large_string", 23: "binary_view", 24: "string_view",
    12: "list", 21: "large_list", 25: "list_view", 26: "large_list_view", 16: "fixed_size_list",
    22: "run_end_encoded",
}  # fmt: skip
_UNITS = {0: "s", 1: "ms", 2: "us", 3: "ns"}
_LIST_TYPES = {12, 16, 21, 25, 26}


class ArrowField(NamedTuple):
    name: str
    type: str
    metadata: tuple[tuple[str, bytes], ...]
    children: tuple[ArrowField, ...]


class ArrowSchema(NamedTuple):
    fields: tuple[ArrowField, ...]
    metadata: tuple[tuple[str, bytes], ...]


class ArrowFormatError(Exception):
    pass


class ArrowLimitError(ArrowFormatError):
    """Well formed as far as read, but past a bound: a reader may still load it."""


# --- reading the schema ------------------------------------------------------------------


class _SchemaReader:
    def __init__(self, check_time: CheckTime | None = None) -> None:
        self.count = 0
        self.check_time = check_time

    def schema(self, table: Table) -> ArrowSchema:
        fields = tuple(self.field(t, 0) for t in table.tables(1, MAX_FIELDS))
        return ArrowSchema(fields, _key_values(table, 2))

    def field(self, table: Table, depth: int) -> ArrowField:
        self.count += 1
        if not self.count & 0xFFF and self.check_time is not None:
            self.check_time()  # raises LimitReached when the file's time budget is spent
        if depth > MAX_DEPTH:  # past what Arrow's own FlatBuffers verifier accepts
            raise ArrowFormatError(f"fields nest deeper than {MAX_DEPTH} levels (Arrow refuses such schemas)")
        if self.count > MAX_FIELDS:
            raise ArrowLimitError(f"the schema has over {MAX_FIELDS} fields")
        children = tuple(self.field(t, depth + 1) for t in table.tables(5, MAX_FIELDS))
        type_id = table.integer(2, "B")
        kind = _type_name(type_id, table.table(3), children)
        if table.has(4):  # dictionary-encoded: the type is the dictionary's values
            kind = f"dictionary<{kind}>"
        return ArrowField(table.string(0) or "", kind, _key_values(table, 6), children)


def _key_values(table: Table, index: int) -> tuple[tuple[str, bytes], ...]:
    pairs = []
    for kv in table.tables(index, MAX_METADATA):
        pairs.append((kv.string(0) or "", kv.raw(1) or b""))
    return tuple(pairs)


def _type_name(type_id: int, detail: Table | None, children: tuple[ArrowField, ...]) -> str:
    """A pyarrow-like spelling of a field's type, for reports and the BOM."""
    name = _TYPE_NAMES.get(type_id)
    if type_id in _LIST_TYPES and children:
        size = f", {detail.integer(0)}" if type_id == 16 and detail is not None else ""
        return f"{name}<{children[0].type}{size}>"
    if type_id == 17 and children and len(children[0].children) == 2:
        key, value = children[0].children
        return f"map<{key.type}, {value.type}>"
    if type_id == 13 and children:
        return "struct<" + ", ".join(f"{c.name}: {c.type}" for c in children[:16]) + ">"
    if name is not None:
        return name
    if detail is None:
        return f"type {type_id}"
    if type_id == 2:  # Int
        return f"{'' if detail.integer(1, 'B') else 'u'}int{detail.integer(0)}"
    if type_id == 3:
        return {0: "halffloat", 1: "float", 2: "double"}.get(detail.integer(0, "h"), "float")
    if type_id == 7:
        return f"decimal{detail.integer(2, 'i', 128)}({detail.integer(0)}, {detail.integer(1)})"
    if type_id == 8:
        return "date32" if detail.integer(0, "h") == 0 else "date64"
    if type_id == 9:
        return f"time{detail.integer(1, 'i', 32)}[{_UNITS.get(detail.integer(0, 'h', 1), '?')}]"
    if type_id == 10:
        zone = detail.string(1)
        unit = _UNITS.get(detail.integer(0, "h"), "?")
        return f"timestamp[{unit}" + (f", tz={zone}]" if zone else "]")
    if type_id == 11:
        return "interval"
    if type_id == 15:
        return f"fixed_size_binary[{detail.integer(0)}]"
    if type_id == 18:
        return f"duration[{_UNITS.get(detail.integer(0, 'h', 1), '?')}]"
    return f"type {type_id}"


def parse_schema_message(data: bytes, check_time: CheckTime | None = None) -> ArrowSchema:
    """An encapsulated IPC message (as in Parquet's ARROW:schema) holding a Schema."""
    body = data
    if len(body) >= 8 and struct.unpack_from("<I", body)[0] == CONTINUATION:
        body = body[8:]
    elif len(body) >= 4 and 0 < struct.unpack_from("<i", body)[0] <= len(body) - 4:
        body = body[4:]  # pre-0.15 framing: a length without the continuation marker
    return _schema_from_message(body, check_time)


def _schema_from_message(flatbuffer: bytes | ByteReader, check_time: CheckTime | None = None) -> ArrowSchema:
    try:
        message = root(flatbuffer)
        if message.integer(1, "B") != 1:
            raise ArrowFormatError(f"the first message is not a schema (type {message.integer(1, 'B')})")
        header = message.table(2)
        if header is None:
            raise ArrowFormatError("the schema message has no schema")
        return _SchemaReader(check_time).schema(header)
    except FlatError as exc:
        raise ArrowFormatError(str(exc)) from None


def is_legacy_stream(reader: ByteReader) -> bool:
    """An IPC stream in the pre-0.15 framing (a length, no continuation marker),
    which pyarrow still opens: the message after the length is a Schema."""
    head = reader.read_at(0, 4)
    if len(head) < 4:
        return False
    (length,) = struct.unpack_from("<i", head)
    if not 16 <= length <= min(reader.size - 4, 1 << 20):
        return False
    try:
        message = root(reader.read_at(4, length))
        return message.integer(1, "B") == 1 and 0 <= message.integer(0, "h") <= 4 and message.has(2)
    except FlatError:
        return False


def _frame(reader: ByteReader, offset: int) -> tuple[int, int]:
    """(start, length) of the message flatbuffer at `offset`; length 0 at end-of-stream."""
    head = reader.read_at(offset, 8)
    if len(head) < 4:
        raise ArrowFormatError("the stream ends before a message")
    (marker,) = struct.unpack_from("<I", head)
    if marker == CONTINUATION:
        if len(head) < 8:
            raise ArrowFormatError("the stream ends inside a message length")
        (length,), start = struct.unpack_from("<i", head, 4), offset + 8
    else:
        (length,), start = struct.unpack_from("<i", head), offset + 4
    if length < 0 or start + length > reader.size:
        raise ArrowFormatError(f"the message length {length} does not fit the file")
    if length > MAX_SCHEMA_BYTES:
        raise ArrowLimitError(f"a message of {length} bytes is over the limit of {MAX_SCHEMA_BYTES}")
    return start, length


def read_stream_schema(reader: ByteReader, offset: int, check_time: CheckTime | None = None) -> ArrowSchema:
    """The schema message at `offset` of an IPC stream."""
    start, length = _frame(reader, offset)
    if length == 0:
        raise ArrowFormatError("the stream ends before its schema")
    return _schema_from_message(reader.read_at(start, length), check_time)


def count_rows(reader: ByteReader, offset: int, end: int, max_messages: int = 1_000_000) -> int | None:
    """Rows in the record batches after the schema, from message headers only
    (bodies are stepped over by their declared length); None if unreadable."""
    rows = 0
    try:
        for _ in range(max_messages):
            if offset + 8 > end:
                return rows
            start, length = _frame(reader, offset)
            if length == 0:
                return rows
            message = root(reader.read_at(start, length))
            body = message.integer(3, "q")
            if message.integer(1, "B") == 3:  # RecordBatch
                header = message.table(2)
                rows += header.integer(0, "q") if header is not None else 0
            if body < 0:
                return None
            offset = start + length + body
    except (ArrowFormatError, FlatError):
        return None
    return None


def read_file_footer_schema(reader: ByteReader, check_time: CheckTime | None = None) -> ArrowSchema:
    """The schema in an IPC file's footer (what `pyarrow.ipc.open_file` and Feather use)."""
    size = reader.size
    tail = reader.read_at(size - 10, 10) if size >= 18 else b""
    if len(tail) < 10 or tail[4:] != FILE_MAGIC:
        raise ArrowFormatError("the file does not end with the ARROW1 magic")
    (length,) = struct.unpack_from("<i", tail)
    start = size - 10 - length
    if length <= 0 or start < 8:
        raise ArrowFormatError(f"the footer length {length} does not fit the file")
    if length > MAX_SCHEMA_BYTES:
        raise ArrowLimitError(f"the footer is {length} bytes, over the limit of {MAX_SCHEMA_BYTES}")
    try:
        footer = root(reader.read_at(start, length))
        schema = footer.table(1)
        if schema is None:
            raise ArrowFormatError("the footer has no schema")
        return _SchemaReader(check_time).schema(schema)
    except FlatError as exc:
        raise ArrowFormatError(str(exc)) from None


# --- judging a schema ----------------------------------------------------------------


def check_schema(schema: ArrowSchema, where: Location, ctx: ScanContext, scanner: str) -> None:
    """Extension types in every field (children too) and the schema's own metadata."""
    stack = [(f, f.name) for f in schema.fields]
    while stack:
        arrow_field, path = stack.pop()
        _check_field(arrow_field, path, where, ctx, scanner)
        stack.extend((c, f"{path}.{c.name}") for c in arrow_field.children)
    for key, value in schema.metadata:
        if key in ("pandas", "huggingface"):
            _check_json(key, value, where, ctx, scanner)


def _values(metadata: tuple[tuple[str, bytes], ...], key: str) -> list[bytes]:
    # Every value counts: with a repeated key, readers differ on which one wins.
    return [v for k, v in metadata if k == key]


def _check_field(field: ArrowField, path: str, where: Location, ctx: ScanContext, scanner: str) -> None:
    names = [n.decode("utf-8", "replace") for n in _values(field.metadata, EXT_NAME)]
    payloads = _values(field.metadata, EXT_METADATA)
    if not names:
        if payloads:  # metadata without a name is ignored by pyarrow, but say so
            ctx.report("arrow-extension-type", where, f"field {path!r} has extension metadata but no "
                       "extension name; readers ignore it", scanner, subject=path)  # fmt: skip
        return
    for name in names:
        if name == PY_EXTENSION:
            for payload in payloads or [b""]:
                _walk_extension_pickle(payload, path, where, ctx, scanner)
        elif name in PICKLED_VALUES:
            ctx.report(
                "arrow-pickled-values",
                where,
                f"field {path!r} has extension type {name}: its values are pickles that the library "
                "unpickles when the column is read",
                scanner,
                subject=name,
            )
        else:
            _named_extension(name, payloads, path, where, ctx, scanner)


def _named_extension(
    name: str, payloads: list[bytes], path: str, where: Location, ctx: ScanContext, scanner: str
) -> None:
    known = name in KNOWN_EXTENSIONS or name.startswith(("datasets.", "geoarrow."))
    ctx.report(
        "arrow-extension-type",
        where,
        f"field {path!r} has extension type {name!r}"
        + ("" if known else " (registered by some library; its metadata was checked)"),
        scanner,
        subject=name,
    )
    for payload in payloads:
        if _looks_pickled(payload):
            _walk_extension_pickle(payload, path, where, ctx, scanner, declared=name)


def _looks_pickled(payload: bytes) -> bool:
    from ..detect import PICKLE, sniff_head

    return len(payload) > 2 and sniff_head(payload[:4096], len(payload)) == PICKLE


def _walk_extension_pickle(
    payload: bytes, path: str, where: Location, ctx: ScanContext, scanner: str, declared: str = PY_EXTENSION
) -> None:
    from .pickle_file import scan_pickle_reader

    at = where.within(f"{path}:{EXT_METADATA}")
    pctx = scan_pickle_reader(BytesReader(payload), at, ctx)
    imports = sorted(f"{m}.{n}" for m, n in pctx.stats.imports)
    calls = _calls(payload)
    what = ", ".join(imports[:8]) or "nothing"
    if declared == PY_EXTENSION:
        message = (
            f"field {path!r} is a pickled Python extension type: pyarrow < 14.0.1 unpickles it when the "
            f"file is opened (CVE-2023-47248); it imports {what}"
        )
        rule = "arrow-python-extension"
    else:
        message = f"field {path!r} ({declared}) keeps a pickle as its extension metadata; it imports {what}"
        rule = "arrow-extension-pickle"
    severity = Severity.CRITICAL if calls else None
    if calls:
        message += f" and calls something ({calls})"
    ctx.report(rule, at, message, scanner, subject=declared, severity=severity)


def _calls(payload: bytes) -> str:
    """How the pickle calls (its calling opcodes), or '' when it only builds data."""
    import pickletools

    found: list[str] = []
    try:
        for opcode, _arg, _pos in pickletools.genops(payload):
            if opcode.name in ("REDUCE", "NEWOBJ", "NEWOBJ_EX", "OBJ", "INST", "BUILD"):
                found.append(opcode.name)
    except Exception:  # noqa: BLE001 - a stream pickletools cannot read is not cleared
        found.append("an unreadable stream")
    return ", ".join(sorted(set(found)))


def _check_json(key: str, value: bytes, where: Location, ctx: ScanContext, scanner: str) -> None:
    try:
        json.loads(value)
    except (ValueError, RecursionError):
        ctx.report("dataset-metadata-malformed", where, f"schema metadata {key!r} is not valid JSON",
                   scanner, subject=key)  # fmt: skip


# --- the data-file facts for the report ---------------------------------------------------


def columns_of(schema: ArrowSchema) -> tuple[DataColumn, ...]:
    columns = []
    for f in schema.fields:
        names = _values(f.metadata, EXT_NAME)
        extension = names[0].decode("utf-8", "replace") if names else ""
        columns.append(DataColumn(f.name, f.type, extension))
    return tuple(columns)


def schema_json(schema: ArrowSchema, key: str) -> object:
    for k, v in schema.metadata:
        if k == key:
            try:
                return json.loads(v)
            except (ValueError, RecursionError):
                return None
    return None


def record_file(
    ctx: ScanContext,
    location: Location,
    fmt: str,
    schema: ArrowSchema | None,
    rows: int | None,
    created_by: str = "",
) -> None:
    ctx.data_files.append(
        DataFile(
            path=str(location),
            format=fmt,
            rows=rows,
            columns=columns_of(schema) if schema is not None else (),
            created_by=created_by,
        )
    )


# --- the scanners --------------------------------------------------------------------------


class ArrowFileScanner:
    """IPC file format and Feather v2: the footer's schema and the stream's own."""

    name = SCANNER
    formats = ("arrow",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        schemas: list[ArrowSchema] = []
        for label, read in (("footer", read_file_footer_schema), ("stream", _stream_after_magic)):
            try:
                schema = read(reader, ctx.check_time)
            except ArrowFormatError as exc:
                message = f"Arrow file {label} schema unreadable: {exc}"
                report_unreadable(ctx, location, message, exc, self.name)
                continue
            if schema not in schemas:
                schemas.append(schema)
                check_schema(schema, location.within(f"<{label} schema>"), ctx, self.name)
        rows = count_rows(reader, 8, reader.size - 10) if schemas else None
        record_file(ctx, location, "arrow", schemas[0] if schemas else None, rows)


def report_unreadable(ctx: ScanContext, where: Location, message: str, exc: Exception, scanner: str) -> None:
    """A schema past the bounds may still be loaded (high); a corrupt one is not verified."""
    rule = "dataset-limit" if isinstance(exc, ArrowLimitError) else "arrow-malformed"
    ctx.report(rule, where, message, scanner)


def _stream_after_magic(reader: ByteReader, check_time: CheckTime | None = None) -> ArrowSchema:
    return read_stream_schema(reader, 8, check_time)


def _after_first(reader: ByteReader) -> int:
    start, length = _frame(reader, 0)
    return start + length


class ArrowStreamScanner:
    """IPC stream format (what `datasets` writes as data-*.arrow)."""

    name = SCANNER
    formats = ("arrow-stream",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            schema = read_stream_schema(reader, 0, ctx.check_time)
        except ArrowFormatError as exc:
            report_unreadable(ctx, location, f"Arrow stream schema unreadable: {exc}", exc, self.name)
            record_file(ctx, location, "arrow-stream", None, None)
            return
        check_schema(schema, location.within("<schema>"), ctx, self.name)
        record_file(
            ctx, location, "arrow-stream", schema, count_rows(reader, _after_first(reader), reader.size)
        )
