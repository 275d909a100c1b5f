"""Deny rules deny modules as a whole, except named value types.

`http`, `socket`, `ssl`, `signal`, `inspect`, `os`, `urllib`... are denied as
modules because their functions run commands, open connections or reach any
name; but their enums, structseqs and named tuples (`http.HTTPStatus`,
`os.stat_result`, `urllib.parse.SplitResult`) are plain values that real
files hold. Each such value type is excepted by its exact name, with a reason
(rules/pickle/deny.yaml `except:`), and allowed (allow.yaml).

The value types are enumerated here, not listed: every enum, structseq and
named tuple defined by a standard-library module that a deny rule covers is
pickled with protocols 0-5 and must scan clean; the callables of the same
modules stay high or critical.
"""

from __future__ import annotations

import enum
import importlib
import pickle
import pkgutil
import struct
import sys
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from modeltrust.errors import RulesError
from modeltrust.findings import Severity
from modeltrust.rules import RuleSet, Verdict, load_rules

from . import oracle
from .conftest import MARKER, ROOT, scan_bytes

DENY_FILE = ROOT / "rules" / "pickle" / "deny.yaml"
# Submodules never imported while enumerating (GUI, removed tools, test suites).
SKIPPED_SUBMODULES = ("idlelib", "tkinter", "lib2to3", "test", "antigravity", "this", "ensurepip", "venv")


def _denied_stdlib_modules(rules: RuleSet) -> list[str]:
    """Modules a deny pattern covers as a whole (`module`, no name)."""
    roots = {p.module for p, _ in rules.deny if p.module != "*" and p.name == "*"}
    return sorted(m for m in roots if m.split(".")[0] in sys.stdlib_module_names)


def _modules_under(name: str) -> Iterator[ModuleType]:
    try:
        module = importlib.import_module(name)
    except Exception:  # noqa: BLE001 - platform modules (nt, _winapi) are absent
        return
    yield module
    for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
        sub = f"{name}.{info.name}"
        if info.name.startswith("_") or any(part in sub for part in SKIPPED_SUBMODULES):
            continue
        try:
            yield importlib.import_module(sub)
        except Exception:  # noqa: BLE001
            continue


def _is_structseq(cls: type) -> bool:
    return hasattr(cls, "n_sequence_fields") and hasattr(cls, "n_fields")


def _samples(cls: type) -> list[object]:
    """A few values of a value type, as a program would hold them."""
    if issubclass(cls, enum.Enum):
        return list(cls)[:3]
    if _is_structseq(cls):
        return [cls((0,) * cls.n_sequence_fields)]  # type: ignore[call-arg, attr-defined]
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        try:
            return [cls(*(["x"] * len(cls._fields)))]
        except TypeError:  # a constructor of its own (ssl._ASN1Object): members carry samples
            return []
    return []


