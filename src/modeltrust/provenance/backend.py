"""The adapter to `model_signing` (and sigstore): the only module that imports
them, so that commands which do not check signatures never pay for it.

model_signing's public `Config.sign/verify` hash the folder themselves. To hash
once (and reuse verified Hub digests) we hand it our own manifest: a signature
is `Signer.sign(Payload(manifest))`, and a verification is
`Verifier.verify(signature) -> signed manifest`, which we then compare with our
digests file by file. Those classes live in model_signing's private modules,
which is why the dependency is pinned to the 1.1 series.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib
import json
import logging
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SignatureError
from .manifest import FileManifest
from .methods import (
    CertificateSigner,
    CertificateVerifier,
    KeySigner,
    KeyVerifier,
    SignWith,
    SigstoreSigner,
    SigstoreVerifier,
    VerifyWith,
)

PREDICATE_TYPE = "https://model_signing/signature/v1.0"


def preload() -> threading.Thread:
    """Import model_signing on a thread while the caller hashes files: the
    import (0.8 s) then overlaps the hashing instead of adding to it."""

    def load() -> None:
        with contextlib.suppress(ImportError):  # the real import reports it, later
            importlib.import_module("model_signing._signing.sign_ec_key")
            importlib.import_module("model_signing._signing.sign_certificate")

    thread = threading.Thread(target=load, name="modeltrust-preload", daemon=True)
    thread.start()
    return thread


class VerificationFailed(Exception):
    """The signature does not hold; `kind` is "invalid" or "wrong-signer"."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SignedManifest:
    """What a verified signature says: the files and digests it covers."""

    name: str
    resources: dict[str, str]
    """Resource identifier (a relative path, or path:start:end for shards) -> hex digest."""
    serialization: dict[str, Any]
    signer: str

    @property
    def ignored(self) -> tuple[str, ...]:
        return tuple(str(p) for p in self.serialization.get("ignore_paths") or ())

    @property
    def by_file_sha256(self) -> bool:
        """Comparable with our per-file sha256 digests (else model_signing rehashes)."""
        return self.serialization.get("method") == "files" and self.serialization.get("hash_type") == "sha256"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _sigstore_trust(staging: bool, trust_config: Path | None) -> Any:
    from sigstore.models import ClientTrustConfig

    # Offline is the point here (the shipped root); its warning says nothing new.
    logging.getLogger("sigstore._internal.tuf").setLevel(logging.ERROR)
    try:
        if trust_config is not None:
            return ClientTrustConfig.from_json(trust_config.read_text(encoding="utf-8"))
        if staging:
            return ClientTrustConfig.staging(offline=True)
        return ClientTrustConfig.production(offline=True)
    except Exception as exc:  # noqa: BLE001 - any failure here is an unusable trust root
        raise SignatureError(f"cannot load the sigstore trust root: {_one_line(exc)}") from None


def _sigstore_verifier(method: SigstoreVerifier) -> Any:
    """model_signing's sigstore verifier refreshes the trust root over the
    network; this one uses the root the sigstore package ships (offline)."""
    from model_signing._signing import signing
    from sigstore.verify import Verifier, policy

    trust = _sigstore_trust(method.staging, method.trust_config)

    class OfflineSigstoreVerifier(signing.Verifier):
        def _verify_signed_content(self, signature: Any) -> tuple[str, bytes]:
            verifier = Verifier(trusted_root=trust.trusted_root)
            identity = policy.Identity(identity=method.identity, issuer=method.issuer)
            payload_type, payload = verifier.verify_dsse(bundle=signature.bundle, policy=identity)
            return str(payload_type), bytes(payload)

    return OfflineSigstoreVerifier()


def _verifier(method: VerifyWith) -> Any:
    from model_signing._signing import sign_certificate, sign_ec_key

    try:
        if isinstance(method, KeyVerifier):
            return sign_ec_key.Verifier(method.public_key)
        if isinstance(method, CertificateVerifier):
            return sign_certificate.Verifier(list(method.chain))
    except Exception as exc:  # noqa: BLE001 - unreadable or unsupported keys alike
        raise SignatureError(f"cannot use {_what(method)}: {_one_line(exc)}") from None
    return _sigstore_verifier(method)


