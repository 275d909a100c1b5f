"""Fleet scanning on the local test Hub: listings, target files, each unique file
scanned once, resume, failures recorded without ending the run, executors agree."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from modeltrust.cli.fleet_cmd import fleet
from modeltrust.cli.main import cli
from modeltrust.fleet.work import FleetJob, FleetSettings, hub_settings, policy_digest, vet_target
from modeltrust.sources.hub import HubSource, HubTarget

from .conftest import FIXTURES, ROOT

sys.path.insert(0, str(ROOT / "fixtures"))
from hubserver import HubServer

cli.add_command(fleet)
WEIGHTS = (FIXTURES / "benign" / "state_dict.pt").read_bytes()
EVIL = (FIXTURES / "malicious" / "torch_zip_payload.pt").read_bytes()
SAFETENSORS = (FIXTURES / "benign" / "model.safetensors").read_bytes()
CARD = b"---\nlicense: apache-2.0\ntags: [fleet-test]\n---\n# model\n"


def _config(name: str) -> bytes:
    return json.dumps({"architectures": ["Tiny"], "name": name}).encode()


@pytest.fixture()
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        for i in range(4):  # four repos share one weights file
            files = {"config.json": _config(f"m{i}"), "model.safetensors": SAFETENSORS, "README.md": CARD}
            server.add_repo(f"acme/model-{i}", files, downloads=10 * i)
        server.add_repo(
            "acme/evil", {"config.json": _config("evil"), "pytorch_model.bin": EVIL, "README.md": CARD}
        )
        server.add_repo("other/unrelated", {"config.json": _config("x"), "pytorch_model.bin": WEIGHTS})
        server.add_repo("acme/gated", {"config.json": _config("g"), "README.md": CARD}, gated=True)
        yield server


def run(hub: HubServer, tmp_path: Path, *args: str) -> tuple[Result, list[dict[str, object]]]:
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["fleet", "--out", str(out), "--workers", "1", *args], env=env)
    lines_file = out / "results.jsonl"
    lines = [json.loads(x) for x in lines_file.read_text().splitlines()] if lines_file.exists() else []
    return result, lines


def by_target(lines: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(line["target"]): line for line in lines}


def test_hub_query_lists_and_vets_every_repo(hub: HubServer, tmp_path: Path) -> None:
    result, lines = run(hub, tmp_path, "--author", "acme", "--filter", "fleet-test", "--sort", "downloads")
    found = by_target(lines)
    expected = {f"hf://acme/model-{i}" for i in range(4)} | {"hf://acme/evil", "hf://acme/gated"}
    assert set(found) == expected, result.output
    assert found["hf://acme/evil"]["verdict"] == "fail"
    assert found["hf://acme/gated"]["status"] == "error" and result.exit_code == 2  # listed, not readable
    assert all(found[f"hf://acme/model-{i}"]["verdict"] == "pass" for i in range(4))
    assert "failed the policy" in result.output and "FAIL   hf://acme/evil" in result.output
    _, limited = run(hub, tmp_path / "b", "--author", "acme", "--filter", "fleet-test", "--limit", "2")
    assert len(limited) == 2


def test_a_shared_file_is_scanned_once_and_a_rerun_downloads_nothing(hub: HubServer, tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("".join(f"hf://acme/model-{i}\n" for i in range(4)) + "# a comment\n\n")
    hub.reset_counters()
    result, lines = run(hub, tmp_path, "--download", str(targets))
    assert result.exit_code == 0, result.output
    assert sum(int(line["files_from_store"]) for line in lines) == 3  # the weights: judged once
    weights = [r for r in hub.state.requests if r.startswith("GET") and "model.safetensors" in r]
    assert len(weights) == 1, weights  # downloaded once, for the first repo only

    hub.reset_counters()
    result, again = run(hub, tmp_path, "--download", str(targets))
    assert result.exit_code == 0
    assert {line["status"] for line in again[-4:]} == {"skipped"}
    assert not [r for r in hub.state.requests if "/resolve/" in r]  # nothing downloaded


def test_a_new_commit_fetches_only_what_changed(hub: HubServer, tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("hf://acme/model-0\n")
    run(hub, tmp_path, "--download", str(targets))
    hub.add_repo("acme/model-0", {"config.json": _config("m0-v2"), "model.safetensors": SAFETENSORS,
                                  "README.md": CARD})  # fmt: skip
    hub.reset_counters()
    result, lines = run(hub, tmp_path, "--download", str(targets))
    line = lines[-1]
    assert line["status"] == "vetted" and line["files_from_store"] == 1, result.output
    fetched = [r for r in hub.state.requests if "/resolve/" in r and r.startswith("GET")]
    assert fetched and not [r for r in fetched if "model.safetensors" in r]


def test_failures_are_recorded_and_the_run_goes_on(hub: HubServer, tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("hf://acme/gated\nhf://acme/no-such-repo\nhf://acme/model-1\n")
    hub.state.faults.rate_limit_next = 2  # the first calls are answered 429 with Retry-After
    result, lines = run(hub, tmp_path, str(targets))
    found = by_target(lines)
    assert result.exit_code == 2 and hub.state.faults.rate_limit_next == 0  # both 429s were met
    assert found["hf://acme/gated"]["status"] == "error" and "gated" in str(found["hf://acme/gated"]["error"])
    assert "not found" in str(found["hf://acme/no-such-repo"]["error"])
    assert found["hf://acme/model-1"]["verdict"] == "pass"
    assert "ERROR  hf://acme/gated" in result.output


def test_a_killed_run_resumes(hub: HubServer, tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("hf://acme/model-0\nhf://acme/model-1\n")
    run(hub, tmp_path, str(targets))  # as if killed after these two
    targets.write_text("hf://acme/model-0\nhf://acme/model-1\nhf://acme/model-2\n")
    _, lines = run(hub, tmp_path, str(targets))
    statuses = {str(line["target"]): line["status"] for line in lines[2:]}
    assert statuses == {
        "hf://acme/model-0": "skipped",
        "hf://acme/model-1": "skipped",
        "hf://acme/model-2": "vetted",
    }


def test_rule_changes_are_never_served_from_the_store(hub: HubServer, tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("hf://acme/model-0\n")
    run(hub, tmp_path, str(targets))
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "kind: pickle-allow\nversion: 2\ngroups:\n  - reason: ours\n    allow: ['acme.models:Thing']\n"
    )
    _, lines = run(hub, tmp_path, "--rules", str(extra), str(targets))
    assert lines[-1]["status"] == "vetted" and lines[-1]["files_from_store"] == 0


@pytest.mark.slow
def test_local_and_ray_executors_agree(hub: HubServer, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is the optional executor (pip install 'modeltrust[ray]')")
    targets = tmp_path / "targets.txt"
    targets.write_text("hf://acme/evil\nhf://acme/model-0\nhf://other/unrelated\n")

    def verdicts(lines: list[dict[str, object]]) -> dict[str, tuple[object, ...]]:
        return {str(x["target"]): (x["verdict"], x["commit"], json.dumps(x["findings"])) for x in lines}

    _, local = run(hub, tmp_path / "local", str(targets))
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-ray"), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    out = tmp_path / "ray"
    result = CliRunner().invoke(
        cli, ["fleet", "--executor", "ray", "--workers", "2", "--out", str(out), str(targets)], env=env
    )
    ray_lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert verdicts(ray_lines) == verdicts(local), result.output


def test_a_bom_and_a_signed_attestation_per_target(hub: HubServer, tmp_path: Path) -> None:
    from modeltrust.cli.verify_attestation_cmd import verify_attestation

    from .provenance_keys import ec_key_pair

    cli.add_command(verify_attestation)
    private, public = ec_key_pair(tmp_path, "key")
    targets = tmp_path / "targets.txt"
    targets.write_text("hf://acme/model-0\nhf://acme/evil\n")
    result, lines = run(hub, tmp_path, "--download", "--bom", "--attest-key", str(private), str(targets))
    assert result.exit_code == 1, result.output
    for line in lines:
        bom = json.loads(Path(str(line["bom"])).read_text())
        assert bom["bomFormat"] == "CycloneDX"
        checked = CliRunner().invoke(
            cli, ["verify-attestation", str(line["attestation"]), "--key", str(public)]
        )
        assert checked.exit_code == 0, checked.output
    refused, _ = run(hub, tmp_path / "r", "--bom", "--attest-key", str(private), str(targets))
    assert refused.exit_code == 2 and "needs --download" in refused.output


def _settings(hub: HubServer, tmp_path: Path, **changes: object) -> FleetSettings:
    from modeltrust.rules import load_rules

    settings = FleetSettings(
        store=str(tmp_path / "store.sqlite"),
        rules_files=(),
        rules_digest=load_rules(()).digest,
        policy=None,
        policy_digest=policy_digest(None),
        endpoint=hub.url,
        token=None,
        cache_dir=str(tmp_path / "hf" / "hub"),
        remote=False,
        backoff=0.0,
    )
    return replace(settings, **changes)  # type: ignore[arg-type]


def _revision_calls(hub: HubServer) -> list[str]:
    """The Hub calls that name a revision's commit (model_info / repo_info)."""
    return [r for r in hub.state.requests if re.match(r"GET /api/(models|datasets)/[^/]+/[^/]+/revision/", r)]


