"""A model folder to sign, verify or attest: a local folder, or a Hub
revision fetched and verified first (its verified digests are reused)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SourceError
from ..findings import Finding
from ..rules import RuleSet

if TYPE_CHECKING:
    from ..sources.hub import HubSettings


@dataclass(frozen=True, slots=True)
class ModelFolder:
    root: Path
    display: str
    """How the report names it: the folder as given, or hf://ORG/NAME@COMMIT."""
    known: Mapping[str, str] = field(default_factory=dict)
    """Relative path -> sha256 already verified (Hub downloads)."""
    source: Mapping[str, Any] | None = None
    """The Hub source record (repo, requested revision, commit, metadata)."""
    findings: tuple[Finding, ...] = ()
    """What fetching found (hash mismatches, unpinned revision...)."""


def open_model(target: str, settings: HubSettings | None, rules: RuleSet) -> ModelFolder:
    """Resolve TARGET to a local folder; Hub targets are fetched and verified."""
    hub_target = None
    if settings is not None:
        from ..sources.hub import parse_target

        hub_target = parse_target(target, settings.assume_hub)
    if hub_target is None or settings is None:
        root = Path(target)
        if not root.is_dir():
            raise SourceError(
                f"{target}: not a folder", hint="give the model folder (signatures cover folders)"
            )
        return ModelFolder(root, target.rstrip("/") or target)
    from ..sources.hub_targets import gather_hub_target, source_record

    found: list[Finding] = []
    snapshot, _ = gather_hub_target(hub_target, settings, rules, found)
    if snapshot.local_dir is None:
        raise SourceError(f"{target}: the revision could not be downloaded")
    return ModelFolder(
        snapshot.local_dir,
        hub_target.uri(snapshot.commit),
        dict(snapshot.hashes),
        source_record(snapshot),
        tuple(found),
    )
