"""The gate: which findings fail a scan. Policies are YAML (rules/policies/):
a fail threshold, severity overrides per rule, and exceptions that waive
matching findings, each with a reason and an expiry date.

A waived finding stays in the report, marked with its waiver, so the evidence
is never hidden; it only stops counting against the gate.
"""

from __future__ import annotations

import datetime
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from .errors import ConfigError
from .findings import Finding, ScanReport, Severity

_POLICY_KEYS = {"kind", "version", "name", "description", "fail_on", "overrides", "exceptions"}
_EXCEPTION_KEYS = {"rule", "path", "subject", "reason", "expires"}


class Waiver(NamedTuple):
    rule: str
    """Rule id glob."""
    reason: str
    expires: datetime.date
    path: str = "*"
    """Glob over the finding's location text (file, members)."""
    subject: str = "*"

    def matches(self, finding: Finding) -> bool:
        return (
            fnmatch.fnmatchcase(finding.rule_id, self.rule)
            and fnmatch.fnmatchcase(str(finding.location), self.path)
            and fnmatch.fnmatchcase(finding.subject, self.subject)
        )


@dataclass(frozen=True, slots=True)
class Policy:
    name: str = "default"
    fail_on: Severity = Severity.MEDIUM
    overrides: tuple[tuple[str, Severity], ...] = ()
    waivers: tuple[Waiver, ...] = ()

    def apply(self, report: ScanReport, today: datetime.date | None = None) -> ScanReport:
        """The report with severity overrides applied and waivers marked."""
        today = today or datetime.date.today()
        active = [w for w in self.waivers if w.expires >= today]
        overrides = dict(self.overrides)
        findings = []
        for finding in report.findings:
            if finding.rule_id in overrides:
                finding = replace(finding, severity=overrides[finding.rule_id])
            waiver = next((w for w in active if w.matches(finding)), None)
            if waiver is not None:
                finding = replace(finding, waiver=f"{waiver.reason} (until {waiver.expires.isoformat()})")
            findings.append(finding)
        findings.sort(key=Finding.sort_key)
        return replace(report, findings=tuple(findings))

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
    return Waiver(
        rule=str(raw["rule"]),
        reason=str(raw["reason"]),
        expires=_parse_date(raw["expires"], where),
        path=str(raw.get("path", "*")),
        subject=str(raw.get("subject", "*")),
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
    return Policy(str(data.get("name") or Path(where).stem), fail_on, overrides, waivers)


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
