"""--baseline: accepted findings stay visible; only new ones fail the gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from modeltrust.cli.main import cli
from modeltrust.cli.scan_cmd import scan

from ..conftest import FIXTURES

cli.add_command(scan)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def _repo(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "repo"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(FIXTURES / "malicious" / name, folder / name)
    return folder


def test_only_new_findings_fail(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "os_system_p4.pkl", "inst_opcode.pkl")
    baseline = tmp_path / "baseline.json"
    code, _, _ = run("scan", "--write-baseline", str(baseline), str(repo))
    assert code == 1 and json.loads(baseline.read_text())["findings"]

    code, out, _ = run("scan", "--baseline", str(baseline), str(repo))
    assert code == 0, out
    assert "accepted in baseline" in out  # still shown, marked as accepted

    _repo(tmp_path, "torch_zip_payload.pt")
    code, out, _ = run("scan", "--baseline", str(baseline), "--format", "json", str(repo))
    report = json.loads(out)
    failing = {f["path"] for f in report["findings"] if not f["waiver"] and f["severity"] != "info"}
    assert code == 1 and failing == {str(repo / "torch_zip_payload.pt")}
    accepted = {Path(f["path"]).name for f in report["findings"] if f["waiver"]}
    assert accepted == {"os_system_p4.pkl", "inst_opcode.pkl"}


def test_fingerprint_ignores_the_offset_but_not_the_subject(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "os_system_p4.pkl")
    baseline = tmp_path / "baseline.json"
    run("scan", "--write-baseline", str(baseline), str(repo))
    data = json.loads(baseline.read_text())
    for finding in data["findings"]:
        finding.pop("fingerprint")  # older reports: recomputed from the fields
        finding["offset"] = 12345
    baseline.write_text(json.dumps(data))
    assert run("scan", "--baseline", str(baseline), str(repo))[0] == 0
    for finding in data["findings"]:
        finding["subject"] = "something.else"
    baseline.write_text(json.dumps(data))
    assert run("scan", "--baseline", str(baseline), str(repo))[0] == 1


def test_unreadable_baseline_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    code, _, err = run("scan", "--baseline", str(bad), str(FIXTURES / "benign" / "array.npy"))
    assert code == 2 and "not a JSON report" in err and "Traceback" not in err
