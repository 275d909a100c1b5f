"""Policy clauses about where a model comes from and how it is packaged.

Each clause that does not hold adds one finding (rule `policy-*`, subject =
the clause name, scanner "policy"), so the verdict names the clause that
decided it, and waivers and overrides apply to clause findings like to any
other. Clauses judge the report only: signatures are checked during the scan
(the outcome is in `ScanReport.signatures`), never here.

    require_signature:             # a valid model signature by one of these
      - {identity: ..., issuer: ...}  # keyless (sigstore), checked offline
      - {key: keys/publisher.pub}     # paths relative to the policy file
      - {certificate_chain: [ca.pem]}
    allowed_publishers: [google, sentence-transformers]   # Hub orgs
    blocked_publishers: [some-org]
    allowed_licenses: [apache-2.0, mit]                   # SPDX ids, any case
    require_pinned_revision: true     # Hub targets named by a commit sha
    forbid_pickle_with_safetensors: true
    forbid_custom_code: true          # trust_remote_code / auto_map
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import ConfigError
from .findings import Artifact, Finding, Location, ScanReport, Severity
from .provenance.methods import CertificateVerifier, KeyVerifier, SigstoreVerifier, VerifyWith, describe
from .rules import RuleSet

CLAUSE_KEYS = frozenset(
    {
        "require_signature",
        "allowed_publishers",
        "blocked_publishers",
        "allowed_licenses",
        "require_pinned_revision",
        "forbid_pickle_with_safetensors",
        "forbid_custom_code",
    }
)
_SHA = re.compile(r"^[0-9a-f]{40}$")
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz")
_PICKLE_FORMATS = {"pickle", "pytorch-legacy", "joblib-zlib"}
_PICKLE_SCANNERS = {"pickle", "pytorch", "joblib"}
_CUSTOM_CODE_RULES = {"code-trust-remote-code", "code-remote-code-elsewhere"}
_CACHE_FOLDER = re.compile(
    r"(?:^|/)models--(?P<org>[^/]+?)--(?P<name>[^/]+)/snapshots/(?P<commit>[0-9a-f]{40})"
)


@dataclass(frozen=True, slots=True)
class Clauses:
    require_signature: tuple[VerifyWith, ...] = ()
    allowed_publishers: tuple[str, ...] = ()
    blocked_publishers: tuple[str, ...] = ()
    allowed_licenses: tuple[str, ...] = ()
    require_pinned_revision: bool = False
    forbid_pickle_with_safetensors: bool = False
    forbid_custom_code: bool = False

    @property
    def active(self) -> bool:
        return self != Clauses()

    def record(self) -> dict[str, Any]:
        """The clauses as plain data (attestations record and digest them)."""
        return {
            "require_signature": [describe(m) for m in self.require_signature],
            "allowed_publishers": list(self.allowed_publishers),
            "blocked_publishers": list(self.blocked_publishers),
            "allowed_licenses": list(self.allowed_licenses),
            "require_pinned_revision": self.require_pinned_revision,
            "forbid_pickle_with_safetensors": self.forbid_pickle_with_safetensors,
            "forbid_custom_code": self.forbid_custom_code,
        }


def _names(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: {key!r} must be a list of names")
    return tuple(value)


def _flag(data: Mapping[str, Any], key: str, where: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {key!r} must be true or false")
    return value


def _signer(raw: object, where: str, base: Path) -> VerifyWith:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each require_signature entry is a mapping")
    keys = set(raw)
    if keys == {"identity", "issuer"}:
        return SigstoreVerifier(str(raw["identity"]), str(raw["issuer"]))
    if keys == {"key"}:
        return KeyVerifier(base / str(raw["key"]))
    if (
        keys == {"certificate_chain"}
        and isinstance(raw["certificate_chain"], list)
        and raw["certificate_chain"]
    ):
        return CertificateVerifier(tuple(base / str(p) for p in raw["certificate_chain"]))
    raise ConfigError(
        f"{where}: a require_signature entry is {{identity, issuer}}, {{key}} or {{certificate_chain: [...]}}"
    )


def parse_clauses(data: Mapping[str, Any], where: str) -> Clauses:
    base = Path(where).parent
    raw_signers = data.get("require_signature") or []
    if not isinstance(raw_signers, list):
        raise ConfigError(f"{where}: 'require_signature' must be a list of accepted signers")
    return Clauses(
        require_signature=tuple(
            _signer(r, f"{where}: require_signature {i + 1}", base) for i, r in enumerate(raw_signers)
        ),
        allowed_publishers=_names(data, "allowed_publishers", where),
        blocked_publishers=_names(data, "blocked_publishers", where),
        allowed_licenses=_names(data, "allowed_licenses", where),
        require_pinned_revision=_flag(data, "require_pinned_revision", where),
        forbid_pickle_with_safetensors=_flag(data, "forbid_pickle_with_safetensors", where),
        forbid_custom_code=_flag(data, "forbid_custom_code", where),
    )


@dataclass(frozen=True, slots=True)
class _Target:
    """One scanned target as the clauses see it."""

    display: str
    prefix: str
    """Artifacts of this target have paths starting with it."""
    publisher: str | None
    license: tuple[str, ...] | None
    revision: str | None
    hub: bool


def _targets(report: ScanReport) -> Iterator[_Target]:
    hub_ids = set()
    for source in report.sources:
        uri = str(source.get("uri", ""))
        repo = str(source.get("repo_id", ""))
        hub_ids.add(uri)
        licence = source.get("license")
        licences = tuple(licence) if isinstance(licence, list) else (str(licence),) if licence else ()
        requested = source.get("requested_revision")
        publisher = repo.split("/")[0] if "/" in repo else None
        revision = str(requested) if requested else None
        yield _Target(uri, uri + "/", publisher, licences, revision, True)
    for target in report.targets:
        if target in hub_ids or target.startswith(("hf://", "http://", "https://")):
            continue
        cached = _CACHE_FOLDER.search(os.path.abspath(target).replace(os.sep, "/"))
        publisher = cached["org"] if cached else None
        yield _Target(target.rstrip("/") or target, os.path.join(target, ""), publisher, None, None, False)


def _artifacts_of(target: _Target, report: ScanReport) -> list[Artifact]:
    return [a for a in report.artifacts if a.path.startswith(target.prefix) or a.path == target.display]


def _is_pickle(artifact: Artifact) -> bool:
    return (
        artifact.format in _PICKLE_FORMATS
        or artifact.scanner in _PICKLE_SCANNERS
        or PurePosixPath(artifact.path).suffix in _PICKLE_SUFFIXES
    )


class _Judge:
    def __init__(self, clauses: Clauses, report: ScanReport, rules: RuleSet) -> None:
        self.clauses = clauses
        self.report = report
        self.rules = rules
        self.out: list[Finding] = []

    def fail(self, rule_id: str, clause: str, where: str, message: str) -> None:
        rule = self.rules.rule(rule_id)
        text = f"policy clause {clause}: {message}"
        self.out.append(
            Finding(rule.id, rule.severity, Location(where), text, clause, "policy", rule.references)
        )

    def run(self) -> list[Finding]:
        for target in _targets(self.report):
            self.signature(target)
            self.publisher(target)
            self.licence(target)
            self.revision(target)
            self.pickles(target)
        self.custom_code()
        return self.out

    def signature(self, target: _Target) -> None:
        if not self.clauses.require_signature:
            return
        outcomes = [s for s in self.report.signatures if s.target == target.display]
        if any(s.outcome == "valid" for s in outcomes):
            return
        what = outcomes[0].outcome if outcomes else "not checked"
        accepted = "; ".join(describe(m) for m in self.clauses.require_signature)
        self.fail("policy-require-signature", "require_signature", target.display,
                  f"no valid signature by an accepted signer ({what}; accepted: {accepted})")  # fmt: skip

    def publisher(self, target: _Target) -> None:
        allowed, blocked = self.clauses.allowed_publishers, self.clauses.blocked_publishers
        if not (allowed or blocked):
            return
        org = target.publisher
        if org is None:
            clause = "allowed_publishers" if allowed else "blocked_publishers"
            self.fail(
                "policy-publisher", clause, target.display, "the publisher is unknown (not a Hub repository)"
            )
        elif any(fnmatch.fnmatchcase(org.lower(), b.lower()) for b in blocked):
            self.fail(
                "policy-publisher", "blocked_publishers", target.display, f"publisher {org!r} is blocked"
            )
        elif allowed and not any(fnmatch.fnmatchcase(org.lower(), a.lower()) for a in allowed):
            self.fail(
                "policy-publisher", "allowed_publishers", target.display, f"publisher {org!r} is not allowed"
            )

    def licence(self, target: _Target) -> None:
        allowed = self.clauses.allowed_licenses
        if not allowed:
            return
        if not target.license:
            known = "declares no licence" if target.hub else "has no known licence (not a Hub repository)"
            self.fail("policy-license", "allowed_licenses", target.display, f"the model {known}")
            return
        refused = [lic for lic in target.license if lic.lower() not in {a.lower() for a in allowed}]
        if refused:
            self.fail("policy-license", "allowed_licenses", target.display,
                      f"licence {', '.join(refused)} is not one of {', '.join(allowed)}")  # fmt: skip

    def revision(self, target: _Target) -> None:
        if self.clauses.require_pinned_revision and target.hub and not _SHA.match(target.revision or ""):
            self.fail("policy-unpinned-revision", "require_pinned_revision", target.display,
                      f"revision {target.revision or 'main'!r} is not a commit sha")  # fmt: skip

    def pickles(self, target: _Target) -> None:
        if not self.clauses.forbid_pickle_with_safetensors:
            return
        artifacts = _artifacts_of(target, self.report)
        if not any(a.format == "safetensors" or a.path.endswith(".safetensors") for a in artifacts):
            return
        for artifact in artifacts:
            if _is_pickle(artifact):
                self.fail("policy-pickle-with-safetensors", "forbid_pickle_with_safetensors", artifact.path,
                          "pickle-family weights ship beside safetensors")  # fmt: skip

    def custom_code(self) -> None:
        if not self.clauses.forbid_custom_code:
            return
        for finding in self.report.findings:
            if finding.rule_id in _CUSTOM_CODE_RULES:
                self.fail("policy-custom-code", "forbid_custom_code", str(finding.location),
                          f"the model makes loaders run its own code ({finding.message})")  # fmt: skip


def clause_findings(clauses: Clauses, report: ScanReport, rules: RuleSet) -> list[Finding]:
    return _Judge(clauses, report, rules).run() if clauses.active else []


def decided_by(report: ScanReport, threshold: Severity) -> tuple[str, ...]:
    """What made the verdict: the policy clauses and thresholds behind each
    failing finding (empty when the scan passed)."""
    reasons = []
    for finding in report.failing(threshold):
        if finding.scanner == "policy" and finding.subject:
            reasons.append(f"clause {finding.subject}")
        elif finding.unverified:
            reasons.append("fail_on_unverified")
        else:
            reasons.append(f"fail_on {threshold.label}")
    if report.errors:
        reasons.append("target errors")
    reasons.sort(key=lambda r: not r.startswith("clause "))  # stable: clauses first, in finding order
    return tuple(dict.fromkeys(reasons))
