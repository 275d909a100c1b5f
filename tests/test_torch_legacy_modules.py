"""Legacy `torch.save` of a whole module: persistent ids `('module', cls, file, source)`.

torch's legacy persistent_load returns `cls` itself for such an id, so a
NEWOBJ on it instantiates that class: the walker reads the record as the
import it holds, judged like any import. An allowed class (a standard
`nn.Linear`) is clean; a command or an unknown class in the record is high or
critical, proven to run with the real `torch.load`.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import pytest

from modeltrust.findings import Severity
from modeltrust.rules import RuleSet

from . import oracle
from .conftest import MARKER, scan_bytes

MAGIC = 0x1950A86A20F9469CFC6C
SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}


def _str(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _record(module: str, name: str) -> bytes:
    """BINPERSID of ('module', module.name, '', ''): empty sources skip torch's check."""
    return b"(" + _str("module") + _global(module, name) + _str("") + _str("") + b"tQ"


def _legacy_file(main: bytes) -> bytes:
    """The five pickles of the legacy format, `main` being the object's own."""
    head = pickle.dumps(MAGIC, 2) + pickle.dumps(1001, 2) + pickle.dumps(SYS_INFO, 2)
    return head + main + pickle.dumps([], 2)


def whole_module_record_calls_a_command() -> bytes:
    return _legacy_file(b"\x80\x02" + _record("os", "system") + b"(" + _str(f"touch {MARKER}") + b"tR.")


def test_legacy_whole_module_of_a_standard_layer_is_clean(rules: RuleSet, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is in the fixtures extra")
    path = tmp_path / "linear.pt"
    torch.save(torch.nn.Linear(2, 2), path, _use_new_zipfile_serialization=False)
    report = scan_bytes(tmp_path, path.read_bytes(), "linear.pt", rules=rules)
    assert not [f for f in report.findings if f.severity >= Severity.MEDIUM], [
        f.message for f in report.findings
    ]


def test_module_record_with_a_command_runs_and_is_critical(rules: RuleSet, tmp_path: Path) -> None:
    data = whole_module_record_calls_a_command()
    result = oracle.run_bytes(data, "torch", oracle.EVERYTHING, suffix=".pt")
    if result.stopped is None and "No module named 'torch'" in (result.error or ""):
        pytest.skip("torch is not installed")
    assert result.marker_created, result.error
    report = scan_bytes(tmp_path, data, "model.pt", rules=rules)
    assert report.max_severity is Severity.CRITICAL


_call_str = _global("builtins", "str") + b"(" + _str("x") + b"tR"


@pytest.mark.parametrize(
    "record",
    [
        _record("some.unknown", "Module"),  # an unknown class: NEWOBJ of it is high
        b"("
        + _str("module")
        + _global("builtins", "str")
        + b"("
        + _str("x")
        + b"tR"
        + _str("")
        + _str("")
        + b"tQ",
        b"(" + _str("module") + _global("torch.nn.modules.linear", "Linear") + _str("") + b"tQ",  # 3 fields
    ],
)
def test_other_module_records_stay_high(record: bytes, rules: RuleSet, tmp_path: Path) -> None:
    data = _legacy_file(b"\x80\x02" + record + b")\x81.")
    report = scan_bytes(tmp_path, data, "model.pt", rules=rules)
    assert report.max_severity is not None and report.max_severity >= Severity.HIGH
