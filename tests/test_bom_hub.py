"""BOMs of Hugging Face repos served by the local test Hub (fixtures/hubserver.py):
a fine-tune whose card names its base model and datasets, the dataset itself,
the two together (one data component), and a tampered file."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from modeltrust.cli.bom_cmd import bom
from modeltrust.cli.main import cli
from modeltrust.cli.scan_cmd import scan

from .bomcheck import EPOCH, assert_valid, check_golden, components, depends_on, props, sha256_of
from .conftest import FIXTURES, ROOT

sys.path.insert(0, str(ROOT / "fixtures"))
from bom_fixtures import dataset_files, model_files
from hubserver import HubServer

cli.add_command(bom)
cli.add_command(scan)
EVIL = (FIXTURES / "malicious" / "torch_zip_payload.pt").read_bytes()


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        server.add_repo("acme/tiny-finetune", model_files())
        server.add_repo("acme/tiny-data", dataset_files(), repo_type="dataset")
        server.add_repo("acme/swapped", model_files())
        server.tamper("acme/swapped", "pytorch_model.bin", EVIL)
        yield server


def bom_of(hub: HubServer, tmp_path: Path, *args: str) -> tuple[str, dict[str, Any]]:
    env = {
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "SOURCE_DATE_EPOCH": EPOCH,
    }
    result = CliRunner().invoke(cli, ["bom", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout, json.loads(result.stdout)


def commit(hub: HubServer, repo: str, kind: str = "model") -> str:
    return hub.state.repos[(kind, repo)].refs["main"]


@pytest.mark.parametrize("spec", ["1.6", "1.7"])
def test_hub_model_bom_is_valid(hub: HubServer, tmp_path: Path, spec: str) -> None:
    sha = commit(hub, "acme/tiny-finetune")
    text, _ = bom_of(hub, tmp_path, f"hf://acme/tiny-finetune@{sha}", "--spec", spec)
    assert_valid(text, spec)


def test_hub_model_golden(hub: HubServer, tmp_path: Path) -> None:
    sha = commit(hub, "acme/tiny-finetune")
    text, doc = bom_of(hub, tmp_path, f"hf://acme/tiny-finetune@{sha}")
    check_golden("bom_hub_model.json", text, hub.url)
    model = next(m for m in components(doc, "machine-learning-model") if "modelCard" in m)
    assert model["version"] == sha
    assert model["purl"] == f"pkg:huggingface/acme/tiny-finetune@{sha}"
    assert model["bom-ref"] == model["purl"]
    links = {r["type"]: r["url"] for r in model["externalReferences"]}
    assert links == {
        "distribution": f"{hub.url}/acme/tiny-finetune",
        "model-card": f"{hub.url}/acme/tiny-finetune/blob/{sha}/README.md",
    }
    # Every Hub file matched the Hub's record and keeps the hash verified while downloading.
    files = {c["name"]: c for c in components(doc, "file")}
    for name, data in model_files().items():
        assert props(files[name], "modeltrust:hub:hash") == ["matched"]
        import hashlib

        assert sha256_of(files[name]) == hashlib.sha256(data).hexdigest()
    # Lineage: base model and both datasets.
    deps = depends_on(doc, model["bom-ref"])
    assert {"pkg:huggingface/acme/tiny-base", "dataset:acme/tiny-data", "dataset:squad"} <= set(deps)
    metrics = model["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]
    assert {"type": "accuracy", "value": "0.91", "slice": "text-classification / Tiny Data / test"} in metrics
    # Repo-level findings (pickle weights beside safetensors) affect the file they name.
    vuln = next(v for v in doc["vulnerabilities"] if v["id"] == "hub-unsafe-format-alternative")
    assert vuln["affects"] == [{"ref": files["pytorch_model.bin"]["bom-ref"]}]


def test_hub_dataset_golden(hub: HubServer, tmp_path: Path) -> None:
    sha = commit(hub, "acme/tiny-data", "dataset")
    text, doc = bom_of(hub, tmp_path, f"hf://datasets/acme/tiny-data@{sha}")
    assert_valid(text, "1.6")
    check_golden("bom_hub_dataset.json", text, hub.url)
    assert doc["metadata"]["component"]["type"] == "data"
    (dataset,) = components(doc, "data")
    assert dataset["version"] == sha
    assert dataset["licenses"] == [{"license": {"id": "CC-BY-4.0"}}]
    assert dataset["data"][0]["description"].startswith("One hundred labelled English sentences")
    assert props(dataset, "modeltrust:dataset:source") == ["original"]
    assert dataset["data"][0]["contents"]["url"] == f"{hub.url}/datasets/acme/tiny-data"
    assert sorted(depends_on(doc, dataset["bom-ref"])) == sorted(
        c["bom-ref"] for c in components(doc, "file")
    )


def test_a_scanned_dataset_is_the_one_the_card_names(hub: HubServer, tmp_path: Path) -> None:
    model_sha, data_sha = commit(hub, "acme/tiny-finetune"), commit(hub, "acme/tiny-data", "dataset")
    text, doc = bom_of(
        hub, tmp_path, f"hf://acme/tiny-finetune@{model_sha}", f"hf://datasets/acme/tiny-data@{data_sha}"
    )
    assert_valid(text, "1.6")
    datasets = {c["name"]: c for c in components(doc, "data")}
    assert set(datasets) == {"acme/tiny-data", "squad"}
    scanned = datasets["acme/tiny-data"]
    assert props(scanned, "modeltrust:dataset:scanned") == ["true"]
    model = next(m for m in components(doc, "machine-learning-model") if "modelCard" in m)
    assert {"ref": scanned["bom-ref"]} in model["modelCard"]["modelParameters"]["datasets"]
    assert scanned["bom-ref"] in depends_on(doc, "root")


def test_a_tampered_hub_file_is_marked_and_a_vulnerability(hub: HubServer, tmp_path: Path) -> None:
    _, doc = bom_of(hub, tmp_path, "hf://acme/swapped")
    files = {c["name"]: c for c in components(doc, "file")}
    bad = files.get("pytorch_model.bin")
    vulns = [v for v in doc["vulnerabilities"] if v["id"] == "hub-hash-mismatch"]
    assert vulns and vulns[0]["ratings"][0]["severity"] == "critical"
    if bad is not None:  # the client may refuse the file outright (size check)
        assert props(bad, "modeltrust:hub:hash") == ["mismatch"]
        assert vulns[0]["affects"] == [{"ref": bad["bom-ref"]}]
    assert props(doc["metadata"], "modeltrust:verdict") == ["fail"]


def test_verified_hub_digests_are_reused_not_recomputed(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modeltrust.digests as digests

    def no_second_pass(*args: object, **kwargs: object) -> None:
        raise AssertionError("a Hub file was hashed again after its verified download")

    monkeypatch.setattr(digests, "hash_file", no_second_pass)
    monkeypatch.setattr(digests.PrefixHasher, "__init__", no_second_pass)
    _, doc = bom_of(hub, tmp_path, f"hf://acme/tiny-finetune@{commit(hub, 'acme/tiny-finetune')}")
    assert all(sha256_of(c) for c in components(doc, "file"))


def test_scan_remote_bom_says_the_hashes_were_not_checked(hub: HubServer, tmp_path: Path) -> None:
    """--remote reads only what the scanners need: the BOM then has no SHA-256
    it could not vouch for, says so per file, and keeps the Hub's card facts."""
    sha = commit(hub, "acme/tiny-finetune")
    out = tmp_path / "remote.json"
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "SOURCE_DATE_EPOCH": EPOCH}
    result = CliRunner().invoke(
        cli, ["scan", "--remote", f"hf://acme/tiny-finetune@{sha}", "--bom", str(out)], env=env
    )
    assert result.exit_code in (0, 1), result.output
    text = out.read_text()
    assert_valid(text, "1.6")
    doc = json.loads(text)
    files = components(doc, "file")
    assert files and all(sha256_of(f) is None for f in files)
    assert all(props(f, "modeltrust:hub:hash") == ["not-checked"] for f in files)
    model = next(m for m in components(doc, "machine-learning-model") if "modelCard" in m)
    assert model["licenses"] == [{"license": {"id": "MIT"}}]  # from the Hub's card data


