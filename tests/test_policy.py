"""Policies: thresholds, severity overrides, waivers with reasons and expiry."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from modeltrust.cli.main import cli
from modeltrust.cli.scan_cmd import scan as scan_cmd
from modeltrust.errors import ConfigError
from modeltrust.findings import Severity
from modeltrust.policy import load_policy, resolve_policy

from .conftest import FIXTURES, ROOT, scan_paths

cli.add_command(scan_cmd)
UNKNOWN_CLASS = b"\x80\x04\x8c\x0cmylib.models\x8c\x03Net\x93)\x81."


def write_policy(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text("kind: policy\nversion: 1\n" + body)
    return path


def test_builtin_policies_load() -> None:
    for name, fail_on in (
        ("default", Severity.MEDIUM),
        ("strict", Severity.LOW),
        ("permissive-research", Severity.HIGH),
    ):
        assert resolve_policy(name, ROOT / "rules").fail_on is fail_on


def test_waiver_marks_but_keeps_the_finding(tmp_path: Path) -> None:
    sample = tmp_path / "model.pkl"
    sample.write_bytes(UNKNOWN_CLASS)
    policy = load_policy(
        write_policy(
            tmp_path,
            "exceptions:\n  - rule: pickle-unknown-import\n    subject: 'mylib.*'\n"
            "    reason: in-house classes, reviewed\n    expires: 2999-01-01\n",
        )
    )
    report = policy.apply(scan_paths(sample))
    [finding] = report.findings
    assert finding.waiver.startswith("in-house classes") and not report.at_or_above(Severity.MEDIUM)


def test_expired_waiver_no_longer_applies(tmp_path: Path) -> None:
    sample = tmp_path / "model.pkl"
    sample.write_bytes(UNKNOWN_CLASS)
    policy = load_policy(
        write_policy(tmp_path, "exceptions:\n  - rule: '*'\n    reason: old\n    expires: 2020-01-01\n")
    )
    report = policy.apply(scan_paths(sample), today=datetime.date(2026, 1, 1))
    assert report.at_or_above(Severity.MEDIUM) and policy.expired(datetime.date(2026, 1, 1))


def test_severity_override(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, "overrides:\n  pickle-os-command: low\n"))
    report = policy.apply(scan_paths(FIXTURES / "malicious" / "os_system_p2.pkl"))
    assert [f.severity for f in report.findings] == [Severity.LOW]


@pytest.mark.parametrize(
    "body, message",
    [
        ("exceptions:\n  - rule: x\n    expires: 2999-01-01\n", "reason"),
        ("exceptions:\n  - rule: x\n    reason: r\n", "expires"),
        ("exceptions:\n  - rule: x\n    reason: r\n    expires: soon\n", "date"),
        ("fail_on: urgent\n", "unknown severity"),
        ("failon: high\n", "unknown keys"),
    ],
)
def test_bad_policies_are_rejected(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_policy(write_policy(tmp_path, body))


def test_cli_policy_and_fail_on_precedence(tmp_path: Path) -> None:
    sample = tmp_path / "model.pkl"
    sample.write_bytes(UNKNOWN_CLASS)  # one medium finding
    runner = CliRunner()
    assert runner.invoke(cli, ["scan", str(sample)]).exit_code == 1
    assert runner.invoke(cli, ["scan", "--policy", "permissive-research", str(sample)]).exit_code == 0
    assert (
        runner.invoke(
            cli, ["scan", "--policy", "permissive-research", "--fail-on", "low", str(sample)]
        ).exit_code
        == 1
    )
    result = runner.invoke(cli, ["scan", "--policy", "nope", str(sample)])
    assert result.exit_code == 2 and "no policy 'nope'" in result.stderr
    out = runner.invoke(cli, ["scan", "--policy", "strict", "--format", "json", str(sample)]).stdout
    assert json.loads(out)["verdict"]["policy"] == "strict"
