"""SARIF output: valid against the official 2.1.0 schema and carrying what
GitHub code scanning needs (checked here, since the schema does not)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from modeltrust.cli.main import cli
from modeltrust.cli.scan_cmd import scan

from .conftest import FIXTURES, ROOT

cli.add_command(scan)
SCHEMA = ROOT.parent / "shared" / "testdata" / "schemas" / "sarif-schema-2.1.0.json"


def sarif_of(*targets: str) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["scan", "--format", "sarif", *targets])
    assert result.exit_code in (0, 1), result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


@pytest.fixture(scope="module")
def log() -> dict[str, object]:
    return sarif_of(str(FIXTURES / "malicious"), str(FIXTURES / "benign" / "config.json"))


def test_valid_against_the_official_schema(log: dict[str, object]) -> None:
    if not SCHEMA.exists():
        pytest.skip("../shared/testdata/schemas is not beside this checkout")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)
    validator(schema).validate(log)


def test_github_code_scanning_requirements(log: dict[str, object]) -> None:
    assert log["$schema"] and log["version"] == "2.1.0"
    [run] = log["runs"]  # type: ignore[misc]
    driver = run["tool"]["driver"]
    assert driver["name"] == "modeltrust"
    rule_ids = [r["id"] for r in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids)) and rule_ids
    for rule in driver["rules"]:
        for key in ("shortDescription", "fullDescription", "help"):
            assert rule[key]["text"], (rule["id"], key)
        assert 0.1 <= float(rule["properties"]["security-severity"]) <= 10.0
    assert run["results"]
    for result in run["results"]:
        assert result["message"]["text"] and result["ruleId"] in rule_ids
        [location] = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"]
        assert {"startLine", "startColumn", "endLine", "endColumn"} <= set(physical["region"])
        assert result["partialFingerprints"]["primaryLocationLineHash"]
    assert len(run["results"]) <= 25_000 and len(rule_ids) <= 25_000


def test_members_and_offsets_are_kept(log: dict[str, object]) -> None:
    [run] = log["runs"]  # type: ignore[misc]
    torch = [
        r
        for r in run["results"]
        if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("torch_zip_payload.pt")
        and r["ruleId"] == "pickle-os-command"
    ]
    assert torch and torch[0]["properties"]["members"][0].endswith("data.pkl")
    assert torch[0]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].endswith(
        f"@{torch[0]['properties']['offset']}"
    )
    assert torch[0]["level"] == "error"


def test_output_is_deterministic(tmp_path: Path) -> None:
    first = sarif_of(str(FIXTURES / "malicious" / "inst_opcode.pkl"))
    second = sarif_of(str(FIXTURES / "malicious" / "inst_opcode.pkl"))
    assert first == second


def test_info_findings_are_not_alerts() -> None:
    """A README is text data (info): code scanning would show it as an alert."""
    log = sarif_of(str(ROOT / "examples" / "tiny-model"), str(FIXTURES / "malicious" / "os_system_p4.pkl"))
    [run] = log["runs"]  # type: ignore[misc]
    levels = {r["properties"]["severity"] for r in run["results"]}
    assert levels == {"critical"}  # the README's info finding is not an alert
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {r["ruleId"] for r in run["results"]}


def test_uris_name_the_file_that_was_scanned(tmp_path: Path) -> None:
    """Relative paths stay relative (`.hidden/` is not `hidden/`), absolute ones are
    file:// URIs, and spaces and other characters are percent-encoded."""
    import os
    from urllib.parse import unquote, urlsplit

    evil = (FIXTURES / "malicious" / "os_system_p4.pkl").read_bytes()
    for name in (".hidden/evil.pkl", "my models/évil 1.pkl"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(evil)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        relative = sarif_of(".hidden", "./my models")
    finally:
        os.chdir(cwd)
    absolute = sarif_of(str(tmp_path / ".hidden" / "evil.pkl"))

    def uris(log: dict[str, object]) -> set[str]:
        [run] = log["runs"]  # type: ignore[misc]
        return {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}

    assert uris(relative) == {".hidden/evil.pkl", "my%20models/%C3%A9vil%201.pkl"}
    [uri] = uris(absolute)
    assert urlsplit(uri).scheme == "file" and unquote(urlsplit(uri).path) == str(
        tmp_path / ".hidden" / "evil.pkl"
    )


def test_targets_that_could_not_be_scanned_fail_the_invocation(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["scan", "--format", "sarif", str(tmp_path / "missing"), str(FIXTURES / "benign")]
    )
    assert result.exit_code == 2
    log = json.loads(result.stdout)
    [invocation] = log["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    [notice] = invocation["toolExecutionNotifications"]
    assert notice["level"] == "error" and "no such file" in notice["message"]["text"]
    assert notice["properties"]["target"] == str(tmp_path / "missing")
    if SCHEMA.exists():
        jsonschema = pytest.importorskip("jsonschema")
        schema = json.loads(SCHEMA.read_text())
        jsonschema.validators.validator_for(schema)(schema).validate(log)
    clean = sarif_of(str(FIXTURES / "benign" / "config.json"))
    assert clean["runs"][0]["invocations"] == [{"executionSuccessful": True}]  # type: ignore[index]
