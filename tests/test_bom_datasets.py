"""Dataset facts in the BOM: what the datasets scanners summarise from data
files' metadata (features, splits, row counts) lands on the data component
and the file components of the dataset."""

from __future__ import annotations

import json
from pathlib import Path

from modeltrust.bom import build_bom
from modeltrust.findings import Artifact, DataColumn, DataFile, DatasetSummary, ScanReport
from modeltrust.rules import RuleSet

from .bomcheck import assert_valid, components, props


def test_dataset_summary_facts(tmp_path: Path, rules: RuleSet) -> None:
    folder = tmp_path / "reviews"
    folder.mkdir()
    (folder / "train.parquet").write_bytes(b"PAR1....PAR1")
    (folder / "test.parquet").write_bytes(b"PAR1..PAR1")
    root = str(folder)
    columns = (DataColumn("text", "string"), DataColumn("label", "int64"))
    summary = DatasetSummary(
        root=root,
        kind="files",
        name="reviews",
        license="apache-2.0",
        description="Product reviews with a sentiment label.",
        features=columns,
        splits=(),
        files=(
            DataFile(f"{root}/train.parquet", "parquet", 900, columns, "parquet-cpp-arrow version 14.0.0"),
            DataFile(f"{root}/test.parquet", "parquet", 100, columns),
        ),
    )
    artifacts = tuple(
        Artifact(
            f"{root}/{name}",
            (folder / name).stat().st_size,
            "parquet",
            "parquet",
            "ab" * 32,
            str(folder / name),
        )
        for name in ("test.parquet", "train.parquet")
    )
    report = ScanReport(
        artifacts=artifacts, findings=(), targets=(root,), datasets=(summary,), tool_version="0"
    )
    text = build_bom(report, rules=rules, source_date_epoch=0)
    assert_valid(text, "1.6")
    doc = json.loads(text)
    assert doc["metadata"]["component"]["type"] == "data"
    (dataset,) = components(doc, "data")
    assert dataset["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert dataset["description"] == "Product reviews with a sentiment label."
    assert props(dataset, "modeltrust:dataset:rows") == ["1000"]
    assert sorted(props(dataset, "modeltrust:dataset:feature")) == ["label: int64", "text: string"]
    files = {c["name"]: c for c in components(doc, "file")}
    assert props(files["train.parquet"], "modeltrust:data:rows") == ["900"]
    assert props(files["train.parquet"], "modeltrust:data:created-by") == ["parquet-cpp-arrow version 14.0.0"]
    assert props(files["test.parquet"], "modeltrust:data:columns") == ["2"]
