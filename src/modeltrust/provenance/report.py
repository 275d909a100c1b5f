"""A signature check as a report: the same ScanReport the scanners produce,
so text, JSON, SARIF and the policy gate treat signatures like any finding."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..findings import Artifact, Finding, ScanReport, SignatureOutcome
from ..rules import RuleSet
from .methods import VerifyWith
from .targets import ModelFolder, open_model
from .verify import SignatureCheck, check_signature, findings

if TYPE_CHECKING:
    from ..sources.hub import HubSettings


def check_folder(
    folder: ModelFolder, method: VerifyWith, signature: Path | None, rules: RuleSet
) -> tuple[SignatureCheck, list[Finding]]:
    check = check_signature(folder.root, method, signature, folder.known)
    return check, findings(check, folder.display, rules)


def outcome(folder: ModelFolder, check: SignatureCheck) -> SignatureOutcome:
    """The record of one check, as reports and attestations carry it."""
    inside = check.signature.parent.resolve() == folder.root.resolve()
    return SignatureOutcome(
        target=folder.display,
        signature=f"{folder.display}/{check.signature.name}" if inside else str(check.signature),
        outcome=check.outcome,
        sha256=check.signature_sha256,
        signer=check.signer,
        method=check.method,
    )


def signature_report(
    target: str,
    method: VerifyWith,
    signature: Path | None,
    settings: HubSettings | None,
    rules: RuleSet,
) -> tuple[SignatureCheck, ScanReport]:
    folder = open_model(target, settings, rules)
    check, found = check_folder(folder, method, signature, rules)
    artifacts = tuple(
        Artifact(f"{folder.display}/{path}", (folder.root / path).stat().st_size, "file", "signature", digest)
        for path, digest in sorted(check.files.items())
        if (folder.root / path).is_file()
    )
    every = sorted([*folder.findings, *found], key=Finding.sort_key)
    report = ScanReport(
        artifacts=artifacts,
        findings=tuple(every),
        rules_version=rules.digest[:16],
        tool_version=__version__,
        targets=(target,),
        sources=(dict(folder.source),) if folder.source is not None else (),
        signatures=(outcome(folder, check),),
    )
    return check, report
