"""Names refused on review stay refused, with the attack that motivated each.

Every payload here is harmless (it creates `modeltrust-pwned` in the oracle's
temp dir); each test first proves, with the real unpickler, that the payload
runs when the name is allowed, then that the scan flags it high."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from modeltrust.findings import Severity
from modeltrust.rules import AllowKind, RuleSet, Verdict

from . import oracle
from .conftest import MARKER, scan_bytes


def _str(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def gzipfile_found_in_sklearn() -> bytes:
    """Permission by location: sklearn.datasets._rcv1 imports gzip.GzipFile; a
    glob such as `sklearn.*:[A-Z]*` admitted it, and it creates files."""
    return b"\x80\x02" + _global("sklearn.datasets._rcv1", "GzipFile") + _str(MARKER) + _str("wb") + b"\x86R."


def numpy_memmap_newobj() -> bytes:
    """numpy.memmap.__new__ opens (mode w+: creates) the file it is given."""
    args = _str(MARKER) + _global("numpy", "uint8") + _str("w+") + b"K\x00" + b"K\x01\x85"
    return b"\x80\x02" + _global("numpy", "memmap") + b"(" + args + b"t\x81."


def scipy_distribution_exec() -> bytes:
    """scipy.stats distributions exec `_parse_arg_template` from their pickled
    state in __setstate__ (rv_generic._attach_argparser_methods)."""
    template = (
        f"open({MARKER!r}, 'w').close()\n"
        "def _parse_args(self): pass\ndef _parse_args_stats(self): pass\ndef _parse_args_rvs(self): pass\n"
    )
    state = b"}" + _str("_parse_arg_template") + _str(template) + b"s"
    return b"\x80\x02" + _global("scipy.stats._continuous_distns", "norm_gen") + b")\x81" + state + b"b."


PAYLOADS = {
    "gzipfile_found_in_sklearn": (gzipfile_found_in_sklearn, "sklearn"),
    "numpy_memmap_newobj": (numpy_memmap_newobj, "numpy"),
    "scipy_distribution_exec": (scipy_distribution_exec, "scipy"),
}


@pytest.mark.parametrize("technique", sorted(PAYLOADS))
def test_refused_payload_really_runs(technique: str) -> None:
    build, library = PAYLOADS[technique]
    pytest.importorskip(library)
    result = oracle.run_bytes(build(), "pickle", oracle.EVERYTHING)
    assert result.marker_created, f"{technique} did not run: {result.error}"
    stopped = oracle.run_bytes(build(), "pickle", oracle.RULES)
    assert stopped.stopped is not None and not stopped.marker_created


@pytest.mark.parametrize("technique", sorted(PAYLOADS))
def test_refused_payload_is_high(technique: str, tmp_path: Path, rules: RuleSet) -> None:
    build, _ = PAYLOADS[technique]
    report = scan_bytes(tmp_path, build(), "model.pkl", rules=rules)
    assert report.max_severity is not None and report.max_severity >= Severity.HIGH, [
        (f.severity.label, f.message) for f in report.findings
    ]


@pytest.mark.parametrize(
    "name",
    [
        ("sklearn.datasets._rcv1", "GzipFile"),
        ("sklearn.datasets._base", "NamedTemporaryFile"),
        ("numpy", "memmap"),
        ("joblib.numpy_pickle_compat", "NDArrayWrapper"),
        ("joblib.numpy_pickle_compat", "ZNDArrayWrapper"),
        ("joblib.memory", "Memory"),
        ("scipy.stats._continuous_distns", "norm_gen"),
        ("scipy.stats._distn_infrastructure", "rv_continuous_frozen"),
        ("collections", "namedtuple"),
        ("operator", "attrgetter"),
        ("builtins", "getattr"),
        ("torch._C", "PyTorchFileWriter"),
        ("multiprocessing.connection", "Client"),
    ],
)
def test_refused_name_is_not_allowed(name: tuple[str, str], rules: RuleSet) -> None:
    assert rules.classify(*name).verdict is not Verdict.ALLOWED


# functools.partial is allowed only around a constructor entry: its argument 0
# is judged as a call (fitted HistGradientBoosting preprocessors hold
# partial(sklearn.utils.validation.check_array, ...)).
def _partial_of(module: str, name: str, call_it: bool) -> bytes:
    made = _global("functools", "partial") + _global(module, name) + _str(f"touch {MARKER}") + b"\x86R"
    return b"\x80\x02" + made + (b")R" if call_it else b"") + b"."


def test_partial_calling_a_command_really_runs() -> None:
    result = oracle.run_bytes(_partial_of("os", "system", call_it=True), "pickle", oracle.EVERYTHING)
    assert result.marker_created


@pytest.mark.parametrize(
    ("target", "call_it"),
    [
        (("os", "system"), True),
        (("os", "system"), False),
        (("numpy", "mean"), False),  # import-only: a partial may not wrap it
        (("some.unknown", "thing"), False),
        (("sklearn.utils.validation", "check_array"), True),  # calling the partial: a dynamic call
    ],
)
def test_partial_of_anything_but_a_constructor_is_high(
    target: tuple[str, str], call_it: bool, tmp_path: Path, rules: RuleSet
) -> None:
    report = scan_bytes(tmp_path, _partial_of(*target, call_it=call_it), "model.pkl", rules=rules)
    assert report.max_severity is not None and report.max_severity >= Severity.HIGH, [
        (f.severity.label, f.message) for f in report.findings
    ]


def test_partial_of_check_array_as_sklearn_writes_it_is_clean(tmp_path: Path, rules: RuleSet) -> None:
    report = scan_bytes(
        tmp_path,
        _partial_of("sklearn.utils.validation", "check_array", call_it=False),
        "model.pkl",
        rules=rules,
    )
    assert not [f for f in report.findings if f.severity >= Severity.MEDIUM]


def test_partial_state_is_created_never_called(rules: RuleSet, tmp_path: Path) -> None:
    """accelerate's PartialState (in every TrainingArguments) is new-only: NEWOBJ
    + BUILD fill its __dict__; calling it may start a distributed process group."""
    pytest.importorskip("accelerate", reason="accelerate is in the fixtures extra")
    verdict = rules.classify("accelerate.state", "PartialState")
    assert verdict.kind is AllowKind.NEW_ONLY
    created = b"\x80\x02" + _global("accelerate.state", "PartialState") + b")\x81}" + _str("x") + b"K\x01sb."
    assert not [
        f
        for f in scan_bytes(tmp_path, created, "a.pkl", rules=rules).findings
        if f.severity >= Severity.MEDIUM
    ]
    called = b"\x80\x02" + _global("accelerate.state", "PartialState") + b")R."
    report = scan_bytes(tmp_path, called, "b.pkl", rules=rules)
    assert report.max_severity is not None and report.max_severity >= Severity.HIGH
