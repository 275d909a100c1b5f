"""One unit of fleet work: (target, resolved commit, rules digest, policy digest)
-> one result line. Runs in a worker process (local pool or Ray task), so the job
and the result are plain picklable values.

The engine and scanners are used as they are. What the fleet adds around them:
a vetted commit is skipped; Hub LFS files already judged under the same rules
(their sha256 is known before any byte is fetched) are excluded from the scan and
their stored findings re-attached; the files that were scanned are stored.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..config import ScanConfig
from ..errors import ModelTrustError
from ..findings import Artifact, Finding, Location, ScanReport, Severity
from .store import ResultStore, StoreKey

if TYPE_CHECKING:
    from ..policy import Policy
    from ..rules import RuleSet
    from ..sources.hub import Revision


@dataclass(frozen=True, slots=True)
class FleetJob:
    """One target to vet. `revision` is what the dispatcher learnt from the Hub
    when it looked the target up in the store: the worker scans that commit (the
    one the store was asked about) and makes no second call to resolve it."""

    target: str
    revision: Revision | None = None


UNFINISHED = "scan-error"
"""The rule of a scan that did not finish a file (a scanner bug, or a range request
the Hub did not answer): the result is reported but never stored, so that the next
run scans the file again instead of serving a passing failure from the store."""


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """What every job shares; plain values so that it crosses process boundaries."""

    store: str
    rules_files: tuple[str, ...]
    rules_digest: str
    policy: str | None
    policy_digest: str
    endpoint: str | None
    token: str | None
    cache_dir: str | None
    remote: bool
    timeout: float = 20.0
    bom_dir: str | None = None
    """Write a CycloneDX ML-BOM per vetted target here."""
    attest_key: str | None = None
    """Sign an attestation per vetted target with this private key (download mode)."""
    attest_dir: str | None = None
    attempts: int = 4
    """Tries per target for answers that may change (timeouts, 5xx, 429)."""
    backoff: float = 0.5

    @property
    def key(self) -> StoreKey:
        return StoreKey(self.rules_digest, self.policy_digest, __version__)


def vet_target(job: FleetJob, settings: FleetSettings) -> dict[str, Any]:
    """Vet one target; never raises: failures are a line with a reason."""
    started = time.perf_counter()
    target = job.target
    try:
        line = _vet_with_retries(job, settings)
    except ModelTrustError as exc:
        line = {"target": target, "status": "error", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - one target's crash must not end the fleet
        line = {"target": target, "status": "error", "error": f"internal error: {type(exc).__name__}: {exc}"}
    line.setdefault("duration_seconds", round(time.perf_counter() - started, 3))
    return line


def _vet_with_retries(job: FleetJob, settings: FleetSettings) -> dict[str, Any]:
    for attempt in range(settings.attempts):
        try:
            return _vet(job, settings)
        except ModelTrustError as exc:
            if not exc.retryable:
                raise
            if attempt == settings.attempts - 1:
                raise
            time.sleep(settings.backoff * 2**attempt)
    raise AssertionError("unreachable")


def hub_settings(settings: FleetSettings) -> Any:
    from ..sources.hub import HubSettings

    return HubSettings(
        endpoint=settings.endpoint,
        token=settings.token,
        cache_dir=settings.cache_dir,
        assume_hub=True,
        remote=settings.remote,
        timeout=settings.timeout,
    )


def _vet(job: FleetJob, settings: FleetSettings) -> dict[str, Any]:
    from ..sources.hub import HubSource, parse_target

    target = job.target
    store = ResultStore(settings.store, settings.key)
    hub_target = parse_target(target, assume_hub=not Path(target).exists())
    if hub_target is None:
        return _vet_local(target, settings)
    revision = job.revision
    if revision is None and hub_target.pinned:  # a commit sha: a vetted one needs not even a Hub call
        done = store.target_line(hub_target.uri(hub_target.revision))
        if done is not None:
            return skipped_line(done)
    hub = hub_settings(settings)
    source = HubSource(hub)
    if revision is None:
        revision = source.revision(hub_target)  # one call names the commit
    pinned = hub_target.uri(revision.commit)
    done = store.target_line(pinned)
    if done is not None:
        return skipped_line(done)
    snapshot = source.resolve(hub_target, revision)
    lfs = {f.path: f.sha256 for f in snapshot.files if f.sha256}
    known = store.file_results(sorted(set(lfs.values())))
    reused = {path: known[sha] for path, sha in lfs.items() if sha in known}
    hub = replace(hub, exclude=tuple(glob.escape(p) for p in sorted(reused)))
    report = _scan(pinned, settings, hub)
    report = _merge(report, pinned, reused, lfs, snapshot, _rules(settings.rules_files))
    store.put_files(_fresh_results(report, pinned, lfs, reused))
    line = _line(target, report, settings, snapshot.commit, len(reused), _bytes(snapshot, reused))
    _evidence(report, settings, pinned, line)
    if not any(f.rule_id == UNFINISHED for f in report.findings):
        store.put_target(pinned, line)
    return line


def _evidence(report: ScanReport, settings: FleetSettings, pinned: str, line: dict[str, Any]) -> None:
    """The BOM and the signed attestation of one vetted target, named after it."""
    if settings.bom_dir is None and settings.attest_key is None:
        return
    import datetime

    name = pinned.removeprefix("hf://").replace("/", "__")[:200]
    policy, rules = _policy(settings.policy), _rules(settings.rules_files)
    judged = policy.apply(report, rules=rules)
    if settings.bom_dir is not None:
        from ..cli.bom_cmd import write_bom

        path = Path(settings.bom_dir) / f"{name}.cdx.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bom(judged, rules, policy, policy.fail_on, str(path))
        line["bom"] = str(path)
    if settings.attest_key is not None and settings.attest_dir is not None:
        from ..attestation.build import vet_run, write_attestation
        from ..attestation.dsse import KeySigning

        now = datetime.datetime.now(datetime.timezone.utc)
        started = now - datetime.timedelta(seconds=report.duration_seconds)
        run = vet_run(judged, policy, policy.fail_on, rules.digest, started, now, None)
        path = Path(settings.attest_dir) / f"{name}.intoto.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_attestation(path, run, KeySigning(Path(settings.attest_key)))
        line["attestation"] = str(path)


def skipped_line(done: dict[str, Any]) -> dict[str, Any]:
    return {**done, "status": "skipped", "reason": "already vetted at this commit with these rules"}


def _vet_local(target: str, settings: FleetSettings) -> dict[str, Any]:
    report = _scan(target, settings, None)
    return _line(target, report, settings, None, 0, sum(a.size for a in report.artifacts))


@functools.cache
def _rules(files: tuple[str, ...]) -> RuleSet:
    """Loaded once per worker process."""
    from ..rules import load_rules

    return load_rules(files)


@functools.cache
def _policy(name: str | None) -> Policy:
    from ..policy import resolve_policy
    from ..rules import default_rules_dir

    return resolve_policy(name, default_rules_dir())


def _scan(target: str, settings: FleetSettings, hub: Any) -> ScanReport:
    from ..engine import scan

    config = ScanConfig(targets=(target,), rules_files=settings.rules_files, hub=hub)
    report = scan(config, _rules(settings.rules_files))
    if report.errors:
        from ..sources.hub import HubUnavailableError

        error = report.errors[0]
        raise HubUnavailableError(error.message) if error.retryable else ModelTrustError(error.message)
    return report


def _merge(
    report: ScanReport,
    pinned: str,
    reused: dict[str, dict[str, Any]],
    lfs: dict[str, str],
    snapshot: Any,
    rules: RuleSet,
) -> ScanReport:
    """Put stored per-file results back as if the files had been scanned now."""
    if not reused:
        return report
    findings = [f for f in report.findings if f.rule_id != "hub-scan-disagreement"]
    artifacts = list(report.artifacts)
    for path, stored in sorted(reused.items()):
        where = f"{pinned}/{path}"
        artifacts.append(Artifact(where, stored["size"], stored["format"], stored["scanner"], lfs[path]))
        findings.extend(_finding_from(raw, where) for raw in stored["findings"])
    from ..sources.hub_targets import compare_with_hub_scan

    compare_with_hub_scan(snapshot, findings, rules)
    findings.sort(key=Finding.sort_key)
    artifacts.sort(key=lambda a: a.path)
    return replace(report, findings=tuple(findings), artifacts=tuple(artifacts))


def _fresh_results(
    report: ScanReport, pinned: str, lfs: dict[str, str], reused: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per-file results of the LFS files scanned now, keyed by their sha256."""
    prefix = pinned + "/"
    by_file: dict[str, list[Finding]] = {}
    for finding in report.findings:
        by_file.setdefault(finding.location.path, []).append(finding)
    results: dict[str, dict[str, Any]] = {}
    for artifact in report.artifacts:
        path = artifact.path[len(prefix) :] if artifact.path.startswith(prefix) else None
        if path is None or path not in lfs or path in reused:
            continue
        if any(f.rule_id == UNFINISHED for f in by_file.get(artifact.path, [])):
            continue
        results[lfs[path]] = {
            "size": artifact.size,
            "format": artifact.format,
            "scanner": artifact.scanner,
            "findings": [_finding_to(f) for f in by_file.get(artifact.path, [])],
        }
    return results


