"""Options that say how a signature is checked, shared by `verify` and `scan`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import ConfigError
from ..provenance.methods import (
    CertificateVerifier,
    KeyVerifier,
    SignatureRequest,
    SigstoreVerifier,
    VerifyWith,
)

F = TypeVar("F", bound=Callable[..., Any])

_READABLE = click.Path(exists=True, dir_okay=False, path_type=Path)


def verify_options(key_help: str, multiple_keys: bool = False) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        options = [
            click.option("--signature", type=click.Path(dir_okay=False, path_type=Path), default=None,
                         help="Signature file (default: model.sig in the model folder or Hub repo)."),
            click.option("--identity", default=None, help="Keyless: the signer identity (SAN)."),
            click.option("--issuer", default=None, help="Keyless: the OIDC issuer of --identity."),
            click.option("--key", "keys" if multiple_keys else "key", type=_READABLE, multiple=multiple_keys,
                         default=None, help=key_help),
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
        _require_public_key(key)
        return KeyVerifier(key)
    if certificate_chain:
        return CertificateVerifier(tuple(certificate_chain))
    return None


def _require_public_key(path: Path) -> None:
    """An unusable key is a usage error (exit 2), found before any signature is
    looked for: a folder without a signature must not hide it behind exit 1."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        load_pem_public_key(path.read_bytes())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        reason = str(exc).split(". ")[0].strip() or type(exc).__name__
        raise ConfigError(
            f"{path}: not a usable PEM public key ({reason})", hint="give the signer's public key"
        ) from None


def split_keys(keys: tuple[Path, ...]) -> tuple[Path | None, tuple[Path, ...]]:
    """--key given to scan/attest: a private key signs the attestation, public
    keys verify the model signature (told apart by their PEM label)."""
    private: list[Path] = []
    public: list[Path] = []
    for path in keys:
        head = path.read_bytes()[:200]
        if b"PRIVATE KEY-----" in head:
            private.append(path)
        elif b"PUBLIC KEY-----" in head:
            public.append(path)
        else:
            raise ConfigError(f"{path}: not a PEM public or private key")
    if len(private) > 1:
        raise ConfigError("give one private key (it signs the attestation)")
    return (private[0] if private else None), tuple(public)


def signature_request(
    policy_signers: tuple[VerifyWith, ...],
    identity: str | None,
    issuer: str | None,
    public_keys: tuple[Path, ...],
    certificate_chain: tuple[Path, ...],
    staging: bool,
    trust_config: Path | None,
    signature: Path | None,
) -> SignatureRequest | None:
    """Signers from the options and from the policy's require_signature; None
    when signatures are not to be checked."""
    if len(public_keys) > 1:
        raise ConfigError("give one public key to verify the model signature with")
    method = verify_method(identity, issuer, public_keys[0] if public_keys else None, certificate_chain,
                           staging, trust_config)  # fmt: skip
    accept = ((method,) if method is not None else ()) + policy_signers
    if not accept:
        if signature is not None:
            raise ConfigError(
                "--signature needs a signer to check",
                hint="--identity/--issuer, --key PUB.pem or --certificate-chain",
            )
        return None
    return SignatureRequest(accept, signature)
