"""The terminal report: findings grouped by file, worst first, each with its
location, rule and one-line reason; then a verdict line. Colour only on a
terminal (click.style; no heavy renderer on the hot path)."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

import click

from ..clauses import decided_by
from ..findings import DatasetSummary, Finding, ScanReport, Severity
from ..rules import RuleSet
from .safetext import printable

_COLOURS: dict[Severity, dict[str, Any]] = {
    Severity.CRITICAL: {"fg": "white", "bg": "red", "bold": True},
    Severity.HIGH: {"fg": "red", "bold": True},
    Severity.MEDIUM: {"fg": "yellow"},
    Severity.LOW: {"fg": "cyan"},
    Severity.INFO: {"dim": True},
}
INDENT = " " * 11


def render_text(
    report: ScanReport,
    fail_on: Severity,
    rules: RuleSet | None,
    stream: IO[str],
    color: bool | None = None,
    verbose: bool = False,
) -> None:
    use_colour = stream.isatty() if color is None else color

    def style(text: str, **kwargs: Any) -> str:
        return click.style(text, **kwargs) if use_colour else text

    def out(line: str = "") -> None:
        stream.write(line + "\n")

    by_file: dict[str, list[Finding]] = {}  # files in order of their worst finding
    for finding in report.findings:
        # Whatever fails the gate is always shown, info included (--fail-on info).
        if finding.severity > Severity.INFO or verbose or finding.severity >= fail_on:
            by_file.setdefault(finding.location.path, []).append(finding)
    for path, findings in by_file.items():
        out()
        out(style(printable(path), bold=True))
        for finding in findings:
            _render_finding(finding, rules, verbose, style, out)
    if verbose:
        out()
        out(style("Files", bold=True))
        for artifact in report.artifacts:
            digest = f" · sha256 {artifact.sha256}" if artifact.sha256 else ""
            out(
                f"  {printable(artifact.path)}  "
                + style(
                    f"{artifact.format} · {artifact.size} bytes · scanned by {artifact.scanner}{digest}",
                    dim=True,
                )
            )
    if report.datasets:
        out()
        out(style("Datasets", bold=True))
        for summary in report.datasets:
            out(f"  {printable(summary.root)}  " + style(dataset_line(summary), dim=True))
    out()
    out(_verdict_line(report, fail_on, style))


def dataset_line(summary: DatasetSummary) -> str:
    """`save_to_disk · 4 rows · 2 splits (train 3, test 1) · 3 columns · licence mit`."""
    parts = [summary.kind]
    rows = summary.rows
    parts.append(f"{rows:,} rows" if rows is not None else "rows unknown")
    if summary.splits:
        each = ", ".join(s.name + (f" {s.rows:,}" if s.rows is not None else "") for s in summary.splits[:8])
        more = ", ..." if len(summary.splits) > 8 else ""
        parts.append(f"{len(summary.splits)} split(s) ({each}{more})")
    if summary.features:
        parts.append(f"{len(summary.features)} column(s)")
    parts.append(f"{len(summary.files)} data file(s)")
    if summary.license:
        parts.append(f"licence {summary.license}")
    return printable(" · ".join(parts))


def _render_finding(
    finding: Finding,
    rules: RuleSet | None,
    verbose: bool,
    style: Callable[..., str],
    out: Callable[[str], None],
) -> None:
    sev = finding.severity
    out(f"  {style(f'{sev.label.upper():8}', **_COLOURS[sev])} {printable(finding.message)}")
    where = str(finding.location)[len(finding.location.path) :].lstrip()
    detail = f"rule {finding.rule_id}" + (f" · at {printable(where)}" if where else "")
    if finding.waiver:
        detail += f" · waived: {printable(finding.waiver)}"
    out(INDENT + style(detail, dim=True))
    rule = rules.rules.get(finding.rule_id) if rules is not None else None
    if rule is not None and verbose:
        out(INDENT + style(f"why: {printable(rule.why)}", dim=True))


def _verdict_line(report: ScanReport, fail_on: Severity, style: Callable[..., str]) -> str:
    counts = {s: 0 for s in Severity}
    for finding in report.findings:
        counts[finding.severity] += 1
    summary = ", ".join(f"{n} {s.label}" for s, n in sorted(counts.items(), reverse=True) if n)
    files = len(report.artifacts)
    failing = report.failing(fail_on)
    found = summary or "no findings"
    if report.errors:
        verdict = style("ERROR", fg="red", bold=True)
        return f"{verdict} {len(report.errors)} target(s) could not be scanned; {files} file(s), {found}"
    if failing:
        verdict = style("FAIL", fg="red", bold=True)
        below = sum(1 for f in failing if f.severity < fail_on)
        extra = f" ({below} unverified below it)" if below else ""
        why = ", ".join(decided_by(report, fail_on))
        return (
            f"{verdict} {files} file(s), {found}; {len(failing)} at or above '{fail_on.label}'{extra}"
            f"; decided by {why}"
        )
    return f"{style('PASS', fg='green', bold=True)} {files} file(s), {found} (fail-on: {fail_on.label})"
