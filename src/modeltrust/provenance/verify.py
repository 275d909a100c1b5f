"""Check a model folder against its OpenSSF model signature and say, file by
file, what does not match. The outcome is a value; `findings` turns it into
report findings (valid: info naming the signer; tampering: critical per file).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..findings import Finding, Location
from ..rules import RuleSet
from .manifest import (
    DEFAULT_SIGNATURE,
    GIT_PATHS,
    HF_CACHE_DIR,
    build_manifest,
    diff,
    is_ignored,
    model_files,
)
from .methods import VerifyWith, describe

VALID = "valid"
UNSIGNED = "unsigned"
INVALID = "invalid"
WRONG_SIGNER = "wrong-signer"
MODIFIED = "modified"


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    outcome: str
    """valid, unsigned, invalid, wrong-signer or modified."""
    signature: Path
    method: str
    signer: str = ""
    reason: str = ""
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()
    """(signed name, current name) of files whose bytes moved."""
    uncovered: tuple[str, ...] = ()
    """Files present that the signature chose to ignore (not vouched for)."""
    signed_files: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    """The covered files as they are now: relative path -> sha256 (per-file signatures)."""
    signature_sha256: str = ""

    @property
    def verified(self) -> bool:
        return self.outcome == VALID


def signature_path(root: Path, signature: Path | None) -> Path:
    return signature if signature is not None else root / DEFAULT_SIGNATURE


def _relative_inside(root: Path, path: Path) -> str | None:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def check_signature(
    root: Path,
    method: VerifyWith,
    signature: Path | None = None,
    known: Mapping[str, str] | None = None,
) -> SignatureCheck:
    """Verify `root` against `signature` (default: model.sig inside it).

    `known` maps relative paths to sha256 digests already verified (a Hub
    download), which are reused rather than recomputed."""
    from .backend import VerificationFailed, preload, rehash, verify_signature

    sig = signature_path(root, signature)
    base = SignatureCheck(UNSIGNED, sig, describe(method))
    if not sig.is_file():
        return replace(base, reason=f"no signature at {sig}")
    base = replace(base, signature_sha256=hashlib.sha256(sig.read_bytes()).hexdigest())
    loading = preload()
    hashed = _hash_ahead(root, sig, known)
    loading.join()
    try:
        signed = verify_signature(sig, method)
        ignore = _ignore_list(root, sig, signed.ignored, signed.resources)
        if signed.by_file_sha256:
            actual = dict(build_manifest(root, ignore, {**hashed, **(known or {})}).files)
        else:
            actual = rehash(root, signed.serialization, ignore)
    except VerificationFailed as failure:
        return replace(base, outcome=failure.kind, reason=failure.reason)
    if not signed.resources:
        return replace(base, outcome=INVALID, reason="the signature covers no files", signer=signed.signer)
    base = replace(
        base,
        signer=signed.signer,
        signed_files=signed.resources,
        files=actual if signed.by_file_sha256 else {},
        uncovered=_uncovered(root, ignore, sig),
    )
    changes = diff(signed.resources, actual)
    if changes.clean:
        return replace(base, outcome=VALID)
    renamed = _renames(signed.resources, actual, changes.removed, changes.added)
    moved_from = {old for old, _ in renamed}
    moved_to = {new for _, new in renamed}
    return replace(
        base,
        outcome=MODIFIED,
        reason=_summary(changes.added, changes.removed, changes.changed),
        added=tuple(p for p in changes.added if p not in moved_to),
        removed=tuple(p for p in changes.removed if p not in moved_from),
        changed=changes.changed,
        renamed=renamed,
    )


def _hash_ahead(root: Path, sig: Path, known: Mapping[str, str] | None) -> dict[str, str]:
    """Hash the files the signature claims to cover while model_signing loads.
    The claim is not trusted: it only picks files to hash early; what is
    compared comes from the verified signature (files this guess missed are
    hashed then, digests computed here are exact either way)."""
    try:
        bundle = json.loads(sig.read_text(encoding="utf-8"))
        statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
        predicate = statement["predicate"]
        claimed = {str(r["name"]): "" for r in predicate["resources"]}
        ignored = tuple(str(p) for p in predicate["serialization"].get("ignore_paths") or ())
        if predicate["serialization"].get("method") != "files":
            return {}
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return {}
    return dict(build_manifest(root, _ignore_list(root, sig, ignored, claimed), known).files)


def _ignore_list(
    root: Path, sig: Path, signed_ignore: tuple[str, ...], signed: Mapping[str, str]
) -> tuple[str, ...]:
    """What the signer ignored, plus what the upstream verifier also ignores:
    the signature file itself and git files (unless the signature covers them),
    and huggingface_hub's download bookkeeping."""
    extra = [p for p in (*GIT_PATHS, HF_CACHE_DIR) if not any(is_ignored(r, (p,)) for r in signed)]
    inside = _relative_inside(root, sig)
    if inside is not None:
        extra.append(inside)
    return tuple(dict.fromkeys((*signed_ignore, *extra)))


