"""Zip and tar containers: PyTorch checkpoints, TorchScript archives, .npz,
legacy torch tar files, and generic archives scanned member by member."""

from __future__ import annotations

import posixpath
from collections import Counter

from ..findings import Location
from ..reader import ByteReader, SliceReader, TooLarge
from ..sources.ziparchive import STORED, ZipArchive, ZipFormatError, ZipMember, crc_matches, read_zip
from . import keras, pt2, pytorch, shards
from .base import LimitReached, ScanContext

ZIP_SCANNER = "zip"
_LOCAL_HEADER = 30
TAR_SCANNER = "tar"


def _unsafe_path(name: str) -> bool:
    if name.startswith(("/", "\\")) or name[1:2] == ":":
        return True
    return ".." in name and ".." in name.replace("\\", "/").split("/")


def report_problems(archive: ZipArchive, location: Location, ctx: ScanContext) -> None:
    """Directory and local-header inconsistencies (local headers are read lazily,
    so call this after the members of interest were opened)."""
    for problem in archive.problems:
        ctx.report("archive-malformed", location, f"zip structure: {problem}", ZIP_SCANNER)
    archive.problems.clear()


def _report_structure(archive: ZipArchive, location: Location, ctx: ScanContext) -> None:
    duplicates = [name for name, n in Counter(archive.names()).items() if n > 1]
    for name in duplicates:
        ctx.report(
            "archive-duplicate-member",
            location.within(name),
            f"the name {name!r} appears more than once; loaders may read a different copy",
            ZIP_SCANNER,
            subject=name,
        )
    for member in archive.members:
        if _unsafe_path(member.name):
            ctx.report(
                "archive-path-traversal",
                location.within(member.name),
                f"member path {member.name!r} escapes the extraction folder",
                ZIP_SCANNER,
                subject=member.name,
            )
        if member.flags & 0x41:  # encrypted / strong encryption
            ctx.report(
                "archive-flags",
                location.within(member.name),
                f"member has flag bits 0x{member.flags:04x} (encrypted); torch.load ignores "
                "them and reads the bytes as plain, so they were scanned as plain",
                ZIP_SCANNER,
                subject=member.name,
            )


def open_zip_member(
    archive: ZipArchive, member: ZipMember, location: Location, ctx: ScanContext
) -> ByteReader | None:
    where = location.within(member.name)
    limits = ctx.limits
    if member.size > limits.max_decompressed_bytes and member.method != STORED:
        ctx.report(
            "archive-limit",
            where,
            f"member would inflate to {member.size} bytes, over the limit",
            ZIP_SCANNER,
        )
        return None
    if member.method != STORED and ctx.budget is not None and ctx.budget.exhausted:
        message = f"member not scanned: the file's decompression budget ({ctx.budget.total} bytes) is spent"
        ctx.report("archive-limit", where, message, ZIP_SCANNER)
        return None
    try:
        return archive.open_member(member, ctx.inflate_limit(member.compressed_size), ctx.bound_stream)
    except TooLarge as exc:
        ctx.report("archive-limit", where, f"member not scanned: {exc} (possible zip bomb)", ZIP_SCANNER)
    except ZipFormatError as exc:
        ctx.report("scan-unverified", where, f"member not scanned: {exc}", ZIP_SCANNER)
    except LimitReached:
        raise
    except Exception as exc:  # noqa: BLE001 - zlib/bz2/lzma errors: corrupt compressed data
        ctx.report("archive-malformed", where, f"member cannot be decompressed: {exc}", ZIP_SCANNER)
    return None


def overlapping_members(members: list[ZipMember]) -> set[int]:
    """Indexes of members whose data shares bytes with another member's.

    Decided from the central directory alone, before anything is inflated: a
    member spans at least its 30-byte local header plus its compressed size
    from its header offset, so a member that starts inside that span of an
    earlier one overlaps it (the non-recursive zip bomb's construction)."""
    order = sorted(range(len(members)), key=lambda i: members[i].header_offset)
    found: set[int] = set()
    reach, owner = -1, -1
    for i in order:
        member = members[i]
        if member.header_offset < reach:
            found.update((i, owner))
        end = member.header_offset + _LOCAL_HEADER + member.compressed_size
        if end > reach:
            reach, owner = end, i
    return found


