"""`modeltrust verify-attestation`: check a signed attestation (and, with
--target, the files it vouches for)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import ConfigError
from .main import EXIT_OK, EXIT_POLICY, handle_errors

_READABLE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("verify-attestation")
@click.argument("attestation", type=_READABLE)
@click.option("--key", type=_READABLE, default=None, help="Public key (PEM) the attestation was signed with.")
@click.option("--identity", default=None, help="Keyless: the expected signer identity.")
@click.option("--issuer", default=None, help="Keyless: the OIDC issuer of --identity.")
@click.option("--staging", is_flag=True, help="Keyless: use sigstore's staging trust root.")
@click.option("--target", type=click.Path(exists=True, path_type=Path), default=None,
              help="Check every subject digest against these files; no other file may be there.")  # fmt: skip
@click.option("--predicate-type", "predicate_types", multiple=True,
              help="Require a statement of this predicate type (repeatable).")  # fmt: skip
@handle_errors
def verify_attestation(
    attestation: Path,
    key: Path | None,
    identity: str | None,
    issuer: str | None,
    staging: bool,
    target: Path | None,
    predicate_types: tuple[str, ...],
) -> None:
    """Verify ATTESTATION: signature, predicate types, and subject digests.

    Exit 0 when everything holds, 1 when anything does not (each problem on
    its own line), 2 on usage or internal errors."""
    from ..attestation.dsse import IdentityCheck, KeyCheck
    from ..attestation.verify import verify_attestation as check

    if key is not None and (identity or issuer):
        raise ConfigError("choose --key or --identity/--issuer")
    if key is not None:
        how: KeyCheck | IdentityCheck = KeyCheck(key)
    elif identity and issuer:
        how = IdentityCheck(identity, issuer, staging)
    else:
        raise ConfigError("say who signed the attestation", hint="--key PUB.pem, or --identity and --issuer")
    result = check(attestation, how, target, predicate_types)
    for kind in result.predicate_types:
        click.echo(f"verified: {kind}")
    if target is not None and not result.problems:
        click.echo(f"verified: {result.subjects} subject(s) match {target}")
    for problem in result.problems:
        click.echo(f"FAILED {problem}")
    if not result.predicate_types and not result.problems:
        click.echo("FAILED no statement verified")
    sys.exit(EXIT_OK if result.ok else EXIT_POLICY)
