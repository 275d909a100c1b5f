"""SARIF 2.1.0 for code-scanning dashboards (GitHub and others).

One run, one rule per rule id that fired, one result per finding. Model files
are binary, so a result points at the file (line 1) and carries the archive
member and byte offset as a logical location and in its properties; GitHub
needs a line region and the fields listed in its SARIF support notes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from ..findings import Finding, ScanReport, Severity
from ..rules import RuleSet
from .safetext import encodable_tree, printable

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://github.com/modeltrust/modeltrust"
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub's security-severity scale (0.1-10.0): critical >= 9, high >= 7, medium >= 4.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.5",
}


def _uri(path: str) -> str:
    """A URI reference: relative POSIX paths for relative local paths (`./`
    dropped, `.hidden/` kept), `file://` for absolute ones, hf:// as it is; spaces
    and other bytes a URI cannot hold are percent-encoded (undecodable names as
    their original bytes)."""
    if "://" in path:
        scheme, rest = path.split("://", 1)
        return f"{scheme}://{_quoted(rest, '/@:')}"
    posix = PurePosixPath(path.replace("\\", "/"))
    if posix.is_absolute():
        return "file://" + _quoted(posix.as_posix(), "/")
    return _quoted(posix.as_posix(), "/")


def _quoted(text: str, safe: str) -> str:
    try:  # a name os.fsdecode made from bytes that are not UTF-8: those bytes
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # any other lone surrogate: kept, as the JSON report keeps it
        data = text.encode("utf-8", "surrogatepass")
    return quote(data, safe=safe)


def _rule(rule_id: str, rules: RuleSet | None, severity: Severity) -> dict[str, Any]:
    rule = rules.rules.get(rule_id) if rules is not None else None
    title = rule.title if rule else rule_id
    why = rule.why if rule else title
    references = list(rule.references) if rule else []
    help_text = why + ("\nReferences: " + ", ".join(references) if references else "")
    tags = ["security"] + ([rule.cwe] if rule and rule.cwe else [])
    return {
        "id": rule_id,
        "name": "".join(part.capitalize() for part in rule_id.split("-")),
        "shortDescription": {"text": title},
        "fullDescription": {"text": why},
        "help": {"text": help_text},
        "defaultConfiguration": {"level": _LEVEL[rule.severity if rule else severity]},
        "properties": {
            "tags": tags,
            "security-severity": _SECURITY_SEVERITY[rule.severity if rule else severity],
        },
    }


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    loc = finding.location
    fingerprint = hashlib.sha256(
        "\0".join([finding.rule_id, loc.path, *loc.members, str(loc.offset), finding.subject]).encode(
            "utf-8", "surrogatepass"
        )
    ).hexdigest()
    location: dict[str, Any] = {
        "physicalLocation": {
            "artifactLocation": {"uri": _uri(loc.path)},
            "region": {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 1},
        }
    }
    if loc.members or loc.offset is not None:
        where = "!".join(loc.members) + (f" @{loc.offset}" if loc.offset is not None else "")
        location["logicalLocations"] = [{"fullyQualifiedName": where.strip(), "kind": "member"}]
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": _LEVEL[finding.severity],
        "message": {"text": printable(f"{finding.message} [{loc}]")},
        "locations": [location],
        "partialFingerprints": {"primaryLocationLineHash": fingerprint},
        "properties": {
            "severity": finding.severity.label,
            "subject": finding.subject,
            "members": list(loc.members),
            "offset": loc.offset,
            "scanner": finding.scanner,
        },
    }
    if finding.waiver:
        result["suppressions"] = [{"kind": "external", "justification": finding.waiver}]
    return result


def _invocation(report: ScanReport) -> dict[str, Any]:
    """Targets that could not be scanned fail the invocation, so that a dashboard
    never shows a run without results as a clean one."""
    invocation: dict[str, Any] = {"executionSuccessful": not report.errors}
    if report.errors:
        invocation["toolExecutionNotifications"] = [
            {"level": "error", "message": {"text": printable(e.message)}, "properties": {"target": e.target}}
            for e in report.errors
        ]
    return invocation


def report_to_sarif(report: ScanReport, rules: RuleSet | None = None) -> dict[str, Any]:
    # Code scanning shows every result as an alert; `info` findings (a README is
    # text data) stay in the JSON report.
    findings = [f for f in report.findings if f.severity >= Severity.LOW]
    rule_ids: list[str] = []
    for finding in findings:
        if finding.rule_id not in rule_ids:
            rule_ids.append(finding.rule_id)
    worst = {rid: max(f.severity for f in findings if f.rule_id == rid) for rid in rule_ids}
    index = {rid: i for i, rid in enumerate(rule_ids)}
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "modeltrust",
                        "version": report.tool_version,
                        "informationUri": INFORMATION_URI,
                        "rules": [_rule(rid, rules, worst[rid]) for rid in rule_ids],
                    }
                },
                "results": [_result(f, index[f.rule_id]) for f in findings],
                "invocations": [_invocation(report)],
                "properties": {"rulesVersion": report.rules_version, "targets": list(report.targets)},
            }
        ],
    }


def render_sarif(report: ScanReport, rules: RuleSet | None = None) -> str:
    return json.dumps(encodable_tree(report_to_sarif(report, rules)), indent=2) + "\n"
