"""`modeltrust rules list|show`: the rules in force, including user files."""

from __future__ import annotations

import click

from ..errors import RulesError
from .main import cache_dir, handle_errors, rules_option


@click.group()
def rules() -> None:
    """List and explain detection rules."""


@rules.command("list")
@rules_option
@handle_errors
def list_rules(rules_files: tuple[str, ...]) -> None:
    """One line per rule: id, severity, class, title."""
    from ..rules import iter_rules, load_rules

    ruleset = load_rules(rules_files, cache_dir=cache_dir())
    for rule in iter_rules(ruleset):
        click.echo(f"{rule.id:28} {rule.severity.label:8} {rule.category or '-':10} {rule.title}")
    click.echo(f"\n{len(ruleset.allow)} allowlist entries; rules digest {ruleset.digest[:16]}")


@rules.command("show")
@click.argument("rule_id")
@rules_option
@handle_errors
def show_rule(rule_id: str, rules_files: tuple[str, ...]) -> None:
    """Everything about one rule: why it matters, what it matches, references."""
    from ..rules import load_rules

    ruleset = load_rules(rules_files, cache_dir=cache_dir())
    rule = ruleset.rules.get(rule_id)
    if rule is None:
        raise RulesError(f"no rule {rule_id!r}", hint="see 'modeltrust rules list'")
    click.echo(f"{rule.id}  ({rule.severity.label})")
    if rule.category:
        click.echo(f"class: {rule.category}")
    click.echo(f"title: {rule.title}")
    click.echo(f"why:   {rule.why}")
    if rule.cwe:
        click.echo(f"cwe:   {rule.cwe}")
    if rule.patterns:
        click.echo("matches:")
        for pattern in rule.patterns:
            click.echo(f"  {pattern}")
    for ref in rule.references:
        click.echo(f"ref:   {ref}")
    click.echo(f"source: {rule.source}")