def test_each_target_is_resolved_by_one_hub_call(hub: HubServer, tmp_path: Path) -> None:
    pinned = hub.state.repos[("model", "acme/model-2")].refs["main"]
    targets = tmp_path / "targets.txt"
    targets.write_text(f"hf://acme/model-0\nhf://acme/model-1@main\nhf://acme/model-2@{pinned}\n")
    hub.reset_counters()
    result, lines = run(hub, tmp_path, str(targets))
    assert result.exit_code == 0 and {line["status"] for line in lines} == {"vetted"}, result.output
    calls = _revision_calls(hub)
    for repo in ("model-0", "model-1", "model-2"):  # the dispatcher's lookup is the worker's commit
        assert len([c for c in calls if f"/acme/{repo}/" in c]) == 1, calls
    hub.reset_counters()
    run(hub, tmp_path, str(targets))  # a rerun: unpinned targets are looked up, pinned ones not at all
    assert len(_revision_calls(hub)) == 2 and not [r for r in hub.state.requests if "/tree/" in r]


def test_a_job_scans_the_commit_its_lookup_named(hub: HubServer, tmp_path: Path) -> None:
    """The commit checked in the store is the one scanned, even when the branch
    moves between the lookup and the worker's turn."""
    settings = _settings(hub, tmp_path)
    looked_up = HubSource(hub_settings(settings)).revision(HubTarget("model", "acme/model-3"))
    moved = hub.add_repo("acme/model-3", {"config.json": _config("m3-v2"), "README.md": CARD})
    assert moved != looked_up.commit
    line = vet_target(FleetJob("hf://acme/model-3", looked_up), settings)
    assert line["status"] == "vetted" and line["commit"] == looked_up.commit, line


