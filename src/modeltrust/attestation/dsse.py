"""DSSE envelopes around in-toto Statements, signed with a local key
(ECDSA P-256/P-384 or Ed25519, via securesystemslib) or keylessly with
sigstore (a sigstore bundle whose DSSE envelope carries the statement).

An attestation file holds one signed document per line (JSON Lines, the
in-toto bundle convention): either a DSSE envelope or a sigstore bundle.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AttestationError
from .statement import PAYLOAD_TYPE, canonical_json

_CURVES = ("secp256r1", "secp384r1")


class EnvelopeRejected(Exception):
    """A signed document does not verify (the reason is the message)."""


def _load_private_key(path: Path, password: str | None) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password.encode() if password else None)
    except OSError as exc:
        raise AttestationError(f"cannot read key {path}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise AttestationError(f"{path} is not a usable private key: {exc}") from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVES:
        return key
    raise AttestationError(f"{path}: attestations are signed with ECDSA P-256/P-384 or Ed25519 keys")


def require_signing_key(path: Path, password: str | None = None) -> None:
    """Fail before any work when `path` cannot sign an attestation."""
    _load_private_key(path, password)


def _load_public_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

    try:
        key = serialization.load_pem_public_key(path.read_bytes())
        return SSlibKey.from_crypto(key)
    except OSError as exc:
        raise AttestationError(f"cannot read key {path}: {exc.strerror}") from None
    except (ValueError, TypeError, Exception) as exc:  # noqa: BLE001 - securesystemslib raises its own types
        raise AttestationError(f"{path} is not a usable public key: {exc}") from None


@dataclass(frozen=True, slots=True)
class KeySigning:
    private_key: Path
    password: str | None = None


@dataclass(frozen=True, slots=True)
class SigstoreSigning:
    identity_token: str | None = None
    staging: bool = False


def sign_statements(
    statements: list[dict[str, Any]], how: KeySigning | SigstoreSigning
) -> list[dict[str, Any]]:
    """One signed document per statement."""
    if isinstance(how, SigstoreSigning):
        return [_sigstore_sign(canonical_json(s), how) for s in statements]
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]

    signer = CryptoSigner(_load_private_key(how.private_key, how.password))
    signed = []
    for statement in statements:
        envelope = Envelope(payload=canonical_json(statement), payload_type=PAYLOAD_TYPE, signatures={})
        envelope.sign(signer)
        signed.append(envelope.to_dict())
    return signed


def _sigstore_sign(payload: bytes, how: SigstoreSigning) -> dict[str, Any]:
    try:
        from sigstore import dsse, oidc
        from sigstore.models import ClientTrustConfig
        from sigstore.sign import SigningContext

        trust = ClientTrustConfig.staging() if how.staging else ClientTrustConfig.production()
        token_text = how.identity_token or oidc.detect_credential()
        if not token_text:
            raise AttestationError(
                "keyless signing needs an OIDC identity token",
                hint="set SIGSTORE_ID_TOKEN or sign with --key",
            )
        context = SigningContext.from_trust_config(trust)
        with context.signer(oidc.IdentityToken(token_text)) as signer:
            bundle = signer.sign_dsse(dsse.Statement(payload))
        result: dict[str, Any] = json.loads(bundle.to_json())
        return result
    except AttestationError:
        raise
    except Exception as exc:  # noqa: BLE001 - no network, no token, refused by Fulcio
        raise AttestationError(
            f"keyless signing failed: {' '.join(str(exc).split())[:200]}",
            hint="sign with --key, or run where the network reaches sigstore",
        ) from None


@dataclass(frozen=True, slots=True)
class KeyCheck:
    public_key: Path


@dataclass(frozen=True, slots=True)
class IdentityCheck:
    identity: str
    issuer: str
    staging: bool = False


def open_document(document: dict[str, Any], how: KeyCheck | IdentityCheck) -> dict[str, Any]:
    """Verify one signed document and return its statement.

    Raises EnvelopeRejected when the signature, signer or payload type is wrong."""
    if "dsseEnvelope" in document or "mediaType" in document:
        if not isinstance(how, IdentityCheck):
            raise EnvelopeRejected("a sigstore bundle: verify it with --identity and --issuer")
        payload_type, payload = _sigstore_open(document, how)
    else:
        if not isinstance(how, KeyCheck):
            raise EnvelopeRejected("a DSSE envelope signed with a key: verify it with --key")
        payload_type, payload = _key_open(document, how)
    if payload_type != PAYLOAD_TYPE:
        raise EnvelopeRejected(f"payload type {payload_type!r} is not {PAYLOAD_TYPE}")
    try:
        statement = json.loads(payload)
    except ValueError:
        raise EnvelopeRejected("the signed payload is not JSON") from None
    if not isinstance(statement, dict):
        raise EnvelopeRejected("the signed payload is not an in-toto statement")
    return statement


def _key_open(document: dict[str, Any], how: KeyCheck) -> tuple[str, bytes]:
    from securesystemslib.dsse import Envelope

    key = _load_public_key(how.public_key)
    try:
        envelope = Envelope.from_dict(document)
    except Exception as exc:  # noqa: BLE001 - any malformed envelope
        raise EnvelopeRejected(f"not a DSSE envelope: {exc}") from None
    try:
        envelope.verify([key], 1)
    except Exception:  # noqa: BLE001 - securesystemslib's VerificationError and decoding errors
        raise EnvelopeRejected(f"no valid signature by the key {how.public_key} ({key.keyid[:16]})") from None
    return envelope.payload_type, envelope.payload


def _sigstore_open(document: dict[str, Any], how: IdentityCheck) -> tuple[str, bytes]:
    import logging

    from sigstore.models import Bundle, ClientTrustConfig
    from sigstore.verify import Verifier, policy

    logging.getLogger("sigstore._internal.tuf").setLevel(logging.ERROR)
    try:
        bundle = Bundle.from_json(json.dumps(document))
        trust = (
            ClientTrustConfig.staging(offline=True)
            if how.staging
            else ClientTrustConfig.production(offline=True)
        )
        verifier = Verifier(trusted_root=trust.trusted_root)
        payload_type, payload = verifier.verify_dsse(
            bundle, policy.Identity(identity=how.identity, issuer=how.issuer)
        )
    except Exception as exc:  # noqa: BLE001 - malformed bundles and failed checks alike
        raise EnvelopeRejected(" ".join(str(exc).split())[:300]) from None
    return str(payload_type), bytes(payload)


def read_documents(path: Path) -> list[dict[str, Any]]:
    """The signed documents in an attestation file: JSON Lines, or one JSON document."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AttestationError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise AttestationError(f"{path} is not a text file") from None
    try:
        whole = json.loads(text)
        documents = [whole]
    except ValueError:
        try:
            documents = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError:
            raise AttestationError(f"{path} is neither JSON nor JSON Lines") from None
    if not documents or not all(isinstance(d, dict) for d in documents):
        raise AttestationError(f"{path} holds no signed documents")
    return documents


def payload_of(document: dict[str, Any]) -> bytes:
    """The payload bytes of an envelope, unverified (for tests and display)."""
    envelope = document.get("dsseEnvelope", document)
    return base64.b64decode(envelope["payload"])
