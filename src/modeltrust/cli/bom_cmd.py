"""`modeltrust bom`: scan a target and write its CycloneDX ML-BOM.

`scan --bom FILE` writes the same document through `write_bom`.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from ..config import ScanConfig
from ..errors import ConfigError
from ..findings import ScanReport, Severity
from .main import EXIT_ERROR, EXIT_OK, cache_dir, handle_errors, hub_settings, rules_option
from .output import check_writable, write_atomic, write_stdout

if TYPE_CHECKING:
    from ..policy import Policy
    from ..rules import RuleSet

SEVERITIES = [s.label for s in Severity]
SPEC_CHOICE = click.Choice(["1.6", "1.7"])


def source_date_epoch() -> int | None:
    """SOURCE_DATE_EPOCH (reproducible-builds.org): a fixed BOM timestamp."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"SOURCE_DATE_EPOCH={raw!r} is not a whole number of seconds") from None


def write_bom(
    report: ScanReport,
    rules: RuleSet,
    policy: Policy,
    fail_on: Severity,
    output: str | None,
    spec: str = "1.6",
    reproducible: bool = False,
    validate: bool = False,
) -> str:
    """Build the BOM and write it to `output` (stdout for None or '-');
    returns a one-line summary."""
    from ..bom import build_bom

    endpoint = os.environ.get("HF_ENDPOINT") or None
    text = build_bom(
        report,
        rules=rules,
        policy=policy,
        fail_on=fail_on,
        spec=spec,
        reproducible=reproducible,
        source_date_epoch=source_date_epoch(),
        endpoint=endpoint,
        validate=validate,
    )
    if output in (None, "-"):
        write_stdout(text)
    else:
        write_atomic(output, text)
    verdict = "fail" if report.failing(fail_on) or report.errors else "pass"
    return f"CycloneDX {spec} BOM: {len(report.artifacts)} file(s), verdict {verdict}"


def _preload_bom() -> None:
    """Import the BOM writer (cyclonedx, ~0.2-0.5 s) on a thread while the scan
    runs: the scan's hashing threads leave the interpreter idle most of the time."""
    import threading

    def load() -> None:
        from ..bom import document  # noqa: F401

    threading.Thread(target=load, name="modeltrust-bom-import", daemon=True).start()


def _may_be_remote(targets: tuple[str, ...], assume_hub: bool) -> bool:
    return assume_hub or any(t.startswith(("hf://", "http://", "https://")) for t in targets)


@click.command()
@click.argument("targets", nargs=-1, required=True)
@click.option("--output", "-o", default=None, help="Write the BOM to this file (default: stdout).")
@click.option("--spec", type=SPEC_CHOICE, default="1.6", show_default=True, help="CycloneDX version.")
@click.option(
    "--reproducible",
    is_flag=True,
    help="Derive the serial number and timestamp from the inputs (also set by SOURCE_DATE_EPOCH).",
)
@click.option("--validate", is_flag=True, help="Check the BOM against the CycloneDX JSON schema (slower).")
@click.option("--policy", "policy_name", default=None, help="Policy file or built-in policy name.")
@click.option("--fail-on", type=click.Choice(SEVERITIES, case_sensitive=False), default=None,
              help="The threshold recorded as the verdict (default: the policy's).")  # fmt: skip
@rules_option
@click.option("--hub", "assume_hub", is_flag=True, help="Read ORG/NAME[@REV] targets as Hugging Face repos.")
@click.option(
    "--remote",
    is_flag=True,
    help="Read hub files through HTTP ranges (no SHA-256 in the BOM: not every byte is read).",
)
@click.option("--include", multiple=True, help="Only files whose path in the repo or folder matches (glob).")
@click.option("--exclude", multiple=True, help="Skip files whose path in the repo or folder matches (glob).")
@click.option("-v", "--verbose", is_flag=True, help="Show the traceback of errors.")
@handle_errors
def bom(
    targets: tuple[str, ...],
    output: str | None,
    spec: str,
    reproducible: bool,
    validate: bool,
    policy_name: str | None,
    fail_on: str | None,
    rules_files: tuple[str, ...],
    assume_hub: bool,
    remote: bool,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    verbose: bool,
) -> None:
    """Scan TARGETS (as `scan` does) and write a CycloneDX ML-BOM: models with
    their model cards, datasets, every file with its SHA-256, lineage, and the
    findings as vulnerabilities. Exits 0 when the BOM is written, whatever the
    verdict (which the BOM records); `scan --bom` keeps the gate's exit code."""
    from ..engine import scan as run_scan
    from ..policy import resolve_policy
    from ..rules import default_rules_dir, load_rules

    check_writable(output)
    cache = cache_dir()
    policy = resolve_policy(policy_name, default_rules_dir(), cache)
    threshold = Severity.parse(fail_on) if fail_on else policy.fail_on
    config = ScanConfig(
        targets=targets,
        rules_files=rules_files,
        fail_on=threshold,
        hash_files=not remote,
        include=include,
        exclude=exclude,
        hub=hub_settings(assume_hub, include, exclude, remote)
        if _may_be_remote(targets, assume_hub)
        else None,
    )
    ruleset = load_rules(config.rules_files, cache_dir=cache)
    _preload_bom()
    report = policy.apply(run_scan(config, ruleset))
    if report.errors:  # an inventory missing a target would mislead: write none
        for error in report.errors:
            click.echo(f"error: {error.message}", err=True)
        sys.exit(EXIT_ERROR)
    summary = write_bom(report, ruleset, policy, threshold, output, spec, reproducible, validate)
    if output not in (None, "-"):
        click.echo(f"{summary} -> {output}", err=True)
    sys.exit(EXIT_OK)
