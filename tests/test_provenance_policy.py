"""Policy clauses about provenance and packaging, and signatures on Hub
targets: each failing clause is a finding that names the clause, and the
verdict says which clause decided it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from modeltrust.clauses import Clauses, clause_findings, decided_by
from modeltrust.cli.main import cli
from modeltrust.cli.scan_cmd import scan
from modeltrust.cli.verify_cmd import verify
from modeltrust.errors import ConfigError
from modeltrust.findings import Artifact, ScanReport, Severity
from modeltrust.policy import load_policy
from modeltrust.provenance.methods import KeySigner
from modeltrust.provenance.sign import sign_model
from modeltrust.rules import RuleSet

from .conftest import FIXTURES, ROOT
from .provenance_hub import CARD, CONFIG, SAFETENSORS, STATE_DICT, folder_files, hub_env, hub_server
from .provenance_keys import KeyPair, ec_key_pair

cli.add_command(scan)
cli.add_command(verify)
PRODUCTION = ROOT.parent / "shared" / "testdata" / "model-signing-v1.1.0-sigstore"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def keys(tmp_path: Path) -> KeyPair:
    return ec_key_pair(tmp_path / "keys")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    root.mkdir()
    (root / "config.json").write_bytes(CONFIG)
    (root / "model.safetensors").write_bytes(SAFETENSORS)
    return root


def write_policy(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text("kind: policy\nversion: 1\nname: provenance\nfail_on: medium\n" + body)
    return path


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


# --- require_signature ----------------------------------------------------------------


def test_policy_requiring_a_signature_fails_unsigned_and_passes_signed(
    model: Path, keys: KeyPair, tmp_path: Path
) -> None:
    shutil.copy(keys.public, tmp_path / "publisher.pub")
    policy = write_policy(tmp_path, "require_signature:\n  - key: publisher.pub\n")
    code, out, _ = run("scan", str(model), "--policy", str(policy))
    assert code == 1, out
    assert "policy-require-signature" in out and "decided by clause require_signature" in out
    sign_model(model, KeySigner(keys.private))
    code, out, _ = run("scan", str(model), "--policy", str(policy), "-v")
    assert code == 0, out
    assert "signature verified" in out


def test_policy_signature_by_another_key_fails(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    other = ec_key_pair(tmp_path / "keys", "other")
    sign_model(model, KeySigner(other.private))
    policy = write_policy(tmp_path, f"require_signature:\n  - key: {keys.public}\n")
    code, out, _ = run("scan", str(model), "--policy", str(policy), "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert report["verdict"]["decided_by"] == ["clause require_signature", "fail_on medium"]
    assert report["signatures"][0]["outcome"] == "wrong-signer"


def test_policy_accepts_any_listed_signer(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    other = ec_key_pair(tmp_path / "keys", "other")
    sign_model(model, KeySigner(keys.private))
    policy = write_policy(tmp_path, f"require_signature:\n  - key: {other.public}\n  - key: {keys.public}\n")
    assert run("scan", str(model), "--policy", str(policy))[0] == 0


def test_tampered_signed_model_fails_the_scan_naming_the_file(model: Path, keys: KeyPair) -> None:
    sign_model(model, KeySigner(keys.private))
    (model / "config.json").write_text('{"auto_map": {"AutoModel": "modeling.Net"}}')
    code, out, _ = run("scan", str(model), "--key", str(keys.public))
    assert code == 1 and f"{model}/config.json" in out and "signature-file-changed" in out


def test_keyless_policy_on_the_production_signed_model(tmp_path: Path) -> None:
    if not PRODUCTION.is_dir():
        pytest.skip("../shared/testdata is not beside this checkout")
    good = "require_signature:\n  - identity: stefanb@us.ibm.com\n    issuer: https://sigstore.verify.ibm.com/oauth2\n"
    code, out, _ = run("scan", str(PRODUCTION), "--policy", str(write_policy(tmp_path, good)))
    assert code == 0, out
    bad = good.replace("stefanb@us.ibm.com", "someone@example.com")
    code, out, _ = run("scan", str(PRODUCTION), "--policy", str(write_policy(tmp_path, bad)))
    assert code == 1 and "wrong-signer" in out and "clause require_signature" in out


def test_signature_options_without_a_signer_are_refused(model: Path) -> None:
    code, _, err = run("scan", str(model), "--signature", str(model / "model.sig"))
    assert code == 2 and "needs a signer" in err


# --- clauses judged on the report --------------------------------------------------------


def hub_report(
    repo: str = "acme/model", revision: str | None = "main", license: object = "apache-2.0"
) -> ScanReport:
    uri = f"hf://{repo}@{'c' * 40}"
    source = {
        "repo_id": repo,
        "repo_type": "model",
        "requested_revision": revision,
        "uri": uri,
        "license": license,
    }
    artifacts = (Artifact(f"{uri}/model.safetensors", 10, "safetensors", "safetensors", "a" * 64),)
    return ScanReport(artifacts=artifacts, findings=(), targets=(f"hf://{repo}",), sources=(source,))


PINNED = Clauses(require_pinned_revision=True)


@pytest.mark.parametrize(
    "clauses, report, rule, clause",
    [
        (Clauses(allowed_publishers=("google",)), hub_report(), "policy-publisher", "allowed_publishers"),
        (Clauses(blocked_publishers=("ac*",)), hub_report(), "policy-publisher", "blocked_publishers"),
        (Clauses(allowed_licenses=("mit",)), hub_report(), "policy-license", "allowed_licenses"),
        (Clauses(allowed_licenses=("mit",)), hub_report(license=None), "policy-license", "allowed_licenses"),
        (PINNED, hub_report(), "policy-unpinned-revision", "require_pinned_revision"),
        (PINNED, hub_report(revision=None), "policy-unpinned-revision", "require_pinned_revision"),
    ],
)  # fmt: skip
def test_clause_fails(clauses: Clauses, report: ScanReport, rule: str, clause: str, rules: RuleSet) -> None:
    [finding] = clause_findings(clauses, report, rules)
    assert finding.rule_id == rule and finding.subject == clause and finding.severity >= Severity.HIGH
    failed = ScanReport(artifacts=report.artifacts, findings=(finding,))
    assert decided_by(failed, Severity.MEDIUM) == (f"clause {clause}",)


@pytest.mark.parametrize(
    "clauses, report",
    [
        (Clauses(allowed_publishers=("acme", "google")), hub_report()),
        (Clauses(blocked_publishers=("evil",)), hub_report()),
        (Clauses(allowed_licenses=("MIT", "Apache-2.0")), hub_report()),
        (Clauses(allowed_licenses=("mit",)), hub_report(license=["mit"])),
        (Clauses(require_pinned_revision=True), hub_report(revision="b" * 40)),
        (Clauses(forbid_pickle_with_safetensors=True, forbid_custom_code=True), hub_report()),
    ],
)
def test_clause_holds(clauses: Clauses, report: ScanReport, rules: RuleSet) -> None:
    assert clause_findings(clauses, report, rules) == []


def test_local_folder_has_no_known_publisher_or_licence(model: Path, tmp_path: Path) -> None:
    policy = write_policy(tmp_path, "allowed_publishers: [acme]\nallowed_licenses: [mit]\n")
    code, out, _ = run("scan", str(model), "--policy", str(policy))
    assert code == 1
    assert "publisher is unknown" in out and "no known licence" in out


def test_forbid_pickle_with_safetensors(model: Path, tmp_path: Path) -> None:
    policy = write_policy(tmp_path, "forbid_pickle_with_safetensors: true\n")
    assert run("scan", str(model), "--policy", str(policy))[0] == 0
    shutil.copy(FIXTURES / "benign" / "state_dict.pt", model / "pytorch_model.bin")
    code, out, _ = run("scan", str(model), "--policy", str(policy))
    assert (
        code == 1 and f"{model}/pytorch_model.bin" in out and "clause forbid_pickle_with_safetensors" in out
    )


def test_forbid_custom_code(model: Path, tmp_path: Path) -> None:
    policy = write_policy(tmp_path, "fail_on_unverified: true\nforbid_custom_code: true\n")
    (model / "config.json").write_text(json.dumps({"auto_map": {"AutoModel": "modeling_tiny.TinyModel"}}))
    (model / "modeling_tiny.py").write_text("class TinyModel:\n    pass\n")
    code, out, _ = run("scan", str(model), "--policy", str(policy))
    assert code == 1 and "policy-custom-code" in out and "clause forbid_custom_code" in out


def test_clause_finding_can_be_waived_like_any_other(model: Path, tmp_path: Path) -> None:
    policy = write_policy(
        tmp_path,
        "allowed_licenses: [mit]\nexceptions:\n  - rule: policy-license\n"
        "    reason: licence checked by legal, LEG-7\n    expires: 2999-01-01\n",
    )
    assert run("scan", str(model), "--policy", str(policy))[0] == 0


@pytest.mark.parametrize(
    "body, message",
    [
        ("require_signature: {key: a.pub}\n", "list of accepted signers"),
        ("require_signature:\n  - identity: me\n", "require_signature entry"),
        ("allowed_publishers: acme\n", "list of names"),
        ("require_pinned_revision: yes please\n", "true or false"),
        ("forbid_everything: true\n", "unknown keys"),
    ],
)
def test_malformed_clauses_are_rejected(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_policy(write_policy(tmp_path, body))


# --- signatures on Hub targets ---------------------------------------------------------------


@pytest.fixture
def signed_hub(keys: KeyPair, tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    """org/signed: main is signed; a later commit on `tampered` changes a file."""
    folder = tmp_path / "publisher"
    folder.mkdir()
    for name, data in {"config.json": CONFIG, "model.safetensors": SAFETENSORS, "README.md": CARD}.items():
        (folder / name).write_bytes(data)
    sign_model(folder, KeySigner(keys.private))
    files = folder_files(folder)
    with hub_server() as server:
        commit = server.add_repo("org/signed", files)
        server.add_repo("org/signed", {**files, "pytorch_model.bin": STATE_DICT}, branch="tampered")
        yield hub_env(server, tmp_path), commit


def test_verify_a_hub_revision_with_model_sig_in_the_repo(
    signed_hub: tuple[dict[str, str], str], keys: KeyPair
) -> None:
    env, commit = signed_hub
    code, out, _ = run("verify", f"hf://org/signed@{commit}", "--key", str(keys.public), env=env)
    assert code == 0, out
    code, out, _ = run("verify", "hf://org/signed@tampered", "--key", str(keys.public), env=env)
    assert code == 1 and "pytorch_model.bin" in out and "signature-file-added" in out


def test_hub_scan_with_provenance_policy(
    signed_hub: tuple[dict[str, str], str], keys: KeyPair, tmp_path: Path
) -> None:
    env, commit = signed_hub
    body = (
        f"require_signature:\n  - key: {keys.public}\n"
        "require_pinned_revision: true\nallowed_publishers: [org]\n"
    )
    policy = str(write_policy(tmp_path, body))
    code, out, _ = run("scan", f"hf://org/signed@{commit}", "--policy", policy, env=env)
    assert code == 0, out
    code, out, _ = run("scan", "hf://org/signed", "--policy", policy, env=env)
    assert code == 1 and "decided by clause require_pinned_revision" in out
    code, out, _ = run("scan", "hf://org/signed@tampered", "--policy", policy, env=env)
    assert code == 1 and "clause require_signature" in out