def _drop_overlapping(archive: ZipArchive, location: Location, ctx: ScanContext) -> None:
    found = overlapping_members(archive.members)
    if not found:
        return
    names = sorted({archive.members[i].name for i in found})
    ctx.report(
        "archive-overlapping-members",
        location,
        f"{len(found)} members share their data bytes (a zip bomb construction), e.g. "
        + ", ".join(repr(n) for n in names[:3])
        + "; they were not inflated",
        ZIP_SCANNER,
        subject=names[0],
    )
    archive.members = [m for i, m in enumerate(archive.members) if i not in found]


def check_crc(reader: ByteReader, member: ZipMember, location: Location, ctx: ScanContext) -> None:
    if not crc_matches(reader, member.crc):
        ctx.report(
            "archive-crc-mismatch",
            location.within(member.name),
            "member bytes do not match the CRC-32 in the directory (changed after writing)",
            ZIP_SCANNER,
            subject=member.name,
        )


class ZipScanner:
    name = ZIP_SCANNER
    formats = ("zip",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            archive = read_zip(reader, ctx.limits.max_members)
        except ZipFormatError as exc:
            ctx.report("archive-malformed", location, f"zip directory unreadable: {exc}", self.name)
            return
        _report_structure(archive, location, ctx)
        names = archive.names()
        _drop_overlapping(archive, location, ctx)
        if pt2.is_pt2_archive(names):
            ctx.covered_by[str(location)] = pt2.SCANNER
            pt2.scan_pt2_archive(archive, location, ctx)
        elif pytorch.is_torch_zip(names):
            ctx.covered_by[str(location)] = pytorch.SCANNER
            pytorch.scan_torch_zip(archive, location, ctx)
        elif keras.is_keras_zip(names):
            ctx.covered_by[str(location)] = keras.SCANNER
            keras.scan_keras_zip(archive, location, ctx)
        else:
            for member in archive.members:
                if member.is_dir:
                    continue
                member_reader = open_zip_member(archive, member, location, ctx)
                if member_reader is not None:
                    shards.scan_member(
                        member_reader, member.name, location.within(member.name), ctx, self.name
                    )
            shards.summarise([m.name for m in archive.members if not m.is_dir], location, ctx)
        report_problems(archive, location, ctx)


class TarScanner:
    name = TAR_SCANNER
    formats = ("tar",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        from ..sources.tararchive import TarFormatError, read_tar

        try:
            members, problems = read_tar(reader, ctx.limits.max_members)
        except TarFormatError as exc:
            ctx.report("archive-malformed", location, f"tar structure: {exc}", self.name)
            return
        for problem in problems:
            ctx.report("archive-malformed", location, f"tar structure: {problem}", self.name)
        names = [m.name for m in members]
        torch_legacy = pytorch.is_torch_tar(names)
        for member in members:
            where = location.within(member.name)
            if _unsafe_path(member.name):
                ctx.report(
                    "archive-path-traversal",
                    where,
                    f"member path {member.name!r} escapes the extraction folder",
                    self.name,
                    subject=member.name,
                )
            if member.type in ("symlink", "hardlink"):
                target = posixpath.normpath(
                    posixpath.join(posixpath.dirname(member.name), member.link_target)
                )
                if _unsafe_path(target) or member.link_target.startswith("/"):
                    ctx.report(
                        "archive-path-traversal",
                        where,
                        f"link points outside the archive: {member.link_target!r}",
                        self.name,
                        subject=member.name,
                    )
                continue
            if member.type != "file":
                continue
            body = SliceReader(reader, member.data_offset, member.size)
            if torch_legacy:
                pytorch.scan_torch_tar_member(member.name, body, where, ctx)
            else:
                shards.scan_member(body, member.name, where, ctx, self.name)
        if not torch_legacy:
            shards.summarise([m.name for m in members if m.type == "file"], location, ctx)
