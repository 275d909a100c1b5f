"""The JSON report: a stable, documented shape (see README, "JSON report")."""

from __future__ import annotations

import json
from typing import Any

from ..baseline import fingerprint
from ..clauses import decided_by
from ..findings import DataColumn, DatasetSummary, Finding, ScanReport, Severity
from ..rules import RuleSet
from .safetext import encodable_tree

SCHEMA = "https://modeltrust.dev/schemas/report/v1"


def finding_to_dict(finding: Finding, rules: RuleSet | None) -> dict[str, Any]:
    loc = finding.location
    rule = rules.rules.get(finding.rule_id) if rules is not None else None
    return {
        "rule_id": finding.rule_id,
        "severity": finding.severity.label,
        "class": finding.category or None,
        "title": rule.title if rule else "",
        "message": finding.message,
        "why": rule.why if rule else "",
        "subject": finding.subject,
        "path": loc.path,
        "members": list(loc.members),
        "offset": loc.offset,
        "location": str(loc),
        "scanner": finding.scanner,
        "cwe": rule.cwe if rule else "",
        "references": list(finding.references),
        "waiver": finding.waiver or None,
        "fingerprint": fingerprint(finding),
    }


def _signatures(report: ScanReport) -> dict[str, Any]:
    """Present only when the scan checked model signatures."""
    if not report.signatures:
        return {}
    keys = ("target", "signature", "outcome", "sha256", "signer", "method")
    return {"signatures": [{k: getattr(s, k) or None for k in keys} for s in report.signatures]}


def _column(column: DataColumn) -> dict[str, Any]:
    return {"name": column.name, "type": column.type, "extension": column.extension or None}


def dataset_to_dict(summary: DatasetSummary) -> dict[str, Any]:
    """A dataset's summary from its metadata (schemas, footers, card): never its rows."""
    return {
        "root": summary.root,
        "kind": summary.kind,
        "name": summary.name or None,
        "license": summary.license or None,
        "description": summary.description or None,
        "rows": summary.rows,
        "features": [_column(c) for c in summary.features],
        "splits": [
            {"name": s.name, "rows": s.rows, "bytes": s.bytes, "files": list(s.files)} for s in summary.splits
        ],
        "files": [
            {
                "path": f.path,
                "format": f.format,
                "rows": f.rows,
                "columns": [_column(c) for c in f.columns],
                "created_by": f.created_by or None,
            }
            for f in summary.files
        ],
        "card": dict(summary.card),
    }


def _datasets(report: ScanReport) -> dict[str, Any]:
    """Present only when a target holds data files (Parquet, Arrow, save_to_disk)."""
    if not report.datasets:
        return {}
    return {"datasets": [dataset_to_dict(d) for d in report.datasets]}


def report_to_dict(
    report: ScanReport, fail_on: Severity, rules: RuleSet | None = None, policy: str = "default"
) -> dict[str, Any]:
    counts = {s.label: 0 for s in sorted(Severity, reverse=True)}
    for finding in report.findings:
        counts[finding.severity.label] += 1
    failing = report.failing(fail_on)
    top = report.max_severity
    return {
        "$schema": SCHEMA,
        "tool": {"name": "modeltrust", "version": report.tool_version},
        "rules_version": report.rules_version,
        "targets": list(report.targets),
        "verdict": {
            "passed": not failing and not report.errors,
            "policy": policy,
            "fail_on": fail_on.label,
            "failing_findings": len(failing),
            "max_severity": top.label if top is not None else None,
            "decided_by": list(decided_by(report, fail_on)),
        },
        "summary": {"files": len(report.artifacts), "findings": counts},
        "sources": [dict(s) for s in report.sources],
        "artifacts": [
            {
                "path": a.path,
                "size": a.size,
                "format": a.format,
                "scanner": a.scanner,
                "sha256": a.sha256,
            }
            for a in report.artifacts
        ],
        "findings": [finding_to_dict(f, rules) for f in report.findings],
        "errors": [
            {"target": e.target, "message": e.message, "retryable": e.retryable} for e in report.errors
        ],
        **_signatures(report),
        **_datasets(report),
        "duration_seconds": round(report.duration_seconds, 3),
    }


def render_json(
    report: ScanReport, fail_on: Severity, rules: RuleSet | None = None, policy: str = "default"
) -> str:
    return json.dumps(encodable_tree(report_to_dict(report, fail_on, rules, policy)), indent=2) + "\n"
