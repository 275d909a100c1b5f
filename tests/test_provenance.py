"""Model signatures: sign and verify with keys, certificates and sigstore
(offline), tampering of every kind, and interoperability with the upstream
`model_signing` CLI in both directions."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from modeltrust.cli.main import cli
from modeltrust.cli.sign_cmd import sign
from modeltrust.cli.verify_cmd import verify
from modeltrust.provenance.methods import KeySigner, KeyVerifier
from modeltrust.provenance.sign import sign_model
from modeltrust.provenance.verify import MODIFIED, check_signature

from .conftest import ROOT
from .provenance_keys import KeyPair, TinyCA, ec_key_pair, ed25519_key_pair, tiny_ca

cli.add_command(verify)
cli.add_command(sign)

SHARED = ROOT.parent / "shared" / "testdata"
PRODUCTION = SHARED / "model-signing-v1.1.0-sigstore"
IBM_ISSUER = "https://sigstore.verify.ibm.com/oauth2"
IBM_IDENTITY = "stefanb@us.ibm.com"  # the SAN of the certificate in model.sig


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _sigstore_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sigstore writes caches under ~ even offline."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def keys(tmp_path: Path) -> KeyPair:
    return ec_key_pair(tmp_path / "keys")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "bert"}')
    (root / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + bytes(64))
    (root / "sub" / "tokenizer.json").write_text("{}")
    (root / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    return root


def need_shared() -> None:
    if not PRODUCTION.is_dir():
        pytest.skip("../shared/testdata is not beside this checkout (real sigstore-signed fixtures)")


# --- key method, end to end ---------------------------------------------------


def test_sign_then_verify_with_key(model: Path, keys: KeyPair) -> None:
    code, out, _ = run("sign", str(model), "--key", str(keys.private))
    assert code == 0 and "signed 3 file(s)" in out
    assert (model / "model.sig").is_file()
    code, out, _ = run("verify", str(model), "--key", str(keys.public))
    assert code == 0, out
    assert "verified: signed by the holder of" in out and "sha256:" in out


def test_one_byte_changed_fails_and_names_the_file(model: Path, keys: KeyPair) -> None:
    sign_model(model, KeySigner(keys.private))
    data = bytearray((model / "sub" / "tokenizer.json").read_bytes())
    data[0] ^= 1
    (model / "sub" / "tokenizer.json").write_bytes(bytes(data))
    code, out, _ = run("verify", str(model), "--key", str(keys.public))
    assert code == 1
    assert f"{model}/sub/tokenizer.json" in out and "signature-file-changed" in out


def test_added_file_fails(model: Path, keys: KeyPair) -> None:
    sign_model(model, KeySigner(keys.private))
    (model / "pytorch_model.bin").write_bytes(b"\x80\x02}q\x00.")
    check = check_signature(model, KeyVerifier(keys.public))
    assert check.outcome == MODIFIED and check.added == ("pytorch_model.bin",)
    code, out, _ = run("verify", str(model), "--key", str(keys.public))
    assert code == 1 and "signature-file-added" in out and "pytorch_model.bin" in out


def test_removed_file_fails(model: Path, keys: KeyPair) -> None:
    sign_model(model, KeySigner(keys.private))
    (model / "config.json").unlink()
    check = check_signature(model, KeyVerifier(keys.public))
    assert check.outcome == MODIFIED and check.removed == ("config.json",)
    code, out, _ = run("verify", str(model), "--key", str(keys.public))
    assert code == 1 and "signature-file-removed" in out


def test_renamed_file_fails_naming_both_names(model: Path, keys: KeyPair) -> None:
    sign_model(model, KeySigner(keys.private))
    (model / "config.json").rename(model / "generation_config.json")
    check = check_signature(model, KeyVerifier(keys.public))
    assert check.renamed == (("config.json", "generation_config.json"),)
    code, out, _ = run("verify", str(model), "--key", str(keys.public))
    assert code == 1 and "signature-file-renamed" in out and "'config.json'" in out


def test_another_key_is_the_wrong_signer(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    sign_model(model, KeySigner(keys.private))
    other = ec_key_pair(tmp_path / "keys", "other")
    code, out, _ = run("verify", str(model), "--key", str(other.public))
    assert code == 1 and "signature-wrong-signer" in out and "another key" in out


def test_manifest_edited_to_match_tampering_is_invalid(model: Path, keys: KeyPair) -> None:
    """An attacker changes a file and rewrites its digest in the signed payload."""
    sign_model(model, KeySigner(keys.private))
    (model / "config.json").write_text('{"auto_map": {}}')
    sig = model / "model.sig"
    bundle = json.loads(sig.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    new_digest = hashlib.sha256((model / "config.json").read_bytes()).hexdigest()
    for resource in statement["predicate"]["resources"]:
        if resource["name"] == "config.json":
            resource["digest"] = new_digest
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    sig.write_text(json.dumps(bundle))
    code, out, _ = run("verify", str(model), "--key", str(keys.public))
    assert code == 1 and "signature-invalid" in out


def test_garbage_signature_file_is_invalid(model: Path, keys: KeyPair) -> None:
    (model / "model.sig").write_text("not a bundle")
    code, out, _ = run("verify", str(model), "--key", str(keys.public))
    assert code == 1 and "signature-invalid" in out


def test_unsigned_model_fails(model: Path, keys: KeyPair) -> None:
    code, out, _ = run("verify", str(model), "--key", str(keys.public))
    assert code == 1 and "signature-missing" in out


def test_signature_outside_the_folder(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    sig = tmp_path / "elsewhere.sig"
    assert run("sign", str(model), "--key", str(keys.private), "--output", str(sig))[0] == 0
    assert not (model / "model.sig").exists()
    code, out, _ = run("verify", str(model), "--key", str(keys.public), "--signature", str(sig))
    assert code == 0, out


def test_known_digests_are_reused_not_recomputed(model: Path, keys: KeyPair) -> None:
    sign_model(model, KeySigner(keys.private))
    wrong = {"config.json": "0" * 64}  # a digest "verified" earlier in the run is trusted as given
    assert check_signature(model, KeyVerifier(keys.public), known=wrong).changed == ("config.json",)


# --- usage errors exit 2 with one line -----------------------------------------


def test_verify_needs_a_method(model: Path) -> None:
    code, _, err = run("verify", str(model))
    assert code == 2 and err.count("\n") == 1 and "--identity" in err


def test_keyless_needs_identity_and_issuer(model: Path) -> None:
    code, _, err = run("verify", str(model), "--identity", "me@example.com")
    assert code == 2 and "--issuer" in err


@pytest.mark.parametrize("which", ["garbage", "private"])
def test_an_unusable_key_is_a_usage_error_even_without_a_signature(
    model: Path, keys: KeyPair, tmp_path: Path, which: str
) -> None:
    """Exit 2 (not 1, "unsigned") whether or not the folder holds a signature."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n")
    key = garbage if which == "garbage" else keys.private
    for signed in (False, True):
        if signed:
            sign_model(model, KeySigner(keys.private))
        for command in (("verify", str(model)), ("scan", str(model))):
            code, _, err = run(*command, "--key", str(key))
            assert code == 2 and err.startswith("error: ") and "Traceback" not in err, (command, signed, err)


