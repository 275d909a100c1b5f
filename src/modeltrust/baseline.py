"""Baselines: accept the findings of an earlier report and fail only on new ones.

A baseline is a JSON report written earlier (`--write-baseline`). Findings are
matched by a fingerprint that survives a re-scan: rule, file path, archive
members and subject, not the byte offset (which moves when a file is
re-saved). Accepted findings stay in the report, marked as accepted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

from .errors import ConfigError
from .findings import Finding, ScanReport

_HINT = "write one with --write-baseline"


def fingerprint(finding: Finding) -> str:
    loc = finding.location
    parts = [finding.rule_id, loc.path, *loc.members, finding.subject]
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def load_baseline(path: str) -> frozenset[str]:
    """Fingerprints of the findings in a JSON report written by modeltrust."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"baseline {path}: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(
            f"baseline {path}: not a JSON report", hint="write one with --write-baseline"
        ) from None
    findings = data.get("findings") if isinstance(data, dict) else None
    if not isinstance(findings, list):
        raise ConfigError(f"baseline {path}: no findings list", hint=_HINT)
    return frozenset(_fingerprint_of(raw, path) for raw in findings)


def _fingerprint_of(raw: object, path: str) -> str:
    if not isinstance(raw, dict):
        raise ConfigError(f"baseline {path}: a finding is not an object")
    if isinstance(raw.get("fingerprint"), str):
        return str(raw["fingerprint"])
    parts = [str(raw.get("rule_id", "")), str(raw.get("path", "")), *map(str, raw.get("members") or [])]
    parts.append(str(raw.get("subject", "")))
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def apply_baseline(report: ScanReport, accepted: frozenset[str], source: str) -> ScanReport:
    """Mark the findings the baseline already holds; new findings are untouched."""
    marked = tuple(_accept(f, accepted, source) for f in report.findings)
    return replace(report, findings=marked)


def _accept(finding: Finding, accepted: frozenset[str], source: str) -> Finding:
    if finding.waiver or fingerprint(finding) not in accepted:
        return finding
    return replace(finding, waiver=f"accepted in baseline {source}")
