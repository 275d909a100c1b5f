"""Scanning Hugging Face repos through the real huggingface_hub client against
a local Hub-compatible server on 127.0.0.1 (fixtures/hubserver.py)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from modeltrust.cli.fetch_cmd import fetch
from modeltrust.cli.main import cli
from modeltrust.cli.scan_cmd import scan
from modeltrust.sources.hub import HubTarget, parse_target

from .conftest import FIXTURES, ROOT

sys.path.insert(0, str(ROOT / "fixtures"))
from hubserver import HubServer

cli.add_command(scan)
cli.add_command(fetch)
TOKEN = "hf_test_secret_token_1234567890"
BENIGN_BIN = (FIXTURES / "benign" / "state_dict.pt").read_bytes()
EVIL_BIN = (FIXTURES / "malicious" / "torch_zip_payload.pt").read_bytes()
SAFETENSORS = (FIXTURES / "benign" / "model.safetensors").read_bytes()
CARD = b"---\nlicense: apache-2.0\nlibrary_name: transformers\ntags: [text-classification]\n---\n# tiny\n"
CONFIG = json.dumps({"architectures": ["TinyModel"], "hidden_size": 8}).encode()


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        server.state.tokens.add(TOKEN)
        files = {"config.json": CONFIG, "pytorch_model.bin": BENIGN_BIN, "README.md": CARD}
        server.add_repo("org/tiny", files, tags={"v1.0": None})
        server.add_repo("org/tiny", {**files, "model.safetensors": SAFETENSORS})  # a newer main
        server.add_repo("org/evil", {"config.json": CONFIG, "pytorch_model.bin": EVIL_BIN})
        server.add_repo("org/gated", {"config.json": CONFIG, "README.md": CARD}, gated=True)
        server.add_repo(
            "org/tampered", {"config.json": CONFIG, "pytorch_model.bin": BENIGN_BIN, "README.md": CARD}
        )
        server.tamper("org/tampered", "pytorch_model.bin", EVIL_BIN)
        server.add_repo(
            "org/flagged", {"config.json": CONFIG, "README.md": CARD},
            security={"scansDone": True, "filesWithIssues": [{"path": "config.json", "level": "unsafe"}]},
        )  # fmt: skip
        loader = b"import datasets\n\nclass Tiny(datasets.GeneratorBasedBuilder):\n    pass\n"
        server.add_repo("org/data", {"data.csv": b"a,b\n1,2\n", "tiny.py": loader, "README.md": CARD},
                        repo_type="dataset")  # fmt: skip
        yield server


def run(hub: HubServer, tmp_path: Path, *args: str, token: bool = False) -> Result:
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    if token:
        env["HF_TOKEN"] = TOKEN
    return CliRunner().invoke(cli, list(args), env=env)


def report(result: Result) -> dict[str, object]:
    data: dict[str, object] = json.loads(result.stdout)
    return data


@pytest.mark.parametrize(
    "text, expected",
    [
        ("hf://org/name", HubTarget("model", "org/name", None)),
        ("hf://org/name@v1.0", HubTarget("model", "org/name", "v1.0")),
        ("hf://datasets/org/data@" + "a" * 40, HubTarget("dataset", "org/data", "a" * 40)),
        ("https://huggingface.co/org/name/tree/dev", HubTarget("model", "org/name", "dev")),
        ("https://huggingface.co/datasets/org/data", HubTarget("dataset", "org/data", None)),
        ("org/name@main", None),
        ("./models/org", None),
    ],
)
def test_targets(text: str, expected: HubTarget | None) -> None:
    assert parse_target(text) == expected
    assert parse_target("org/name@main", assume_hub=True) == HubTarget("model", "org/name", "main")


def test_branch_tag_and_sha_name_one_commit(hub: HubServer, tmp_path: Path) -> None:
    repo = hub.state.repos[("model", "org/tiny")]
    tag_sha, main_sha = repo.refs["v1.0"], repo.refs["main"]
    by_tag = report(run(hub, tmp_path, "scan", "--format", "json", "hf://org/tiny@v1.0"))
    by_sha = report(run(hub, tmp_path, "scan", "--format", "json", f"hf://org/tiny@{tag_sha}"))
    by_branch = report(run(hub, tmp_path, "scan", "--format", "json", "hf://org/tiny"))
    assert by_tag["sources"][0]["commit"] == by_sha["sources"][0]["commit"] == tag_sha  # type: ignore[index]
    assert by_branch["sources"][0]["commit"] == main_sha  # type: ignore[index]
    rules = lambda r: {f["rule_id"] for f in r["findings"]}  # noqa: E731
    assert "hub-unpinned" in rules(by_tag) and "hub-unpinned" not in rules(by_sha)
    assert "hub-unsafe-format-alternative" in rules(by_branch)  # main added safetensors beside the .bin
    paths = [a["path"] for a in by_sha["artifacts"]]  # type: ignore[union-attr]
    assert f"hf://org/tiny@{tag_sha}/pytorch_model.bin" in paths
    assert all(len(a["sha256"]) == 64 for a in by_sha["artifacts"])  # type: ignore[union-attr]
    assert by_sha["sources"][0]["license"] == "apache-2.0"  # type: ignore[index]


def test_malicious_repo_fails_with_evidence(hub: HubServer, tmp_path: Path) -> None:
    result = run(hub, tmp_path, "scan", "hf://org/evil@main")
    assert result.exit_code == 1
    assert "pickle-os-command" in result.stdout and "hf://org/evil@" in result.stdout
    assert (
        "hub-no-license" in run(hub, tmp_path, "scan", "-v", "--fail-on", "critical", "hf://org/evil").stdout
    )


def test_tampered_file_is_critical_and_fetch_names_it(hub: HubServer, tmp_path: Path) -> None:
    result = run(hub, tmp_path, "scan", "--format", "json", "hf://org/tampered")
    found = {f["rule_id"]: f for f in report(result)["findings"]}  # type: ignore[union-attr]
    assert found["hub-hash-mismatch"]["severity"] == "critical"
    assert found["hub-hash-mismatch"]["path"].endswith("/pytorch_model.bin")
    fetched = run(hub, tmp_path / "f", "fetch", "hf://org/tampered")
    assert fetched.exit_code == 1 and "MISMATCH pytorch_model.bin" in fetched.stderr


@pytest.mark.parametrize(
    "target, message",
    [("hf://org/missing", "repository not found"), ("hf://org/tiny@no-such-branch", "not found")],
)
def test_missing_repo_or_revision_is_exit_2(
    hub: HubServer, tmp_path: Path, target: str, message: str
) -> None:
    result = run(hub, tmp_path, "scan", target)
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_gated_repo_needs_the_token_which_is_never_printed(hub: HubServer, tmp_path: Path) -> None:
    denied = run(hub, tmp_path, "scan", "hf://org/gated")
    assert denied.exit_code == 2 and "gated" in denied.stderr
    allowed = run(hub, tmp_path, "scan", "-v", "--format", "json", "hf://org/gated", token=True)
    assert allowed.exit_code == 0
    for text in (denied.stdout, denied.stderr, allowed.stdout, allowed.stderr):
        assert TOKEN not in text


def test_second_scan_of_a_pinned_revision_downloads_nothing(hub: HubServer, tmp_path: Path) -> None:
    sha = hub.state.repos[("model", "org/tiny")].refs["main"]
    assert run(hub, tmp_path, "scan", f"hf://org/tiny@{sha}").exit_code in (0, 1)
    hub.reset_counters()
    again = run(hub, tmp_path, "scan", f"hf://org/tiny@{sha}")
    assert again.exit_code in (0, 1)
    assert not [r for r in hub.state.requests if "/resolve/" in r], hub.state.requests


def test_server_errors_are_retried_then_reported(hub: HubServer, tmp_path: Path) -> None:
    hub.state.faults.fail_next = 2
    assert run(hub, tmp_path, "scan", "hf://org/tiny@v1.0").exit_code == 0
    hub.state.faults.fail_next = 50
    failed = run(hub, tmp_path, "scan", "hf://org/tiny@v1.0")
    hub.state.faults.fail_next = 0
    assert failed.exit_code == 2 and "did not answer" in failed.stderr


def test_dataset_with_a_loading_script(hub: HubServer, tmp_path: Path) -> None:
    result = run(hub, tmp_path, "scan", "--format", "json", "hf://datasets/org/data")
    found = {(f["rule_id"], f["path"].rsplit("/", 1)[-1]) for f in report(result)["findings"]}  # type: ignore[union-attr]
    assert ("code-python-file", "tiny.py") in found


def test_include_exclude(hub: HubServer, tmp_path: Path) -> None:
    result = run(hub, tmp_path, "scan", "--format", "json", "--exclude", "*.bin", "hf://org/evil")
    paths = [a["path"] for a in report(result)["artifacts"]]  # type: ignore[union-attr]
    assert result.exit_code == 0 and paths and not any(p.endswith(".bin") for p in paths)


def test_fetch_then_local_scan_gives_the_same_findings(hub: HubServer, tmp_path: Path) -> None:
    local = tmp_path / "local"
    assert run(hub, tmp_path, "fetch", "hf://org/evil", "--local-dir", str(local)).exit_code == 0
    remote = report(run(hub, tmp_path, "scan", "--format", "json", "hf://org/evil"))
    offline = report(CliRunner().invoke(cli, ["scan", "--format", "json", str(local)]))

    def key(r: dict[str, object]) -> set[tuple[str, str, object]]:
        return {
            (f["rule_id"], f["path"].rsplit("/", 1)[-1], f["offset"])  # type: ignore[index]
            for f in r["findings"]  # type: ignore[attr-defined]
            if not f["rule_id"].startswith("hub-")  # type: ignore[index]
        }

    assert key(remote) == key(offline) and key(remote)


def test_hub_scan_disagreement(hub: HubServer, tmp_path: Path) -> None:
    result = run(hub, tmp_path, "scan", "--format", "json", "hf://org/flagged")
    found = {f["rule_id"] for f in report(result)["findings"]}  # type: ignore[union-attr]
    assert "hub-scan-disagreement" in found


def _big_checkpoint(payload_pkl: bytes, tensor_bytes: int) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", payload_pkl)
        zf.writestr("archive/version", b"3\n")
        zf.writestr("archive/data/0", bytes(tensor_bytes))
    return buf.getvalue()


def test_remote_scan_reads_only_what_it_needs(hub: HubServer, tmp_path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(FIXTURES / "malicious" / "torch_zip_payload.pt") as zf:
        pkl = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
    big = _big_checkpoint(pkl, 48 << 20)
    header = json.dumps({"w": {"dtype": "F32", "shape": [12 << 20], "data_offsets": [0, 48 << 20]}}).encode()
    safetensors = len(header).to_bytes(8, "little") + header + bytes(48 << 20)
    hub.add_repo(
        "org/big", {"pytorch_model.bin": big, "model.safetensors": safetensors, "config.json": CONFIG}
    )
    hub.reset_counters()
    result = run(hub, tmp_path, "scan", "--remote", "--format", "json", "hf://org/big")
    sent = hub.state.bytes_sent
    found = {(f["rule_id"], f["path"].rsplit("/", 1)[-1]) for f in report(result)["findings"]}  # type: ignore[union-attr]
    assert ("pickle-os-command", "pytorch_model.bin") in found
    assert any(rule == "hub-remote-unverified" for rule, _ in found)
    total = len(big) + len(safetensors)
    assert sent < total / 100, f"transferred {sent} of {total} bytes"
    assert not [r for r in hub.state.requests if "data/0" in r]


def test_offline_scan_of_a_cached_pinned_revision(hub: HubServer, tmp_path: Path) -> None:
    sha = hub.state.repos[("model", "org/tiny")].refs["v1.0"]
    assert run(hub, tmp_path, "scan", f"hf://org/tiny@{sha}").exit_code == 0
    hub.reset_counters()
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    offline = CliRunner().invoke(cli, ["scan", "-v", f"hf://org/tiny@{sha}"], env=env)
    assert offline.exit_code == 0 and "hub-unverified-offline" in offline.stdout
    assert not hub.state.requests
    unpinned = CliRunner().invoke(cli, ["scan", "hf://org/tiny@v1.0"], env=env)
    assert unpinned.exit_code == 2 and "pinned" in unpinned.stderr


def test_provenance_metadata_in_the_report(hub: HubServer, tmp_path: Path) -> None:
    source = report(run(hub, tmp_path, "scan", "--format", "json", "hf://org/tiny@v1.0"))["sources"][0]  # type: ignore[index]
    assert source["architectures"] == ["TinyModel"] and source["library_name"] == "transformers"
    assert source["requested_revision"] == "v1.0" and len(source["commit"]) == 40


def test_a_hub_that_times_out_is_a_clear_error(hub: HubServer, tmp_path: Path) -> None:
    hub.state.faults.delay = 1.5
    try:
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "MODELTRUST_HUB_TIMEOUT": "0.3"}
        result = CliRunner().invoke(cli, ["scan", "hf://org/tiny@v1.0"], env=env)
    finally:
        hub.state.faults.delay = 0.0
    assert result.exit_code == 2 and "did not answer" in result.stderr and "Timeout" in result.stderr


@pytest.mark.parametrize(
    ("status", "retryable"), [(403, False), (400, False), (429, True), (500, True), (503, True), (None, True)]
)
def test_only_answers_that_may_change_are_retryable(status: int | None, retryable: bool) -> None:
    """A 403 stays a 403 however often the fleet asks; a 5xx, a 429 or no answer may not."""
    from types import SimpleNamespace

    from modeltrust.sources.hub import _explain

    class Answered(Exception):
        response = SimpleNamespace(status_code=status) if status is not None else None

    error = _explain(Answered(), HubTarget("model", "org/tiny"))
    assert error.retryable is retryable and "hf://org/tiny" in str(error)
    assert (f"HTTP {status}" if status else "Answered") in str(error)
