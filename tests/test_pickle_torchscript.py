"""TorchScript archives name their classes `__torch__.*`: torch.jit.load compiles
them from the archive's own code/ (which the torchscript-code rule scans), so
inside such an archive they are constructors by rule; anywhere else they are
names like any other."""

from __future__ import annotations

from pathlib import Path

from modeltrust.findings import Severity
from modeltrust.rules import RuleSet, load_rules

from .conftest import FIXTURES, scan_bytes, scan_paths


def rules_without_torchscript_entries() -> RuleSet:
    rules = load_rules()
    rules.allow = [e for e in rules.allow if not e.pattern.module.startswith("__torch__")]
    rules._exact = None
    rules._glob_index = None
    rules._cache.clear()
    return rules


def test_torchscript_archive_is_clean_without_allow_entries() -> None:
    rules = rules_without_torchscript_entries()
    assert rules.classify("__torch__.torch.nn.modules.linear", "Linear").verdict.value == "unknown"
    report = scan_paths(FIXTURES / "repos" / "benign" / "torchscript-scripted" / "model.pt", rules=rules)
    # The archive is a program (torchscript-program, high by design); its pickles are clean.
    loud = [f for f in report.findings if f.severity >= Severity.MEDIUM]
    assert [f.rule_id for f in loud] == ["torchscript-program"], report.findings


def test_torchscript_names_outside_a_torchscript_archive_are_calls(tmp_path: Path) -> None:
    data = b"\x80\x02c__torch__.evil\nThing\n)\x81}b."
    report = scan_bytes(tmp_path, data, "model.pkl", rules=rules_without_torchscript_entries())
    assert any(f.rule_id == "pickle-unknown-call" and f.severity >= Severity.HIGH for f in report.findings)
