"""How a signature is checked or made: plain values the CLI builds from its
options (no crypto library is imported here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class KeyVerifier:
    """A bare public key (PEM); the signer is whoever holds the private key."""

    public_key: Path


@dataclass(frozen=True, slots=True)
class CertificateVerifier:
    """The signing certificate in the signature must chain to these roots (PEM)."""

    chain: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class SigstoreVerifier:
    """Keyless: the Fulcio certificate must name `identity` and `issuer`;
    checked offline against the trust root the sigstore package ships."""

    identity: str
    issuer: str
    staging: bool = False
    trust_config: Path | None = None
    """A sigstore ClientTrustConfig JSON, for a private sigstore instance."""


VerifyWith = KeyVerifier | CertificateVerifier | SigstoreVerifier


@dataclass(frozen=True, slots=True)
class KeySigner:
    private_key: Path
    password: str | None = None


@dataclass(frozen=True, slots=True)
class CertificateSigner:
    private_key: Path
    certificate: Path
    chain: tuple[Path, ...] = ()
    password: str | None = None


@dataclass(frozen=True, slots=True)
class SigstoreSigner:
    """Keyless signing: needs the network (Fulcio, Rekor) and an OIDC token."""

    identity_token: str | None = None
    staging: bool = False
    trust_config: Path | None = None


SignWith = KeySigner | CertificateSigner | SigstoreSigner


def describe(method: VerifyWith) -> str:
    if isinstance(method, KeyVerifier):
        return f"key {method.public_key}"
    if isinstance(method, CertificateVerifier):
        return "certificate chain " + ", ".join(str(p) for p in method.chain)
    return f"sigstore identity {method.identity} from {method.issuer}"


@dataclass(frozen=True, slots=True)
class SignatureRequest:
    """What a scan checks: each target folder's signature, accepted when any
    of `accept` verifies it (the policy clause require_signature then judges
    the outcome recorded in the report)."""

    accept: tuple[VerifyWith, ...]
    signature: Path | None = None
