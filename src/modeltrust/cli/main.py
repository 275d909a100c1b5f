"""The `modeltrust` command: a click group; each command module is glue only."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .. import __version__
from ..errors import ModelTrustError

EXIT_OK = 0
EXIT_POLICY = 1
EXIT_ERROR = 2

F = TypeVar("F", bound=Callable[..., Any])


rules_option = click.option(
    "--rules",
    "rules_files",
    multiple=True,
    type=click.Path(exists=True),
    help="Extra rules file or folder (YAML); repeatable.",
)


def handle_errors(func: F) -> F:
    """Turn ModelTrustError into one clear line and exit 2; -v shows the traceback."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            return func(*args, **kwargs)
        except ModelTrustError as exc:
            if ctx.find_root().params.get("verbose") or kwargs.get("verbose"):
                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_ERROR)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper  # type: ignore[return-value]


COMMANDS = {
    "scan": "scan_cmd:scan",
    "fetch": "fetch_cmd:fetch",
    "fleet": "fleet_cmd:fleet",
    "rules": "rules_cmd:rules",
    "verify": "verify_cmd:verify",
    "sign": "sign_cmd:sign",
    "bom": "bom_cmd:bom",
    "attest": "attest_cmd:attest",
    "verify-attestation": "verify_attestation_cmd:verify_attestation",
}
"""Command name -> `module:function` in this package."""


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs (or help lists it):
    `sign` never pays for the scanners, `scan` never for signing or the BOM."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            import importlib

            module, name = COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(f"{__package__}.{module}"), name)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modeltrust")
def cli() -> None:
    """Vet third-party models and datasets before anything is loaded.

    Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage or internal error.
    """


def cache_dir() -> Path | None:
    """Where parsed rules are cached: $MODELTRUST_CACHE_DIR, else the XDG cache.
    MODELTRUST_CACHE_DIR=off disables it."""
    configured = os.environ.get("MODELTRUST_CACHE_DIR")
    if configured == "off":
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "modeltrust"


def hub_settings(
    assume_hub: bool = False,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    remote: bool = False,
) -> Any:
    """Hub access as the environment configures it (HF_ENDPOINT, HF_TOKEN,
    HF_HUB_OFFLINE; HF_HOME and HF_HUB_CACHE are read by huggingface_hub)."""
    from ..sources.hub import HubSettings

    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    home = os.environ.get("HF_HOME")
    return HubSettings(
        endpoint=os.environ.get("HF_ENDPOINT") or None,
        token=os.environ.get("HF_TOKEN") or None,
        cache_dir=os.environ.get("HF_HUB_CACHE") or (os.path.join(home, "hub") if home else None),
        offline=offline,
        include=include,
        exclude=exclude,
        assume_hub=assume_hub,
        remote=remote,
        timeout=float(os.environ.get("MODELTRUST_HUB_TIMEOUT") or 20.0),
    )


def main() -> None:
    try:
        cli.main(prog_name="modeltrust", standalone_mode=True)
    except SystemExit:
        raise
    except Exception:  # noqa: BLE001 - last resort: never exit 1 on a crash
        traceback.print_exc()
        click.echo("error: internal error (please report it with the traceback above)", err=True)
        sys.exit(EXIT_ERROR)
