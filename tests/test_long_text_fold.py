"""Protocols 0-2 store bytes as `_codecs.encode(text, 'latin1')`; a tensor
pickled with them is `torch.storage._load_from_bytes(<that>)`. Texts longer
than the walker keeps in memory are read back from the file to fold the call,
so the nested torch.save bytes are scanned (not reported as bytes computed
while loading), within the nested-scan budget."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import pytest

from modeltrust.findings import Severity
from modeltrust.rules import RuleSet

from .conftest import MARKER, scan_bytes


@pytest.mark.parametrize("protocol", [0, 1, 2])
@pytest.mark.parametrize("size", [1000, 50_000])
def test_tensor_pickled_with_old_protocols_is_clean(
    protocol: int, size: int, rules: RuleSet, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch", reason="torch is in the fixtures extra")
    data = pickle.dumps({"w": torch.ones(size), "rng": torch.Generator().get_state()}, protocol=protocol)
    report = scan_bytes(tmp_path, data, "state.pkl", rules=rules)
    assert not [f for f in report.findings if f.severity >= Severity.MEDIUM], [
        f.message for f in report.findings
    ]


def _nested_in_long_text(opcode: bytes) -> bytes:
    """A command hidden in the long latin-1 text of a nested load."""
    inner = (
        b"\x80\x02cos\nsystem\nX"
        + struct.pack("<I", len(MARKER) + 6)
        + f"touch {MARKER}".encode()
        + b"\x85R."
    )
    text = (inner + b" " * 6000).decode("latin-1")
    if opcode == b"X":
        raw = text.encode("utf-8")
        literal = b"X" + struct.pack("<I", len(raw)) + raw
    else:  # protocol 0's raw-unicode-escape line
        literal = b"V" + text.encode("raw-unicode-escape").replace(b"\n", b"\\u000a") + b"\n"
    encode = b"c_codecs\nencode\n(" + literal + b"X\x06\x00\x00\x00latin1tR"
    return b"\x80\x02ctorch.storage\n_load_from_bytes\n(" + encode + b"tR."


@pytest.mark.parametrize("opcode", [b"X", b"V"])
def test_command_in_long_nested_text_is_found(opcode: bytes, rules: RuleSet, tmp_path: Path) -> None:
    report = scan_bytes(tmp_path, _nested_in_long_text(opcode), "model.pkl", rules=rules)
    assert report.max_severity is not None and report.max_severity >= Severity.HIGH
    assert "os.system" in {f.subject for f in report.findings}, [
        (f.subject, f.message) for f in report.findings
    ]
