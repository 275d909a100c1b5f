"""`modeltrust attest`: scan a model under a policy and write signed
evidence of what was vetted (SLSA Provenance v1 + the verdict, in DSSE)."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import ConfigError
from ..findings import Severity
from .main import EXIT_ERROR, EXIT_OK, EXIT_POLICY, cache_dir, handle_errors, hub_settings, rules_option
from .signature_options import signature_request, split_keys, verify_options

if TYPE_CHECKING:  # `sign` and `verify` start without the policy machinery
    from ..findings import ScanReport
    from ..policy import Policy
    from ..rules import RuleSet


def emit_attestation(
    path: Path,
    report: ScanReport,
    policy: Policy,
    threshold: Severity,
    ruleset: RuleSet,
    started: datetime.datetime,
    private_key: Path | None,
    sigstore: bool = False,
    identity_token: str | None = None,
    options: dict[str, Any] | None = None,
) -> None:
    """Sign and write the attestation of a finished scan (policy applied)."""
    from ..attestation.build import vet_run, write_attestation
    from ..attestation.dsse import KeySigning, SigstoreSigning

    if private_key is None and not sigstore:
        raise ConfigError("an attestation must be signed", hint="--key PRIVATE.pem (ECDSA P-256 or Ed25519)")
    how = SigstoreSigning(identity_token) if sigstore else KeySigning(private_key)  # type: ignore[arg-type]
    finished = datetime.datetime.now(datetime.timezone.utc)
    run = vet_run(report, policy, threshold, ruleset.digest, started, finished, options)
    write_attestation(path, run, how)
    click.echo(
        f"attestation: {len(run.subjects)} subject(s), verdict {'pass' if run.passed else 'fail'} -> {path}",
        err=True,
    )


@click.command()
@click.argument("target")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Attestation file to write (JSON Lines of DSSE envelopes).")  # fmt: skip
@verify_options(key_help="Private key (PEM, ECDSA P-256 or Ed25519) that signs the attestation; "
                "a public key given as well verifies the model signature.", multiple_keys=True)  # fmt: skip
@click.option(
    "--sigstore", is_flag=True, help="Sign the attestation keylessly with sigstore (needs the network)."
)
@click.option("--identity-token", default=None, envvar="SIGSTORE_ID_TOKEN", help="OIDC token for --sigstore.")
@click.option("--policy", "policy_name", default=None, help="Policy file, or a built-in policy name.")
@click.option("--fail-on", type=click.Choice([s.label for s in Severity], case_sensitive=False), default=None,
              help="Threshold (default: the policy's).")  # fmt: skip
@rules_option
@click.option("--hub", "assume_hub", is_flag=True, help="Read ORG/NAME[@REV] as a Hugging Face repo.")
@handle_errors
def attest(
    target: str,
    output: Path,
    signature: Path | None,
    identity: str | None,
    issuer: str | None,
    keys: tuple[Path, ...],
    certificate_chain: tuple[Path, ...],
    staging: bool,
    trust_config: Path | None,
    sigstore: bool,
    identity_token: str | None,
    policy_name: str | None,
    fail_on: str | None,
    rules_files: tuple[str, ...],
    assume_hub: bool,
) -> None:
    """Vet TARGET (a folder, file or hf://ORG/NAME@REV) and attest to it.

    Every file is hashed once (Hub downloads: the verified digest) and becomes
    a subject. Exit 0 when the scan passed, 1 when it failed (the attestation
    is written either way and records the verdict), 2 on errors."""
    from ..config import ScanConfig
    from ..engine import scan as run_scan
    from ..policy import resolve_policy
    from ..rules import default_rules_dir, load_rules

    started = datetime.datetime.now(datetime.timezone.utc)
    private_key, public_keys = split_keys(keys)
    if private_key is None and not sigstore:
        raise ConfigError("an attestation must be signed", hint="--key PRIVATE.pem (ECDSA P-256 or Ed25519)")
    cache = cache_dir()
    policy = resolve_policy(policy_name, default_rules_dir(), cache)
    threshold = Severity.parse(fail_on) if fail_on else policy.fail_on
    request = signature_request(policy.clauses.require_signature, identity, issuer, public_keys,
                                certificate_chain, staging, trust_config, signature)  # fmt: skip
    remote = assume_hub or target.startswith(("hf://", "http://", "https://"))
    config = ScanConfig(
        targets=(target,),
        rules_files=rules_files,
        fail_on=threshold,
        hash_files=True,
        hub=hub_settings(assume_hub) if remote else None,
        signature=request,
    )
    ruleset = load_rules(config.rules_files, cache_dir=cache)
    report = policy.apply(run_scan(config, ruleset), rules=ruleset)
    if report.errors:
        for error in report.errors:
            click.echo(f"error: {error.message}", err=True)
        sys.exit(EXIT_ERROR)
    emit_attestation(
        output, report, policy, threshold, ruleset, started, private_key, sigstore, identity_token
    )
    failing = report.failing(threshold)
    from ..clauses import decided_by

    if failing:
        why = ", ".join(decided_by(report, threshold))
        click.echo(f"FAIL {len(failing)} finding(s) fail the gate; decided by {why}")
    else:
        click.echo(f"PASS {len(report.artifacts)} file(s) (policy {policy.name})")
    sys.exit(EXIT_POLICY if failing else EXIT_OK)