def _what(method: VerifyWith | SignWith) -> str:
    if isinstance(method, KeyVerifier):
        return f"public key {method.public_key}"
    if isinstance(method, CertificateVerifier):
        return "certificate chain " + ", ".join(map(str, method.chain))
    if isinstance(method, (KeySigner, CertificateSigner)):
        return f"private key {method.private_key}"
    return "sigstore"


def _read_signature(path: Path, keyless: bool) -> Any:
    from model_signing._signing import sign_sigstore, sign_sigstore_pb

    reader = sign_sigstore.Signature if keyless else sign_sigstore_pb.Signature
    try:
        return reader.read(path)
    except OSError as exc:
        raise SignatureError(f"cannot read signature {path}: {exc.strerror}") from None
    except Exception as exc:  # noqa: BLE001 - a malformed bundle is an invalid signature
        raise VerificationFailed("invalid", f"not a readable sigstore bundle: {_one_line(exc)}") from None


def _classify(exc: Exception, method: VerifyWith) -> VerificationFailed:
    """Sort model_signing's and sigstore's exceptions into the two outcomes."""
    text = _one_line(exc)
    name = type(exc).__name__
    identity_checks = ("SANs do not match", "OIDCIssuer does not match")
    if isinstance(method, SigstoreVerifier) and any(check in text for check in identity_checks):
        return VerificationFailed("wrong-signer", text)
    if isinstance(method, KeyVerifier) and text.startswith("Key mismatch"):
        return VerificationFailed("wrong-signer", f"signed with another key than {method.public_key}")
    if isinstance(method, CertificateVerifier) and name in ("X509StoreContextError", "X509StoreContext"):
        return VerificationFailed(
            "wrong-signer", f"the signing certificate does not chain to the given roots ({text})"
        )
    if name == "InvalidSignature":
        text = "the signature does not match the signed content"
    return VerificationFailed("invalid", text)


def verify_signature(signature: Path, method: VerifyWith) -> SignedManifest:
    """Check the signature and the signer; return what it covers.

    Raises VerificationFailed when it does not hold, SignatureError when the
    key or trust material itself is unusable."""
    verifier = _verifier(method)
    sig = _read_signature(signature, isinstance(method, SigstoreVerifier))
    try:
        signed = verifier.verify(sig)
    except SignatureError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure of the check is a failed verification
        raise _classify(exc, method) from None
    resources = {rd.identifier: rd.digest.digest_hex for rd in signed.resource_descriptors()}
    return SignedManifest(
        name=signed.model_name,
        resources=resources,
        serialization=dict(signed.serialization_type),
        signer=_signer_name(signature, method),
    )


def _signer_name(signature: Path, method: VerifyWith) -> str:
    """Who signed, as the verified material names them."""
    if isinstance(method, SigstoreVerifier):
        return f"{method.identity} (issuer {method.issuer})"
    bundle = json.loads(signature.read_text(encoding="utf-8"))
    material = bundle.get("verificationMaterial") or {}
    if isinstance(method, KeyVerifier):
        return f"the holder of {method.public_key} ({key_fingerprint(method.public_key)})"
    chain = (material.get("x509CertificateChain") or {}).get("certificates") or []
    if not chain:
        return "a certificate"
    from cryptography import x509

    leaf = x509.load_der_x509_certificate(base64.b64decode(chain[0]["rawBytes"]))
    return f"certificate {leaf.subject.rfc4514_string()} (issued by {leaf.issuer.rfc4514_string()})"


