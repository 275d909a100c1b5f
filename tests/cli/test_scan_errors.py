"""What a pipeline meets when something goes wrong: every failure is one line,
no work is lost, and the exit code says what happened."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from modeltrust.cli.main import cli
from modeltrust.cli.scan_cmd import scan

from ..conftest import FIXTURES, ROOT

cli.add_command(scan)
CLEAN = str(ROOT / "examples" / "tiny-model")
MALICIOUS = str(FIXTURES / "malicious" / "os_system_p4.pkl")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_report_into_a_missing_folder_fails_before_scanning(tmp_path: Path) -> None:
    for option in ("-o", "--json-report"):
        target = tmp_path / "no-such-folder" / "report.json"
        code, out, err = run("scan", option, str(target), "--format", "json", CLEAN)
        assert code == 2 and "does not exist" in err and "Traceback" not in err + out
        assert out == "" and not target.parent.exists()


def test_report_path_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    code, _, err = run("scan", "-o", str(tmp_path), CLEAN)
    assert code == 2 and "is a directory" in err and "Traceback" not in err


def test_report_replaces_the_old_one_whole(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    report.write_text("old contents that are longer than nothing " * 1000)
    code, _, _ = run("scan", "--format", "json", "-o", str(report), MALICIOUS)
    assert code == 1 and json.loads(report.read_text())["verdict"]["passed"] is False
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind


def test_a_missing_target_does_not_stop_the_others(tmp_path: Path) -> None:
    out_file = tmp_path / "r.json"
    code, out, err = run("scan", "--json-report", str(out_file), "/nonexistent/model.bin", MALICIOUS)
    assert code == 2
    assert err.count("error:") == 1 and "/nonexistent/model.bin" in err and "Traceback" not in err
    assert "pickle-os-command" in out  # the other target was scanned and reported
    report = json.loads(out_file.read_text())
    assert report["verdict"]["passed"] is False
    assert report["errors"] == [
        {
            "target": "/nonexistent/model.bin",
            "message": "/nonexistent/model.bin: no such file or directory",
            "retryable": False,  # a missing path stays missing
        }
    ]


def test_errors_fail_even_a_clean_scan() -> None:
    code, out, _ = run("scan", "/nonexistent/model.bin", CLEAN)
    assert code == 2 and "ERROR 1 target(s) could not be scanned" in out


def test_include_and_exclude_apply_to_local_folders(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(MALICIOUS, folder / "sub" / "evil.pkl")
    shutil.copy(FIXTURES / "benign" / "array.npy", folder / "weights.npy")
    code, out, _ = run("scan", "-v", "--exclude", "sub/*", str(folder))
    assert code == 0 and "evil.pkl" not in out and "weights.npy" in out
    code, out, _ = run("scan", "-v", "--include", "*.pkl", str(folder))
    assert code == 1 and "evil.pkl" in out and "weights.npy" not in out
    code, out, _ = run("scan", "-v", "--include", "*.npy", str(folder / "sub" / "evil.pkl"))
    assert code == 0 and "0 file(s)" in out


def test_findings_that_fail_the_gate_are_shown(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("plain text\n")
    code, out, _ = run("scan", "--fail-on", "info", str(target))
    assert code == 1 and "INFO" in out and "FAIL" in out
    code, out, _ = run("scan", str(target))
    assert code == 0 and "INFO" not in out


def test_closed_pipe_keeps_the_verdict_exit_code(tmp_path: Path) -> None:
    """`modeltrust scan ... | head -1`: the reader leaving early is not 'findings'."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for target, expected in ((CLEAN, 0), (MALICIOUS, 1)):
        process = subprocess.Popen(
            [sys.executable, "-m", "modeltrust", "scan", "-v", target],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # the reader is gone before anything is written
        err = process.stderr.read().decode()
        assert process.wait(timeout=120) == expected, err
        assert "Traceback" not in err and "BrokenPipe" not in err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_a_report_that_cannot_be_written_is_one_error_line(fmt: str) -> None:
    """stdout on a full disk: exit 2 with the reason, not an internal-error traceback."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "modeltrust", "scan", "--format", fmt, CLEAN],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
        )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert (
        done.stderr.strip() == "error: cannot write the report to standard output (No space left on device)"
    )


def test_an_unreachable_hub_target_does_not_stop_a_local_one() -> None:
    env = {
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "MODELTRUST_HUB_TIMEOUT": "2",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    result = CliRunner().invoke(cli, ["scan", "-v", "hf://org/model", MALICIOUS], env=env)
    assert result.exit_code == 2
    assert result.stderr.count("error:") == 1 and "hf://org/model" in result.stderr
    assert "pickle-os-command" in result.stdout and "Traceback" not in result.stderr
    as_json = CliRunner().invoke(cli, ["scan", "--format", "json", "hf://org/model", MALICIOUS], env=env)
    [error] = json.loads(as_json.stdout)["errors"]
    assert error["target"] == "hf://org/model" and error["retryable"] is True  # the Hub did not answer
