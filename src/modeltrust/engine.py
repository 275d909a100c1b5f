"""Orchestration: expand targets, detect each file's format, run its scanner,
collect one report. No format knowledge lives here."""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

from . import __version__, detect
from .config import ScanConfig
from .errors import ModelTrustError
from .findings import (
    Artifact,
    DataFile,
    DatasetSummary,
    Finding,
    Location,
    ScanReport,
    SignatureOutcome,
    TargetError,
)
from .reader import ByteReader, FileReader
from .rules import RuleSet, load_rules
from .scanners import Registry, ScanContext, Scanner
from .scanners.base import Budget, Deadline, LimitReached
from .selection import matches_selection
from .sources.local import LocalFile, expand_targets

if TYPE_CHECKING:
    from .digests import HashPool, PrefixHasher
    from .sources.hub import Snapshot


class Progress(NamedTuple):
    """Before each file: which one, and how far the scan is (files and bytes)."""

    path: str
    size: int
    files_done: int
    """Files finished before this one."""
    total_files: int
    bytes_done: int
    total_bytes: int


ProgressCallback = Callable[[Progress], None]
"""Called before each file (and once more at the end, with files_done == total_files)."""


def scan_reader(reader: ByteReader, location: Location, ctx: ScanContext, registry: Registry) -> str:
    """Detect and scan one reader with the scanner of every format it is
    scanned as (see detect.py); returns the names of the scanners that covered it.

    An exception inside a scanner becomes a finding for this file (fail closed).
    """
    key = str(location)
    try:
        detection = detect.detect(reader, name_of(location))
    except Exception as exc:  # noqa: BLE001 - a detection bug must not end the scan
        ctx.report("scan-error", location, f"format detection failed: {type(exc).__name__}: {exc}", "detect")
        return ctx.covered_by.setdefault(key, "none")
    ctx.detections[key] = detection
    covered: list[str] = []
    ran: list[Scanner] = []
    for fmt in detection.formats:
        scanner = registry.for_format(fmt)
        if scanner is None and fmt == detection.sniffed:
            scanner = registry.fallback
        if scanner is None or any(scanner is done for done in ran):
            continue  # a name-implied format no scanner covers yet, or covered already
        ran.append(scanner)
        ctx.formats[key] = fmt  # what the running scanner was chosen for
        ctx.covered_by.pop(key, None)
        _run_scanner(scanner, reader, location, ctx)
        # A container scanner may have named a more specific one (zip -> pytorch).
        name = ctx.covered_by.get(key, scanner.name)
        if name and name not in covered:
            covered.append(name)
    ctx.formats[key] = detection.sniffed
    ctx.covered_by[key] = "+".join(covered) or "none"
    return ctx.covered_by[key]


def _run_scanner(scanner: Scanner, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
    name = scanner.name
    try:
        scanner.scan(reader, location, ctx)
    except LimitReached as exc:
        if ctx.depth > 0:
            raise  # ends the whole file; reported once, at the top
        ctx.report("scan-limit", location, f"{exc}; the rest of the file was not analysed", name)
    except RecursionError:
        ctx.report("scan-error", location, "structure nests too deeply to analyse", name)
    except MemoryError:
        ctx.report("scan-error", location, "ran out of memory while analysing", name)
    except Exception as exc:  # noqa: BLE001 - fail closed on any scanner bug
        ctx.report("scan-error", location, f"{type(exc).__name__}: {exc}", name)


_STREAM_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".lzma", ".z", ".zlib", ".lz4", ".zst")


def name_of(location: Location) -> str:
    """The file name loaders would know these bytes by: the innermost archive
    member, or for a decompressed stream (`<gzip stream>`) the compressed
    file's name without its suffix; nested pickles have none."""
    names = (location.path, *location.members)
    last = names[-1]
    if not last.startswith("<"):
        return last
    if not last.endswith(" stream>"):
        return ""
    outer = names[-2]
    for suffix in _STREAM_SUFFIXES:
        if outer.lower().endswith(suffix):
            return outer[: -len(suffix)]
    return outer


