"""Constructor entries are fuzzed with hostile arguments (tests/constructor_fuzz.py).

A `constructor` allow entry says the callable is safe whatever the arguments a
stream gives it; a `new-only` entry says the same of `cls.__new__`. Each is
called, in a child process with a temp working directory and an audit hook,
with path strings and file-like names (one a FIFO that notices native code
opening it), open modes, module names, a callable probe, huge integers and
nested containers. No call may open or create files, run commands, open
sockets, import a module it was given, exec generated code or call its
arguments. Findings of this test re-kinded xgboost's and LightGBM's `Booster`
as new-only: `Booster(model_file=path)` makes the C library read that file.

The harness is proven to catch such behaviour on known-bad callables first.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from modeltrust.findings import Severity
from modeltrust.rules import AllowKind, RuleSet

from . import constructor_fuzz
from .conftest import scan_bytes

HARNESS = Path(constructor_fuzz.__file__).resolve()
# Entries whose calls do something the harness sees, and why that is acceptable.
ACCEPTED = {
    "zoneinfo:ZoneInfo": (
        "reads (never writes) the named entry below the IANA database folders (TZPATH or the tzdata "
        "package); keys are validated first (no absolute paths, no '..')",
        lambda event: event.startswith("open '") and "/zoneinfo/" in event and "('r'," in event,
    ),
}


def run_fuzz(entries: list[tuple[str, str, str]], cwd: Path) -> dict[str, list[str]]:
    """module:qualname -> suspicious events (a child that dies is reported)."""
    proc = subprocess.run(
        [sys.executable, str(HARNESS)],
        input=json.dumps([list(e) for e in entries]),
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=900,
        check=False,
    )
    results: dict[str, list[str]] = {}
    started = ""
    for line in proc.stdout.splitlines():
        record = json.loads(line)
        if record.get("started"):
            started = record["name"]
        elif "unresolved" in record:
            results[record["name"]] = [f"unresolved: {record['unresolved']}"]
        else:
            results[record["name"]] = record["events"]
            started = ""
    if started:
        results[started] = [f"the child died (exit {proc.returncode}): {proc.stderr[-300:]}"]
    missing = {f"{m}:{q}" for m, q, _ in entries} - set(results)
    assert not missing or started, f"harness stopped early: {proc.stderr[-500:]}"
    return results


def _fuzzed_entries(rules: RuleSet) -> list[tuple[str, str, str]]:
    kinds = (AllowKind.CONSTRUCTOR, AllowKind.NEW_ONLY)
    return [
        (e.pattern.module, e.pattern.name, e.kind.value)
        for e in rules.allow
        if e.exact and e.kind in kinds and _installed(e.pattern.module)
    ]


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module.split(".")[0]) is not None


def _unexplained(name: str, events: list[str]) -> list[str]:
    accepted = ACCEPTED.get(name)
    return [e for e in events if accepted is None or not accepted[1](e)]


# --- the harness catches what it is for -----------------------------------------------------

KNOWN_BAD = {
    ("numpy", "memmap", "constructor"): "opens or creates the file it is given",
    ("gzip", "GzipFile", "constructor"): "opens the file it is given",
    ("tempfile", "NamedTemporaryFile", "constructor"): "creates a file",
    ("builtins", "open", "constructor"): "opens files",
    ("collections", "namedtuple", "constructor"): "execs generated code",
    ("importlib", "import_module", "constructor"): "imports the module it is given",
    ("functools", "reduce", "constructor"): "calls its argument",
    ("xgboost.core", "Booster", "constructor"): "Booster(model_file=path): native code reads the file",
    ("numpy", "memmap", "new-only"): "memmap.__new__ opens the file",
}


def test_harness_catches_known_bad_callables(tmp_path: Path) -> None:
    entries = [e for e in KNOWN_BAD if _installed(e[0])]
    results = run_fuzz(entries, tmp_path)
    quiet = [f"{m}:{q} ({k}): {KNOWN_BAD[(m, q, k)]}" for m, q, k in entries if not results.get(f"{m}:{q}")]
    assert not quiet, quiet


def test_boosters_and_time_zones(rules: RuleSet, tmp_path: Path) -> None:
    """The entries this test changed or accepts, fuzzed in the fast suite."""
    names = {"xgboost.core:Booster", "lightgbm.basic:Booster", "zoneinfo:ZoneInfo", "numpy:ndarray"}
    entries = [e for e in _fuzzed_entries(rules) if f"{e[0]}:{e[1]}" in names]
    assert len(entries) >= 2
    results = run_fuzz(entries, tmp_path)
    wrong = {
        name: _unexplained(name, events) for name, events in results.items() if _unexplained(name, events)
    }
    assert not wrong, wrong


@pytest.mark.slow
def test_every_constructor_entry_survives_hostile_arguments(rules: RuleSet, tmp_path: Path) -> None:
    entries = _fuzzed_entries(rules)
    assert len(entries) > 1000
    results = run_fuzz(entries, tmp_path)
    wrong = {
        name: _unexplained(name, events)[:3] for name, events in results.items() if _unexplained(name, events)
    }
    assert not wrong, "\n".join(f"{k}: {v}" for k, v in sorted(wrong.items()))


# --- new-only in the walker: NEWOBJ yes, calls no ----------------------------------------


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


BOOSTER = _global("xgboost.core", "Booster")
OBJECT = _global("builtins", "object")
NEW_ONLY_STREAMS = {
    "newobj": (b"\x80\x02" + BOOSTER + b")\x81}b.", False),
    "copyreg_newobj": (b"\x80\x02" + _global("copyreg", "__newobj__") + b"(" + BOOSTER + b"tR}b.", False),
    "copyreg_reconstructor": (
        b"\x80\x02"
        + _global("copyreg", "_reconstructor")
        + b"("
        + BOOSTER
        + _global("builtins", "object")
        + b"NtR.",
        False,
    ),
    "reduce_with_model_file": (b"\x80\x02" + BOOSTER + b"(NN" + _str("/etc/passwd") + b"tR.", True),
    "obj_opcode": (b"\x80\x02(" + BOOSTER + b"o.", True),
    "dill_create_array": (
        b"\x80\x02"
        + _global("dill._dill", "_create_array")
        + b"("
        + BOOSTER
        + b"(NNX\x01\x00\x00\x00ft"
        + b"NtR.",
        True,
    ),
}


@pytest.mark.parametrize("technique", sorted(NEW_ONLY_STREAMS))
def test_new_only_class_is_created_but_not_called(technique: str, rules: RuleSet, tmp_path: Path) -> None:
    pytest.importorskip("xgboost", reason="xgboost is in the fixtures extra")
    data, high = NEW_ONLY_STREAMS[technique]
    report = scan_bytes(tmp_path, data, "model.pkl", rules=rules)
    worst = report.max_severity or Severity.INFO
    if high:
        assert worst >= Severity.HIGH, [(f.severity.label, f.message) for f in report.findings]
    else:
        assert worst < Severity.MEDIUM, [(f.severity.label, f.message) for f in report.findings]
