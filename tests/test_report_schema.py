"""The JSON report: valid against its published schema, and stable (golden files)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from modeltrust.cli.main import cli
from modeltrust.cli.scan_cmd import scan

from .conftest import ROOT

cli.add_command(scan)
SCHEMA = ROOT / "src" / "modeltrust" / "reporting" / "report.schema.json"
GOLDEN = Path(__file__).parent / "golden"
# Relative targets, so the report is the same on every machine.
TARGETS = [
    "fixtures/malicious/inst_opcode.pkl",
    "fixtures/malicious/polyglot_pickle.safetensors",
    "examples/tiny-model",
]


def run_in_root(*args: str) -> dict[str, object]:
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        result = CliRunner().invoke(cli, list(args))
    finally:
        os.chdir(cwd)
    data: dict[str, object] = json.loads(result.stdout)
    return data


def normalised(report: dict[str, object]) -> dict[str, object]:
    report = dict(report)
    report.pop("duration_seconds", None)
    report["tool"] = {"name": "modeltrust", "version": "<version>"}
    report["rules_version"] = "<rules digest>"
    return report


def test_report_matches_its_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(
        run_in_root("scan", "--format", "json", "--hash", *TARGETS)
    )


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_golden_output(fmt: str) -> None:
    """Regenerate with MODELTRUST_UPDATE_GOLDEN=1 after an intended change."""
    report = run_in_root("scan", "--format", fmt, *TARGETS)
    if fmt == "json":
        report = normalised(report)
    else:
        report["runs"][0]["tool"]["driver"]["version"] = "<version>"  # type: ignore[index]
        report["runs"][0]["properties"]["rulesVersion"] = "<rules digest>"  # type: ignore[index]
    golden = GOLDEN / f"report.{fmt}"
    text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    if os.environ.get("MODELTRUST_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_dataset_summaries_are_in_the_json_and_text_reports() -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow (fixtures extra) reads the footer back")
    saved, parquet = "fixtures/benign/datasets/saved", "fixtures/benign/datasets/pandas.parquet"
    report = run_in_root("scan", "--format", "json", saved, parquet)
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(report)
    datasets = {d["root"]: d for d in report["datasets"]}  # type: ignore[attr-defined]
    assert datasets[saved]["kind"] == "save_to_disk" and datasets[saved]["rows"] == 4
    assert [(s["name"], s["rows"]) for s in datasets[saved]["splits"]] == [("train", 3), ("test", 1)]
    assert [c["name"] for c in datasets[saved]["features"]] == ["text", "label", "scores"]
    footer = pq.read_metadata(ROOT / parquet)
    assert datasets[parquet]["kind"] == "files" and datasets[parquet]["rows"] == footer.num_rows
    assert [
        c["name"] for c in datasets[parquet]["files"][0]["columns"]
    ] == footer.schema.to_arrow_schema().names
    assert "datasets" not in run_in_root("scan", "--format", "json", *TARGETS)  # no data files: no key

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        text = CliRunner().invoke(cli, ["scan", saved]).stdout
    finally:
        os.chdir(cwd)
    assert f"  {saved}  save_to_disk · 4 rows · 2 split(s) (train 3, test 1) · 3 column(s)" in text
