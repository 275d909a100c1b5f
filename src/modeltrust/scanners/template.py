"""Chat templates (GGUF `tokenizer.chat_template`, tokenizer_config.json
`chat_template`) are Jinja2 programs that inference servers render on every
request. They are parsed here, never rendered, and their syntax tree is
searched for the attribute walks that server-side template injection uses
(`''.__class__.__mro__[1].__subclasses__()`, `cycler.__init__.__globals__.os`)."""

from __future__ import annotations

import re

import jinja2
from jinja2 import nodes

from ..findings import Location
from .base import ScanContext

MAX_TEMPLATE = 1 << 20
# Globals that Jinja2 exposes by default and SSTI payloads start from.
_ENTRY_POINTS = {"lipsum", "cycler", "joiner", "self", "config", "request", "url_for", "get_flashed_messages"}
_DANGEROUS_NAMES = {
    "os",
    "popen",
    "system",
    "eval",
    "exec",
    "subprocess",
    "import",
    "builtins",
    "open",
    "getattr",
}
_DUNDER = re.compile(r"__\w+__")


def check_template(source: str, location: Location, ctx: ScanContext, scanner: str) -> None:
    """Report injection constructs (high) or a template loaders cannot parse (medium)."""
    if len(source) > MAX_TEMPLATE:
        message = f"chat template of {len(source)} characters is too large to be a prompt format"
        ctx.report("template-injection", location, message, scanner, subject="size")
        return
    try:
        tree = jinja2.Environment().parse(source)  # parse only: nothing is rendered
    except jinja2.TemplateSyntaxError as exc:
        message = f"chat template does not parse: {exc.message} (line {exc.lineno})"
        ctx.report("template-malformed", location, message, scanner)
        return
    except RecursionError:
        ctx.report("template-malformed", location, "chat template nests too deeply to parse", scanner)
        return
    reasons: list[str] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name, nodes.Filter, nodes.Const)):
        reason = _suspicious(node)
        if reason and reason not in reasons:
            reasons.append(reason)
    if reasons:
        ctx.report(
            "template-injection",
            location,
            "chat template " + "; ".join(reasons[:4]) + (" ..." if len(reasons) > 4 else ""),
            scanner,
            subject=reasons[0],
        )


def _suspicious(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Getattr):
        if _DUNDER.fullmatch(node.attr):
            return f"reads attribute {node.attr}"
        if node.attr in _DANGEROUS_NAMES:
            return f"reads attribute {node.attr!r}"
    elif isinstance(node, nodes.Getitem):
        key = node.arg
        if isinstance(key, nodes.Const) and isinstance(key.value, str) and _DUNDER.search(key.value):
            return f"indexes {key.value!r}"
    elif isinstance(node, nodes.Name):
        if node.name in _ENTRY_POINTS:
            return f"uses the global {node.name!r}, a common injection entry point"
    elif isinstance(node, nodes.Filter):
        if node.name == "attr":
            return "uses the attr filter to read attributes by name"
    elif isinstance(node, nodes.Const) and isinstance(node.value, str):
        found = _DUNDER.search(node.value)
        if found:
            return f"contains the dunder string {found.group(0)!r}"
    return None
