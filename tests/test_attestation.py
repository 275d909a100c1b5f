"""Attestations: in-toto Statement v1 with SLSA Provenance v1 and the verdict,
DSSE-signed; validated against the schemas; every alteration fails."""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from modeltrust.attestation.build import vet_run
from modeltrust.attestation.statement import (
    BUILDER_ID,
    FETCH_AND_VET,
    SLSA_PROVENANCE,
    VERDICT_TYPE,
    provenance_statement,
    verdict_statement,
)
from modeltrust.cli.attest_cmd import attest
from modeltrust.cli.main import cli
from modeltrust.cli.scan_cmd import scan
from modeltrust.cli.verify_attestation_cmd import verify_attestation
from modeltrust.config import ScanConfig
from modeltrust.engine import scan as run_scan
from modeltrust.policy import Policy

from .conftest import ROOT
from .provenance_hub import CARD, CONFIG, SAFETENSORS, hub_env, hub_server
from .provenance_keys import KeyPair, ec_key_pair, ed25519_key_pair, write_key

cli.add_command(attest)
cli.add_command(verify_attestation)
cli.add_command(scan)

SHARED = ROOT.parent / "shared" / "testdata"
SCHEMAS = SHARED / "schemas"
GOLDEN = Path(__file__).parent / "golden"
TINY = ROOT / "examples" / "tiny-model"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture(params=["ecdsa-p256", "ed25519"])
def keys(request: pytest.FixtureRequest, tmp_path: Path) -> KeyPair:
    folder = tmp_path / "keys"
    return ec_key_pair(folder) if request.param == "ecdsa-p256" else ed25519_key_pair(folder)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    copy = tmp_path / "tiny-model"
    shutil.copytree(TINY, copy)
    return copy