def _uncovered(root: Path, ignore: tuple[str, ...], sig: Path) -> tuple[str, ...]:
    skip = {_relative_inside(root, sig)}
    present = model_files(root, ())
    return tuple(
        p for p in present if p not in skip and is_ignored(p, ignore) and not is_ignored(p, GIT_PATHS)
    )


def _renames(
    signed: Mapping[str, str], actual: Mapping[str, str], removed: tuple[str, ...], added: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    by_digest = {signed[p]: p for p in removed}
    pairs = []
    for new in added:
        old = by_digest.pop(actual[new], None)
        if old is not None:
            pairs.append((old, new))
    return tuple(pairs)


def _summary(added: tuple[str, ...], removed: tuple[str, ...], changed: tuple[str, ...]) -> str:
    parts = []
    for label, paths in (("changed", changed), ("added", added), ("removed", removed)):
        if paths:
            parts.append(f"{label}: {', '.join(paths)}")
    return "files differ from the signed manifest (" + "; ".join(parts) + ")"


def findings(check: SignatureCheck, prefix: str, rules: RuleSet) -> list[Finding]:
    """Report findings for one check. `prefix` names the model (a folder or
    hub://repo@commit); per-file findings are located at the file."""
    sig_location = Location(_join(prefix, check.signature.name))

    def make(rule_id: str, location: Location, message: str, subject: str = "") -> Finding:
        rule = rules.rule(rule_id)
        return Finding(rule.id, rule.severity, location, message, subject, "signature", rule.references)

    out: list[Finding] = []
    if check.outcome == UNSIGNED:
        out.append(make("signature-missing", Location(prefix), f"no model signature: {check.reason}"))
    elif check.outcome == INVALID:
        out.append(make("signature-invalid", sig_location, f"signature does not verify: {check.reason}"))
    elif check.outcome == WRONG_SIGNER:
        out.append(
            make(
                "signature-wrong-signer",
                sig_location,
                f"signed, but not by the expected signer ({check.method}): {check.reason}",
            )
        )
    else:
        out.append(
            make(
                "signature-verified",
                sig_location,
                f"signature verified: signed by {check.signer}",
                check.signer,
            )
        )
    for path in check.changed:
        out.append(
            make(
                "signature-file-changed",
                Location(_join(prefix, path)),
                "bytes differ from the signed digest",
                path,
            )
        )
    for path in check.added:
        out.append(
            make(
                "signature-file-added",
                Location(_join(prefix, path)),
                "file is not in the signed manifest",
                path,
            )
        )
    for path in check.removed:
        out.append(
            make("signature-file-removed", Location(_join(prefix, path)), "signed file is missing", path)
        )
    for old, new in check.renamed:
        message = f"signed as {old!r}; the same bytes now have another name"
        out.append(make("signature-file-renamed", Location(_join(prefix, new)), message, old))
    for path in check.uncovered:
        message = "the signature lists this path as ignored, so nothing vouches for these bytes"
        out.append(make("signature-file-uncovered", Location(_join(prefix, path)), message, path))
    return out


def _join(prefix: str, path: str) -> str:
    return f"{prefix.rstrip('/')}/{path}"
