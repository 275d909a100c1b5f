"""`modeltrust verify`: check a model folder or Hub revision against its
OpenSSF model signature; the outcome is a report of findings."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import ConfigError
from ..findings import Severity
from .main import EXIT_OK, EXIT_POLICY, handle_errors, hub_settings
from .signature_options import verify_method, verify_options


@click.command()
@click.argument("target")
@verify_options(key_help="Public key (PEM) the model was signed with.")
@click.option("--hub", "assume_hub", is_flag=True, help="Read ORG/NAME[@REV] as a Hugging Face repo.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="Also show info findings (the verified signer).")
@handle_errors
def verify(
    target: str,
    signature: Path | None,
    identity: str | None,
    issuer: str | None,
    key: Path | None,
    certificate_chain: tuple[Path, ...],
    staging: bool,
    trust_config: Path | None,
    assume_hub: bool,
    fmt: str,
    verbose: bool,
) -> None:
    """Verify TARGET (a folder, or hf://ORG/NAME@REV) against its signature.

    Exit 0 when the signature holds for every file, 1 when it does not
    (unsigned, invalid, another signer, or files changed, added or removed:
    each is named), 2 on usage or internal errors."""
    from ..provenance.report import signature_report
    from ..reporting.json import render_json
    from ..reporting.text import render_text
    from ..rules import load_rules

    method = verify_method(identity, issuer, key, certificate_chain, staging, trust_config)
    if method is None:
        raise ConfigError(
            "say whose signature to expect", hint="--identity and --issuer, --key, or --certificate-chain"
        )
    rules = load_rules()
    check, report = signature_report(target, method, signature, hub_settings(assume_hub), rules)
    if fmt == "json":
        click.echo(render_json(report, Severity.MEDIUM, rules, "verify"), nl=False)
    else:
        render_text(report, Severity.MEDIUM, rules, sys.stdout, verbose=verbose)
        if check.verified:
            click.echo(f"verified: signed by {check.signer}")
    sys.exit(EXIT_OK if check.verified else EXIT_POLICY)
