"""`modeltrust scan`: parse options, build a config, scan, render, exit."""

from __future__ import annotations

import datetime
import io
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..baseline import apply_baseline, load_baseline
from ..config import ScanConfig
from ..errors import ConfigError
from ..findings import Severity
from .main import EXIT_ERROR, EXIT_OK, EXIT_POLICY, cache_dir, handle_errors, hub_settings, rules_option
from .output import check_writable, write_atomic, write_stdout
from .signature_options import signature_request, split_keys, verify_options

if TYPE_CHECKING:
    from ..engine import Progress
    from ..findings import ScanReport
    from ..rules import RuleSet

SEVERITIES = [s.label for s in Severity]


def _progress(enabled: bool):  # type: ignore[no-untyped-def]
    """A progress bar on stderr when it is a terminal: files done of all, bytes,
    and the time left (estimated from bytes, which dominate a scan)."""
    if not enabled or not sys.stderr.isatty():
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    bar = Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[files]}"),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("scanning", total=None, files="")

    def update(step: Progress) -> None:
        name = step.path[-50:] if step.path else "done"
        bar.update(
            task,
            total=step.total_bytes or None,
            completed=step.bytes_done,
            files=f"{step.files_done}/{step.total_files} files",
            description=f"scanning {name}",
        )

    return bar, update


def _may_be_remote(targets: tuple[str, ...], assume_hub: bool) -> bool:
    """Only hub targets need the hub machinery (and its import time)."""
    return assume_hub or any(t.startswith(("hf://", "http://", "https://")) for t in targets)


