"""The terminal report: findings grouped by file, worst first, each with its
location, rule and one-line reason; then every file and what covered it."""

from __future__ import annotations

from typing import IO

from ..findings import ScanReport, Severity
from ..rules import RuleSet

_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def render_text(
    report: ScanReport,
    fail_on: Severity,
    rules: RuleSet | None,
    stream: IO[str],
    color: bool | None = None,
    verbose: bool = False,
) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(file=stream, force_terminal=color, no_color=color is False, highlight=False, width=110)
    shown = [f for f in report.findings if verbose or f.severity > Severity.INFO]
    current = None
    for finding in shown:
        if finding.location.path != current:
            current = finding.location.path
            console.print(f"\n[bold]{escape(current)}[/bold]")
        sev = finding.severity
        label = f"[{_STYLE[sev]}]{sev.label.upper():8}[/]"
        console.print(f"  {label} {escape(finding.message)}")
        where = str(finding.location)[len(finding.location.path) :].lstrip()
        rule = rules.rules.get(finding.rule_id) if rules is not None else None
        detail = f"rule {finding.rule_id}"
        if where:
            detail += f" · at {where}"
        console.print(f"           [dim]{escape(detail)}[/dim]")
        if rule is not None and verbose:
            console.print(f"           [dim]why: {escape(rule.why)}[/dim]")
    if verbose:
        console.print("\n[bold]Files[/bold]")
        for artifact in report.artifacts:
            console.print(
                f"  {escape(artifact.path)}  [dim]{artifact.format} · {artifact.size} bytes · "
                f"scanned by {artifact.scanner}[/dim]"
            )
    failing = report.at_or_above(fail_on)
    counts = {s: 0 for s in Severity}
    for finding in report.findings:
        counts[finding.severity] += 1
    summary = ", ".join(f"{n} {s.label}" for s, n in sorted(counts.items(), reverse=True) if n)
    files = len(report.artifacts)
    console.print()
    if failing:
        console.print(
            f"[bold red]FAIL[/] {files} file(s), {summary or 'no findings'}; "
            f"{len(failing)} at or above '{fail_on.label}'"
        )
    else:
        console.print(
            f"[bold green]PASS[/] {files} file(s), {summary or 'no findings'} (fail-on: {fail_on.label})"
        )
