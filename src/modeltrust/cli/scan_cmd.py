"""`modeltrust scan`: parse options, build a config, scan, render, exit."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..config import ScanConfig
from ..findings import Severity
from .main import EXIT_OK, EXIT_POLICY, cache_dir, handle_errors, hub_settings, rules_option

SEVERITIES = [s.label for s in Severity]


def _progress(enabled: bool):  # type: ignore[no-untyped-def]
    """A rich progress bar on stderr when it is a terminal, else nothing."""
    if not enabled or not sys.stderr.isatty():
        return None, None
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True)
    task = bar.add_task("scanning", total=None)

    def update(path: str, size: int) -> None:
        bar.update(task, advance=1, description=f"scanning {path[-60:]}")

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
@rules_option
@click.option("--hub", "assume_hub", is_flag=True, help="Read ORG/NAME[@REV] targets as Hugging Face repos.")
@click.option("--remote", is_flag=True, help="Scan hub files through HTTP range requests; download nothing.")
@click.option("--include", multiple=True, help="Only these repo files (glob, repeatable) for hub targets.")
@click.option("--exclude", multiple=True, help="Skip these repo files (glob, repeatable) for hub targets.")
@click.option("--hash", "hash_files", is_flag=True, help="Record each file's sha256 (reads every byte).")
@click.option("--deep", is_flag=True, help="Also run fickling's analysis on each pickle (slower).")
@click.option("--no-progress", is_flag=True, help="Never show a progress bar.")
@click.option("-v", "--verbose", is_flag=True, help="Show info findings, reasons and every file scanned.")
@handle_errors
def scan(
    targets: tuple[str, ...],
    fmt: str,
    output: str | None,
    json_report: str | None,
    policy_name: str | None,
    fail_on: str | None,
    rules_files: tuple[str, ...],
    assume_hub: bool,
    remote: bool,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    hash_files: bool,
    deep: bool,
    no_progress: bool,
    verbose: bool,
) -> None:
    """Scan model files or folders (recursively), or a Hugging Face repo
    (hf://ORG/NAME@REV, hf://datasets/ORG/NAME@REV, https://huggingface.co/...),
    without loading anything."""
    from ..engine import scan as run_scan
    from ..policy import resolve_policy
    from ..reporting.json import render_json
    from ..reporting.text import render_text
    from ..rules import default_rules_dir, load_rules

    cache = cache_dir()
    policy = resolve_policy(policy_name, default_rules_dir(), cache)
    threshold = Severity.parse(fail_on) if fail_on else policy.fail_on
    config = ScanConfig(
        targets=targets,
        rules_files=rules_files,
        fail_on=threshold,
        hash_files=hash_files,
        deep=deep,
        hub=hub_settings(assume_hub, include, exclude, remote)
        if _may_be_remote(targets, assume_hub)
        else None,
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
    report = policy.apply(report)
    if json_report:
        Path(json_report).write_text(render_json(report, threshold, ruleset, policy.name), encoding="utf-8")
    if fmt in ("json", "sarif"):
        if fmt == "sarif":
            from ..reporting.sarif import render_sarif

            text = render_sarif(report, ruleset)
        else:
            text = render_json(report, threshold, ruleset, policy.name)
        if output:
            Path(output).write_text(text, encoding="utf-8")
        else:
            click.echo(text, nl=False)
    elif output:
        with open(output, "w", encoding="utf-8") as handle:
            render_text(report, threshold, ruleset, handle, color=False, verbose=verbose)
    else:
        render_text(report, threshold, ruleset, sys.stdout, verbose=verbose)
    sys.exit(EXIT_POLICY if report.at_or_above(threshold) else EXIT_OK)
