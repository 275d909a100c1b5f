"""ONNX walked as protobuf: custom domains, opsets, nesting bounds, corruption."""

from __future__ import annotations

import sys
from pathlib import Path

from modeltrust.findings import Severity

from .conftest import ROOT, rule_ids, scan_bytes

sys.path.insert(0, str(ROOT / "fixtures"))
from pbwire import field


def model(graph: bytes, opsets: list[tuple[str, int]] = (("", 17),)) -> bytes:  # type: ignore[assignment]
    body = field(1, 9)
    for domain, version in opsets:
        body += field(8, field(1, domain.encode()) + field(2, version))
    return body + field(7, graph)


def node(op: str, domain: str = "", attributes: bytes = b"") -> bytes:
    return field(4, op.encode()) + field(7, domain.encode()) + attributes


def test_custom_domain_operator_is_medium(tmp_path: Path) -> None:
    data = model(field(1, node("Steal", "evil.ops")), [("", 17), ("evil.ops", 1)])
    report = scan_bytes(tmp_path, data, "model.onnx")
    found = {f.rule_id: f.severity for f in report.findings}
    assert found == {"onnx-custom-op": Severity.MEDIUM, "onnx-unusual-opset": Severity.LOW}


def test_standard_model_is_clean(tmp_path: Path) -> None:
    data = model(field(1, node("Relu")) + field(1, node("FusedMatMul", "com.microsoft")))
    report = scan_bytes(tmp_path, data, "model.onnx")
    assert report.artifacts[0].format == "onnx" and not report.findings


def test_subgraph_nesting_is_bounded(tmp_path: Path) -> None:
    graph = field(1, node("Relu"))
    for _ in range(40):  # If(then_branch=If(then_branch=...))
        graph = field(1, node("If", attributes=field(5, field(6, graph))))
    assert "onnx-malformed" in rule_ids(scan_bytes(tmp_path, model(graph), "deep.onnx"))


def test_truncated_model_is_malformed(tmp_path: Path) -> None:
    data = model(field(1, node("Relu")) * 3)
    assert "onnx-malformed" in rule_ids(scan_bytes(tmp_path, data[:-3], "cut.onnx"))
