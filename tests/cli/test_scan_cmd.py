"""The CLI as a pipeline uses it: exit codes, JSON output, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from modeltrust.cli.main import cli
from modeltrust.cli.rules_cmd import rules
from modeltrust.cli.scan_cmd import scan

from ..conftest import FIXTURES, ROOT

cli.add_command(scan)
cli.add_command(rules)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_clean_folder_exits_0() -> None:
    code, out, _ = run("scan", str(ROOT / "examples" / "tiny-model"))
    assert code == 0 and "PASS" in out


def test_malicious_file_exits_1_and_explains() -> None:
    code, out, _ = run("scan", str(FIXTURES / "malicious" / "torch_zip_payload.pt"))
    assert code == 1
    assert "posix.system" in out and "pickle-os-command" in out and "data.pkl" in out


def test_fail_on_threshold() -> None:
    target = str(FIXTURES / "benign" / "arrays.npz")
    assert run("scan", "--fail-on", "info", target)[0] == 0
    low = FIXTURES / "malicious" / "concatenated.pkl"
    assert run("scan", "--fail-on", "critical", str(low))[0] == 1
    trailing = FIXTURES / "benign" / "builtins_p2.pkl"
    assert run("scan", "--fail-on", "low", str(trailing))[0] == 0


def test_json_report_shape(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    code, stdout, _ = run(
        "scan", "--format", "json", "-o", str(out), str(FIXTURES / "malicious" / "inst_opcode.pkl")
    )
    assert code == 1 and stdout == ""
    report = json.loads(out.read_text())
    assert report["verdict"] == {
        "passed": False,
        "policy": "default",
        "fail_on": "medium",
        "failing_findings": 1,
        "max_severity": "critical",
        "decided_by": ["fail_on medium"],
    }
    [finding] = report["findings"]
    assert finding["rule_id"] == "pickle-os-command"
    inst_at = (FIXTURES / "malicious" / "inst_opcode.pkl").read_bytes().index(b"ios\n")
    assert finding["offset"] == inst_at and finding["subject"] == "os.system"
    assert finding["why"] and finding["title"] and finding["cwe"] == "CWE-78"
    [artifact] = report["artifacts"]
    assert artifact["format"] == "pickle" and artifact["scanner"] == "pickle"


def test_text_on_stdout_and_json_report_beside_it(tmp_path: Path) -> None:
    report_path = tmp_path / "r.json"
    target = str(FIXTURES / "malicious" / "os_system_p1.pkl")
    code, out, _ = run("scan", "--json-report", str(report_path), target)
    assert code == 1 and "CRITICAL" in out
    assert json.loads(report_path.read_text())["verdict"]["passed"] is False


def test_json_to_stdout_is_pure_json() -> None:
    code, stdout, _ = run("scan", "--format", "json", "--hash", str(FIXTURES / "benign" / "array.npy"))
    report = json.loads(stdout)
    assert code == 0 and len(report["artifacts"][0]["sha256"]) == 64


@pytest.mark.parametrize(
    "args, message",
    [
        (["scan", "/nonexistent/model.bin"], "no such file"),
        (["scan", "--fail-on", "urgent", "x"], "urgent"),
        (["scan"], "Missing argument"),
        (["rules", "show", "no-such-rule"], "no rule"),
    ],
)
def test_usage_errors_exit_2_without_traceback(args: list[str], message: str) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert message in (out + err) and "Traceback" not in (out + err)


def test_bad_rules_file_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: nonsense\n")
    code, _, err = run("scan", "--rules", str(bad), str(FIXTURES / "benign" / "array.npy"))
    assert code == 2 and "unknown kind" in err and "Traceback" not in err


def test_rules_list_and_show() -> None:
    code, out, _ = run("rules", "list")
    assert code == 0 and "pickle-os-command" in out and "critical" in out
    code, out, _ = run("rules", "show", "pickle-os-command")
    assert code == 0 and "why:" in out and "subprocess" in out


def test_console_script_runs_in_a_fresh_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modeltrust", "scan", str(FIXTURES / "malicious" / "os_system_p4.pkl")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "CRITICAL" in result.stdout
