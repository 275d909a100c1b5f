"""From a finished scan to a signed attestation file: the subjects are every
scanned file with the sha256 the scan recorded (Hub downloads: the verified
download digest), the statements are signed and written as JSON Lines."""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..clauses import decided_by
from ..errors import AttestationError
from ..findings import ScanReport, Severity
from ..policy import Policy
from .dsse import KeySigning, SigstoreSigning, sign_statements
from .statement import (
    PolicyRecord,
    SignatureRecord,
    Subject,
    VetRun,
    canonical_json,
    digest_of,
    provenance_statement,
    verdict_statement,
)


def policy_record(policy: Policy, threshold: Severity) -> PolicyRecord:
    clauses = policy.clauses.record()
    content: dict[str, Any] = {
        "name": policy.name,
        "fail_on": threshold.label,
        "fail_on_unverified": policy.fail_on_unverified,
        "overrides": [[rule, severity.label] for rule, severity in policy.overrides],
        "exceptions": [
            {k: str(v) for k, v in waiver._asdict().items() if v not in ("", "*")}
            for waiver in policy.waivers
        ],
        "clauses": clauses,
    }
    active = {k: v for k, v in clauses.items() if v}
    return PolicyRecord(policy.name, threshold.label, policy.fail_on_unverified, digest_of(content), active)


def _prefix(report: ScanReport) -> str:
    if len(report.targets) != 1:
        raise AttestationError("an attestation covers one target", hint="attest each model separately")
    if report.sources:
        return str(report.sources[0]["uri"])
    return report.targets[0].rstrip("/") or report.targets[0]


def subjects(report: ScanReport) -> tuple[Subject, ...]:
    """Every scanned file, named relative to the target, with its sha256."""
    prefix = _prefix(report)
    result = []
    for artifact in report.artifacts:
        if not artifact.sha256:
            raise AttestationError(
                f"{artifact.path}: no digest was recorded", hint="the scan must hash every file"
            )
        if artifact.path.startswith(prefix + "/") or artifact.path.startswith(os.path.join(prefix, "")):
            name = artifact.path[len(prefix) + 1 :].replace(os.sep, "/")
        else:  # a single-file target
            name = Path(artifact.path).name
        result.append(Subject(name, artifact.sha256))
    if not result:
        raise AttestationError("nothing was scanned, so there is nothing to attest")
    return tuple(sorted(result, key=lambda s: s.name))


def _signature(report: ScanReport) -> SignatureRecord | None:
    if not report.signatures:
        return None
    s = report.signatures[0]
    return SignatureRecord(Path(s.signature).name, s.sha256, s.outcome, s.signer, s.method)


def vet_run(
    report: ScanReport,
    policy: Policy,
    threshold: Severity,
    rules_digest: str,
    started: datetime.datetime,
    finished: datetime.datetime,
    options: Mapping[str, Any] | None = None,
    invocation_id: str | None = None,
) -> VetRun:
    """What the statements say about a scan (report: after the policy was applied)."""
    failing = report.failing(threshold)
    return VetRun(
        target=report.targets[0] if report.targets else "",
        subjects=subjects(report),
        report=report,
        policy=policy_record(policy, threshold),
        passed=not failing and not report.errors,
        decided_by=decided_by(report, threshold),
        rules_digest=rules_digest,
        invocation_id=invocation_id or uuid.uuid4().urn,
        started=started,
        finished=finished,
        tool_version=report.tool_version,
        source=report.sources[0] if report.sources else None,
        signature=_signature(report),
        options=dict(options or {}),
    )


def write_attestation(path: Path, run: VetRun, how: KeySigning | SigstoreSigning) -> list[dict[str, Any]]:
    """Sign both statements and write them, one per line; returns the documents."""
    documents = sign_statements([provenance_statement(run), verdict_statement(run)], how)
    data = b"".join(canonical_json(d) + b"\n" for d in documents)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as exc:
        raise AttestationError(f"cannot write {path}: {exc.strerror}") from None
    return documents
