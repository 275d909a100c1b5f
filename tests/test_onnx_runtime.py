"""ONNX payload classes against the real onnxruntime (a session in a child
process): external data that leaves the model folder (`..`, an absolute path,
a symlink, a sparse-tensor attribute) and custom-operator domains. The scan
reports the traversals high whatever the runtime does; onnxruntime >= 1.17
refuses them (path validation), 1.16.3 reads the file outside the folder into
the model (checked by hand with 1.16.3: `..` and the symlink returned the
outside file's bytes, see README). A custom domain is refused by every version
unless the user registers a native library: medium, and the library, if a
repository ships one, is high (code-executable). Benign models with external
data and model-local functions load in a session and scan clean."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modeltrust.findings import Severity

from .conftest import FIXTURES, scan_paths

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="onnxruntime/onnx are not installed (pip install '.[fixtures]')",
)

_SESSION = r"""
import json, sys
import numpy as np, onnxruntime
try:
    session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
    feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
             for i in session.get_inputs()}
    outputs = [o.tolist() for o in session.run(None, feeds)]
    print(json.dumps({"outputs": outputs, "version": onnxruntime.__version__}))
except Exception as exc:
    print(json.dumps({"error": str(exc), "version": onnxruntime.__version__}))
"""


def run_session(model: Path) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", _SESSION, str(model)], capture_output=True, text=True, timeout=120, check=False
    )
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _model(folder: Path, location: str | None = None, sparse: bool = False, domain: str = "") -> Path:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])
    weight = helper.make_tensor(
        "w", TensorProto.FLOAT, [4] if sparse else [2, 2], [0.0] * 4
    )  # COO values: rank 1
    if location is not None:
        weight.ClearField("float_data")
        weight.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", "16")):
            entry = weight.external_data.add()
            entry.key, entry.value = key, value
    if sparse:
        indices = helper.make_tensor("i", TensorProto.INT64, [4], [0, 1, 2, 3])
        value = helper.make_sparse_tensor(weight, indices, [2, 2])
        nodes = [
            helper.make_node("Constant", [], ["w"], sparse_value=value),
            helper.make_node("Add", ["x", "w"], ["y"]),
        ]
        initializers = []
    elif domain:
        nodes, initializers = [helper.make_node("Evil", ["x"], ["y"], domain=domain)], []
    else:
        nodes, initializers = [helper.make_node("Add", ["x", "w"], ["y"])], [weight]
    graph = helper.make_graph(nodes, "g", [x], [y], initializers)
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8  # readable by onnxruntime 1.16 too
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    import numpy as np

    path = tmp_path / "outside.bin"
    path.write_bytes(np.full((2, 2), 7, dtype=np.float32).tobytes())
    return path


@pytest.mark.parametrize("technique", ["dotdot-path", "absolute-path", "symlink", "sparse-attribute-dotdot"])
def test_external_data_leaving_the_folder(tmp_path: Path, outside: Path, technique: str) -> None:
    folder = tmp_path / "model"
    location = {"absolute-path": str(outside), "symlink": "weights.bin"}.get(technique, "../outside.bin")
    model = _model(folder, location, sparse=technique.startswith("sparse"))
    if technique == "symlink":
        os.symlink(outside, folder / "weights.bin")
    report = scan_paths(folder)
    found = [f for f in report.findings if f.rule_id == "onnx-external-data"]
    assert found and min(f.severity for f in found) >= Severity.HIGH, report.findings
    result = run_session(model)
    outputs = json.dumps(result.get("outputs"))
    if "7.0" in outputs:  # an onnxruntime that reads outside the folder (1.16.3 does)
        return
    assert "error" in result, result
    if tuple(int(p) for p in str(result["version"]).split(".")[:2]) >= (1, 17):
        assert any(
            word in str(result["error"]) for word in ("escapes model directory", "Absolute", "outside")
        ), result


def test_custom_domain_needs_a_native_library(tmp_path: Path) -> None:
    model = _model(tmp_path / "model", domain="com.example.custom")
    result = run_session(model)
    assert "is not a registered function/op" in str(result.get("error")), result
    report = scan_paths(tmp_path / "model")
    assert any(f.rule_id == "onnx-custom-op" and f.severity >= Severity.MEDIUM for f in report.findings)


def test_custom_domain_with_a_shipped_library_is_high(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    _model(folder, domain="com.example.custom")
    (folder / "libcustom_ops.so").write_bytes(
        b"\x7fELF\x02\x01\x01" + bytes(57)
    )  # what register_custom_ops_library loads
    report = scan_paths(folder)
    assert report.max_severity is not None and report.max_severity >= Severity.HIGH, report.findings


@pytest.mark.parametrize("name", ["onnx-external-data", "onnx-local-functions"])
def test_benign_models_load_in_a_session_and_scan_clean(name: str) -> None:
    folder = FIXTURES / "repos" / "benign" / name
    result = run_session(folder / "model.onnx")
    assert "outputs" in result, result
    report = scan_paths(folder)
    assert report.max_severity is None or report.max_severity < Severity.MEDIUM, report.findings
