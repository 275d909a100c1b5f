"""Repository fixtures (fixtures/repos/, built by fixtures/repos.py) against the
real loaders: each malicious repository's payload really runs when its library
loads it, the scan reports every repository at the severity its manifest
promises, and everything the loader opened or imported, the scan analysed."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from modeltrust.findings import ScanReport, Severity

from .conftest import FIXTURES, scan_paths
from .oracle import RepoOracleResult, run_repo_loader

REPOS = FIXTURES / "repos"
MANIFEST: dict[str, dict[str, str | bool]] = json.loads((REPOS / "manifest.json").read_text())
FOLDERS = sorted(name for name in MANIFEST if (REPOS / name).is_dir())
PROVEN = sorted(name for name in FOLDERS if MANIFEST[name]["malicious"] and MANIFEST[name]["loader"])
LOADED = sorted(name for name in FOLDERS if MANIFEST[name]["loader"])


def _target(name: str) -> Path:
    """What the loader is given: the folder, or its single model file."""
    folder = REPOS / name
    loader = MANIFEST[name]["loader"]
    patterns = {"keras": "*.keras", "onnx": "*.onnx", "onnxruntime": "*.onnx", "gguf": "*.gguf"}
    pattern = {**patterns, "jinja2": "*.jinja", "torch-export": "*.pt2"}.get(str(loader))
    files = sorted(folder.glob(pattern)) if pattern else []
    return files[0] if files else folder


@functools.cache
def _load(name: str) -> RepoOracleResult:
    """One load per repository, shared by the tests below (each costs a process)."""
    return run_repo_loader(str(MANIFEST[name]["loader"]), _target(name))


def _describe(report: ScanReport) -> str:
    return "; ".join(f"{f.severity.label} {f.rule_id} {f.message} at {f.location}" for f in report.findings)


def test_manifest_covers_every_repository() -> None:
    on_disk = {
        p.relative_to(REPOS).as_posix() for side in ("malicious", "benign") for p in (REPOS / side).iterdir()
    }
    assert on_disk == set(MANIFEST)


@pytest.mark.parametrize("name", FOLDERS)
def test_scan_reports_the_promised_severity(name: str) -> None:
    report = scan_paths(REPOS / name)
    top = report.max_severity or Severity.INFO
    expect = str(MANIFEST[name]["expect"])
    if expect == "info":
        assert top < Severity.MEDIUM, _describe(report)
    elif expect == "critical":
        assert top is Severity.CRITICAL, _describe(report)
    elif MANIFEST[name]["malicious"]:
        assert top >= Severity.HIGH, _describe(report)
    else:  # benign remote code: high by design, never critical
        assert top is Severity.HIGH, _describe(report)


@pytest.mark.slow  # a process per repository, loading transformers, keras or onnx
@pytest.mark.parametrize("name", PROVEN)
def test_payload_runs_with_the_real_loader(name: str) -> None:
    result = _load(name)
    if Path(name).name.startswith(
        "onnx-"
    ):  # onnx >= 1.17 refuses symlinked external data; onnxruntime 1.16 did not
        assert "symbolic link" in result.error or not result.error
        return
    if Path(name).name.startswith("gguf-"):  # read by gguf, rendered as llama-cpp-python < 0.2.72 did
        assert result.attributes and "__globals__" in result.attributes[0], result.error
    assert result.marker_created, result.error


@pytest.mark.slow
@pytest.mark.parametrize("name", LOADED)
def test_scan_covers_what_the_loader_opens_and_imports(name: str) -> None:
    loader = str(MANIFEST[name]["loader"])
    result = _load(name)
    folder = REPOS / name
    report = scan_paths(folder)
    scanned = {Path(a.path).relative_to(folder).as_posix() for a in report.artifacts}
    if loader in ("transformers", "sentence-transformers", "diffusers"):
        imported = {
            Path(f.location.path).relative_to(folder).as_posix()
            for f in report.findings
            if f.rule_id == "code-loader-imports"
        }
        # transformers also tries names that do not exist (`from .a.b import c` -> a.b.py)
        opened_code = {p for p in result.opened if p.endswith(".py") and (folder / p).is_file()}
        assert opened_code, result.error
        assert opened_code <= imported, (opened_code, imported)
        assert "train.py" not in imported  # nothing imports it
    elif loader == "jinja2":
        looked_up = set(result.attributes)
        underscored = {a for a in looked_up if a.startswith("_")}
        loud = report.max_severity is not None and report.max_severity >= Severity.HIGH
        assert bool(underscored) == loud, (underscored, _describe(report))
    else:
        opened = {p for p in result.opened if not p.startswith("..") and (folder / p).is_file()}
        assert opened <= scanned, (opened, scanned)
        if loader == "gguf":
            template = result.attributes[0]
            assert ("__globals__" in template) == (report.max_severity is Severity.CRITICAL)