def value_types(rules: RuleSet) -> dict[str, list[object]]:
    """`module:qualname` -> samples, for every enum, structseq and named tuple
    defined by a denied standard-library module."""
    found: dict[str, list[object]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for root in _denied_stdlib_modules(rules):
            for module in _modules_under(root):
                for obj in vars(module).values():
                    if not isinstance(obj, type) or obj.__module__ != module.__name__:
                        continue
                    picklable = []
                    for sample in _samples(obj):
                        try:
                            pickle.dumps(sample, protocol=0)
                        except Exception:  # noqa: BLE001 - e.g. a named-tuple base shadowed by its subclass
                            continue
                        picklable.append(sample)
                    if picklable:
                        found[f"{obj.__module__}:{obj.__qualname__}"] = picklable
    return found


@pytest.fixture(scope="module")
def enumerated(rules: RuleSet) -> dict[str, list[object]]:
    return value_types(rules)


def test_enumeration_finds_the_value_types_real_files_hold(enumerated: dict[str, list[object]]) -> None:
    expected = {
        "http:HTTPStatus",
        "socket:AddressFamily",
        "socket:SocketKind",
        "ssl:TLSVersion",
        "ssl:Options",
        "ssl:VerifyMode",
        "signal:Signals",
        "inspect:_ParameterKind",
        "os:stat_result",
        "urllib.parse:SplitResult",
        "urllib.parse:ParseResult",
        "urllib.parse:DefragResult",
    }
    assert expected <= set(enumerated), sorted(expected - set(enumerated))


def test_every_value_type_of_a_denied_module_scans_clean(
    enumerated: dict[str, list[object]], rules: RuleSet, tmp_path: Path
) -> None:
    loud: dict[str, list[str]] = {}
    for name, samples in sorted(enumerated.items()):
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            data = pickle.dumps(samples, protocol=protocol)
            report = scan_bytes(tmp_path, data, "value.pkl", rules=rules)
            for f in report.findings:
                if f.severity >= Severity.MEDIUM:
                    loud.setdefault(name, []).append(f"p{protocol} {f.severity.label} {f.subject}")
    assert not loud, "\n".join(f"{k}: {v[:3]}" for k, v in loud.items())


def test_inspect_parameter_with_defaults_scans_clean(rules: RuleSet, tmp_path: Path) -> None:
    import inspect

    params = [
        inspect.Parameter("x", inspect.Parameter.KEYWORD_ONLY),
        inspect.Parameter("y", inspect.Parameter.POSITIONAL_ONLY, default=3, annotation=int),
    ]
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        report = scan_bytes(tmp_path, pickle.dumps(params, protocol=protocol), "p.pkl", rules=rules)
        assert not [f for f in report.findings if f.severity >= Severity.MEDIUM], protocol


def _deny_rules() -> list[dict[str, object]]:
    rules: list[dict[str, object]] = yaml.safe_load(DENY_FILE.read_text())["rules"]
    return rules


def test_every_exception_is_allowed_and_covered_by_its_rule(rules: RuleSet) -> None:
    """An exception no pattern of its rule matches is stale; one the allowlist
    does not admit would still be an unknown import (medium)."""
    for rule in rules.rules.values():
        for exc in rule.exceptions:
            verdict = rules.classify(exc.module, exc.name)
            assert verdict.verdict is Verdict.ALLOWED, f"{exc.module}:{exc.name} is {verdict.verdict}"
            own = [(p, r) for p, r in rules.deny if r.id == rule.id]
            assert RuleSet(deny=own).classify(exc.module, exc.name).verdict is Verdict.UNKNOWN  # exempt
            bare = replace(rule, exempt=frozenset())
            covered = RuleSet(deny=[(p, bare) for p, _ in own]).classify(exc.module, exc.name)
            assert covered.verdict is Verdict.DENIED, f"{rule.id}: no pattern covers {exc.module}:{exc.name}"


def test_every_exception_is_an_enumerated_value_type_or_reviewed(enumerated: dict[str, list[object]]) -> None:
    """Exceptions are value types found by the enumeration (a callable slipped
    in by hand would show up here), plus the two inspect names a Parameter holds."""
    reviewed = {"inspect:Parameter", "inspect:_empty", "ssl:_ASN1Object"}
    names = {str(e["name"]) for r in _deny_rules() for e in r.get("except", [])}  # type: ignore[attr-defined]
    stray = names - set(enumerated) - reviewed
    present = {n for n in stray if importlib.util.find_spec(n.split(":")[0].split(".")[0]) is not None}
    assert not present, sorted(present)


# The callables of the same modules stay denied, by name and when called.
DANGEROUS = [
    ("os", "system", Severity.CRITICAL),
    ("posix", "system", Severity.CRITICAL),
    ("os", "_Environ", Severity.CRITICAL),
    ("nt", "stat_result", Severity.CRITICAL),  # excepted only where it is defined (posix/os)
    ("os", "stat_result.__class__", Severity.HIGH),
    ("socket", "socket", Severity.HIGH),
    ("socket", "create_connection", Severity.HIGH),
    ("socket", "AddressFamily.AF_INET", Severity.HIGH),  # an attribute walk, not the class
    ("ssl", "create_default_context", Severity.HIGH),
    ("ssl", "_ASN1Object.fromname", Severity.HIGH),
    ("http.client", "HTTPConnection", Severity.HIGH),
    ("http.server", "HTTPServer", Severity.HIGH),
    ("urllib.request", "urlopen", Severity.HIGH),
    ("urllib.parse", "urlencode", Severity.HIGH),
    ("signal", "signal", Severity.HIGH),
    ("signal", "pthread_kill", Severity.HIGH),
    ("inspect", "getattr_static", Severity.HIGH),
    ("inspect", "getmembers", Severity.HIGH),
    ("_thread", "start_new_thread", Severity.HIGH),
    ("asyncio.runners", "run", Severity.HIGH),
    ("doctest", "run_docstring_examples", Severity.CRITICAL),
    ("subprocess", "CompletedProcess", Severity.CRITICAL),
]


def _str(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _call(module: str, name: str, arg: str) -> bytes:
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + _str(arg) + b"\x85R."


@pytest.mark.parametrize(("module", "name", "floor"), DANGEROUS, ids=lambda v: str(v))
def test_callables_of_excepted_modules_stay_denied(
    module: str, name: str, floor: Severity, rules: RuleSet, tmp_path: Path
) -> None:
    assert rules.classify(module, name).verdict is Verdict.DENIED
    report = scan_bytes(tmp_path, _call(module, name, f"touch {MARKER}"), "model.pkl", rules=rules)
    assert report.max_severity is not None and report.max_severity >= floor


def test_command_beside_an_excepted_value_runs_and_is_critical(rules: RuleSet, tmp_path: Path) -> None:
    """A stream mixing an excepted value with a command: the value does not
    hide the command (proved to run with the real unpickler)."""
    value = b"cos\nstat_result\n(K\x00K\x00K\x00K\x00K\x00K\x00K\x00K\x00K\x00K\x00t\x85R"
    data = b"\x80\x02(" + value + _call("os", "system", f"touch {MARKER}")[2:-1] + b"l."
    assert oracle.run_bytes(data, "pickle", oracle.EVERYTHING).marker_created
    report = scan_bytes(tmp_path, data, "model.pkl", rules=rules)
    assert report.max_severity is Severity.CRITICAL


def _rules_with(tmp_path: Path, rule: dict[str, object]) -> RuleSet:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"kind": "pickle-deny", "version": 1, "rules": [rule]}))
    return load_rules(extra=[path])


