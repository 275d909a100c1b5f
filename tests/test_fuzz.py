"""Truncated and garbled input never crashes or hangs a scan: it yields a report."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modeltrust.config import ScanConfig
from modeltrust.engine import scan

from .conftest import FIXTURES, manifest

SAMPLES = sorted(manifest())
RELAXED = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _scan_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sample"
        path.write_bytes(data)
        report = scan(ScanConfig(targets=(str(path),)))
    assert len(report.artifacts) == 1
    for finding in report.findings:
        assert finding.rule_id != "scan-error", finding.message  # no scanner crashed


@pytest.mark.parametrize("name", SAMPLES)
def test_every_truncation_point_class(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    for cut in sorted({0, 1, 2, 7, 16, len(data) // 3, len(data) // 2, len(data) - 1}):
        if 0 <= cut < len(data):
            _scan_bytes(data[:cut])


@RELAXED
@given(
    name=st.sampled_from(SAMPLES),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_random_byte_mutations(name: str, flips: list[tuple[float, int]]) -> None:
    data = bytearray((FIXTURES / name).read_bytes())
    for where, value in flips:
        data[int(where * len(data))] = value
    _scan_bytes(bytes(data))


@RELAXED
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(data: bytes) -> None:
    _scan_bytes(data)


@RELAXED
@given(st.binary(max_size=512))
def test_arbitrary_bytes_after_pickle_headers(tail: bytes) -> None:
    for head in (
        b"\x80\x02",
        b"\x80\x05\x95\x00\x00\x00\x00\x00\x00\x00\x00",
        b"PK\x03\x04",
        b"\x93NUMPY\x01\x00",
    ):
        _scan_bytes(head + tail)
