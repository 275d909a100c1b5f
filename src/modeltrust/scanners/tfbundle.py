"""TensorFlow tensor bundles: `variables/variables.index` of every SavedModel and
the `*.ckpt.index` of `tf.train.Checkpoint` (and TF1 checkpoints), with their
`*.data-NNNNN-of-MMMMM` shards.

The index is a LevelDB-style table (TensorFlow's lib/io/table): blocks of
prefix-compressed key/value entries, an index block of block handles and a
48-byte footer ending in a magic number. Its values are protobufs: the empty
key holds the BundleHeaderProto (number of shards), every other key a
BundleEntryProto (dtype, shape, shard, offset, size). Loading a bundle runs
nothing: TensorFlow copies each tensor's bytes from its shard by offset. What
could go wrong is a table the native reader walks differently or that is built
to exhaust it, so the walk checks every handle, entry and length against the
bytes there are, and every tensor's span against its shard. The shards are raw
tensor bytes; the repository pass (repo.py) records them as such when their
index walks and covers them.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..findings import Location
from ..reader import ByteReader
from .base import ScanContext
from .protowire import I32, I64, LEN, VARINT, Message, WireError

if TYPE_CHECKING:
    from .repo import RepoFile

SCANNER = "tf-bundle"
TABLE_MAGIC = struct.pack("<Q", 0xDB4775248B80FB57)
FOOTER_SIZE = 48
BLOCK_TRAILER = 5  # compression type, masked crc32c
MAX_BLOCKS = 1 << 20
MAX_ENTRIES = 1 << 24
MAX_SHARDS = 1 << 16
MAX_KEY = 1 << 16
# BundleHeaderProto and BundleEntryProto field numbers
HEADER_NUM_SHARDS = 1
ENTRY_SHARD_ID, ENTRY_OFFSET, ENTRY_SIZE = 3, 4, 5
_DATA_NAME = re.compile(r"^(?P<prefix>.+)\.data-(?P<shard>\d{5})-of-(?P<count>\d{5})$")


class BundleError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte {offset})")


@dataclass(frozen=True, slots=True)
class Bundle:
    num_shards: int
    spans: tuple[tuple[int, int, int], ...]
    """(shard id, offset, size) of every tensor's bytes."""


def is_bundle_index(reader: ByteReader) -> bool:
    return reader.size >= FOOTER_SIZE and reader.read_at(reader.size - 8, 8) == TABLE_MAGIC


def data_shard(name: str) -> tuple[str, int, int] | None:
    """`prefix.data-00000-of-00002` -> (prefix, 0, 2)."""
    match = _DATA_NAME.match(name)
    if match is None:
        return None
    return match.group("prefix"), int(match.group("shard")), int(match.group("count"))


