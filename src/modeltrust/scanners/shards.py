"""Dataset shards (webdataset-style tar and zip files) read as their loader reads them.

webdataset groups members by key (the name up to the first dot of its base
name) and decodes each by its extension, not by its bytes: after one `.gz`
layer is gunzipped, `.pyd`/`.pickle`/`.pkl` go to `pickle.loads` and `.pth` to
`torch.load` (pickle underneath unless it is a zip or tar checkpoint), while
`.npy`/`.npz` go to NumPy. So a member with a pickling extension is walked as
a pickle from its first byte, whatever detection would call it (a GIF header
that is also a BINFLOAT opcode, text). Everything else goes through
detection as usual.
"""

from __future__ import annotations

import posixpath
from collections import Counter

from .. import detect
from ..findings import Location
from ..reader import ByteReader, SpooledReader, TooLarge
from .base import ScanContext

SCANNER = "webdataset"
# webdataset.autodecode.decoders, by what runs on load.
PICKLE_EXTENSIONS = {"pyd", "pickle", "pkl"}
TORCH_EXTENSIONS = {"pth"}
NUMPY_EXTENSIONS = {"npy", "npz"}
DECODED = {
    **dict.fromkeys(PICKLE_EXTENSIONS, "pickle"),
    **dict.fromkeys(TORCH_EXTENSIONS, "torch.load"),
    **dict.fromkeys(NUMPY_EXTENSIONS, "numpy"),
    **dict.fromkeys(("json", "jsn"), "json"),
    **dict.fromkeys(("mp", "msg"), "msgpack"),
    **dict.fromkeys(("ten", "tb"), "tenbin"),
    **dict.fromkeys(("txt", "text", "transcript", "cls", "cls2", "index", "inx", "id"), "text"),
    "cbor": "cbor",
}


def split_key(name: str) -> tuple[str, str]:
    """webdataset's base_plus_ext: (key, field) split at the first dot of the base name;
    the field is lower-cased as group_by_keys does."""
    folder, base = posixpath.split(name)
    stem, dot, suffix = base.partition(".")
    if not dot or not stem:
        return name, ""
    return posixpath.join(folder, stem), suffix.lower()


def decoder_extension(field: str) -> tuple[str, bool]:
    """(the extension the decoder goes by, whether a .gz layer is removed first)."""
    gz = field.endswith(".gz") or field == "gz"
    if gz:
        field = field[:-3]
    return field.rsplit(".", 1)[-1], gz


def scan_member(reader: ByteReader, name: str, where: Location, ctx: ScanContext, container: str) -> None:
    """Scan one archive member as webdataset would decode it."""
    _key, field = split_key(name)
    extension, gz = decoder_extension(field)
    decoder = DECODED.get(extension)
    if decoder not in ("pickle", "torch.load"):
        ctx.scan_member(reader, where, container)
        return
    if gz:
        inner = _gunzip(reader, where, ctx)
        if inner is None:
            return
        with inner:
            _scan_as(decoder, inner, where.within("<gzip stream>"), ctx)
        return
    _scan_as(decoder, reader, where, ctx)


def _scan_as(decoder: str, reader: ByteReader, where: Location, ctx: ScanContext) -> None:
    if decoder == "torch.load":
        fmt = detect.sniff(reader)
        if fmt in (detect.ZIP, detect.TAR, detect.TORCH_LEGACY):
            ctx.scan_member(reader, where, SCANNER)  # a checkpoint torch.load opens as such
            return
    if ctx.depth + 1 > ctx.limits.max_depth:
        ctx.report("archive-limit", where, f"nested deeper than {ctx.limits.max_depth} levels; not scanned",
                   SCANNER)  # fmt: skip
        return
    from .pickle_file import scan_pickle_reader

    ctx.formats[str(where)] = detect.PICKLE
    ctx.covered_by[str(where)] = "pickle"
    scan_pickle_reader(reader, where, ctx.deeper())


def _gunzip(reader: ByteReader, where: Location, ctx: ScanContext) -> SpooledReader | None:
    import zlib

    from .compressed import _inflate

    try:
        inner = SpooledReader(
            _inflate(reader, lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)), ctx.inflate_limit(reader.size)
        )
    except TooLarge as exc:
        ctx.report("archive-limit", where, f"gzip member not scanned: {exc}", SCANNER)
        return None
    except zlib.error as exc:
        # webdataset's gzip.open fails too: nothing is decoded.
        ctx.report("archive-malformed", where, f"gzip member is corrupt: {exc}", SCANNER)
        return None
    if ctx.budget is not None:
        ctx.budget.spend(inner.size)
    return inner


def summarise(names: list[str], location: Location, ctx: ScanContext) -> None:
    """Name a shard as such (samples, fields, which decoders run code)."""
    fields: Counter[str] = Counter()
    keys: set[str] = set()
    for name in names:
        key, field = split_key(name)
        if field:
            keys.add(key)
            fields[field] += 1
    decoded = sorted({f for f in fields if DECODED.get(decoder_extension(f)[0]) in ("pickle", "torch.load")})
    multi_field = len(keys) < sum(fields.values())
    if not decoded and not (keys and multi_field):
        return
    ctx.covered_by[str(location)] = SCANNER
    listing = ", ".join(f"{f} x{n}" for f, n in sorted(fields.items())[:12])
    message = f"webdataset-style shard: {len(keys)} samples; fields {listing}"
    if decoded:
        message += f"; {', '.join(decoded)} decoded with pickle/torch.load and scanned as pickles"
    ctx.report("shard-decoder", location, message, SCANNER, subject=",".join(decoded))
