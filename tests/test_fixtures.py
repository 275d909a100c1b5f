"""Every malicious fixture is flagged high or above; every benign one is clean."""

from __future__ import annotations

import pytest

from modeltrust.findings import Severity
from modeltrust.rules import RuleSet

from .conftest import FIXTURES, manifest, scan_paths

MALICIOUS = sorted(k for k, v in manifest().items() if v["malicious"])
BENIGN = sorted(k for k, v in manifest().items() if not v["malicious"])


def test_manifest_covers_every_fixture_file() -> None:
    # benign/harvest/ has its own manifest (fixtures/harvest.py; tests/test_differential_harvest.py).
    on_disk = {
        p.relative_to(FIXTURES).as_posix()
        for folder in ("malicious", "benign")
        for p in (FIXTURES / folder).rglob("*")
        if p.is_file() and not p.relative_to(FIXTURES).as_posix().startswith("benign/harvest/")
    }
    assert on_disk == set(manifest())


@pytest.mark.parametrize("name", MALICIOUS)
def test_malicious_fixture_is_flagged_high(name: str, rules: RuleSet) -> None:
    report = scan_paths(FIXTURES / name, rules=rules)
    assert report.max_severity is not None and report.max_severity >= Severity.HIGH, (
        f"{name} ({manifest()[name]['technique']}) was not flagged: "
        + "; ".join(f"{f.severity.label} {f.rule_id} {f.message}" for f in report.findings)
    )
    worst = [f for f in report.findings if f.severity >= Severity.HIGH]
    assert all(f.location.path.endswith(name.split("/")[-1]) and f.message for f in worst)


@pytest.mark.parametrize("name", BENIGN)
def test_benign_fixture_is_clean(name: str, rules: RuleSet) -> None:
    report = scan_paths(FIXTURES / name, rules=rules)
    loud = [f for f in report.findings if f.severity >= Severity.MEDIUM]
    assert not loud, "; ".join(f"{f.severity.label} {f.rule_id} {f.message} at {f.location}" for f in loud)
    assert report.artifacts[0].scanner != "unverified"