def cap_findings(findings: list[Finding], start: int, per_rule: int) -> None:
    """Keep the first `per_rule` findings of each rule made since `start` (one
    file's) and fold the rest into one finding that counts them: a crafted
    file must not flood the report, its memory or its renderers."""
    counts: dict[str, int] = {}
    kept: list[Finding] = []
    dropped: dict[str, list[Finding]] = {}
    for finding in findings[start:]:
        seen = counts.get(finding.rule_id, 0)
        counts[finding.rule_id] = seen + 1
        if seen < per_rule:
            kept.append(finding)
        else:
            dropped.setdefault(finding.rule_id, []).append(finding)
    if not dropped:
        return
    for rule_id, extra in dropped.items():
        worst = max(extra, key=lambda f: f.severity)
        kept.append(
            replace(
                worst,
                message=f"{len(extra)} more {rule_id} findings in this file were not listed "
                f"(limit {per_rule} per rule); the worst: {worst.message}",
            )
        )
    findings[start:] = kept


def _hash_pool(config: ScanConfig) -> HashPool | None:
    if not config.hash_files:
        return None
    from .digests import HashPool

    return HashPool()


def _hashing_reader(reader: ByteReader) -> PrefixHasher:
    """Hash what the scanner reads from the start of the file, in the same read."""
    from .digests import PrefixHasher

    return PrefixHasher(reader)


def _finish_hash(prefix: PrefixHasher, item: LocalFile, key: int, hashes: HashPool) -> None:
    """The rest of the file is hashed on a worker thread while the scan moves on."""
    if item.opener is not None:  # not a local file: finish through the same reader
        hashes.add(key, prefix.finish())
    else:
        hashes.finish_file(key, item.path, prefix)


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

    limits = config.limits
    budget = Budget(limits.max_total_decompressed_bytes)  # for the whole scan
    data_files: list[DataFile] = []
    items, snapshots, errors = _gather(config, findings, ruleset)
    hashes = _hash_pool(config)
    done_bytes, total_bytes = 0, sum(item.size for item in items)
    with hashes or contextlib.nullcontext():
        for index, item in enumerate(items):
            if progress is not None:
                progress(Progress(item.display, item.size, index, len(items), done_bytes, total_bytes))
            done_bytes += item.size
            file_budget = Budget(min(limits.file_decompression_budget(item.size), budget.remaining))
            ctx = ScanContext(
                ruleset,
                limits,
                findings,
                nested,
                deep=config.deep,
                budget=file_budget,
                deadline=Deadline(limits.file_seconds(item.size)),
            )
            ctx.data_files = data_files
            first_finding = len(findings)
            location = Location(item.display)
            try:
                reader = item.opener() if item.opener is not None else FileReader(item.path)
            except OSError as exc:
                ctx.report("scan-unverified", location, f"cannot read file: {exc.strerror}", "engine")
                artifacts.append(Artifact(item.display, item.size, detect.UNKNOWN, "none"))
                continue
            with reader:
                prefix = _hashing_reader(reader) if hashes is not None and item.sha256 is None else None
                covered = scan_reader(reader if prefix is None else prefix, location, ctx, registry)
                if prefix is not None and hashes is not None:
                    _finish_hash(prefix, item, index, hashes)
                fmt = ctx.formats.get(str(location), detect.UNKNOWN)
            budget.spend(file_budget.spent)
            cap_findings(findings, first_finding, limits.max_findings_per_rule)
            local = str(item.path) if item.opener is None else None
            artifacts.append(Artifact(item.display, reader.size, fmt, covered, item.sha256, local))
    _scan_repositories(config, items, ScanContext(ruleset, config.limits, findings, nested, budget=budget))
    if progress is not None:
        progress(Progress("", 0, len(items), len(items), total_bytes, total_bytes))
    if hashes is not None:
        artifacts = [
            replace(a, sha256=hashes.results[i].sha256) if i in hashes.results else a
            for i, a in enumerate(artifacts)
        ]
        report_ctx = ScanContext(ruleset, config.limits, findings, nested)
        for key, reason in hashes.errors.items():  # removed or unreadable since its scan
            where = Location(artifacts[int(str(key))].path)
            report_ctx.report("scan-unverified", where, f"cannot hash file: {reason}", "engine")
    signatures: tuple[SignatureOutcome, ...] = ()
    if config.signature is not None:
        from .provenance.gate import check_targets  # model_signing loads only here

        signatures = check_targets(config, config.signature, snapshots, artifacts, ruleset, findings)
    if snapshots:
        from .sources.hub_targets import compare_with_hub_scan

        for snapshot in snapshots:
            compare_with_hub_scan(snapshot, findings, ruleset)
    findings.sort(key=Finding.sort_key)
    return ScanReport(
        artifacts=tuple(artifacts),
        findings=tuple(_dedupe([ruleset.with_class(f) for f in findings])),
        rules_version=ruleset.digest[:16],
        duration_seconds=time.perf_counter() - started,
        tool_version=__version__,
        targets=config.targets,
        sources=tuple(_records(snapshots)),
        errors=tuple(errors),
        signatures=signatures,
        datasets=_datasets(config.targets, data_files, snapshots),
    )


