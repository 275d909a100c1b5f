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
