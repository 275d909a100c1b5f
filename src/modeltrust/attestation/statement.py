"""The two in-toto Statements (v1) modeltrust signs about a vetted model.

1. SLSA Provenance v1 (`predicateType` https://slsa.dev/provenance/v1) with
   `buildType` FETCH_AND_VET: the "build" is fetching a model revision and
   vetting it, its outputs (the subjects) are the files that were vetted.
   - externalParameters: `source` (the target as requested: Hub repo or local
     folder), `revision` (as requested, e.g. a branch), `policy` (name,
     thresholds and a digest of its contents).
   - internalParameters: the modeltrust options that do not change the inputs.
   - resolvedDependencies: the Hub repo at its commit (`gitCommit`), the rules
     in force (sha256 of their files), and the model signature that was
     verified (sha256 of the signature file, signer in the annotations).
   - runDetails: builder id BUILDER_ID with the modeltrust version; metadata
     invocationId (a urn:uuid), startedOn, finishedOn (UTC).
2. The verdict (`predicateType` VERDICT_TYPE): passed or failed, the policy and
   the clause that decided it, finding counts, every finding at or above low
   with its rule and location, the waivers that were applied, the signature
   outcome. Same subjects, same invocationId, so the two statements pair up.

Statements are plain JSON-ready dicts; nothing here signs or reads files.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..findings import ScanReport, Severity

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
FETCH_AND_VET = "https://modeltrust.dev/attestation/fetch-and-vet/v1"
"""buildType: a model revision fetched (Hub) or read (local) and vetted by modeltrust."""
VERDICT_TYPE = "https://modeltrust.dev/attestation/verdict/v1"
"""predicateType of the scan verdict statement."""
BUILDER_ID = "https://modeltrust.dev/builder/cli"
KNOWN_PREDICATES = (SLSA_PROVENANCE, VERDICT_TYPE)


@dataclass(frozen=True, slots=True)
class Subject:
    name: str
    """Path relative to the vetted folder (or repo), POSIX separators."""
    sha256: str


@dataclass(frozen=True, slots=True)
class SignatureRecord:
    """The model signature checked during the run."""

    name: str
    sha256: str
    outcome: str
    signer: str
    method: str


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    name: str
    fail_on: str
    fail_on_unverified: bool
    digest: str
    """sha256 of the policy's canonical JSON (thresholds, overrides, waivers, clauses)."""
    clauses: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VetRun:
    """Everything the statements say about one run."""

    target: str
    subjects: tuple[Subject, ...]
    report: ScanReport
    """After the policy was applied (waivers marked)."""
    policy: PolicyRecord
    passed: bool
    decided_by: tuple[str, ...]
    rules_digest: str
    invocation_id: str
    started: datetime.datetime
    finished: datetime.datetime
    tool_version: str
    source: Mapping[str, Any] | None = None
    """The Hub source record; None for a local folder."""
    signature: SignatureRecord | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


def canonical_json(value: Any) -> bytes:
    """The bytes that are signed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest_of(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def _time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _subjects(subjects: Sequence[Subject]) -> list[dict[str, Any]]:
    return [{"name": s.name, "digest": {"sha256": s.sha256}} for s in subjects]


def _statement(run: VetRun, predicate_type: str, predicate: dict[str, Any]) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": _subjects(run.subjects),
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def _hub_repo_uri(source: Mapping[str, Any]) -> str:
    kind = "datasets/" if source.get("repo_type") == "dataset" else ""
    return f"git+https://huggingface.co/{kind}{source['repo_id']}"


def _external_parameters(run: VetRun) -> dict[str, Any]:
    policy = {
        "name": run.policy.name,
        "failOn": run.policy.fail_on,
        "failOnUnverified": run.policy.fail_on_unverified,
        "digest": {"sha256": run.policy.digest},
    }
    if run.policy.clauses:
        policy["clauses"] = dict(run.policy.clauses)
    if run.source is not None:
        return {
            "source": {
                "type": "huggingface",
                "repo": run.source["repo_id"],
                "repoType": run.source["repo_type"],
            },
            "revision": run.source.get("requested_revision") or "main",
            "policy": policy,
        }
    return {"source": {"type": "local", "path": run.target}, "revision": None, "policy": policy}


def _resolved_dependencies(run: VetRun) -> list[dict[str, Any]]:
    deps: list[dict[str, Any]] = []
    if run.source is not None:
        deps.append(
            {
                "name": run.source["repo_id"],
                "uri": _hub_repo_uri(run.source),
                "digest": {"gitCommit": run.source["commit"]},
            }
        )
    deps.append({"name": "modeltrust-rules", "digest": {"sha256": run.rules_digest}})
    if run.signature is not None:
        deps.append(
            {
                "name": run.signature.name,
                "digest": {"sha256": run.signature.sha256},
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "annotations": {
                    "outcome": run.signature.outcome,
                    "signer": run.signature.signer,
                    "method": run.signature.method,
                },
            }
        )
    return deps


def provenance_statement(run: VetRun) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "buildType": FETCH_AND_VET,
        "externalParameters": _external_parameters(run),
        "resolvedDependencies": _resolved_dependencies(run),
    }
    if run.options:
        definition["internalParameters"] = dict(run.options)
    predicate = {
        "buildDefinition": definition,
        "runDetails": {
            "builder": {"id": BUILDER_ID, "version": {"modeltrust": run.tool_version}},
            "metadata": {
                "invocationId": run.invocation_id,
                "startedOn": _time(run.started),
                "finishedOn": _time(run.finished),
            },
        },
    }
    return _statement(run, SLSA_PROVENANCE, predicate)


def verdict_statement(run: VetRun) -> dict[str, Any]:
    report = run.report
    counts = {s.label: 0 for s in sorted(Severity, reverse=True)}
    for finding in report.findings:
        counts[finding.severity.label] += 1
    findings = [
        {
            "rule": f.rule_id,
            "severity": f.severity.label,
            "location": str(f.location),
            "subject": f.subject or None,
            "waived": bool(f.waiver),
        }
        for f in report.findings
        if f.severity >= Severity.LOW
    ]
    waivers = [
        {"rule": f.rule_id, "location": str(f.location), "reason": f.waiver}
        for f in report.findings
        if f.waiver
    ]
    signature = None
    if run.signature is not None:
        signature = {
            "outcome": run.signature.outcome,
            "signer": run.signature.signer,
            "method": run.signature.method,
        }
    predicate = {
        "scanner": {
            "id": BUILDER_ID,
            "version": run.tool_version,
            "rulesDigest": {"sha256": run.rules_digest},
        },
        "invocationId": run.invocation_id,
        "scannedOn": _time(run.finished),
        "verdict": {
            "passed": run.passed,
            "policy": run.policy.name,
            "policyDigest": {"sha256": run.policy.digest},
            "failOn": run.policy.fail_on,
            "decidedBy": list(run.decided_by),
        },
        "summary": {"files": len(report.artifacts), "findings": counts},
        "findings": findings,
        "waivers": waivers,
        "signature": signature,
    }
    return _statement(run, VERDICT_TYPE, predicate)