def key_fingerprint(public_key: Path) -> str:
    """sha256 of the PEM public key, as model_signing records it in the bundle."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public_key.read_bytes())
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(pem).hexdigest()


def rehash(root: Path, serialization: dict[str, Any], ignore: tuple[str, ...]) -> dict[str, str]:
    """Resources as model_signing computes them, for signatures that are not
    per-file sha256 (shards, BLAKE2/3): our digests cannot be compared."""
    from model_signing import hashing

    try:
        config = hashing.Config()  # type: ignore[no-untyped-call]
        if serialization.get("method") == "shards":
            # Key and certificate bundles carry the payload through protobuf JSON, which
            # turns the shard size into a float that model_signing cannot range() over.
            size = int(serialization["shard_size"])
            config.use_shard_serialization(hashing_algorithm=serialization["hash_type"], shard_size=size)
        else:
            config.use_file_serialization(hashing_algorithm=serialization["hash_type"])
        config.set_ignored_paths(paths=list(ignore), ignore_git_paths=False).set_allow_symlinks(True)
        actual = config.hash(root)
    except Exception as exc:  # noqa: BLE001 - an unusable serialization fails the check, closed
        raise VerificationFailed("invalid", f"cannot rehash the model: {_one_line(exc)}") from None
    return {rd.identifier: rd.digest.digest_hex for rd in actual.resource_descriptors()}


def _signer(method: SignWith) -> Any:
    from model_signing._signing import sign_certificate, sign_ec_key

    try:
        if isinstance(method, KeySigner):
            return sign_ec_key.Signer(method.private_key, method.password)
        if isinstance(method, CertificateSigner):
            if method.password is not None:
                raise ValueError("encrypted keys are not supported with certificates")
            # model_signing 1.1 cannot parse an empty chain: give it the leaf, then drop it.
            chain = list(method.chain) or [method.certificate]
            signer = sign_certificate.Signer(method.private_key, method.certificate, chain)
            if not method.chain:
                signer._trust_chain = []
            return signer
    except Exception as exc:  # noqa: BLE001 - unreadable, encrypted or unsupported keys alike
        raise SignatureError(f"cannot sign with {_what(method)}: {_one_line(exc)}") from None
    return _sigstore_signer(method)


def _ambient_token() -> str | None:
    from sigstore.oidc import detect_credential

    try:
        return detect_credential()
    except Exception:  # noqa: BLE001 - a CI without the id-token permission, for one
        return None


def _sigstore_signer(method: SigstoreSigner) -> Any:
    from model_signing._signing import sign_sigstore

    if method.identity_token is None and not sys.stdin.isatty() and _ambient_token() is None:
        # Otherwise model_signing would start a browser flow and wait for input that never comes.
        raise SignatureError(
            "keyless signing needs an OIDC identity token",
            hint="set SIGSTORE_ID_TOKEN (in CI: the id-token permission), or sign with --key",
        )
    try:
        return sign_sigstore.Signer(
            use_ambient_credentials=True,
            use_staging=method.staging,
            identity_token=method.identity_token,
            trust_config=method.trust_config,
        )
    except Exception as exc:  # noqa: BLE001 - no network, no TUF root, no token
        raise SignatureError(
            f"keyless signing needs sigstore's services, which cannot be reached: {_one_line(exc)}",
            hint="sign with --key, or run where the network reaches sigstore",
        ) from None


def _ms_manifest(manifest: FileManifest) -> Any:
    from model_signing import manifest as ms_manifest
    from model_signing._hashing.hashing import Digest

    serialization = ms_manifest.SerializationType.from_args(
        {
            "method": "files",
            "hash_type": "sha256",
            "allow_symlinks": False,
            "ignore_paths": list(manifest.ignored),
        }
    )
    items = [
        serialization.new_item(path, Digest("sha256", bytes.fromhex(d))) for path, d in manifest.files.items()
    ]
    return ms_manifest.Manifest(manifest.name, items, serialization)


def sign_manifest(manifest: FileManifest, method: SignWith, output: Path) -> None:
    """Sign our manifest in the OpenSSF model signing format and write the bundle."""
    from model_signing._signing import signing

    signer = _signer(method)
    payload = signing.Payload(_ms_manifest(manifest))
    try:
        signature = signer.sign(payload)
    except Exception as exc:  # noqa: BLE001 - key and network failures alike
        keyless = isinstance(method, SigstoreSigner)
        hint = "sign with --key, or run where the network reaches sigstore" if keyless else ""
        raise SignatureError(f"signing failed: {_one_line(exc)}", hint=hint) from None
    try:
        signature.write(output)
    except OSError as exc:
        raise SignatureError(f"cannot write {output}: {exc.strerror}") from None