def documents(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def statement_of(document: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(base64.b64decode(document["payload"]))
    return result


def write_documents(path: Path, docs: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))


def attested(model: Path, keys: KeyPair, tmp_path: Path) -> Path:
    out = tmp_path / "model.intoto.jsonl"
    code, _, err = run("attest", str(model), "--key", str(keys.private), "--output", str(out))
    assert code == 0, err
    return out


def test_attest_then_verify(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    out = attested(model, keys, tmp_path)
    code, text, _ = run("verify-attestation", str(out), "--key", str(keys.public), "--target", str(model))
    assert code == 0, text
    assert f"verified: {SLSA_PROVENANCE}" in text and f"verified: {VERDICT_TYPE}" in text
    assert "3 subject(s) match" in text


def test_statements_say_what_was_vetted(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    provenance, verdict = (statement_of(d) for d in documents(attested(model, keys, tmp_path)))
    names = {s["name"] for s in provenance["subject"]}
    assert names == {p.relative_to(model).as_posix() for p in model.rglob("*") if p.is_file()}
    assert provenance["subject"] == verdict["subject"]
    build = provenance["predicate"]["buildDefinition"]
    assert build["buildType"] == FETCH_AND_VET
    assert build["externalParameters"]["policy"]["name"] == "default"
    assert {d["name"] for d in build["resolvedDependencies"]} == {"modeltrust-rules"}
    details = provenance["predicate"]["runDetails"]
    assert details["builder"]["id"] == BUILDER_ID
    assert details["metadata"]["invocationId"] == verdict["predicate"]["invocationId"]
    assert verdict["predicate"]["verdict"]["passed"] is True


def schema_validator(name: str) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    path = SCHEMAS / name
    if not path.is_file():
        pytest.skip("../shared/testdata/schemas is not beside this checkout")
    schema = json.loads(path.read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_valid_against_the_schemas(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    envelope = schema_validator("dsse-envelope-v1.schema.json")
    statement = schema_validator("in-toto-statement-v1.schema.json")
    slsa = schema_validator("slsa-provenance-v1-predicate.schema.json")
    docs = documents(attested(model, keys, tmp_path))
    assert len(docs) == 2
    for document in docs:
        envelope.validate(document)
        statement.validate(statement_of(document))
    slsa.validate(statement_of(docs[0])["predicate"])


@pytest.fixture
def hub_repo(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    with hub_server() as server:
        files = {"config.json": CONFIG, "model.safetensors": SAFETENSORS, "README.md": CARD}
        server.add_repo("org/attested", files)
        yield "hf://org/attested", hub_env(server, tmp_path)


def test_hub_attestation_names_the_commit_and_validates(
    hub_repo: tuple[str, dict[str, str]], keys: KeyPair, tmp_path: Path
) -> None:
    target, env = hub_repo
    out = tmp_path / "a.jsonl"
    result = CliRunner().invoke(cli, ["attest", target, "--key", str(keys.private), "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    provenance = statement_of(documents(out)[0])
    build = provenance["predicate"]["buildDefinition"]
    [repo] = [d for d in build["resolvedDependencies"] if "gitCommit" in d.get("digest", {})]
    assert repo["uri"] == "git+https://huggingface.co/org/attested"
    assert build["externalParameters"]["revision"] == "main"
    assert {s["name"] for s in provenance["subject"]} == {"config.json", "model.safetensors", "README.md"}
    schema_validator("slsa-provenance-v1-predicate.schema.json").validate(provenance["predicate"])


# --- every alteration fails ---------------------------------------------------------


def test_altered_subject_digest_fails(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    out = attested(model, keys, tmp_path)
    docs = documents(out)
    statement = statement_of(docs[0])
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    docs[0]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    write_documents(out, docs)
    code, text, _ = run("verify-attestation", str(out), "--key", str(keys.public))
    assert code == 1 and "statement 1: signature does not verify" in text


def test_altered_payload_byte_fails(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    out = attested(model, keys, tmp_path)
    docs = documents(out)
    payload = bytearray(base64.b64decode(docs[1]["payload"]))
    payload[-3] ^= 1
    docs[1]["payload"] = base64.b64encode(bytes(payload)).decode()
    write_documents(out, docs)
    code, text, _ = run("verify-attestation", str(out), "--key", str(keys.public))
    assert code == 1 and "statement 2: signature does not verify" in text


def test_another_key_fails(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    out = attested(model, keys, tmp_path)
    other = ec_key_pair(tmp_path / "keys", "other")
    code, text, _ = run("verify-attestation", str(out), "--key", str(other.public))
    assert code == 1 and text.count("signature does not verify") == 2


def test_signature_moved_to_another_payload_type_fails(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    out = attested(model, keys, tmp_path)
    docs = documents(out)
    docs[0]["payloadType"] = "application/json"
    write_documents(out, docs)
    code, text, _ = run("verify-attestation", str(out), "--key", str(keys.public))
    assert code == 1 and "statement 1" in text


@pytest.mark.parametrize("change", ["byte", "added", "removed"])
def test_target_that_differs_fails_naming_the_file(
    model: Path, keys: KeyPair, tmp_path: Path, change: str
) -> None:
    out = attested(model, keys, tmp_path)
    if change == "byte":
        (model / "config.json").write_bytes((model / "config.json").read_bytes() + b" ")
        expected = "config.json: sha256"
    elif change == "added":
        (model / "extra.pkl").write_bytes(b"\x80\x04N.")
        expected = "extra.pkl: present"
    else:
        (model / "config.json").unlink()
        expected = "config.json: attested but missing"
    code, text, _ = run("verify-attestation", str(out), "--key", str(keys.public), "--target", str(model))
    assert code == 1 and expected in text


def test_required_predicate_type_must_be_present(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    out = attested(model, keys, tmp_path)
    write_documents(out, documents(out)[1:])  # only the verdict
    code, text, _ = run(
        "verify-attestation", str(out), "--key", str(keys.public), "--predicate-type", SLSA_PROVENANCE
    )
    assert code == 1 and "no verified statement with predicate type" in text
    assert run("verify-attestation", str(out), "--key", str(keys.public))[0] == 0


def test_attest_refuses_a_weak_key_type(model: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = write_key(rsa.generate_private_key(public_exponent=65537, key_size=2048), tmp_path, "rsa").private
    code, _, err = run("attest", str(model), "--key", str(pem), "-o", str(tmp_path / "a.jsonl"))
    assert code == 2 and "ECDSA P-256" in err and "Traceback" not in err


def test_attest_records_a_failing_verdict(tmp_path: Path, keys: KeyPair) -> None:
    evil = tmp_path / "evil"
    evil.mkdir()
    shutil.copy(ROOT / "fixtures" / "malicious" / "torch_zip_payload.pt", evil / "pytorch_model.bin")
    out = tmp_path / "a.jsonl"
    code, text, _ = run("attest", str(evil), "--key", str(keys.private), "-o", str(out))
    assert code == 1 and "decided by fail_on" in text
    verdict = statement_of(documents(out)[1])["predicate"]
    assert verdict["verdict"]["passed"] is False
    assert any(f["severity"] == "critical" for f in verdict["findings"])


def test_scan_attest_option(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    out = tmp_path / "scan.jsonl"
    code, _, err = run("scan", str(model), "--attest", str(out), "--key", str(keys.private))
    assert code == 0, err
    assert run("verify-attestation", str(out), "--key", str(keys.public), "--target", str(model))[0] == 0


def test_scan_attest_needs_a_private_key(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    code, _, err = run("scan", str(model), "--attest", str(tmp_path / "a.jsonl"), "--key", str(keys.public))
    assert code == 2 and "private --key" in err


# --- sigstore-signed attestations (offline verification of a real bundle) -------------

STAGING_BUNDLE = SHARED / "sigstore" / "a.dsse.staging-rekor-v2.txt.sigstore.json"
BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


def test_sigstore_bundle_verifies_by_identity() -> None:
    """A real DSSE bundle signed keylessly in sigstore's staging instance."""
    if not STAGING_BUNDLE.is_file():
        pytest.skip("../shared/testdata is not beside this checkout")
    args = ["verify-attestation", str(STAGING_BUNDLE), "--identity", BEACON, "--issuer", GITHUB_ISSUER]
    code, text, _ = run(*args, "--staging", "--predicate-type", SLSA_PROVENANCE)
    assert code == 0, text
    assert f"verified: {SLSA_PROVENANCE}" in text
    assert run(*args)[0] == 1  # the production root does not vouch for staging


def test_sigstore_bundle_wrong_identity_fails() -> None:
    if not STAGING_BUNDLE.is_file():
        pytest.skip("../shared/testdata is not beside this checkout")
    args = [
        "verify-attestation",
        str(STAGING_BUNDLE),
        "--identity",
        "https://example.com/x",
        "--issuer",
        GITHUB_ISSUER,
    ]
    code, text, _ = run(*args, "--staging", "--predicate-type", SLSA_PROVENANCE)
    assert code == 1 and "SANs do not match" in text


def test_keyless_attestation_without_network_is_an_error(model: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(ROOT / "src"),
        "HTTPS_PROXY": "http://127.0.0.1:9",  # sigstore is unreachable, whatever the machine's network
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    out = tmp_path / "a.jsonl"
    args = ["attest", str(model), "--sigstore", "--identity-token", "not-a-jwt", "-o", str(out)]
    command = [sys.executable, "-m", "modeltrust", *args]
    proc = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: keyless signing") and not out.exists()


def test_key_envelope_needs_a_key_not_an_identity(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    out = attested(model, keys, tmp_path)
    code, text, _ = run("verify-attestation", str(out), "--identity", "me", "--issuer", "https://x")
    assert code == 1 and "verify it with --key" in text


# --- golden statements (deterministic inputs) -----------------------------------------


def test_golden_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regenerate with MODELTRUST_UPDATE_GOLDEN=1 after an intended change."""
    monkeypatch.chdir(ROOT)
    report = Policy().apply(run_scan(ScanConfig(targets=("examples/tiny-model",), hash_files=True)))
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    vet = vet_run(report, Policy(), Policy().fail_on, "0" * 64, moment, moment, invocation_id="urn:uuid:0")
    statements = [provenance_statement(vet), verdict_statement(vet)]
    for statement in statements:
        schema_validator("in-toto-statement-v1.schema.json").validate(statement)
    schema_validator("slsa-provenance-v1-predicate.schema.json").validate(statements[0]["predicate"])
    text = json.dumps(statements, indent=2, sort_keys=True)
    text = text.replace(vet.tool_version, "<version>") + "\n"
    golden = GOLDEN / "attestation.json"
    if os.environ.get("MODELTRUST_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