def test_a_local_folder_named_like_a_repo_is_not_the_hub_repo(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "acme" / "tiny-finetune"
    local.mkdir(parents=True)
    for name, data in model_files().items():
        (local / name).write_bytes(data)
    monkeypatch.chdir(tmp_path)
    sha = commit(hub, "acme/tiny-finetune")
    _, doc = bom_of(hub, tmp_path, "acme/tiny-finetune", f"hf://acme/tiny-finetune@{sha}")
    refs = {m["bom-ref"] for m in components(doc, "machine-learning-model") if "modelCard" in m}
    assert refs == {"model:tiny-finetune", f"pkg:huggingface/acme/tiny-finetune@{sha}"}


def test_bom_remote_is_the_same_as_scan_remote_bom(hub: HubServer, tmp_path: Path) -> None:
    sha = commit(hub, "acme/tiny-finetune")
    out = tmp_path / "scan.json"
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "SOURCE_DATE_EPOCH": EPOCH}
    CliRunner().invoke(
        cli, ["scan", "--remote", f"hf://acme/tiny-finetune@{sha}", "--bom", str(out)], env=env
    )
    text, _ = bom_of(hub, tmp_path, "--remote", f"hf://acme/tiny-finetune@{sha}")
    assert json.loads(text) == json.loads(out.read_text())