def _scan_repositories(config: ScanConfig, items: list[LocalFile], ctx: ScanContext) -> None:
    """What loaders import across a repository's files (trust_remote_code graphs)."""
    names = (".json", ".py", ".pyw", ".pyc", ".jinja", ".j2", ".onnx", ".index", ".pb")
    if not any(i.display.lower().endswith(names) for i in items):
        return
    from .scanners.repo import RepoFile, group_by_root, scan_repo

    by_display = {i.display: i for i in items}

    def opener(item: LocalFile) -> Callable[[], ByteReader]:
        return item.opener if item.opener is not None else lambda: FileReader(item.path)

    for entries in group_by_root(config.targets, by_display).values():
        files = {
            rel: RepoFile(rel, Location(display), opener(by_display[display])) for rel, display in entries
        }
        scan_repo(files, ctx)


def _datasets(
    targets: tuple[str, ...], data_files: list[DataFile], snapshots: list[Snapshot]
) -> tuple[DatasetSummary, ...]:
    """Datasets among the targets, from the data files' metadata and the cards."""
    if not data_files:
        return ()
    from .datasets_summary import hub_info, summarise

    return summarise(targets, data_files, hub_info(snapshots))


def _gather(
    config: ScanConfig, findings: list[Finding], rules: RuleSet
) -> tuple[list[LocalFile], list[Snapshot], list[TargetError]]:
    """Files for every target: local paths are walked; hub targets are resolved,
    fetched and verified first (their problems become findings). A target that
    cannot be read at all is recorded as an error and the others go on."""
    items: list[LocalFile] = []
    snapshots: list[Snapshot] = []
    errors: list[TargetError] = []
    for target in config.targets:
        try:
            snapshot, files = _gather_target(target, config, findings, rules)
        except ModelTrustError as exc:
            errors.append(TargetError(target, str(exc), exc.retryable))
            continue
        if snapshot is not None:
            snapshots.append(snapshot)
        items.extend(files)
    return items, snapshots, errors


def _gather_target(
    target: str, config: ScanConfig, findings: list[Finding], rules: RuleSet
) -> tuple[Snapshot | None, list[LocalFile]]:
    settings = config.hub
    hub_target = None
    if settings is not None:
        from .sources.hub import parse_target

        hub_target = parse_target(target, settings.assume_hub)
    if hub_target is None or settings is None:
        chosen = (f for f in expand_targets((target,)) if _chosen(f, target, config))
        return None, list(chosen)
    from .sources.hub_targets import gather_hub_target  # imports the hub client only when needed

    return gather_hub_target(hub_target, settings, rules, findings)


def _chosen(item: LocalFile, target: str, config: ScanConfig) -> bool:
    """--include/--exclude match a local file's path below its folder target,
    or the file's own name for a file target (as they match repo paths)."""
    if item.display == target:
        relative = os.path.basename(target)
    else:
        relative = os.path.relpath(item.display, target).replace(os.sep, "/")
    return matches_selection(relative, config.include, config.exclude)


def _records(snapshots: list[Snapshot]) -> list[dict[str, object]]:
    if not snapshots:
        return []
    from .sources.hub_targets import source_record

    return [source_record(s) for s in snapshots]


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, Location, str, str]] = set()
    unique = []
    for finding in findings:
        key = (finding.rule_id, finding.location, finding.subject, finding.message)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique
