"""PyTorch checkpoints: zip (torch.save since 1.6, TorchScript), legacy
(sequential pickles) and the oldest tar form. Only pickles, code and the
directory are read; tensor payload never is."""

from __future__ import annotations

import re
import struct

from ..findings import Location
from ..reader import ByteReader, read_all
from ..sources.ziparchive import ZipArchive, ZipMember
from .base import ScanContext
from .pickle import Malformed, PickleContext, Ref, finish, walk_pickle
from .pickle_file import scan_pickle_reader

SCANNER = "pytorch"

# Pickles of a legacy (pre-zip) torch.save file: magic number, protocol
# version, sys_info, the object, the storage keys. Raw storages follow.
LEGACY_PICKLES = 5
_TAR_MEMBERS = {"sys_info", "pickle", "storages", "tensors"}
# Members torch writes that are plain metadata.
_METADATA = {"version", ".format_version", "byteorder", ".storage_alignment", "serialization_id"}
_ELEMENT_SIZES = {
    "DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "LongStorage": 8, "IntStorage": 4,
    "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1,
    "BFloat16Storage": 2, "ComplexDoubleStorage": 16, "ComplexFloatStorage": 8,
}  # fmt: skip


def is_torch_zip(names: list[str]) -> bool:
    return bool(torch_pickle_members(names)) or any(
        n.rsplit("/", 1)[-1] in ("data.pkl", "constants.pkl") or n.endswith(".data/version") for n in names
    )


def is_torch_tar(names: list[str]) -> bool:
    return {"pickle", "storages"} <= set(names) <= _TAR_MEMBERS | {"."}


# Records torch.load unpickles, looked up under the archive's folder.
_PICKLE_RECORDS = ("data.pkl", "constants.pkl")


def torch_pickle_members(names: list[str]) -> set[str]:
    """Members torch's reader (miniz) would open as its pickle records: the
    folder is the first member's top directory, and miniz matches names
    case-insensitively, so `Archive/DATA.PKL` is `archive/data.pkl`."""
    if not names or "/" not in names[0]:
        return set()
    folder = names[0].split("/", 1)[0] + "/"
    wanted = {(folder + record).lower() for record in _PICKLE_RECORDS}
    return {name for name in names if name.lower() in wanted}


def _role(name: str) -> str:
    folder, _, base = name.rpartition("/")
    if base.isdigit() and folder.endswith("data") and (len(folder) == 4 or folder[-5] == "/"):
        return "tensor"  # the common case first: one call per member of a 50,000-tensor checkpoint
    if base.endswith("pkl"):  # data.pkl, constants.pkl, *.debug_pkl
        return "pickle"
    if base.lower().endswith(".py") and "/code/" in f"/{folder.lower()}/":
        return "code"  # found by miniz in any case, like the pickle records
    if base in _METADATA:
        return "metadata"  # read by torch as text, never unpickled (in .data/ too)
    return "other"


def scan_torch_zip(archive: ZipArchive, location: Location, ctx: ScanContext) -> None:
    from .archive import check_crc, open_zip_member

    loaded = torch_pickle_members(archive.names())
    # torch.load hands an archive with a constants.pkl record (as miniz finds
    # it: under the first member's folder, any case) to torch.jit.load.
    torchscript = any(name.lower().endswith("/constants.pkl") for name in loaded)
    roles = [
        (member, "pickle" if member.name in loaded else _role(member.name)) for member in archive.members
    ]
    _report_program(archive, roles, location, ctx, torchscript)
    for member, role in roles:
        if member.is_dir or role in ("tensor", "metadata"):
            continue  # tensor payload is never read
        reader = open_zip_member(archive, member, location, ctx)
        if reader is None:
            continue
        where = location.within(member.name)
        ctx.covered_by[str(where)] = SCANNER
        if role == "pickle":
            check_crc(reader, member, location, ctx)
            scan_pickle_reader(reader, where, ctx, expect_persistent_ids=True, torchscript=torchscript)
        elif role == "code":
            check_crc(reader, member, location, ctx)
            _scan_torchscript_code(reader, where, ctx)
        else:
            ctx.scan_member(reader, where, SCANNER)


