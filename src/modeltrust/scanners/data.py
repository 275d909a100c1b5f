"""Files that need no deep scanner: recognised plain data (reported as info),
executables, and anything unrecognised (unverified: fail closed)."""

from __future__ import annotations

from .. import detect
from ..findings import Location
from ..reader import ByteReader
from .base import ScanContext


class PlainDataScanner:
    name = "data"
    formats = tuple(sorted(detect.PLAIN_DATA))

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        # These formats do not execute on load; say what the file was, so that
        # silence is never the only evidence.
        fmt = ctx.formats.get(str(location), "data")
        ctx.report("format-data", location, f"{fmt} data ({reader.size} bytes); nothing in it runs on load",
                   self.name, subject=fmt)  # fmt: skip


class UnverifiedScanner:
    """The fallback for formats no scanner covers yet: fail closed."""

    name = "unverified"
    formats = ()

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        fmt = ctx.formats.get(str(location), detect.UNKNOWN)
        kind = "unrecognised binary data" if fmt == detect.UNKNOWN else fmt
        ctx.report(
            "scan-unverified",
            location,
            f"no scanner covers this file ({kind}); it was not verified",
            self.name,
            subject=kind,
        )
