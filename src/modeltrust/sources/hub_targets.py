"""Hub targets as scan inputs: resolve, fetch (or read remotely), verify, and
turn what the fetch found into findings; compare with the Hub's own scan."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

from ..findings import Finding, Location, Severity
from ..rules import RuleSet
from .hub import (
    HubSettings,
    HubSource,
    HubTarget,
    Problem,
    Snapshot,
    hub_scan_verdicts,
    remote_reader,
    repo_problems,
)
from .local import LocalFile


def gather_hub_target(
    target: HubTarget, settings: HubSettings, rules: RuleSet, findings: list[Finding]
) -> tuple[Snapshot, list[LocalFile]]:
    snapshot = remote_snapshot(target, settings) if settings.remote else fetch_snapshot(target, settings)
    prefix = target.uri(snapshot.commit)
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
        return snapshot, _remote_items(snapshot, settings, prefix)
    root = snapshot.local_dir
    assert root is not None
    files = [
        LocalFile(f"{prefix}/{entry.path}", root / entry.path, entry.size, snapshot.hashes.get(entry.path))
        for entry in snapshot.selected(settings)
        if (root / entry.path).is_file()
    ]
    return snapshot, files


def _remote_items(snapshot: Snapshot, settings: HubSettings, prefix: str) -> list[LocalFile]:
    return [
        LocalFile(
            f"{prefix}/{e.path}", Path(e.path), e.size, None, partial(remote_reader, settings, snapshot, e)
        )
        for e in snapshot.selected(settings)
    ]


def remote_snapshot(target: HubTarget, settings: HubSettings) -> Snapshot:
    """Resolve a hub target for scanning over HTTP ranges: nothing is downloaded
    or hashed, which the report says."""
    snapshot = HubSource(settings).resolve(target)
    snapshot.problems.extend(repo_problems(snapshot))
    message = "scanned through range requests: file hashes were not checked; `modeltrust fetch` verifies them"
    snapshot.problems.append(Problem("hub-remote-unverified", "", message))
    return snapshot


def fetch_snapshot(target: HubTarget, settings: HubSettings, local_dir: str | None = None) -> Snapshot:
    """Resolve, download and verify one hub target (also used by `fetch`)."""
    source = HubSource(settings)
    snapshot = source.resolve(target)
    source.download(snapshot, local_dir)
    source.verify(snapshot)
    snapshot.problems.extend(repo_problems(snapshot))
    snapshot.metadata.update(_config_summary(snapshot.local_dir))
    return snapshot


def _config_summary(root: Path | None) -> dict[str, Any]:
    """Architecture facts from config.json, for provenance (read as data only)."""
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


def compare_with_hub_scan(snapshot: Snapshot, findings: list[Finding], rules: RuleSet) -> None:
    """Put the Hub's own per-file verdicts next to ours; flag disagreements."""
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


def source_record(snapshot: Snapshot) -> dict[str, Any]:
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
