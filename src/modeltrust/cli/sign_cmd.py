"""`modeltrust sign`: sign a model folder in the OpenSSF model signing format."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import ConfigError
from ..provenance.methods import CertificateSigner, KeySigner, SignWith, SigstoreSigner
from .main import handle_errors

_READABLE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _method(
    key: Path | None,
    certificate: Path | None,
    chain: tuple[Path, ...],
    sigstore: bool,
    identity_token: str | None,
    staging: bool,
    password: str | None,
) -> SignWith:
    if sigstore:
        if key is not None or certificate is not None:
            raise ConfigError(
                "--sigstore signs keylessly", hint="drop --key/--certificate, or drop --sigstore"
            )
        return SigstoreSigner(identity_token, staging)
    if key is None:
        raise ConfigError(
            "say how to sign",
            hint="--key PRIVATE.pem, --certificate CERT.pem --key PRIVATE.pem, or --sigstore",
        )
    if certificate is not None:
        return CertificateSigner(key, certificate, chain, password)
    if chain:
        raise ConfigError("--certificate-chain needs --certificate")
    return KeySigner(key, password)


@click.command()
@click.argument("target", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--key", type=_READABLE, default=None, help="Private key (PEM, elliptic curve P-256/384/521).")
@click.option("--password", default=None, envvar="MODELTRUST_KEY_PASSWORD",
              help="Password of an encrypted --key (or MODELTRUST_KEY_PASSWORD).")  # fmt: skip
@click.option("--certificate", type=_READABLE, default=None, help="Signing certificate (PEM) for --key.")
@click.option("--certificate-chain", "chain", type=_READABLE, multiple=True,
              help="Intermediate certificates (PEM) to include; repeatable.")  # fmt: skip
@click.option("--sigstore", is_flag=True, help="Keyless signing with sigstore (needs the network).")
@click.option("--identity-token", default=None, envvar="SIGSTORE_ID_TOKEN",
              help="OIDC token for --sigstore (default: ambient CI credentials).")  # fmt: skip
@click.option("--staging", is_flag=True, help="Use sigstore's staging instance (tests only).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the signature (default: TARGET/model.sig).")  # fmt: skip
@click.option("--ignore", "ignore", multiple=True, help="Path inside TARGET to leave out (repeatable).")
@handle_errors
def sign(
    target: Path,
    key: Path | None,
    password: str | None,
    certificate: Path | None,
    chain: tuple[Path, ...],
    sigstore: bool,
    identity_token: str | None,
    staging: bool,
    output: Path | None,
    ignore: tuple[str, ...],
) -> None:
    """Sign the model folder TARGET (every file, hashed once, in parallel).

    The signature is a sigstore bundle in the OpenSSF model signing format:
    `model_signing verify` accepts it. Exit 0 signed, 2 on errors (keyless
    signing without a network is an error, never a silent pass)."""
    from ..provenance.sign import sign_model

    method = _method(key, certificate, chain, sigstore, identity_token, staging, password)
    result = sign_model(target, method, output, ignore)
    click.echo(f"signed {len(result.manifest.files)} file(s) of {target}: {result.signature}")
