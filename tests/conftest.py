"""Shared helpers: the fixture manifest, a scan shortcut and the rule set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeltrust.config import ScanConfig
from modeltrust.engine import scan
from modeltrust.findings import ScanReport
from modeltrust.rules import RuleSet, load_rules

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
MARKER = "modeltrust-pwned"


def manifest() -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads((FIXTURES / "manifest.json").read_text())
    return data


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return load_rules()


def scan_paths(*paths: str | Path, rules: RuleSet | None = None) -> ScanReport:
    return scan(ScanConfig(targets=tuple(str(p) for p in paths)), rules)


def scan_bytes(
    tmp_path: Path, data: bytes, name: str = "sample.bin", rules: RuleSet | None = None
) -> ScanReport:
    path = tmp_path / name
    path.write_bytes(data)
    return scan_paths(path, rules=rules)


def rule_ids(report: ScanReport) -> set[str]:
    return {f.rule_id for f in report.findings}