def test_only_errors_the_source_marks_retryable_are_retried(hub: HubServer, tmp_path: Path) -> None:
    settings = _settings(hub, tmp_path, attempts=2)
    hub.reset_counters()
    gated = vet_target(FleetJob("hf://acme/gated"), settings)
    assert gated["status"] == "error" and "gated" in str(gated["error"])
    assert len(_revision_calls(hub)) == 1  # a gated repo stays gated: asked once
    hub.state.faults.fail_next = 3  # the worker's client gives up once (3 tries), the fleet tries again
    again = vet_target(FleetJob("hf://acme/model-0"), settings)
    assert hub.state.faults.fail_next == 0 and again["status"] == "vetted", again
    hub.state.faults.fail_next = 1000
    hub.reset_counters()
    down = vet_target(FleetJob("hf://acme/model-1"), settings)
    hub.state.faults.fail_next = 0
    assert down["status"] == "error" and "did not answer" in str(down["error"])
    assert len(_revision_calls(hub)) == 2 * 3  # attempts x the client's own retries


def test_a_scan_that_the_hub_stops_answering_is_a_retryable_target_error(
    hub: HubServer, tmp_path: Path
) -> None:
    from modeltrust import ScanConfig, scan

    config = ScanConfig(
        targets=("hf://acme/model-0", "hf://acme/gated"), hub=hub_settings(_settings(hub, tmp_path))
    )
    hub.state.faults.fail_next = 3  # the first target's lookup, all of its tries
    report = scan(config)
    hub.state.faults.fail_next = 0
    errors = {e.target: e for e in report.errors}
    assert errors["hf://acme/model-0"].retryable and "did not answer" in errors["hf://acme/model-0"].message
    assert not errors["hf://acme/gated"].retryable