def _report_program(
    archive: ZipArchive,
    roles: list[tuple[ZipMember, str]],
    location: Location,
    ctx: ScanContext,
    torchscript: bool,
) -> None:
    """A TorchScript archive is a program: torch.jit.load (and torch.load, which
    hands it over) compiles its code/ and runs it, `__setstate__` methods on
    load and `forward` on every call. A plain torch.save checkpoint has none."""
    code = [m.name for m, role in roles if role == "code" and not m.is_dir]
    mobile = [m.name for m, role in roles if role == "pickle" and m.name.rsplit("/", 1)[-1] == "bytecode.pkl"]
    if not (torchscript or code or mobile):
        return
    parts = [f"{len(code)} code/ file(s)"] if code else []
    parts += ["constants.pkl"] if torchscript else []
    parts += ["lite-interpreter bytecode.pkl"] if mobile else []
    ctx.report(
        "torchscript-program",
        location,
        f"TorchScript archive ({', '.join(parts)}): torch.jit.load compiles and runs its program "
        "on load and on every call; review the code/ or load only what you trust",
        SCANNER,
        subject="torchscript",
    )


def _scan_torchscript_code(reader: ByteReader, where: Location, ctx: ScanContext) -> None:
    rule = ctx.rules.rule("torchscript-code")
    text = read_all(reader, ctx.limits.max_header_bytes * 16).decode("utf-8", "replace")
    for pattern in rule.patterns:
        for match in re.finditer(pattern, text):
            line = text.count("\n", 0, match.start()) + 1
            ctx.report(
                rule.id,
                where.at(match.start()),
                f"TorchScript code line {line} uses {match.group(0)!r}",
                SCANNER,
                subject=match.group(0),
            )


class LegacyTorchScanner:
    name = SCANNER
    formats = ("pytorch-legacy",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        scan_pickle_reader(reader, location, ctx, expect_persistent_ids=True, max_pickles=LEGACY_PICKLES)


# --- the tar form (torch < 0.4) ----------------------------------------------------------


def scan_torch_tar_member(name: str, body: ByteReader, where: Location, ctx: ScanContext) -> None:
    if name in ("pickle", "sys_info"):
        scan_pickle_reader(body, where, ctx, expect_persistent_ids=True, max_pickles=1)
        return
    if name not in ("storages", "tensors"):
        ctx.scan_member(body, where, SCANNER)
        return
    pctx = scan_pickle_reader(body, where, ctx, expect_persistent_ids=True, max_pickles=1)
    try:
        walker = _records_storages if name == "storages" else _records_tensors
        walker(body, pctx)
        finish(pctx)
    except (Malformed, struct.error, IndexError) as exc:
        offset = exc.offset if isinstance(exc, Malformed) else None
        ctx.report("pickle-malformed", where.at(offset), f"legacy torch {name} record: {exc}", SCANNER)


def _first_pickle_end(body: ByteReader, pctx: PickleContext) -> tuple[int, int]:
    """Re-walk the count pickle to find where the records begin, and the count."""
    pos = walk_pickle(pctx, 0, body.size)
    count = pctx.result
    if not isinstance(count, int) or count < 0:
        raise Malformed("record count is not a non-negative integer", 0)
    return pos, count


def _records_storages(body: ByteReader, pctx: PickleContext) -> None:
    pos, count = _first_pickle_end(body, pctx)
    end = body.size
    for _ in range(count):
        pos = walk_pickle(pctx, pos, end)
        record = pctx.result
        if not (isinstance(record, tuple) and len(record) == 3 and isinstance(record[2], Ref)):
            raise Malformed("storage record is not (key, location, storage type)", pos)
        size = _ELEMENT_SIZES.get(record[2].name)
        if size is None:
            raise Malformed(f"unknown storage type {record[2].dotted}", pos)
        (numel,) = struct.unpack("<q", body.read_at(pos, 8))
        pos += 8 + numel * size
        if numel < 0 or pos > end:
            raise Malformed("storage data runs past the end of the member", pos)
    if pos < end:
        walk_pickle(pctx, pos, end)


def _records_tensors(body: ByteReader, pctx: PickleContext) -> None:
    pos, count = _first_pickle_end(body, pctx)
    for _ in range(count):
        pos = walk_pickle(pctx, pos, body.size)
        (ndim,) = struct.unpack("<i", body.read_at(pos, 4))
        if ndim < 0:
            raise Malformed("negative tensor rank", pos)
        pos += 8 + 16 * ndim + 8
        if pos > body.size:
            raise Malformed("tensor record runs past the end of the member", pos)
