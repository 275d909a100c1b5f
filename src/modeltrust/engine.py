"""Orchestration: expand targets, detect each file's format, run its scanner,
collect one report. No format knowledge lives here."""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import __version__, detect
from .config import ScanConfig
from .errors import SourceError
from .findings import Artifact, Finding, Location, ScanReport
from .reader import ByteReader, FileReader, iter_chunks
from .rules import RuleSet, load_rules
from .scanners import Registry, ScanContext
from .scanners.base import Budget

ProgressCallback = Callable[[str, int], None]
"""Called before each file with (display path, size in bytes)."""

_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__"}


@dataclass(frozen=True, slots=True)
class LocalFile:
    display: str
    path: Path
    size: int


def expand_targets(targets: tuple[str, ...]) -> list[LocalFile]:
    """Files under each target, sorted; directories recurse, symlinked files are
    followed (the Hugging Face cache links snapshots to blobs)."""
    files: list[LocalFile] = []
    for target in targets:
        path = Path(target)
        if not path.exists():
            raise SourceError(f"{target}: no such file or directory")
        if path.is_file():
            files.append(LocalFile(target, path, path.stat().st_size))
            continue
        for child in _walk_dir(path):
            display = os.path.join(target, str(child.relative_to(path)))
            files.append(LocalFile(display, child, child.stat().st_size))
    return files


def _walk_dir(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            child = Path(dirpath) / name
            if child.is_file():
                yield child


def scan_reader(reader: ByteReader, location: Location, ctx: ScanContext, registry: Registry) -> str:
    """Detect and scan one reader; returns the name of the scanner that covered it.

    An exception inside a scanner becomes a finding for this file (fail closed).
    """
    try:
        fmt = detect.sniff(reader)
    except Exception as exc:  # noqa: BLE001 - a detection bug must not end the scan
        ctx.report("scan-error", location, f"format detection failed: {type(exc).__name__}: {exc}", "detect")
        return ctx.covered_by.setdefault(str(location), "none")
    ctx.formats[str(location)] = fmt
    scanner = registry.for_format(fmt)
    name = scanner.name if scanner is not None else registry.fallback.name
    try:
        if scanner is None:
            registry.fallback.scan(reader, location, ctx, fmt if fmt != detect.UNKNOWN else "")
        else:
            scanner.scan(reader, location, ctx)
    except RecursionError:
        ctx.report("scan-error", location, "structure nests too deeply to analyse", name)
    except MemoryError:
        ctx.report("scan-error", location, "ran out of memory while analysing", name)
    except Exception as exc:  # noqa: BLE001 - fail closed on any scanner bug
        ctx.report("scan-error", location, f"{type(exc).__name__}: {exc}", name)
    # A container scanner may have named a more specific one (zip -> pytorch).
    return ctx.covered_by.setdefault(str(location), name)


def sha256_of(reader: ByteReader) -> str:
    import hashlib

    digest = hashlib.sha256()
    for chunk in iter_chunks(reader, chunk=4 << 20):
        digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """The walk allocates millions of short-lived, acyclic objects; the cyclic
    collector's passes over them cost more than the walk itself. Reference
    counting still frees them at once, so memory is unaffected."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def scan(
    config: ScanConfig,
    rules: RuleSet | None = None,
    progress: ProgressCallback | None = None,
) -> ScanReport:
    """Scan every file the config names and return one report."""
    with _cyclic_gc_paused():
        return _scan(config, rules, progress)


def _scan(config: ScanConfig, rules: RuleSet | None, progress: ProgressCallback | None) -> ScanReport:
    started = time.perf_counter()
    ruleset = rules if rules is not None else load_rules(config.rules_files)
    registry = Registry()
    findings: list[Finding] = []
    artifacts: list[Artifact] = []

    def nested(reader: ByteReader, location: Location, ctx: ScanContext) -> str:
        return scan_reader(reader, location, ctx, registry)

    budget = Budget(config.limits.max_total_decompressed_bytes)
    for item in expand_targets(config.targets):
        if progress is not None:
            progress(item.display, item.size)
        ctx = ScanContext(ruleset, config.limits, findings, nested, deep=config.deep, budget=budget)
        location = Location(item.display)
        try:
            reader = FileReader(item.path)
        except OSError as exc:
            ctx.report("scan-unverified", location, f"cannot read file: {exc.strerror}", "engine")
            artifacts.append(Artifact(item.display, item.size, detect.UNKNOWN, "none"))
            continue
        with reader:
            covered = scan_reader(reader, location, ctx, registry)
            fmt = ctx.formats.get(str(location), detect.UNKNOWN)
            digest = sha256_of(reader) if config.hash_files else None
        artifacts.append(Artifact(item.display, reader.size, fmt, covered, digest))
    findings.sort(key=Finding.sort_key)
    return ScanReport(
        artifacts=tuple(artifacts),
        findings=tuple(_dedupe(findings)),
        rules_version=ruleset.digest[:16],
        duration_seconds=time.perf_counter() - started,
        tool_version=__version__,
        targets=config.targets,
    )


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, Location, str, str]] = set()
    unique = []
    for finding in findings:
        key = (finding.rule_id, finding.location, finding.subject, finding.message)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique
