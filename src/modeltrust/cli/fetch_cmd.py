"""`modeltrust fetch`: download a pinned revision and verify every file's
hash, without scanning, so pipelines can split fetching from scanning."""

from __future__ import annotations

import sys

import click

from .main import EXIT_OK, EXIT_POLICY, handle_errors, hub_settings


@click.command()
@click.argument("target")
@click.option("--local-dir", type=click.Path(file_okay=False), default=None,
              help="Put the files here instead of the Hugging Face cache.")  # fmt: skip
@click.option("--hub", "assume_hub", is_flag=True, help="Read ORG/NAME[@REV] as a Hugging Face repo.")
@click.option("--include", multiple=True, help="Only these repo files (glob, repeatable).")
@click.option("--exclude", multiple=True, help="Skip these repo files (glob, repeatable).")
@handle_errors
def fetch(
    target: str, local_dir: str | None, assume_hub: bool, include: tuple[str, ...], exclude: tuple[str, ...]
) -> None:
    """Download TARGET at one commit and verify it against the Hub's hashes.

    Exit 0 when every file matches, 1 when a file's bytes do not (it is named),
    2 on errors."""
    from ..errors import ConfigError
    from ..sources.hub import parse_target
    from ..sources.hub_targets import fetch_snapshot

    settings = hub_settings(assume_hub, include, exclude)
    hub_target = parse_target(target, assume_hub)
    if hub_target is None:
        raise ConfigError(f"{target!r} is not a hub target", hint="use hf://ORG/NAME@REV or pass --hub")
    snapshot = fetch_snapshot(hub_target, settings, local_dir)
    selected = snapshot.selected(settings)
    click.echo(f"{hub_target.uri(snapshot.commit)}: {len(selected)} file(s) in {snapshot.local_dir}")
    mismatched = [p for p in snapshot.problems if p.rule_id in ("hub-hash-mismatch", "hub-missing-file")]
    for problem in mismatched:
        click.echo(f"MISMATCH {problem.path}: {problem.message}", err=True)
    if not mismatched:
        click.echo(f"verified {len(snapshot.hashes)} file(s) against the Hub's sha256 / git blob ids")
    sys.exit(EXIT_POLICY if mismatched else EXIT_OK)
