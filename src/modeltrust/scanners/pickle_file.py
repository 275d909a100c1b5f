"""Scanning a reader's bytes as pickle streams: plain pickles, joblib, dill,
cloudpickle, and the pickles inside torch and NumPy files."""

from __future__ import annotations

from ..findings import Location
from ..reader import ByteReader, BytesReader
from . import joblib
from .base import ScanContext
from .pickle import SCANNER, PickleContext, finish, scan_pickle_stream


def scan_pickle_reader(
    reader: ByteReader,
    location: Location,
    ctx: ScanContext,
    *,
    expect_persistent_ids: bool = False,
    max_pickles: int = 0,
    start: int = 0,
) -> PickleContext:
    """Walk the reader's pickle stream(s) from `start` and report findings."""

    def scan_bytes(payload: bytes, where: Location) -> None:
        ctx.scan_member(BytesReader(payload), where, SCANNER)

    pctx = PickleContext(
        rules=ctx.rules,
        location=location,
        findings=ctx.findings,
        reader=reader,
        expect_persistent_ids=expect_persistent_ids,
        max_bytes=ctx.limits.max_pickle_bytes,
        scan_bytes=scan_bytes,
    )
    pctx.on_build = joblib.make_build_hook(reader.size, pctx)
    first = len(ctx.findings)
    scan_pickle_stream(pctx, start, reader.size, max_pickles=max_pickles)
    finish(pctx)
    if ctx.deep:
        from .deep import second_opinion

        own = max((f.severity for f in ctx.findings[first:]), default=None)
        second_opinion(reader, start, location, ctx, own)
    return pctx


class PickleScanner:
    name = "pickle"
    formats = ("pickle",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        scan_pickle_reader(reader, location, ctx)
