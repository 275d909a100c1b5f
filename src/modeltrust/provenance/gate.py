"""Signatures inside a scan: each target folder (a local folder, or a Hub
revision's downloaded snapshot) is checked against its model signature; the
outcome becomes findings in the same report and a SignatureOutcome record.
Digests the scan already holds (verified Hub downloads, --hash) are reused."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..findings import Artifact, Finding, SignatureOutcome
from ..rules import RuleSet
from .methods import SignatureRequest
from .report import outcome
from .targets import ModelFolder
from .verify import (
    INVALID,
    MODIFIED,
    UNSIGNED,
    VALID,
    WRONG_SIGNER,
    SignatureCheck,
    check_signature,
    findings,
)

if TYPE_CHECKING:
    from ..config import ScanConfig
    from ..sources.hub import Snapshot

# When no accepted signer verifies, the most telling failure is reported.
_TELLING = {MODIFIED: 0, WRONG_SIGNER: 1, INVALID: 2, UNSIGNED: 3}


def _local_folders(targets: Sequence[str], artifacts: Sequence[Artifact]) -> list[ModelFolder]:
    folders = []
    for target in targets:
        root = Path(target)
        if not root.is_dir():
            continue
        prefix = os.path.join(target, "")
        known = {
            a.path[len(prefix) :].replace(os.sep, "/"): a.sha256
            for a in artifacts
            if a.sha256 and a.path.startswith(prefix)
        }
        folders.append(ModelFolder(root, target.rstrip("/") or target, known))
    return folders


def _hub_folders(snapshots: Sequence[Snapshot]) -> list[ModelFolder]:
    return [
        ModelFolder(s.local_dir, s.target.uri(s.commit), dict(s.hashes))
        for s in snapshots
        if s.local_dir is not None
    ]


def best_check(folder: ModelFolder, request: SignatureRequest) -> SignatureCheck:
    """The first accepted signer that verifies, else the most telling failure."""
    checks = []
    for method in request.accept:
        check = check_signature(folder.root, method, request.signature, folder.known)
        if check.outcome == VALID:
            return check
        checks.append(check)
        if check.outcome == UNSIGNED:
            break  # no signature file: every signer fails the same way
    return min(checks, key=lambda c: _TELLING.get(c.outcome, 9))


def check_targets(
    config: ScanConfig,
    request: SignatureRequest,
    snapshots: Sequence[Snapshot],
    artifacts: Sequence[Artifact],
    rules: RuleSet,
    out: list[Finding],
) -> tuple[SignatureOutcome, ...]:
    outcomes = []
    local_targets = [t for t in config.targets if not _is_hub(t, config)]
    for folder in _hub_folders(snapshots) + _local_folders(local_targets, artifacts):
        check = best_check(folder, request)
        out.extend(findings(check, folder.display, rules))
        outcomes.append(outcome(folder, check))
    return tuple(outcomes)


def _is_hub(target: str, config: ScanConfig) -> bool:
    if config.hub is None:
        return False
    from ..sources.hub import parse_target

    return parse_target(target, config.hub.assume_hub) is not None
