"""Rules are data: loading, validation, matching, and that the code's rule ids exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modeltrust.errors import RulesError
from modeltrust.findings import Severity
from modeltrust.rules import RuleSet, Verdict, load_rules

from .conftest import ROOT, scan_bytes


def test_every_rule_id_used_in_the_code_is_defined(rules: RuleSet) -> None:
    used: set[str] = set()
    for path in (ROOT / "src" / "modeltrust").rglob("*.py"):
        text = path.read_text()
        used |= set(re.findall(r'"((?:pickle|archive|scan|numpy|torchscript|format)-[a-z0-9-]+)"', text))
    used -= {"pickle-allow", "pickle-deny"}  # rules-file kinds, not rule ids
    assert used, "no rule ids found in the code"
    assert used <= set(rules.rules), sorted(used - set(rules.rules))


def test_every_rule_has_metadata(rules: RuleSet) -> None:
    for rule in rules.rules.values():
        assert rule.title and rule.why and rule.cwe.startswith("CWE-"), rule.id


@pytest.mark.parametrize(
    "module, name, verdict",
    [
        ("torch._utils", "_rebuild_tensor_v2", Verdict.ALLOWED),
        ("collections", "OrderedDict", Verdict.ALLOWED),
        ("torch.nn.modules.linear", "Linear", Verdict.ALLOWED),
        ("torch.nn.modules.linear", "some_function", Verdict.UNKNOWN),
        ("torch._utils", "_rebuild_tensor_v2.__globals__", Verdict.DENIED),
        ("torch.serialization", "os.system", Verdict.DENIED),
        ("os", "system", Verdict.DENIED),
        ("posix", "system", Verdict.DENIED),
        ("nt", "system", Verdict.DENIED),
        ("__builtin__", "eval", Verdict.DENIED),
        ("builtins", "getattr", Verdict.DENIED),
        ("asyncio.unix_events", "_UnixSubprocessTransport", Verdict.DENIED),
        ("mylib", "system", Verdict.DENIED),
        ("numpy.testing._private.utils", "runstring", Verdict.DENIED),
        ("mylib.models", "Net", Verdict.UNKNOWN),
        ("sklearn.linear_model._logistic", "LogisticRegression", Verdict.ALLOWED),
    ],
)
def test_classification(rules: RuleSet, module: str, name: str, verdict: Verdict) -> None:
    assert rules.classify(module, name).verdict is verdict


def test_deny_wins_over_allow(tmp_path: Path) -> None:
    extra = tmp_path / "allow.yaml"
    extra.write_text("kind: pickle-allow\nversion: 1\ngroups:\n  - reason: test\n    allow: ['os:system']\n")
    assert load_rules([extra]).classify("os", "system").verdict is Verdict.DENIED


def test_user_rules_add_denials(tmp_path: Path) -> None:
    extra = tmp_path / "deny.yaml"
    extra.write_text(
        "kind: pickle-deny\nversion: 1\nrules:\n"
        "  - id: org-no-mylib\n    severity: critical\n    title: Internal ban\n"
        "    why: Our policy forbids mylib in models.\n    cwe: CWE-502\n    match: ['mylib']\n"
    )
    ruleset = load_rules([extra])
    verdict = ruleset.classify("mylib.models", "Net")
    assert verdict.verdict is Verdict.DENIED and verdict.rule is not None
    assert verdict.rule.severity is Severity.CRITICAL


def test_user_rules_apply_in_a_scan(tmp_path: Path) -> None:
    extra = tmp_path / "allow.yaml"
    extra.write_text(
        "kind: pickle-allow\nversion: 1\ngroups:\n  - reason: ours\n    allow: ['mylib.models:Net']\n"
    )
    data = b"\x80\x04\x8c\x0cmylib.models\x8c\x03Net\x93)\x81."
    assert scan_bytes(tmp_path, data).findings
    assert not scan_bytes(tmp_path, data, rules=load_rules([extra])).findings


DENY_HEAD = "kind: pickle-deny\nrules:\n  - id: x\n    title: t\n    why: w\n"


@pytest.mark.parametrize(
    "text, message",
    [
        (DENY_HEAD + "    severity: bad\n    match: [a]\n", "unknown severity"),
        (DENY_HEAD + "    severity: high\n    matches: [a]\n", "unknown keys"),
        ("kind: pickle-deny\nrules:\n  - id: x\n    severity: high\n    title: t\n    why: w\n", "match"),
        ("kind: pickle-allow\ngroups:\n  - allow: ['a:b']\n", "reason"),
        ("kind: pickle-allow\ngroups:\n  - reason: r\n    allow: ['*:b']\n", "must name a module"),
        ("kind: nonsense\n", "unknown kind"),
        ("- a\n- b\n", "mapping"),
        ("kind: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_rules_files_are_rejected_with_a_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(RulesError, match=message):
        load_rules([path])


def test_every_registered_format_loads_a_scanner_that_declares_it() -> None:
    from modeltrust import detect
    from modeltrust.scanners import SCANNERS, Registry

    registry = Registry()
    for fmt in SCANNERS:
        scanner = registry.for_format(fmt)
        assert scanner is not None and fmt in scanner.formats, fmt
    known = {v for k, v in vars(detect).items() if k.isupper() and isinstance(v, str) and k != "UNKNOWN"}
    assert known - set(SCANNERS) <= set(), sorted(known - set(SCANNERS))
