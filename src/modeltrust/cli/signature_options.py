"""Options that say how a signature is checked, shared by `verify` and `scan`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import ConfigError
from ..provenance.methods import CertificateVerifier, KeyVerifier, SigstoreVerifier, VerifyWith

F = TypeVar("F", bound=Callable[..., Any])

_READABLE = click.Path(exists=True, dir_okay=False, path_type=Path)


def verify_options(key_help: str) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        options = [
            click.option("--signature", type=click.Path(dir_okay=False, path_type=Path), default=None,
                         help="Signature file (default: model.sig in the model folder or Hub repo)."),
            click.option("--identity", default=None, help="Keyless: the signer identity (SAN)."),
            click.option("--issuer", default=None, help="Keyless: the OIDC issuer of --identity."),
            click.option("--key", type=_READABLE, default=None, help=key_help),
            click.option("--certificate-chain", "certificate_chain", type=_READABLE, multiple=True,
                         help="Root/intermediate certificates (PEM) the signing certificate must chain to."),
            click.option("--staging", is_flag=True, help="Keyless: use sigstore's staging trust root."),
            click.option("--trust-config", type=_READABLE, default=None,
                         help="Keyless: a sigstore ClientTrustConfig JSON (private sigstore instance)."),
        ]  # fmt: skip
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def verify_method(
    identity: str | None,
    issuer: str | None,
    key: Path | None,
    certificate_chain: tuple[Path, ...],
    staging: bool = False,
    trust_config: Path | None = None,
) -> VerifyWith | None:
    """The one verification method the options name; None when none is given."""
    chosen = [bool(identity or issuer), key is not None, bool(certificate_chain)]
    if sum(chosen) > 1:
        raise ConfigError(
            "choose one way to verify", hint="--identity/--issuer, --key or --certificate-chain"
        )
    if identity or issuer:
        if not (identity and issuer):
            raise ConfigError("keyless verification needs both --identity and --issuer")
        return SigstoreVerifier(identity, issuer, staging, trust_config)
    if key is not None:
        return KeyVerifier(key)
    if certificate_chain:
        return CertificateVerifier(tuple(certificate_chain))
    return None
