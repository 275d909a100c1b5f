"""`modeltrust scan hf://datasets/...` on the local test Hub: every Parquet,
Arrow and shard file is reported with the scanner that covered it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from modeltrust.cli.main import cli
from modeltrust.cli.scan_cmd import scan

from .conftest import FIXTURES, ROOT

sys.path.insert(0, str(ROOT / "fixtures"))
from hubserver import HubServer

cli.add_command(scan)
CARD = b"---\nlicense: cc-by-4.0\npretty_name: tiny\n---\n# tiny dataset\n"
BENIGN = FIXTURES / "benign" / "datasets"
EVIL = FIXTURES / "malicious" / "datasets"
EXPECTED = {
    "data/train-00000-of-00001.parquet": "parquet",
    "data/extensions.feather": "arrow",
    "saved/train/data-00000-of-00001.arrow": "arrow",
    "shards/shard-000000.tar": "webdataset",
    "README.md": "data",
}


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        files = {
            "README.md": CARD,
            "data/train-00000-of-00001.parquet": (BENIGN / "pandas.parquet").read_bytes(),
            "data/extensions.feather": (BENIGN / "pyarrow_extensions.feather").read_bytes(),
            "saved/train/data-00000-of-00001.arrow": (
                BENIGN / "saved/train/data-00000-of-00001.arrow"
            ).read_bytes(),
            "shards/shard-000000.tar": (BENIGN / "shard-000000.tar").read_bytes(),
        }
        server.add_repo("org/tabular", files, repo_type="dataset")
        evil = {
            **files,
            "data/train-00000-of-00001.parquet": (EVIL / "py_extension_type.parquet").read_bytes(),
        }
        server.add_repo("org/poisoned", evil, repo_type="dataset")
        yield server


def _scan(hub: HubServer, tmp_path: Path, *args: str) -> tuple[int, dict[str, object]]:
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    result = CliRunner().invoke(cli, ["scan", "--format", "json", *args], env=env)
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize("remote", [False, True])
def test_each_dataset_file_names_its_scanner(hub: HubServer, tmp_path: Path, remote: bool) -> None:
    code, report = _scan(hub, tmp_path, *(["--remote"] if remote else []), "hf://datasets/org/tabular")
    covered = {str(a["path"]).split("@", 1)[1].split("/", 1)[1]: a["scanner"] for a in report["artifacts"]}  # type: ignore[union-attr]
    assert covered == EXPECTED
    assert code == 0, report["findings"]


def test_hub_dataset_is_summarised_with_its_card(hub: HubServer, tmp_path: Path) -> None:
    from modeltrust.config import ScanConfig
    from modeltrust.engine import scan as scan_api
    from modeltrust.sources.hub import HubSettings

    settings = HubSettings(endpoint=hub.url, cache_dir=str(tmp_path / "hf"))
    report = scan_api(ScanConfig(targets=("hf://datasets/org/tabular",), hub=settings))
    (summary,) = report.datasets
    assert (summary.kind, summary.license, summary.name) == ("hub", "cc-by-4.0", "tiny")
    assert summary.root == report.sources[0]["uri"]  # the repo at the scanned commit
    assert {f.format for f in summary.files} == {"parquet", "arrow", "arrow-stream"}


@pytest.mark.parametrize(
    "target", ["hf://datasets/org/tabular@main", "https://huggingface.co/datasets/org/tabular/tree/main"]
)
def test_a_hub_dataset_named_any_way_is_summarised_in_the_json_report(
    hub: HubServer, tmp_path: Path, target: str
) -> None:
    code, report = _scan(hub, tmp_path, target)
    [summary] = report["datasets"]  # type: ignore[misc]
    assert code == 0 and summary["kind"] == "hub" and summary["license"] == "cc-by-4.0"
    assert summary["root"] == report["sources"][0]["uri"]  # type: ignore[index]
    assert {f["format"] for f in summary["files"]} == {"parquet", "arrow", "arrow-stream"}


def test_poisoned_dataset_repo_fails(hub: HubServer, tmp_path: Path) -> None:
    code, report = _scan(hub, tmp_path, "hf://datasets/org/poisoned")
    rules = {f["rule_id"]: f for f in report["findings"]}  # type: ignore[union-attr]
    assert code == 1 and rules["arrow-python-extension"]["severity"] == "critical"
    assert rules["arrow-python-extension"]["path"].endswith("/data/train-00000-of-00001.parquet")