def test_a_scan_that_did_not_finish_is_never_served_from_the_store(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range request the Hub did not answer ends that file's scan with scan-error:
    the run reports it, and the next run scans the file again."""
    from modeltrust.findings import Finding, Location, Severity
    from modeltrust.fleet import work
    from modeltrust.fleet.store import ResultStore

    settings = _settings(hub, tmp_path, remote=True)
    scan = work._scan

    def interrupted(target: str, settings: FleetSettings, hub: object) -> object:
        report = scan(target, settings, hub)
        weights = next(a for a in report.artifacts if a.path.endswith("model.safetensors"))
        message = "SourceError: range request answered HTTP 503"
        failed = Finding(
            "scan-error", Severity.MEDIUM, Location(weights.path), message, category="unverified"
        )
        return replace(report, findings=(*report.findings, failed))

    monkeypatch.setattr(work, "_scan", interrupted)
    first = vet_target(FleetJob("hf://acme/model-0"), settings)
    assert first["status"] == "vetted" and first["verdict"] == "fail", first
    monkeypatch.setattr(work, "_scan", scan)
    weights_sha = next(
        f.sha256
        for f in HubSource(hub_settings(settings)).resolve(HubTarget("model", "acme/model-0")).files
        if f.path == "model.safetensors"
    )
    assert not ResultStore(settings.store, settings.key).file_results([str(weights_sha)])
    again = vet_target(FleetJob("hf://acme/model-0"), settings)
    assert again["status"] == "vetted" and again["verdict"] == "pass" and again["files_from_store"] == 0, (
        again
    )
    third = vet_target(FleetJob("hf://acme/model-0"), settings)
    assert third["status"] == "skipped" and third["verdict"] == "pass"  # a finished scan is stored


def test_inputs_that_cannot_work_fail_before_any_repo_is_vetted(hub: HubServer, tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("hf://acme/model-0\n")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key\n")
    hub.reset_counters()
    result, lines = run(hub, tmp_path, "--download", "--attest-key", str(bad), str(targets))
    assert result.exit_code == 2 and "not a usable private key" in result.stderr and not lines
    assert not hub.state.requests  # refused before the first Hub call
    result, _ = run(hub, tmp_path / "q", "--author", "acme", "--limit", "-1")
    assert result.exit_code == 2 and "--limit" in result.stderr and not hub.state.requests


def test_a_ray_cluster_that_cannot_be_reached_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not an internal error: the address is the user's to fix (exit 2 through ModelTrustError)."""
    import types

    from modeltrust.errors import ConfigError
    from modeltrust.fleet.executors import run_ray

    def refuse(**kwargs: object) -> None:
        raise ConnectionError("connection refused")

    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(is_initialized=lambda: False, init=refuse))
    with pytest.raises(
        ConfigError, match=r"cannot start or reach Ray \(ray://head:10001\): connection refused"
    ):
        settings = FleetSettings("store", (), "rules", None, "policy", None, None, None, remote=True)
        list(run_ray([FleetJob("hf://acme/model-0")], settings, 1, "ray://head:10001"))
