"""The gate: which findings fail a scan. Policies are YAML (rules/policies/):
a fail threshold, severity overrides per rule, and exceptions that waive
matching findings, each with a reason and an expiry date.

A waived finding stays in the report, marked with its waiver, so the evidence
is never hidden; it only stops counting against the gate.
"""

from __future__ import annotations

import datetime
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from .clauses import CLAUSE_KEYS, Clauses, clause_findings, parse_clauses
from .errors import ConfigError
from .findings import Finding, ScanReport, Severity
from .rules import RuleSet

_POLICY_KEYS = {
    "kind", "version", "name", "description", "fail_on", "fail_on_unverified", "overrides", "exceptions",
} | CLAUSE_KEYS  # fmt: skip
_EXCEPTION_KEYS = {"rule", "path", "subject", "reason", "expires", "repo", "commit", "sha256"}
# hf://[datasets/]org/name@commit/file, and the Hugging Face cache layout
# .../models--org--name/snapshots/<commit>/file
_HUB_PATH = re.compile(r"^hf://(?:(?:datasets|spaces)/)?(?P<repo>[^/@]+/[^/@]+)@(?P<commit>[^/]+)/")
_CACHE_PATH = re.compile(
    r"(?:^|/)(?:models|datasets|spaces)--(?P<org>[^/]+?)--(?P<name>[^/]+)"
    r"/snapshots/(?P<commit>[0-9a-f]{7,64})/"
)


class Origin(NamedTuple):
    """Where a finding's file comes from, as far as its path says."""

    repo: str = ""
    commit: str = ""
    sha256: str = ""


def origin_of(path: str, digests: Mapping[str, str | None]) -> Origin:
    digest = digests.get(path) or ""
    hub = _HUB_PATH.match(path)
    if hub:
        return Origin(hub["repo"], hub["commit"], digest)
    cached = _CACHE_PATH.search(path.replace("\\", "/"))
    if cached:
        return Origin(f"{cached['org']}/{cached['name']}", cached["commit"], digest)
    return Origin("", "", digest)


_NO_ORIGIN = Origin()


class Waiver(NamedTuple):
    rule: str
    """Rule id glob."""
    reason: str
    expires: datetime.date
    path: str = "*"
    """Glob over the finding's location text (file, members)."""
    subject: str = "*"
    repo: str = ""
    """Glob over the Hub repository (org/name) the file comes from; empty: any."""
    commit: str = ""
    """Commit sha (or a prefix of at least 7 characters); empty: any."""
    sha256: str = ""
    """The file's digest; empty: any. Waivers pinned this way die with any change to the file."""

    def matches(self, finding: Finding, origin: Origin = _NO_ORIGIN) -> bool:
        return (
            fnmatch.fnmatchcase(finding.rule_id, self.rule)
            and fnmatch.fnmatchcase(str(finding.location), self.path)
            and fnmatch.fnmatchcase(finding.subject, self.subject)
            and (not self.repo or fnmatch.fnmatchcase(origin.repo, self.repo))
            and (not self.commit or (bool(origin.commit) and origin.commit.startswith(self.commit)))
            and (not self.sha256 or origin.sha256 == self.sha256)
        )


@dataclass(frozen=True, slots=True)
class Policy:
    name: str = "default"
    fail_on: Severity = Severity.MEDIUM
    overrides: tuple[tuple[str, Severity], ...] = ()
    waivers: tuple[Waiver, ...] = ()
    fail_on_unverified: bool = True
    """Files or parts no scanner could analyse fail the gate whatever fail_on says."""
    clauses: Clauses = field(default_factory=Clauses)
    """Provenance and packaging clauses (clauses.py); each one that fails adds a finding."""

    @property
    def needs_digests(self) -> bool:
        """Some waiver is pinned to a file digest, so every file must be hashed."""
        return any(w.sha256 for w in self.waivers)

    def apply(
        self, report: ScanReport, today: datetime.date | None = None, rules: RuleSet | None = None
    ) -> ScanReport:
        """The report with clause findings added, severity overrides applied and
        waivers marked."""
        today = today or datetime.date.today()
        if self.clauses.active:
            from .rules import load_rules

            found = clause_findings(self.clauses, report, rules if rules is not None else load_rules())
            report = replace(report, findings=report.findings + tuple(found))
        active = [w for w in self.waivers if w.expires >= today]
        overrides = dict(self.overrides)
        digests = {a.path: a.sha256 for a in report.artifacts}
        findings = []
        for finding in report.findings:
            if finding.rule_id in overrides:
                finding = replace(finding, severity=overrides[finding.rule_id])
            origin = origin_of(finding.location.path, digests)
            waiver = next((w for w in active if w.matches(finding, origin)), None)
            if waiver is not None:
                finding = replace(finding, waiver=f"{waiver.reason} (until {waiver.expires.isoformat()})")
            findings.append(finding)
        findings.sort(key=Finding.sort_key)
        return replace(report, findings=tuple(findings), fail_on_unverified=self.fail_on_unverified)

    def expired(self, today: datetime.date | None = None) -> list[Waiver]:
        today = today or datetime.date.today()
        return [w for w in self.waivers if w.expires < today]


