"""The plain-pickle view of a joblib stream stops where pickle.load raises
ModuleNotFoundError, but only at names no loading machine can have: whether
the scanning machine has a package must not decide the verdict."""

from __future__ import annotations

import importlib.util

import pytest

from modeltrust.findings import Finding, Location, Severity
from modeltrust.rules import RuleSet
from modeltrust.scanners import pickle_file


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