BASE_RULE: dict[str, object] = {
    "id": "acme-net",
    "severity": "high",
    "title": "t",
    "why": "w",
    "match": ["acme.net"],
}


def test_user_deny_rule_takes_exceptions(tmp_path: Path) -> None:
    rules = _rules_with(
        tmp_path, {**BASE_RULE, "except": [{"name": "acme.net:Status", "reason": "an IntEnum of codes"}]}
    )
    assert rules.classify("acme.net", "Status").verdict is Verdict.UNKNOWN  # no longer denied
    assert rules.classify("acme.net", "connect").verdict is Verdict.DENIED
    assert rules.classify("acme.net.sub", "Status").verdict is Verdict.DENIED


@pytest.mark.parametrize(
    "bad",
    [
        [{"name": "acme.net:*", "reason": "globs are refused"}],
        [{"name": "acme.net:Status"}],
        [{"name": "acme.net:Status", "reason": " "}],
        [{"name": "acme.net:Status", "reason": "r", "kind": "constructor"}],
        [{"name": "acme.net:Status", "reason": "r"}, {"name": "acme.net:Status", "reason": "again"}],
        "acme.net:Status",
    ],
)
def test_malformed_exceptions_are_refused(bad: object, tmp_path: Path) -> None:
    with pytest.raises(RulesError):
        _rules_with(tmp_path, {**BASE_RULE, "except": bad})
