"""Shared helpers: the fixture manifest, a scan shortcut and the rule set."""

from __future__ import annotations

import json
import shutil
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


@pytest.fixture(scope="session")
def no_allow_rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    """The built-in rules without any allowlist: every import gets reported (what
    the differential tests compare with the names the real unpickler resolved)."""
    rules_dir = tmp_path_factory.mktemp("rules-no-allow")
    shutil.copytree(ROOT / "rules", rules_dir, dirs_exist_ok=True)
    for path in (rules_dir / "pickle").glob("allow*.yaml"):
        path.unlink()
    return load_rules(directory=rules_dir)


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