@click.command()
@click.argument("targets", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
    help="Report format on stdout (or in --output).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the report to this file instead of stdout.",
)
@click.option(
    "--json-report",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Also write the JSON report to this file (whatever --format is).",
)
@click.option(
    "--sarif",
    "sarif_report",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Also write the SARIF report to this file (whatever --format is).",
)
@click.option(
    "--policy",
    "policy_name",
    default=None,
    help="Policy file, or a built-in policy: default, strict, permissive-research.",
)
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES, case_sensitive=False),
    default=None,
    help="Exit 1 when a finding is at or above this severity (default: the policy's, medium).",
)
@click.option(
    "--fail-on-unverified/--no-fail-on-unverified",
    default=None,
    help="Whether files no scanner could analyse fail the scan, whatever --fail-on says "
    "(default: the policy's; yes).",
)
@rules_option
@click.option("--hub", "assume_hub", is_flag=True, help="Read ORG/NAME[@REV] targets as Hugging Face repos.")
@click.option("--remote", is_flag=True, help="Scan hub files through HTTP range requests; download nothing.")
@click.option(
    "--include", multiple=True, help="Only files whose path in the repo or folder matches (glob, repeatable)."
)
@click.option(
    "--exclude", multiple=True, help="Skip files whose path in the repo or folder matches (glob, repeatable)."
)
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="A JSON report written earlier: its findings are accepted; only new ones fail.",
)
@click.option(
    "--write-baseline",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write this scan's JSON report as the baseline for later scans.",
)
@verify_options(
    key_help="A public key (PEM) verifies the model signature; a private key signs --attest. Repeatable.",
    multiple_keys=True,
)
@click.option(
    "--attest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a signed attestation here (SLSA provenance, verdict); needs a private --key.",
)
@click.option("--hash", "hash_files", is_flag=True, help="Record each file's sha256 (reads every byte).")
@click.option("--deep", is_flag=True, help="Also run fickling's analysis on each pickle (slower).")
@click.option(
    "--bom",
    "bom_file",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Also write the CycloneDX ML-BOM to this file (as `modeltrust bom` does).",
)
@click.option(
    "--bom-spec", type=click.Choice(["1.6", "1.7"]), default="1.6", help="CycloneDX version of --bom."
)
@click.option("--no-progress", is_flag=True, help="Never show a progress bar.")
@click.option("-v", "--verbose", is_flag=True, help="Show info findings, reasons and every file scanned.")
@handle_errors
def scan(
    targets: tuple[str, ...],
    fmt: str,
    output: str | None,
    json_report: str | None,
    sarif_report: str | None,
    policy_name: str | None,
    fail_on: str | None,
    fail_on_unverified: bool | None,
    rules_files: tuple[str, ...],
    assume_hub: bool,
    remote: bool,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    baseline: str | None,
    write_baseline: str | None,
    signature: Path | None,
    identity: str | None,
    issuer: str | None,
    keys: tuple[Path, ...],
    certificate_chain: tuple[Path, ...],
    staging: bool,
    trust_config: Path | None,
    attest: Path | None,
    hash_files: bool,
    deep: bool,
    bom_file: str | None,
    bom_spec: str,
    no_progress: bool,
    verbose: bool,
) -> None:
    """Scan model files or folders (recursively), or a Hugging Face repo
    (hf://ORG/NAME@REV, hf://datasets/ORG/NAME@REV, https://huggingface.co/...),
    without loading anything."""
    from ..engine import scan as run_scan
    from ..policy import resolve_policy
    from ..reporting.json import render_json
    from ..rules import default_rules_dir, load_rules

    started = datetime.datetime.now(datetime.timezone.utc)
    check_writable(
        output, json_report, sarif_report, write_baseline, bom_file, str(attest) if attest else None
    )
    accepted = load_baseline(baseline) if baseline else None
    cache = cache_dir()
    policy = resolve_policy(policy_name, default_rules_dir(), cache)
    threshold = Severity.parse(fail_on) if fail_on else policy.fail_on
    private_key, public_keys = split_keys(keys)
    if attest is not None and private_key is None:
        raise ConfigError("--attest needs a private --key to sign the attestation")
    if private_key is not None and attest is None:
        raise ConfigError(
            f"{private_key} is a private key", hint="give it with --attest, or give the public key"
        )
    request = signature_request(policy.clauses.require_signature, identity, issuer, public_keys,
                                certificate_chain, staging, trust_config, signature)  # fmt: skip
    if request is not None and remote:
        raise ConfigError("--remote downloads nothing, so signatures cannot be checked", hint="drop --remote")
    config = ScanConfig(
        targets=targets,
        rules_files=rules_files,
        fail_on=threshold,
        # The BOM records every file's sha256 (not for --remote: that would fetch every byte);
        # so does an attestation (its subjects).
        hash_files=hash_files
        or policy.needs_digests
        or (bom_file is not None and not remote)
        or attest is not None,
        deep=deep,
        include=include,
        exclude=exclude,
        hub=hub_settings(assume_hub, include, exclude, remote)
        if _may_be_remote(targets, assume_hub)
        else None,
        signature=request,
    )
    ruleset = load_rules(config.rules_files, cache_dir=cache)
    bar, update = _progress(not no_progress and not (fmt != "text" and output is None))
    if bar is not None:
        with bar:
            report = run_scan(config, ruleset, update)
    else:
        report = run_scan(config, ruleset)
    for waiver in policy.expired():
        click.echo(f"warning: policy exception for {waiver.rule} expired on {waiver.expires}", err=True)
    if fail_on_unverified is not None:
        policy = replace(policy, fail_on_unverified=fail_on_unverified)
    report = policy.apply(report, rules=ruleset)
    if accepted is not None and baseline:
        report = apply_baseline(report, accepted, baseline)
    for error in report.errors:
        click.echo(f"error: {error.message}", err=True)
    for path in (json_report, write_baseline):
        if path:
            write_atomic(path, render_json(report, threshold, ruleset, policy.name))
    if sarif_report:
        write_atomic(sarif_report, _render(report, "sarif", threshold, ruleset, policy.name, False, False))
    if bom_file:
        from .bom_cmd import write_bom

        write_bom(report, ruleset, policy, threshold, bom_file, bom_spec)
    text = _render(report, fmt, threshold, ruleset, policy.name, verbose, color=output is None)
    if output:
        write_atomic(output, text)
    else:
        write_stdout(text)
    if report.errors:
        sys.exit(EXIT_ERROR)
    if attest is not None:
        from .attest_cmd import emit_attestation

        emit_attestation(attest, report, policy, threshold, ruleset, started, private_key)
    sys.exit(EXIT_POLICY if report.failing(threshold) else EXIT_OK)


def _render(
    report: ScanReport,
    fmt: str,
    threshold: Severity,
    ruleset: RuleSet,
    policy: str,
    verbose: bool,
    color: bool,
) -> str:
    if fmt == "sarif":
        from ..reporting.sarif import render_sarif

        return render_sarif(report, ruleset)
    if fmt == "json":
        from ..reporting.json import render_json

        return render_json(report, threshold, ruleset, policy)
    from ..reporting.text import render_text

    buffer = io.StringIO()
    render_text(report, threshold, ruleset, buffer, color=color and sys.stdout.isatty(), verbose=verbose)
    return buffer.getvalue()
