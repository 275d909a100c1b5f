"""`modeltrust fleet`: vet many targets, each unique file once (glue only)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from ..fleet.sources import SORT_KEYS
from .main import EXIT_ERROR, EXIT_OK, EXIT_POLICY, cache_dir, handle_errors, rules_option


@click.command()
@click.argument("source", required=False)
@click.option("--author", default=None, help="Hub query: repos of this user or organisation.")
@click.option("--search", default=None, help="Hub query: repo names containing this text.")
@click.option("--filter", "tags", multiple=True, help="Hub query: repos with this tag (repeatable).")
@click.option("--sort", type=click.Choice(SORT_KEYS), default=None, help="Hub query: sort key.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Hub query: at most this many repos.")
@click.option("--datasets", is_flag=True, help="Hub query: list dataset repos instead of models.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", default=None, help="Ray cluster address (default: a local cluster).")
@click.option("--workers", type=int, default=None, help="Parallel jobs (default: the number of CPUs).")
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), default="modeltrust-fleet", show_default=True
)
@click.option("--store", default=None, help="Result store (SQLite; default: OUT/store.sqlite).")
@click.option(
    "--remote/--download", default=True, show_default=True, help="Range requests, or full downloads."
)
@click.option("--policy", "policy_name", default=None, help="Policy file or built-in policy name.")
@click.option("--bom", is_flag=True, help="Write a CycloneDX ML-BOM per vetted target into OUT/boms/.")
@click.option(
    "--attest-key",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Sign an attestation per vetted target (OUT/attestations/) with this private key; needs --download.",
)
@rules_option
@click.option("--no-progress", is_flag=True, help="Never show a progress bar.")
@handle_errors
def fleet(
    source: str | None,
    author: str | None,
    search: str | None,
    tags: tuple[str, ...],
    sort: str | None,
    limit: int | None,
    datasets: bool,
    executor: str,
    address: str | None,
    workers: int | None,
    out_dir: str,
    store: str | None,
    remote: bool,
    policy_name: str | None,
    bom: bool,
    attest_key: str | None,
    rules_files: tuple[str, ...],
    no_progress: bool,
) -> None:
    """Vet many repos: SOURCE is a file of targets (one hf:// reference or path a
    line), or give a Hub query (--author, --search, --filter, --sort, --limit).
    Writes OUT/results.jsonl (a line per target); exit 1 if any target fails the
    policy, 2 if any could not be vetted."""
    from ..errors import ConfigError
    from ..fleet.runner import run_fleet
    from ..fleet.sources import HubQuery, targets_from_file, targets_from_query
    from ..fleet.work import FleetSettings, policy_digest
    from ..policy import resolve_policy
    from ..rules import default_rules_dir, load_rules

    query = HubQuery(datasets, author, search, tags, sort, limit)
    endpoint, token = os.environ.get("HF_ENDPOINT") or None, os.environ.get("HF_TOKEN") or None
    if attest_key is not None and remote:
        raise ConfigError("--attest-key needs --download", hint="an attestation names every file's sha256")
    if source is not None and (author or search or tags):
        raise ConfigError("give a targets file or a Hub query, not both")
    if source is not None:
        targets = targets_from_file(source)
    elif author or search or tags or sort or limit:
        targets = targets_from_query(query, endpoint, token)
    else:
        raise ConfigError("nothing to vet", hint="give a targets file or a Hub query such as --author ORG")
    resolve_policy(policy_name, default_rules_dir(), cache_dir())  # a bad policy fails before any work
    if attest_key is not None:  # so does a key that cannot sign
        from ..attestation.dsse import require_signing_key

        require_signing_key(Path(attest_key))
    ruleset = load_rules(rules_files, cache_dir=cache_dir())
    out = Path(out_dir)
    home = os.environ.get("HF_HOME")
    settings = FleetSettings(
        store=store or str(out / "store.sqlite"),
        rules_files=rules_files,
        rules_digest=ruleset.digest,
        policy=policy_name,
        policy_digest=policy_digest(policy_name),
        endpoint=endpoint,
        token=token,
        cache_dir=os.environ.get("HF_HUB_CACHE") or (os.path.join(home, "hub") if home else None),
        remote=remote,
        timeout=float(os.environ.get("MODELTRUST_HUB_TIMEOUT") or 20.0),
        bom_dir=str(out / "boms") if bom else None,
        attest_key=attest_key,
        attest_dir=str(out / "attestations") if attest_key else None,
    )
    jobs = workers or os.cpu_count() or 1
    bar, update = _progress(not no_progress, len(targets))
    if bar is not None:
        with bar:
            summary = run_fleet(
                targets, settings, out, executor=executor, workers=jobs, address=address, on_line=update
            )
    else:
        summary = run_fleet(targets, settings, out, executor=executor, workers=jobs, address=address)
    _print_summary(summary, out)
    if summary.errors:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_POLICY if summary.failed else EXIT_OK)


def _progress(enabled: bool, total: int) -> tuple[Any, Any]:
    if not enabled or not sys.stderr.isatty():
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("vetting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True,
    )  # fmt: skip
    task = bar.add_task("fleet", total=total)

    def update(line: dict[str, Any], done: int, count: int) -> None:
        bar.update(task, completed=done)

    return bar, update


def _print_summary(summary: Any, out: Path) -> None:
    rows = [
        ("targets", summary.targets),
        ("vetted now", summary.vetted),
        ("already vetted (skipped)", summary.skipped),
        ("passed", summary.passed),
        ("failed the policy", summary.failed),
        ("could not be vetted", summary.errors),
        ("files judged", summary.files),
        ("files from the store", summary.files_from_store),
        ("bytes read", summary.bytes_read),
        ("seconds", round(summary.seconds, 2)),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        click.echo(f"{name:<{width}}  {value}")
    for target in summary.failing_targets:
        click.echo(f"FAIL   {target}")
    for target, reason in summary.error_targets:
        click.echo(f"ERROR  {target}: {reason}")
    click.echo(f"results: {out / 'results.jsonl'}")
