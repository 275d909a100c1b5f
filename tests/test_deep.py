"""--deep: fickling's verdict beside ours, escalated only when they disagree."""

from __future__ import annotations

import shutil
from pathlib import Path

from modeltrust.config import ScanConfig
from modeltrust.engine import scan
from modeltrust.findings import Severity
from modeltrust.rules import load_rules

from .conftest import FIXTURES, ROOT


def test_second_opinion_is_info_when_we_agree() -> None:
    report = scan(ScanConfig(targets=(str(FIXTURES / "malicious" / "os_system_p2.pkl"),), deep=True))
    [opinion] = [f for f in report.findings if f.rule_id == "pickle-second-opinion"]
    assert opinion.severity is Severity.INFO and "MALICIOUS" in opinion.subject


def test_second_opinion_escalates_when_our_rules_miss_it(tmp_path: Path) -> None:
    # A rules folder whose denylist is empty and whose allowlist admits os.system:
    # modeltrust then finds nothing, fickling still objects, and the report says so.
    rules_dir = tmp_path / "rules"
    (rules_dir / "pickle").mkdir(parents=True)
    shutil.copy(ROOT / "rules" / "builtin.yaml", rules_dir / "builtin.yaml")
    (rules_dir / "pickle" / "allow.yaml").write_text(
        "kind: pickle-allow\nversion: 1\ngroups:\n  - reason: test\n    allow: ['posix:system']\n"
    )
    rules = load_rules(directory=rules_dir)
    report = scan(ScanConfig(targets=(str(FIXTURES / "malicious" / "os_system_p2.pkl"),), deep=True), rules)
    assert [(f.rule_id, f.severity) for f in report.findings] == [("pickle-second-opinion", Severity.MEDIUM)]


def test_deep_is_off_by_default() -> None:
    report = scan(ScanConfig(targets=(str(FIXTURES / "malicious" / "os_system_p2.pkl"),)))
    assert "pickle-second-opinion" not in {f.rule_id for f in report.findings}