def test_ed25519_is_refused_for_model_signatures(model: Path, tmp_path: Path) -> None:
    ed = ed25519_key_pair(tmp_path)
    code, _, err = run("sign", str(model), "--key", str(ed.private))
    assert code == 2 and err.startswith("error: cannot sign with private key") and "Traceback" not in err


def test_keyless_signing_without_network_is_an_error(model: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(ROOT / "src"),
        # Whatever network the machine has, sigstore cannot reach it here.
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    env.pop("SIGSTORE_ID_TOKEN", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "modeltrust",
            "sign",
            str(model),
            "--sigstore",
            "--identity-token",
            "not-a-jwt",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: keyless signing") and "Traceback" not in proc.stderr
    assert not (model / "model.sig").exists()


def test_keyless_signing_without_a_token_never_waits_for_a_browser(model: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT / "src")}
    for name in (
        "SIGSTORE_ID_TOKEN",
        "GITHUB_ACTIONS",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "GOOGLE_SERVICE_ACCOUNT_NAME",
    ):
        env.pop(name, None)
    proc = subprocess.run(
        [sys.executable, "-m", "modeltrust", "sign", str(model), "--sigstore"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2 and "needs an OIDC identity token" in proc.stderr


# --- certificates ----------------------------------------------------------------


@pytest.fixture
def ca(tmp_path: Path) -> TinyCA:
    folder = tmp_path / "pki"
    folder.mkdir()
    return tiny_ca(folder)


def test_certificate_sign_and_verify(model: Path, ca: TinyCA) -> None:
    code, out, err = run("sign", str(model), "--key", str(ca.key), "--certificate", str(ca.leaf))
    assert code == 0, err
    code, out, _ = run("verify", str(model), "--certificate-chain", str(ca.root))
    assert code == 0, out
    assert "CN=ca model publisher" in out and "CN=ca root" in out


def test_certificate_from_another_ca_is_the_wrong_signer(model: Path, ca: TinyCA, tmp_path: Path) -> None:
    other = tiny_ca(tmp_path / "pki", "other")
    run("sign", str(model), "--key", str(ca.key), "--certificate", str(ca.leaf))
    code, out, _ = run("verify", str(model), "--certificate-chain", str(other.root))
    assert code == 1 and "signature-wrong-signer" in out and "chain" in out


def test_certificate_signature_detects_tampering(model: Path, ca: TinyCA) -> None:
    run("sign", str(model), "--key", str(ca.key), "--certificate", str(ca.leaf))
    (model / "model.safetensors").write_bytes(b"x")
    code, out, _ = run("verify", str(model), "--certificate-chain", str(ca.root))
    assert code == 1 and "model.safetensors" in out and "signature-file-changed" in out


# --- keyless: the production-signed model, offline ------------------------------


def test_production_keyless_signature_verifies_offline() -> None:
    need_shared()
    code, out, _ = run("verify", str(PRODUCTION), "--identity", IBM_IDENTITY, "--issuer", IBM_ISSUER)
    assert code == 0, out
    assert f"signed by {IBM_IDENTITY}" in out
    assert "ignore-me" in out  # ignored by the signer: reported as not covered


def test_production_wrong_identity_fails_naming_why() -> None:
    need_shared()
    code, out, _ = run("verify", str(PRODUCTION), "--identity", "mallory@example.com", "--issuer", IBM_ISSUER)
    assert code == 1 and "signature-wrong-signer" in out
    assert "mallory@example.com" in out and IBM_IDENTITY in out


def test_production_wrong_issuer_fails() -> None:
    need_shared()
    code, out, _ = run(
        "verify", str(PRODUCTION), "--identity", IBM_IDENTITY, "--issuer", "https://accounts.google.com"
    )
    assert code == 1 and "signature-wrong-signer" in out and "OIDCIssuer" in out


def test_production_changed_file_fails_naming_it(tmp_path: Path) -> None:
    need_shared()
    copy = tmp_path / "v1.1.0-sigstore"
    shutil.copytree(PRODUCTION, copy)
    (copy / "signme-1").chmod(0o644)
    (copy / "signme-1").write_bytes((PRODUCTION / "signme-1").read_bytes() + b"!")
    code, out, _ = run("verify", str(copy), "--identity", IBM_IDENTITY, "--issuer", IBM_ISSUER)
    assert code == 1 and f"{copy}/signme-1" in out and "signature-file-changed" in out
    assert "signme-2" not in out.split("Files")[0]


def test_staging_root_does_not_verify_a_production_signature() -> None:
    need_shared()
    code, out, _ = run(
        "verify", str(PRODUCTION), "--identity", IBM_IDENTITY, "--issuer", IBM_ISSUER, "--staging"
    )
    assert code == 1 and "signature-invalid" in out


# --- interoperability with the upstream model_signing CLI ---------------------------


def upstream(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "model_signing", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_upstream_verifies_our_key_signature(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    assert run("sign", str(model), "--key", str(keys.private))[0] == 0
    sig = model / "model.sig"
    proc = upstream(
        "verify", "key", str(model), "--public_key", str(keys.public), "--signature", str(sig), home=tmp_path
    )
    assert proc.returncode == 0 and "Verification succeeded" in proc.stdout, proc.stderr
    (model / "config.json").write_text("{}")
    proc = upstream(
        "verify", "key", str(model), "--public_key", str(keys.public), "--signature", str(sig), home=tmp_path
    )
    assert proc.returncode == 1 and "config.json" in proc.stderr


def test_we_verify_an_upstream_key_signature(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    sig = model / "model.sig"
    proc = upstream(
        "sign", "key", str(model), "--private_key", str(keys.private), "--signature", str(sig), home=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    code, out, _ = run("verify", str(model), "--key", str(keys.public))
    assert code == 0, out
    (model / "sub" / "extra.py").write_text("import os\n")
    code, out, _ = run("verify", str(model), "--key", str(keys.public))
    assert code == 1 and "sub/extra.py" in out


def test_upstream_verifies_our_certificate_signature(model: Path, ca: TinyCA, tmp_path: Path) -> None:
    assert run("sign", str(model), "--key", str(ca.key), "--certificate", str(ca.leaf))[0] == 0
    sig = str(model / "model.sig")
    proc = upstream(
        "verify",
        "certificate",
        str(model),
        "--certificate_chain",
        str(ca.root),
        "--signature",
        sig,
        home=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr


def test_our_digests_equal_upstream_manifest(model: Path, keys: KeyPair) -> None:
    """The manifest we sign is the one model_signing would have computed."""
    from model_signing import hashing

    ours = sign_model(model, KeySigner(keys.private)).manifest.files
    theirs = hashing.Config().set_ignored_paths(paths=["model.sig"]).hash(model)
    assert ours == {rd.identifier: rd.digest.digest_hex for rd in theirs.resource_descriptors()}


# --- hostile and unusual signatures ---------------------------------------------------------


@pytest.mark.parametrize("cut", [0, 1, 20, 200, -10])
def test_truncated_signature_is_invalid_never_a_crash(model: Path, keys: KeyPair, cut: int) -> None:
    sign_model(model, KeySigner(keys.private))
    sig = model / "model.sig"
    sig.write_bytes(sig.read_bytes()[:cut])
    code, out, err = run("verify", str(model), "--key", str(keys.public))
    assert code == 1 and "signature-invalid" in out and "Traceback" not in err


def test_signature_that_ignores_everything_is_invalid(model: Path, keys: KeyPair, tmp_path: Path) -> None:
    """A signer can list '.' as ignored; the signature then vouches for nothing."""
    sig = tmp_path / "all-ignored.sig"
    proc = upstream(
        "sign", "key", str(model), "--private_key", str(keys.private), "--signature", str(sig),
        "--ignore-paths", str(model), home=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    code, out, _ = run("verify", str(model), "--key", str(keys.public), "--signature", str(sig))
    assert code == 1 and "covers no files" in out


def test_shard_serialization_signature_is_rehashed_by_model_signing(model: Path, keys: KeyPair) -> None:
    """Signatures over file shards (not per-file sha256) are compared on model_signing's terms."""
    from model_signing import hashing, signing

    sig = model / "model.sig"
    config = hashing.Config().use_shard_serialization(shard_size=16).set_ignored_paths(paths=["model.sig"])
    signing.Config().use_elliptic_key_signer(private_key=keys.private).set_hashing_config(config).sign(
        model, sig
    )
    assert run("verify", str(model), "--key", str(keys.public))[0] == 0
    (model / "model.safetensors").write_bytes(b"changed")
    code, out, _ = run("verify", str(model), "--key", str(keys.public))
    assert code == 1 and "model.safetensors" in out


def test_remote_scan_cannot_check_signatures(model: Path, keys: KeyPair) -> None:
    from modeltrust.cli.scan_cmd import scan

    cli.add_command(scan)
    code, _, err = run("scan", "hf://org/model", "--remote", "--key", str(keys.public))
    assert code == 2 and "--remote" in err


def test_we_verify_an_upstream_certificate_signature(model: Path, ca: TinyCA, tmp_path: Path) -> None:
    sig = model / "model.sig"
    proc = upstream(
        "sign", "certificate", str(model), "--private_key", str(ca.key),
        "--signing_certificate", str(ca.leaf), "--certificate_chain", str(ca.root), "--signature", str(sig),
        home=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    code, out, _ = run("verify", str(model), "--certificate-chain", str(ca.root))
    assert code == 0, out


def test_verify_json_report_is_valid_and_records_the_outcome(model: Path, keys: KeyPair) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    sign_model(model, KeySigner(keys.private))
    (model / "config.json").write_text("{}")
    code, out, _ = run("verify", str(model), "--key", str(keys.public), "--format", "json")
    assert code == 1
    report = json.loads(out)
    schema = json.loads((ROOT / "src" / "modeltrust" / "reporting" / "report.schema.json").read_text())
    jsonschema.validate(report, schema)
    [record] = report["signatures"]
    assert record["outcome"] == "modified" and record["target"] == str(model)
    assert {f["rule_id"] for f in report["findings"]} >= {"signature-file-changed"}
