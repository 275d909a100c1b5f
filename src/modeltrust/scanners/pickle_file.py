"""Scanning a reader's bytes as pickle streams: plain pickles, joblib, dill,
cloudpickle, and the pickles inside torch and NumPy files."""

from __future__ import annotations

from dataclasses import replace

from ..findings import Finding, Location
from ..reader import ByteReader, BytesReader
from ..rules import RuleSet
from . import joblib
from .base import ScanContext
from .pickle import CHUNK, SCANNER, PickleContext, finish, scan_pickle_stream


def scan_pickle_reader(
    reader: ByteReader,
    location: Location,
    ctx: ScanContext,
    *,
    expect_persistent_ids: bool = False,
    max_pickles: int = 0,
    start: int = 0,
    chunk_size: int = CHUNK,
    torchscript: bool = False,
    importable_names_only: bool = False,
) -> PickleContext:
    """Walk the reader's pickle stream(s) from `start` and report findings.
    `chunk_size`: bytes read at a time (small for walks that usually stop early);
    `torchscript`: the stream is a TorchScript archive's (its `__torch__` classes
    are compiled from the archive's code); `importable_names_only`: the bytes
    are not a pickle by format, so a GLOBAL/INST module that is no dotted name
    of identifiers stops the walk as find_class stops the loader."""

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
        chunk_size=chunk_size,
        torchscript=torchscript,
        check_time=ctx.check_time,
        importable_names_only=importable_names_only,
    )
    pctx.on_build = joblib.make_build_hook(reader.size, pctx)
    first = len(ctx.findings)
    try:
        scan_pickle_stream(pctx, start, reader.size, max_pickles=max_pickles)
    finally:  # what was seen is reported even if a scanner bug ends the walk
        finish(pctx)
    if pctx.stats.skipped_regions:
        _plain_pickle_view(reader, location, ctx, start, max_pickles)
    if ctx.deep:
        from .deep import second_opinion

        own = max((f.severity for f in ctx.findings[first:]), default=None)
        second_opinion(reader, start, location, ctx, own)
    return pctx


# Structural complaints expected when raw array bytes are read as opcodes. (A
# budget the view runs out of is not: pickle.load reads on past it, so array
# bytes of a million pushes could hide a payload from the view.)
_VIEW_NOISE = {"pickle-malformed", "pickle-trailing-data", "pickle-unknown-import"}


def _plain_pickle_view(
    reader: ByteReader, location: Location, ctx: ScanContext, start: int, max_pickles: int
) -> None:
    """joblib.load skips array bytes that plain pickle.load would read as
    opcodes. A file can hide a payload in them for the second loader, so walk
    the stream once more as pickle.load would and keep what is dangerous."""
    seen = {(f.rule_id, f.location, f.subject) for f in ctx.findings}
    view = PickleContext(
        rules=ctx.rules,
        location=location,
        findings=[],
        reader=reader,
        max_bytes=ctx.limits.max_pickle_bytes,
        check_time=ctx.check_time,
    )
    scan_pickle_stream(view, start, reader.size, max_pickles=max_pickles)
    finish(view)
    stop = _missing_module_stop(view.findings, ctx.rules)
    for finding in view.findings:
        key = (finding.rule_id, finding.location, finding.subject)
        if finding.rule_id in _VIEW_NOISE or key in seen:
            continue
        if stop is not None and finding.location.offset is not None and finding.location.offset >= stop:
            continue
        ctx.findings.append(
            replace(finding, message=f"read with plain pickle.load (not joblib): {finding.message}")
        )


def _missing_module_stop(findings: list[Finding], rules: RuleSet) -> int | None:
    """Where the view's pickle.load stops at an import of a top-level module
    that cannot be found: array bytes read as opcodes spell such names (a
    ColumnTransformer's `Pipeline\ndtype`), and pickle.load raises
    ModuleNotFoundError there. Only in this second view of a joblib stream;
    the module is looked up, never imported. A standard-library module or a
    package the rules name never stops the view, installed here or not: the
    machine that loads the file may have it (a scanner venv without torch
    must still see a payload that calls into torch)."""
    stops = [
        f.location.offset
        for f in findings
        if f.rule_id in _UNKNOWN and f.location.offset is not None and not rules.module_may_exist(f.subject)
    ]
    return min(stops) if stops else None


_UNKNOWN = {"pickle-unknown-call", "pickle-unknown-import"}


class PickleScanner:
    name = "pickle"
    formats = ("pickle",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        scan_pickle_reader(reader, location, ctx)