def _finding_to(finding: Finding) -> dict[str, Any]:
    loc = finding.location
    return {
        "rule_id": finding.rule_id,
        "severity": int(finding.severity),
        "members": list(loc.members),
        "offset": loc.offset,
        "message": finding.message,
        "subject": finding.subject,
        "scanner": finding.scanner,
        "references": list(finding.references),
        "category": finding.category,
    }


def _finding_from(raw: dict[str, Any], path: str) -> Finding:
    return Finding(
        raw["rule_id"],
        Severity(raw["severity"]),
        Location(path, tuple(raw["members"]), raw["offset"]),
        raw["message"],
        raw["subject"],
        raw["scanner"],
        tuple(raw["references"]),
        category=raw.get("category", ""),
    )


def _bytes(snapshot: Any, reused: dict[str, dict[str, Any]]) -> int:
    """Bytes of the files this target had to read (the rest came from the store)."""
    return sum(f.size for f in snapshot.files if f.path not in reused)


def _line(
    target: str,
    report: ScanReport,
    settings: FleetSettings,
    commit: str | None,
    from_store: int,
    read_bytes: int,
) -> dict[str, Any]:
    policy = _policy(settings.policy)
    judged = policy.apply(report, rules=_rules(settings.rules_files))
    failing = judged.failing(policy.fail_on)
    counts = {s.label: 0 for s in sorted(Severity, reverse=True)}
    for finding in judged.findings:
        counts[finding.severity.label] += 1
    worst = judged.findings[0] if judged.findings else None
    return {
        "target": target,
        "status": "vetted",
        "commit": commit,
        "verdict": "fail" if failing else "pass",
        "failing_findings": len(failing),
        "findings": counts,
        "worst": None
        if worst is None
        else {"rule_id": worst.rule_id, "severity": worst.severity.label, "location": str(worst.location)},
        "files": len(judged.artifacts),
        "files_from_store": from_store,
        "bytes_read": read_bytes,
        "remote": settings.remote,
        "duration_seconds": round(report.duration_seconds, 3),
    }


def policy_digest(policy: str | None) -> str:
    """The digest of the policy file in force (a built-in one by name)."""
    from ..policy import builtin_policies
    from ..rules import default_rules_dir

    builtins = builtin_policies(default_rules_dir())
    path = builtins.get(policy or "default") or (Path(policy) if policy else None)
    data = path.read_bytes() if path is not None and Path(path).is_file() else (policy or "").encode()
    return hashlib.sha256(data).hexdigest()[:16]