def _varint(data: bytes, pos: int, base: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise BundleError("varint runs past its block", base + pos)
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise BundleError("varint longer than 10 bytes", base + pos)


class _Table:
    def __init__(self, reader: ByteReader) -> None:
        self.reader = reader
        self.end = reader.size - FOOTER_SIZE

    def handle(self, data: bytes, pos: int, base: int) -> tuple[int, int, int]:
        """A block handle (offset, size) checked against the file; returns (offset, size, next pos)."""
        offset, pos = _varint(data, pos, base)
        size, pos = _varint(data, pos, base)
        if offset + size + BLOCK_TRAILER > self.end:
            raise BundleError(f"block of {size} bytes at {offset} runs past the table", base)
        return offset, size, pos

    def block(self, offset: int, size: int) -> list[tuple[bytes, bytes, int]]:
        """The entries of one uncompressed block: (key, value, offset of the value)."""
        kind = self.reader.read_at(offset + size, 1)
        if kind != b"\x00":
            raise BundleError(f"block compression type {kind.hex()} (only uncompressed is read)", offset)
        data = self.reader.read_at(offset, size)
        if len(data) < 4:
            raise BundleError("block shorter than its restart count", offset)
        (restarts,) = struct.unpack_from("<I", data, len(data) - 4)
        limit = len(data) - 4 - 4 * restarts
        if restarts == 0 or limit < 0:
            raise BundleError(f"block with {restarts} restart points cannot hold them", offset)
        entries: list[tuple[bytes, bytes, int]] = []
        key = b""
        pos = 0
        while pos < limit:
            shared, pos = _varint(data, pos, offset)
            unshared, pos = _varint(data, pos, offset)
            value_length, pos = _varint(data, pos, offset)
            if shared > len(key) or shared + unshared > MAX_KEY or pos + unshared + value_length > limit:
                raise BundleError("entry runs past its block or shares more key than exists", offset + pos)
            key = key[:shared] + data[pos : pos + unshared]
            pos += unshared
            entries.append((key, data[pos : pos + value_length], offset + pos))
            pos += value_length
        return entries


def read_bundle(reader: ByteReader) -> Bundle:
    """Walk the whole index; BundleError where the table or its protobufs are malformed."""
    if not is_bundle_index(reader):
        raise BundleError("no table footer magic", max(0, reader.size - 8))
    table = _Table(reader)
    footer = reader.read_at(table.end, FOOTER_SIZE)
    _, _, pos = table.handle(footer, 0, table.end)  # the metaindex block (empty in bundles)
    index_offset, index_size, _ = table.handle(footer, pos, table.end)
    index = table.block(index_offset, index_size)
    if len(index) > MAX_BLOCKS:
        raise BundleError(f"over {MAX_BLOCKS} data blocks", index_offset)
    num_shards: int | None = None
    spans: list[tuple[int, int, int]] = []
    previous: bytes | None = None
    for _, value, at in index:
        offset, size, _ = table.handle(value, 0, at)
        for key, entry, entry_at in table.block(offset, size):
            if previous is not None and key <= previous:
                raise BundleError("keys out of order (a binary search would miss tensors)", entry_at)
            previous = key
            if key == b"":
                num_shards = _header(entry, entry_at)
            else:
                spans.append(_entry(entry, entry_at))
            if len(spans) > MAX_ENTRIES:
                raise BundleError(f"over {MAX_ENTRIES} tensors", entry_at)
    if num_shards is None:
        raise BundleError("no bundle header (the empty key)", index_offset)
    for shard, _, _ in spans:
        if shard >= num_shards:
            raise BundleError(f"a tensor names shard {shard} of {num_shards}", index_offset)
    return Bundle(num_shards, tuple(spans))


def _fields(value: bytes, at: int) -> dict[int, int]:
    """The varint fields of a small protobuf (LEN and fixed fields are checked, not kept)."""
    from ..reader import BytesReader

    found: dict[int, int] = {}
    try:
        for field in Message(BytesReader(value)).fields():
            if field.wire_type == VARINT:
                found[field.number] = field.value
            elif field.wire_type not in (LEN, I32, I64):
                raise BundleError(f"field {field.number} of wire type {field.wire_type}", at + field.offset)
    except WireError as exc:
        raise BundleError(f"protobuf: {exc}", at + exc.offset) from None
    return found


def _header(value: bytes, at: int) -> int:
    shards = _fields(value, at).get(HEADER_NUM_SHARDS, 0)
    if not 1 <= shards <= MAX_SHARDS:
        raise BundleError(f"bundle header names {shards} shards", at)
    return shards


def _entry(value: bytes, at: int) -> tuple[int, int, int]:
    fields = _fields(value, at)
    return fields.get(ENTRY_SHARD_ID, 0), fields.get(ENTRY_OFFSET, 0), fields.get(ENTRY_SIZE, 0)


class TfBundleScanner:
    name = SCANNER
    formats = ("tf-bundle-index",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            read_bundle(reader)
        except BundleError as exc:
            ctx.report("tf-bundle-malformed", location, f"TensorFlow bundle index: {exc}", self.name)


def record_shards(path: str, files: dict[str, RepoFile], ctx: ScanContext) -> None:
    """The `.data-NNNNN-of-MMMMM` shards of the bundle index at `path` are raw tensor
    bytes TensorFlow reads by offset and length: recorded as data rather than as
    unverified binaries when the index walks and every tensor it names fits its shard."""
    try:
        reader = files[path].open()
    except OSError:
        return
    try:
        bundle = read_bundle(reader)
    except BundleError:
        return  # the per-file scan reports it; its shards stay unverified
    finally:
        close = getattr(reader, "close", None)
        if callable(close):
            close()
    prefix = path[: -len(".index")]
    for shard in range(bundle.num_shards):
        data = f"{prefix}.data-{shard:05d}-of-{bundle.num_shards:05d}"
        item = files.get(data)
        if item is None:
            continue
        try:
            shard_reader = item.open()
        except OSError:
            continue
        size = shard_reader.size
        close = getattr(shard_reader, "close", None)
        if callable(close):
            close()
        if any(s == shard and offset + length > size for s, offset, length in bundle.spans):
            continue  # a tensor past the end: TensorFlow refuses it; the file stays unverified
        where = item.location
        unverified = [f for f in ctx.findings if f.rule_id == "scan-unverified" and f.location == where]
        if not unverified:
            continue
        for finding in unverified:
            ctx.findings.remove(finding)
        message = f"tensor data of {path}: raw bytes read by offset and length, nothing deserialised"
        ctx.report("format-data", item.location, message, SCANNER, subject="tf-bundle-data")
