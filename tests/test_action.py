"""The GitHub Action, run as GitHub would: its steps in order, in a temp
workspace, with the inputs, outputs and files a runner provides. The cache step
is played by the runner's temp folder surviving between two runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import FIXTURES, ROOT
from .provenance_keys import ed25519_key_pair

ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
EXPRESSION = re.compile(r"\$\{\{\s*(inputs|steps)\.([\w-]+)(?:\.outputs\.([\w-]+))?\s*\}\}")


def _index_reachable() -> bool:
    probe = subprocess.run(
        ["python3", "-m", "pip", "download", "--no-deps", "-q", "-d", os.devnull + "-x", "click"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    shutil.rmtree(os.devnull + "-x", ignore_errors=True)
    return probe.returncode == 0


def _value(text: str, inputs: dict[str, str], outputs: dict[str, dict[str, str]]) -> str:
    def substitute(match: re.Match[str]) -> str:
        kind, name, key = match.groups()
        if kind == "inputs":
            return inputs[name]
        return outputs.get(name, {}).get(key or "", "")

    return EXPRESSION.sub(substitute, text)


def run_action(workspace: Path, temp: Path, **given: str) -> tuple[dict[str, str], str, int]:
    """Run every `run:` step; returns the action's outputs, the log and the last exit code."""
    inputs = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
    inputs.update({k.replace("_", "-"): v for k, v in given.items()})
    outputs: dict[str, dict[str, str]] = {}
    log, code = "", 0
    for step in ACTION["runs"]["steps"]:
        if "run" not in step:
            continue  # actions/cache and upload-sarif: played by the runner
        output_file = temp / "github_output"
        output_file.write_text("")
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", str(temp)),
            "GITHUB_ACTION_PATH": str(ROOT),
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_WORKSPACE": str(workspace),
            "RUNNER_TEMP": str(temp),
            "RUNNER_OS": "Linux",
            "MODELTRUST_PURE_PYTHON": "1",  # a quicker install; the steps are the same
        }
        env.update({k: _value(str(v), inputs, outputs) for k, v in (step.get("env") or {}).items()})
        result = subprocess.run(
            ["bash", "-c", step["run"]], cwd=workspace, env=env, capture_output=True, text=True, timeout=900
        )
        log += result.stdout + result.stderr
        code = result.returncode
        if "id" in step:
            outputs[step["id"]] = dict(
                line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line
            )
        if code != 0:
            break
    action_outputs = {
        name: _value(spec["value"], inputs, outputs) for name, spec in ACTION["outputs"].items()
    }
    return action_outputs, log, code


def test_every_action_it_uses_is_pinned_to_a_commit() -> None:
    for step in ACTION["runs"]["steps"]:
        if "uses" in step:
            assert re.fullmatch(r"[\w./-]+@[0-9a-f]{40}", step["uses"]), step["uses"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="the action's steps are bash")
def test_action_scans_a_folder_with_a_space_and_reuses_its_environment(tmp_path: Path) -> None:
    if not _index_reachable():
        pytest.skip("the package index is not reachable: the action installs modeltrust from it")
    workspace, temp = tmp_path / "workspace", tmp_path / "runner-temp"
    temp.mkdir()
    models = workspace / "my models"
    (models / "clean").mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "tiny-model" / "config.json", models / "clean" / "config.json")
    shutil.copy(FIXTURES / "malicious" / "os_system_p4.pkl", models / "evil model.pkl")

    key = ed25519_key_pair(workspace, "attest-key").private
    outputs, log, code = run_action(
        workspace,
        temp,
        targets="my models/clean\n",
        bom="bom.json",
        attest="vetted.dsse.json",
        attest_key=str(key),
    )
    assert code == 0, log
    assert "installing into" in log
    assert outputs["verdict"] == "pass" and outputs["findings"] == "0"
    for name in ("report", "sarif", "bom", "attestation"):
        assert (workspace / outputs[name]).is_file(), name
    assert '"bomFormat": "CycloneDX"' in (workspace / "bom.json").read_text()

    outputs, log, code = run_action(workspace, temp, targets="my models/clean\nmy models/*.pkl")
    assert code == 1, log
    assert "using the cached environment" in log  # the second run installs nothing
    assert outputs["verdict"] == "fail" and outputs["max-severity"] == "critical"
    assert int(outputs["findings"]) >= 1
    sarif = (workspace / outputs["sarif"]).read_text()
    assert "evil model.pkl" in sarif and '"version": "2.1.0"' in sarif
    assert "pickle-os-command" in log  # the terminal report is in the job log

    outputs, log, code = run_action(workspace, temp, targets="no such folder")
    assert code == 2 and outputs["verdict"] == "error"
