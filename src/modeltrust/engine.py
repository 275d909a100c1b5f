"""Orchestration: expand targets, detect each file's format, run its scanner,
collect one report. No format knowledge lives here."""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from . import __version__, detect
from .config import ScanConfig
from .errors import SourceError
from .findings import Artifact, Finding, Location, ScanReport, Severity
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
    sha256: str | None = None
    """Known already (verified against the Hub while fetching)."""
    opener: Callable[[], Any] | None = None
    """Opens a non-local reader (HTTP ranges); None: open `path`."""


def expand_targets(targets: tuple[str, ...]) -> list[LocalFile]:
    """Files under each local target, sorted; directories recurse, symlinked
    files are followed (the Hugging Face cache links snapshots to blobs)."""
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
        here = Path(dirpath)
        # huggingface_hub keeps download metadata in <local_dir>/.cache/huggingface.
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in _SKIP_DIRS and not (d == ".cache" and (here / d / "huggingface").is_dir())
        )
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
    items, snapshots = _gather(config, findings, ruleset)
    for item in items:
        if progress is not None:
            progress(item.display, item.size)
        ctx = ScanContext(ruleset, config.limits, findings, nested, deep=config.deep, budget=budget)
        location = Location(item.display)
        try:
            reader = item.opener() if item.opener is not None else FileReader(item.path)
        except OSError as exc:
            ctx.report("scan-unverified", location, f"cannot read file: {exc.strerror}", "engine")
            artifacts.append(Artifact(item.display, item.size, detect.UNKNOWN, "none"))
            continue
        with reader:
            covered = scan_reader(reader, location, ctx, registry)
            fmt = ctx.formats.get(str(location), detect.UNKNOWN)
            digest = item.sha256 or (sha256_of(reader) if config.hash_files else None)
        artifacts.append(Artifact(item.display, reader.size, fmt, covered, digest))
    for snapshot in snapshots:
        _compare_with_hub_scan(snapshot, findings, ruleset)
    findings.sort(key=Finding.sort_key)
    return ScanReport(
        artifacts=tuple(artifacts),
        findings=tuple(_dedupe(findings)),
        rules_version=ruleset.digest[:16],
        duration_seconds=time.perf_counter() - started,
        tool_version=__version__,
        targets=config.targets,
        sources=tuple(_source_record(s) for s in snapshots),
    )


def _gather(config: ScanConfig, findings: list[Finding], rules: RuleSet) -> tuple[list[LocalFile], list[Any]]:
    """Local files for every target: hub targets are resolved, fetched and
    verified first (their problems become findings)."""
    from .sources.hub import parse_target

    settings = config.hub
    items: list[LocalFile] = []
    snapshots: list[Any] = []
    for target in config.targets:
        hub_target = parse_target(target, settings.assume_hub) if settings is not None else None
        if hub_target is None:
            items.extend(expand_targets((target,)))
            continue
        assert settings is not None
        snapshot = (
            remote_snapshot(hub_target, settings) if settings.remote else fetch_snapshot(hub_target, settings)
        )
        snapshots.append(snapshot)
        prefix = hub_target.uri(snapshot.commit)
        for problem in snapshot.problems:
            rule = rules.rule(problem.rule_id)
            where = f"{prefix}/{problem.path}" if problem.path else prefix
            findings.append(
                Finding(
                    rule.id,
                    rule.severity,
                    Location(where),
                    problem.message,
                    problem.subject,
                    "hub",
                    rule.references,
                )
            )
        if settings.remote:
            items.extend(_remote_items(snapshot, settings, prefix))
            continue
        root = snapshot.local_dir
        for entry in snapshot.selected(settings):
            path = root / entry.path
            if path.is_file():
                items.append(
                    LocalFile(f"{prefix}/{entry.path}", path, entry.size, snapshot.hashes.get(entry.path))
                )
    return items, snapshots


def _remote_items(snapshot: Any, settings: Any, prefix: str) -> list[LocalFile]:
    from .sources.hub import remote_reader

    return [
        LocalFile(
            f"{prefix}/{e.path}", Path(e.path), e.size, None, partial(remote_reader, settings, snapshot, e)
        )
        for e in snapshot.selected(settings)
    ]


def remote_snapshot(target: Any, settings: Any) -> Any:
    """Resolve a hub target for scanning over HTTP ranges: nothing is downloaded
    or hashed, which the report says."""
    from .sources.hub import HubSource, Problem, repo_problems

    snapshot = HubSource(settings).resolve(target)
    snapshot.problems.extend(repo_problems(snapshot))
    message = "scanned through range requests: file hashes were not checked; `modeltrust fetch` verifies them"
    snapshot.problems.append(Problem("hub-remote-unverified", "", message))
    return snapshot


def fetch_snapshot(target: Any, settings: Any, local_dir: str | None = None) -> Any:
    """Resolve, download and verify one hub target (also used by `fetch`)."""
    from .sources.hub import HubSource, repo_problems

    source = HubSource(settings)
    snapshot = source.resolve(target)
    source.download(snapshot, local_dir)
    source.verify(snapshot)
    snapshot.problems.extend(repo_problems(snapshot))
    snapshot.metadata.update(_config_summary(snapshot.local_dir))
    return snapshot


def _config_summary(root: Path | None) -> dict[str, Any]:
    """Architecture facts from config.json, for provenance (read as data only)."""
    import json

    path = root / "config.json" if root is not None else None
    if path is None or not path.is_file() or path.stat().st_size > 1 << 20:
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(config, dict):
        return {}
    return {"architectures": config.get("architectures"), "model_type": config.get("model_type")}


def _compare_with_hub_scan(snapshot: Any, findings: list[Finding], rules: RuleSet) -> None:
    """Put the Hub's own per-file verdicts next to ours; flag disagreements."""
    from .sources.hub import hub_scan_verdicts

    verdicts = hub_scan_verdicts(snapshot)
    if not verdicts:
        return
    prefix = snapshot.target.uri(snapshot.commit)
    ours: dict[str, Severity] = {}
    for finding in findings:
        path = finding.location.path
        ours[path] = max(ours.get(path, Severity.INFO), finding.severity)
    rule = rules.rule("hub-scan-disagreement")
    for path, verdict in sorted(verdicts.items()):
        worst = ours.get(f"{prefix}/{path}")
        if worst is None or worst < Severity.HIGH:
            message = (
                f"the Hub's scanner calls this file {verdict!r}; modeltrust found nothing high (review it)"
            )
            findings.append(
                Finding(rule.id, rule.severity, Location(f"{prefix}/{path}"), message, verdict, "hub")
            )


def _source_record(snapshot: Any) -> dict[str, Any]:
    target = snapshot.target
    return {
        "type": "huggingface",
        "repo_type": target.repo_type,
        "repo_id": target.repo_id,
        "requested_revision": target.revision,
        "commit": snapshot.commit,
        "uri": target.uri(snapshot.commit),
        "files": len(snapshot.files),
        **snapshot.metadata,
    }


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, Location, str, str]] = set()
    unique = []
    for finding in findings:
        key = (finding.rule_id, finding.location, finding.subject, finding.message)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique
