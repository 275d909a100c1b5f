"""The AI-BOM: a CycloneDX 1.6/1.7 ML-BOM of what a scan vetted (models with
their model cards, datasets, files with SHA-256, lineage, findings as
vulnerabilities, the verdict).

    from modeltrust.bom import build_bom
    text = build_bom(report, rules=ruleset, policy=policy)

This module imports nothing heavy; cyclonedx loads only inside `build_bom`.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
from typing import TYPE_CHECKING, Any

from ..findings import ScanReport, Severity

if TYPE_CHECKING:
    from ..policy import Policy
    from ..rules import RuleSet
    from .inventory import Inventory

SPEC_VERSIONS = ("1.6", "1.7")
DEFAULT_SPEC = "1.6"


def policy_digest(policy: Policy | None) -> str:
    """sha256 over the policy's canonical JSON (every field, waivers included)."""
    data = dataclasses.asdict(policy) if policy is not None else {}
    canonical = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def bom_timestamp(
    inventory: Inventory, reproducible: bool, source_date_epoch: int | None
) -> datetime.datetime:
    """Now; or SOURCE_DATE_EPOCH; or, with --reproducible alone, a time the
    inputs fix: the Hub commit's time, else the newest file's mtime."""
    utc = datetime.timezone.utc
    if source_date_epoch is not None:
        return datetime.datetime.fromtimestamp(source_date_epoch, utc)
    if not reproducible:
        return datetime.datetime.now(utc).replace(microsecond=0)
    if inventory.hub_time:
        try:
            parsed = datetime.datetime.fromisoformat(inventory.hub_time.replace("Z", "+00:00"))
            return parsed.astimezone(utc).replace(microsecond=0)
        except ValueError:
            pass
    return datetime.datetime.fromtimestamp(int(inventory.mtime), utc)


def _waiver_text(waiver: Any) -> str:
    scope = " ".join(
        f"{key}={getattr(waiver, key)}"
        for key in ("path", "subject", "repo", "commit", "sha256")
        if getattr(waiver, key, "") not in ("", "*")
    )
    until = waiver.expires.isoformat()
    return f"{waiver.rule}{' ' + scope if scope else ''}: {waiver.reason} (until {until})"


def build_bom(
    report: ScanReport,
    *,
    rules: RuleSet,
    policy: Policy | None = None,
    fail_on: Severity | None = None,
    spec: str = DEFAULT_SPEC,
    reproducible: bool = False,
    source_date_epoch: int | None = None,
    endpoint: str | None = None,
    validate: bool = False,
) -> str:
    """The BOM as CycloneDX JSON text, validated against the official schema.

    `report` should have the policy applied (waivers marked). With
    `reproducible` or `source_date_epoch` the serial number and timestamp are
    derived from the inputs, so the same scan gives byte-identical output.
    `endpoint` is the Hub URL the repo links point at (default huggingface.co).
    `validate` checks the result with the library's strict JSON-schema
    validator (slow to import; the tests validate every document shape).
    """
    from .document import Gate, render
    from .inventory import build_inventory

    default = policy.fail_on if policy is not None else Severity.MEDIUM
    threshold = fail_on if fail_on is not None else default
    waivers = tuple(_waiver_text(w) for w in (policy.waivers if policy is not None else ()))
    gate = Gate(policy.name if policy is not None else "default", policy_digest(policy), threshold, waivers)
    inventory = build_inventory(report, endpoint)
    fixed = reproducible or source_date_epoch is not None
    timestamp = bom_timestamp(inventory, fixed, source_date_epoch)
    return render(report, inventory, rules, gate, spec, timestamp, fixed, validate)


__all__ = ["DEFAULT_SPEC", "SPEC_VERSIONS", "build_bom", "policy_digest"]
