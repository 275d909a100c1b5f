"""The severity model: each class of finding has the severity the README's table
promises, the rules files respect it, and a real scan reports it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from modeltrust.errors import RulesError
from modeltrust.findings import Severity
from modeltrust.rules import CLASS_FLOOR, RuleSet, load_rules

from .conftest import ROOT, scan_bytes


def readme_table() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("<!-- severity-classes")
    table = text[start : text.index("\n\n", start)]
    rows = re.findall(r"^\| (\w[\w-]*) \| ([\w ]+?) \|", table, re.M)
    return {name: severity for name, severity in rows if name != "class"}


def test_readme_table_matches_the_class_floors() -> None:
    table = readme_table()
    assert set(table) == set(CLASS_FLOOR)
    for name, severity in table.items():
        assert severity.split()[0] == CLASS_FLOOR[name].label, name


def test_every_rule_has_a_class_at_its_floor(rules: RuleSet) -> None:
    for rule in rules.rules.values():
        assert rule.category in CLASS_FLOOR, rule.id
        assert rule.severity >= CLASS_FLOOR[rule.category], rule.id


def test_a_rules_file_cannot_lower_a_class(tmp_path: Path) -> None:
    extra = tmp_path / "weaker.yaml"
    extra.write_text(
        "kind: builtin\nversion: 1\nrules:\n  - id: code-trust-remote-code\n    severity: low\n"
        "    class: runs-code\n    title: t\n    why: w\n"
    )
    with pytest.raises(RulesError, match="at least high"):
        load_rules([extra])


# A class imported and held, never instantiated (NEWOBJ would be a call: runs-code).
UNKNOWN_CLASS_PICKLE = b"\x80\x04\x8c\x0cmylib.models\x8c\x03Net\x93\x85."
SAMPLES = {
    "dangerous": ("modeling_x.py", b"import os\nos.system('touch modeltrust-pwned')\n"),
    "runs-code": ("config.json", json.dumps({"auto_map": {"AutoModel": "modeling_x.Model"}}).encode()),
    "unverified": ("blob.bin", bytes(range(256)) * 4),
    "anomaly": ("model.pkl", UNKNOWN_CLASS_PICKLE),
    "fact": ("image.png", b"\x89PNG\r\n\x1a\n" + bytes(64)),
}


@pytest.mark.parametrize("category", sorted(CLASS_FLOOR))
def test_scan_reports_each_class_at_the_documented_severity(tmp_path: Path, category: str) -> None:
    name, data = SAMPLES[category]
    report = scan_bytes(tmp_path, data, name)
    top = max(report.findings, key=lambda f: f.severity)
    words = readme_table()[category].split()  # "high" or "low to high"
    lowest, highest = Severity.parse(words[0]), Severity.parse(words[-1])
    assert top.category == category and lowest <= top.severity <= highest
