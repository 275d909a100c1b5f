"""7z archives (with py7zr, an optional extra): member names, sizes and
encryption from the headers, then each member extracted into a private temp
dir under the scan's decompression bounds and scanned like any file."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from ..findings import Location
from ..reader import ByteReader, FileReader, ReaderIO
from .base import ScanContext

SCANNER = "7z"


def _unsafe(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or name[1:2] == ":" or ".." in parts


class SevenZipScanner:
    name = SCANNER
    formats = ("7z",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            import py7zr
        except ImportError:
            ctx.report(
                "scan-unverified", location, "7z support is not installed (pip install py7zr)", SCANNER
            )
            return
        try:
            archive = py7zr.SevenZipFile(io.BufferedReader(ReaderIO(reader)), "r")
        except py7zr.PasswordRequired:
            ctx.report("scan-unverified", location, "7z archive is encrypted (headers included)", SCANNER)
            return
        except Exception as exc:  # noqa: BLE001 - py7zr raises many types for corrupt input
            ctx.report("archive-malformed", location, f"7z structure: {type(exc).__name__}: {exc}", SCANNER)
            return
        with archive:
            self._members(archive, location, ctx)

    def _members(self, archive: object, location: Location, ctx: ScanContext) -> None:
        import py7zr

        assert isinstance(archive, py7zr.SevenZipFile)  # typed loosely: py7zr is an optional import
        if archive.needs_password():
            ctx.report(
                "scan-unverified", location, "7z members are encrypted and cannot be verified", SCANNER
            )
            return
        infos = [i for i in archive.list() if not i.is_directory]
        if len(infos) > ctx.limits.max_members:
            ctx.report("archive-limit", location, f"{len(infos)} members is over the limit", SCANNER)
            return
        safe = []
        for info in infos:
            if _unsafe(info.filename):
                message = f"member path {info.filename!r} escapes the extraction folder"
                ctx.report("archive-path-traversal", location.within(info.filename), message, SCANNER)
            else:
                safe.append(info.filename)
        declared = sum(int(i.uncompressed or 0) for i in infos)
        limit = ctx.inflate_limit(max(1, sum(int(i.compressed or 0) for i in infos)))
        if declared > limit:
            ctx.report(
                "archive-limit", location, f"members declare {declared} bytes, over the limit", SCANNER
            )
            return
        with tempfile.TemporaryDirectory(prefix="modeltrust-7z-") as tmp:
            try:
                archive.extract(path=tmp, targets=safe)
            except Exception as exc:  # noqa: BLE001
                ctx.report("archive-malformed", location, f"7z members cannot be extracted: {exc}", SCANNER)
                return
            for name in safe:
                path = Path(tmp) / name
                if path.is_file() and not path.is_symlink():
                    if ctx.budget is not None:
                        ctx.budget.spend(path.stat().st_size)
                    with FileReader(path) as member:
                        ctx.scan_member(member, location.within(name), SCANNER)