def _parse_date(value: object, where: str) -> datetime.date:
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f"{where}: 'expires' must be a date like 2027-01-31")


def _parse_waiver(raw: object, where: str) -> Waiver:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: every exception must be a mapping")
    unknown = set(raw) - _EXCEPTION_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("rule", "reason", "expires"):
        if not raw.get(key):
            raise ConfigError(f"{where}: every exception needs {key!r} (waivers must say why and until when)")
    sha256 = str(raw.get("sha256") or "").lower()
    if sha256 and not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ConfigError(f"{where}: 'sha256' must be 64 hex digits")
    commit = str(raw.get("commit") or "").lower()
    if commit and not re.fullmatch(r"[0-9a-f]{7,64}", commit):
        raise ConfigError(f"{where}: 'commit' must be a commit sha (at least 7 hex digits)")
    return Waiver(
        rule=str(raw["rule"]),
        reason=str(raw["reason"]),
        expires=_parse_date(raw["expires"], where),
        path=str(raw.get("path", "*")),
        subject=str(raw.get("subject", "*")),
        repo=str(raw.get("repo") or ""),
        commit=commit,
        sha256=sha256,
    )


def policy_from_mapping(data: Mapping[str, Any], where: str) -> Policy:
    if data.get("kind") != "policy":
        raise ConfigError(f"{where}: not a policy file (expected 'kind: policy')")
    unknown = set(data) - _POLICY_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    try:
        fail_on = Severity.parse(str(data.get("fail_on", "medium")))
        raw_overrides = data.get("overrides") or {}
        if not isinstance(raw_overrides, dict):
            raise ConfigError(f"{where}: 'overrides' maps rule ids to severities")
        overrides = tuple((str(k), Severity.parse(str(v))) for k, v in sorted(raw_overrides.items()))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    raw_exceptions = data.get("exceptions") or []
    if not isinstance(raw_exceptions, list):
        raise ConfigError(f"{where}: 'exceptions' must be a list")
    waivers = tuple(_parse_waiver(raw, f"{where}: exception {i + 1}") for i, raw in enumerate(raw_exceptions))
    fail_on_unverified = data.get("fail_on_unverified", True)
    if not isinstance(fail_on_unverified, bool):
        raise ConfigError(f"{where}: 'fail_on_unverified' must be true or false")
    name = str(data.get("name") or Path(where).stem)
    return Policy(name, fail_on, overrides, waivers, fail_on_unverified, parse_clauses(data, where))


def builtin_policies(rules_dir: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted((rules_dir / "policies").glob("*.yaml"))}


def resolve_policy(name_or_path: str | None, rules_dir: Path, cache_dir: Path | None = None) -> Policy:
    """A policy file path, or the name of a built-in one (default, strict, ...)."""
    builtins = builtin_policies(rules_dir)
    if name_or_path is None:
        return load_policy(builtins["default"], cache_dir) if "default" in builtins else Policy()
    if name_or_path in builtins:
        return load_policy(builtins[name_or_path], cache_dir)
    if not Path(name_or_path).is_file():
        names = ", ".join(builtins)
        raise ConfigError(f"no policy {name_or_path!r}", hint=f"give a YAML file or one of: {names}")
    return load_policy(name_or_path, cache_dir)


def load_policy(path: str | Path, cache_dir: Path | None = None) -> Policy:
    from .yamlcache import YamlFileError, load_mapping

    where = str(path)
    try:
        data = load_mapping(Path(path), Path(path).read_bytes(), cache_dir)
    except OSError as exc:
        raise ConfigError(f"cannot read policy {where}: {exc.strerror}") from exc
    except YamlFileError as exc:
        raise ConfigError(f"policy {exc}") from None
    return policy_from_mapping(data, where)
