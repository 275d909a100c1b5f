"""The version 2 allowlist: exact names by defining module, each with a kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from modeltrust.errors import RulesError
from modeltrust.rules import AllowKind, RuleSet, Verdict, load_rules

V2 = """\
kind: pickle-allow
version: 2
groups:
  - reason: value types with no side effects
    allow:
      - "mylib.models:Net"
      - "mylib.models:Net.from_config"
      - "builtins:set"
  - reason: referenced as data, never called
    kind: import-only
    allow:
      - "mylib.losses:mse"
      - {name: "mylib.helpers:rebuild", kind: calls-arguments, calls: [1, 0]}
"""


def v2_rules(tmp_path: Path, text: str = V2, empty_base: bool = True) -> RuleSet:
    path = tmp_path / "allow.yaml"
    path.write_text(text)
    if empty_base:
        base = tmp_path / "base"
        base.mkdir(exist_ok=True)
        return load_rules([path], directory=base)
    return load_rules([path])


def test_entries_carry_their_kind_and_argument_positions(tmp_path: Path) -> None:
    rules = v2_rules(tmp_path)
    net = rules.classify("mylib.models", "Net")
    assert net.verdict is Verdict.ALLOWED and net.kind is AllowKind.CONSTRUCTOR
    assert net.reason == "value types with no side effects"
    assert rules.classify("mylib.losses", "mse").kind is AllowKind.IMPORT_ONLY
    helper = rules.classify("mylib.helpers", "rebuild")
    assert helper.kind is AllowKind.CALLS_ARGUMENTS and helper.calls == (0, 1)
    assert rules.classify("mylib.models", "Net.from_config").verdict is Verdict.ALLOWED


def test_names_are_matched_exactly_not_by_location(tmp_path: Path) -> None:
    """A name a module merely imports (sklearn modules import GzipFile) does not
    inherit the entry of a class defined there."""
    rules = v2_rules(tmp_path)
    for module, name in [
        ("mylib.models", "GzipFile"),
        ("mylib.models.sub", "Net"),
        ("mylib", "Net"),
        ("mylib.models", "Net.__init__"),
        ("mylib.models", "Net.other"),
        ("mylib.models", "net"),
    ]:
        assert rules.classify(module, name).verdict is not Verdict.ALLOWED, (module, name)


def test_python2_names_map_as_pickle_maps_them(tmp_path: Path) -> None:
    rules = v2_rules(tmp_path)
    assert rules.classify("builtins", "set").verdict is Verdict.ALLOWED
    assert rules.classify("__builtin__", "set").verdict is Verdict.ALLOWED


def test_a_later_file_overrides_the_kind_of_an_entry(tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    first.write_text(V2)
    second = tmp_path / "b.yaml"
    second.write_text(
        "kind: pickle-allow\nversion: 2\ngroups:\n  - reason: ours\n    allow: ['mylib.losses:mse']\n"
    )
    base = tmp_path / "base"
    base.mkdir()
    rules = load_rules([first, second], directory=base)
    assert rules.classify("mylib.losses", "mse").kind is AllowKind.CONSTRUCTOR


def test_deny_still_wins_over_an_exact_entry(tmp_path: Path) -> None:
    text = "kind: pickle-allow\nversion: 2\ngroups:\n  - reason: r\n    allow: ['os:system']\n"
    assert v2_rules(tmp_path, text, empty_base=False).classify("os", "system").verdict is Verdict.DENIED


HEAD = "kind: pickle-allow\nversion: 2\ngroups:\n  - reason: r\n"


@pytest.mark.parametrize(
    "body, message",
    [
        ("    allow: ['sklearn.*:[A-Z]*']\n", "exact module:qualname"),
        ("    allow: ['numpy:*']\n", "exact module:qualname"),
        ("    allow: ['torch.nn.modules.*:Linear']\n", "exact module:qualname"),
        ("    allow: ['numpy']\n", "exact module:qualname"),
        ("    allow: ['a:b', 'a:b']\n", "listed twice"),
        ("    kind: sometimes\n    allow: ['a:b']\n", "kind must be one of"),
        ("    allow: [{name: 'a:b', kind: calls-arguments}]\n", "needs 'calls'"),
        ("    allow: [{name: 'a:b', kind: calls-arguments, calls: [-1]}]\n", "needs 'calls'"),
        ("    allow: [{name: 'a:b', calls: [0]}]\n", "only for kind calls-arguments"),
        ("    allow: [{name: 'a:b', why: x}]\n", "take only"),
        ("    allowed: ['a:b']\n", "allow groups take only"),
    ],
)
def test_bad_version_2_entries_are_rejected(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(RulesError, match=message):
        v2_rules(tmp_path, HEAD + body)


def test_unknown_version_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="version"):
        v2_rules(tmp_path, "kind: pickle-allow\nversion: 3\ngroups: []\n")


def test_version_1_files_still_load_with_globs(tmp_path: Path) -> None:
    text = "kind: pickle-allow\nversion: 1\ngroups:\n  - reason: ours\n    allow: ['mylib.*:[A-Z]*']\n"
    rules = v2_rules(tmp_path, text)
    verdict = rules.classify("mylib.models", "Net")
    assert verdict.verdict is Verdict.ALLOWED and verdict.kind is AllowKind.CONSTRUCTOR


def su(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def glob(module: str, name: str) -> bytes:
    return su(module) + su(name) + b"\x93"


def severities(data: bytes, rules: RuleSet) -> list[tuple[str, str]]:
    from modeltrust.findings import Location
    from modeltrust.reader import BytesReader
    from modeltrust.scanners.pickle import PickleContext, finish, scan_pickle_stream

    ctx = PickleContext(rules=rules, location=Location("t"), findings=[], reader=BytesReader(data))
    scan_pickle_stream(ctx, 0, len(data))
    finish(ctx)
    return sorted((f.severity.label, f.rule_id) for f in ctx.findings)


def test_import_only_names_may_be_held_but_not_called(tmp_path: Path) -> None:
    rules = v2_rules(tmp_path, empty_base=False)
    held = b"\x80\x04" + glob("mylib.losses", "mse") + b"\x85."
    called = b"\x80\x04" + glob("mylib.losses", "mse") + b")R."
    assert severities(held, rules) == []
    assert severities(called, rules) == [("high", "pickle-unknown-call")]


def test_arguments_a_callable_calls_are_judged_as_calls(tmp_path: Path) -> None:
    rules = v2_rules(tmp_path, empty_base=False)
    helper = glob("mylib.helpers", "rebuild")
    with_allowed = b"\x80\x04" + helper + su("x") + glob("mylib.models", "Net") + b"\x86R."
    with_unknown = b"\x80\x04" + helper + su("x") + glob("mylib.evil", "Thing") + b"\x86R."
    with_import_only = b"\x80\x04" + helper + glob("mylib.losses", "mse") + b"\x85R."
    assert severities(with_allowed, rules) == []
    assert ("high", "pickle-unknown-call") in severities(with_unknown, rules)
    assert ("high", "pickle-unknown-call") in severities(with_import_only, rules)
