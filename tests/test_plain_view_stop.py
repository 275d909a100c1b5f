"""The plain-pickle view of a joblib stream stops where pickle.load raises
ModuleNotFoundError, but only at names no loading machine can have: whether
the scanning machine has a package must not decide the verdict."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from modeltrust.findings import Finding, Location, Severity
from modeltrust.rules import RuleSet
from modeltrust.scanners import pickle_file

from .conftest import scan_bytes


def _unknown_call(subject: str, offset: int) -> Finding:
    return Finding("pickle-unknown-call", Severity.HIGH, Location("f.joblib", offset=offset), "m", subject)


def test_a_name_no_module_has_stops_the_view(rules: RuleSet) -> None:
    findings = [_unknown_call("Pipeline.dtype", 40), _unknown_call("zzq_no_such_pkg.x", 90)]
    assert pickle_file._missing_module_stop(findings, rules) == 40


NAMED = ["os.system", "torch.hub.load", "sklearn.x.Y", "tensorflow.io.gfile.GFile"]


@pytest.mark.parametrize("subject", NAMED)
def test_stdlib_and_packages_the_rules_name_never_stop_it_even_when_not_installed(
    subject: str, rules: RuleSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A scanner venv without torch or tensorflow: the loading machine may have them.
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    assert pickle_file._missing_module_stop([_unknown_call(subject, 10)], rules) is None


# Text that pickle.load would read as GLOBAL lines: it stops at a module no
# machine has, so the walk stops there too.
BENIGN_TEXT = {
    "labels.txt": b"cat\ndog\nbird\nfish\n",
    "requirements.txt": b"click>=8\nrich\ntorch==2.3\n",
    "classes.txt": b"car\ntruck\nbus\n",
}


@pytest.mark.parametrize("name", sorted(BENIGN_TEXT))
def test_text_that_imports_no_existing_module_is_quiet(name: str, tmp_path: Path, rules: RuleSet) -> None:
    report = scan_bytes(tmp_path, BENIGN_TEXT[name], name, rules=rules)
    assert not [f for f in report.findings if f.severity >= Severity.MEDIUM], report.findings


# Printable protocol-0 payloads (harmless command): stdlib, Python 2 names that
# pickle maps (fix_imports), and a package the rules name, installed here or not.
TEXT_PAYLOADS = {
    "stdlib": b"cos\nsystem\n(S'true'\ntR.",
    "py2-name": b"c__builtin__\neval\n(S'1'\ntR.",
    "rule-named-package": b"ctorch.hub\nload\n(S'x'\ntR.",
}


@pytest.mark.parametrize("kind", sorted(TEXT_PAYLOADS))
def test_text_payloads_through_modules_a_loader_may_have_stay_high(
    kind: str, tmp_path: Path, rules: RuleSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    report = scan_bytes(tmp_path, TEXT_PAYLOADS[kind], "notes.txt", rules=rules)
    assert max(f.severity for f in report.findings) >= Severity.HIGH, report.findings
