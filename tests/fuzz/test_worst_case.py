"""Small versions of the worst-case shapes in fixtures/worst_case.py (the
10 MB runs are bench/worst_case.py): each ends quickly, with no internal
exception, and the text/JSON/SARIF reports render. (Many shapes are benign
at this size: a finding is only due where a budget is hit.)"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

from modeltrust.config import ScanConfig
from modeltrust.engine import scan

from ..conftest import FIXTURES
from .targets import render_all

sys.path.insert(0, str(FIXTURES))
from worst_case import CASES

SIZE = 96 << 10
_SLOW_TO_BUILD = {"bz2 bomb", "xz bomb"}  # minutes of compression; the gzip/xz bomb tests cover them
_NEEDS = {"HDF5: many groups and attributes": "h5py", "Arrow: huge schema": "pyarrow", "7z bomb": "py7zr",
          "lz4 bomb": "lz4"}  # fmt: skip


@pytest.mark.parametrize("name", sorted(set(CASES) - _SLOW_TO_BUILD))
def test_worst_case_shape_ends_in_findings_quickly(name: str, tmp_path: Path) -> None:
    module = _NEEDS.get(name)
    if module is not None and importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (fixtures extra)")
    file_name, builder = CASES[name]
    path = tmp_path / file_name
    path.write_bytes(builder(SIZE))
    started = time.perf_counter()
    report = scan(ScanConfig(targets=(str(path),)))
    elapsed = time.perf_counter() - started
    errors = [f.message for f in report.findings if f.rule_id == "scan-error"]
    assert not errors, errors
    assert elapsed < 5, f"{elapsed:.1f} s"
    render_all(list(report.findings), path.stat().st_size)


def test_onnx_walk_is_held_to_the_time_budget(tmp_path: Path) -> None:
    from modeltrust.config import Limits

    path = tmp_path / "model.onnx"
    path.write_bytes(CASES["ONNX: many nodes"][1](2 << 20))
    limits = Limits(seconds_per_file=0.0, bytes_per_second=1 << 60)
    report = scan(ScanConfig(targets=(str(path),), limits=limits))
    assert "scan-limit" in {f.rule_id for f in report.findings}


@pytest.mark.parametrize("where", ["safetensors", "keras"])
def test_json_with_millions_of_containers_is_not_built(where: str, tmp_path: Path) -> None:
    import io
    import json
    import struct
    import zipfile

    many = b"[" + b"{}," * 2_000_000 + b"{}]"
    if where == "safetensors":
        raw = b'{"x": {"dtype": "F32", "shape": ' + many + b', "data_offsets": [0, 4]}}'
        path = tmp_path / "model.safetensors"
        path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(4))
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
            archive.writestr("config.json", b'{"class_name": "Sequential", "config": ' + many + b"}")
        path = tmp_path / "model.keras"
        path.write_bytes(buf.getvalue())
    report = scan(ScanConfig(targets=(str(path),)))
    assert any(f.rule_id == "scan-limit" and "objects and arrays" in f.message for f in report.findings)


def test_arrow_schema_walk_is_held_to_the_time_budget(tmp_path: Path) -> None:
    from modeltrust.config import Limits

    if importlib.util.find_spec("pyarrow") is None:
        pytest.skip("pyarrow is not installed (fixtures extra)")
    path = tmp_path / "data.arrow"
    path.write_bytes(CASES["Arrow: huge schema"][1](2 << 20))
    limits = Limits(seconds_per_file=0.0, bytes_per_second=1 << 60)
    report = scan(ScanConfig(targets=(str(path),), limits=limits))
    assert "scan-limit" in {f.rule_id for f in report.findings}
