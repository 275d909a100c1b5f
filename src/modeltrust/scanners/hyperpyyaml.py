"""HyperPyYAML (`hyperparams.yaml`, what SpeechBrain's `from_hparams` loads with
`load_hyperpyyaml`): YAML whose tags name Python objects. `!new:pkg.Class`
instantiates, `!apply:pkg.func` calls while loading, `!name:pkg.func` hands the
callable to the code that uses the hyperparameters, `!module:pkg` imports.
`load_hyperpyyaml` runs them all on load, so each tag is judged like a call in
a pickle: denied names are critical, names outside the loader's own packages
are high, SpeechBrain/torch objects are recorded.

The YAML is composed (nodes and resolved tags, never constructed) with PyYAML,
which resolves `%TAG` shorthands and verbatim `!<...>` tags as ruamel does; a
file with such tags that does not compose cannot be cleared."""

from __future__ import annotations

import re

import yaml

from ..findings import Location, Severity
from ..reader import ByteReader, TooLarge, read_all
from ..rules import Verdict
from .base import ScanContext

SCANNER = "hyperpyyaml"
MAX_YAML = 1 << 20
"""Bytes composed: hyperparameter files are a few KB; PyYAML is slow on megabytes."""
# Tags load_hyperpyyaml turns into imports and calls, and what each does.
_PYTHON_TAGS = {
    "!new:": "instantiates",
    "!apply:": "calls",
    "!applyref:": "calls",
    "!name:": "hands on the callable",
    "!module:": "imports",
}
_MARKERS = re.compile(r"!(?:new|apply|applyref|name|module):|%TAG|!<")
# The loader's own ecosystem: what SpeechBrain recipes build (!new) or hand on
# (!name) by design - its own classes and functions, torch modules and
# optimisers - is recorded, as transformers building its own classes is. Its
# helpers that run shell commands or fetch files are not part of that.
_LIBRARIES = ("speechbrain.", "torch.nn.", "torch.optim.", "torchaudio.transforms.")
_LIBRARY_EXCEPTIONS = (
    "speechbrain.utils.superpowers",
    "speechbrain.utils.data_utils",
    "speechbrain.utils.fetching",
)
# What recipes call while loading (!apply).
_APPLY_ALLOWED = frozenset(
    {"torch.manual_seed", "torch.cuda.manual_seed_all", "speechbrain.utils.seed_everything"}
)
_MAX_NODES = 200_000


class HyperPyYamlScanner:
    name = SCANNER
    formats = ("hyperpyyaml",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            raw = read_all(reader, MAX_YAML)
        except TooLarge:
            if _MARKERS.search(reader.read_at(0, MAX_YAML).decode("utf-8", "replace")):
                ctx.report("scan-limit", location, f"YAML with Python tags over {MAX_YAML} bytes", SCANNER)
            return
        text = raw.decode("utf-8", "replace")
        if not _MARKERS.search(text):
            return  # plain YAML: no tag a HyperPyYAML loader would run
        try:
            tags = list(_tags(text))
        except (yaml.YAMLError, RecursionError) as exc:
            message = f"YAML with Python tags does not compose, so they cannot be checked: {str(exc)[:200]}"
            ctx.report("hyperpyyaml-call", location, message, SCANNER, subject="parse")
            return
        for tag, line in tags:
            _judge(tag, line, location, ctx)


def _tags(text: str) -> list[tuple[str, int]]:
    """(tag, line) of every node, aliases followed once."""
    found: list[tuple[str, int]] = []
    seen: set[int] = set()
    for root in yaml.compose_all(text, Loader=yaml.SafeLoader):
        stack: list[yaml.Node] = [root] if root is not None else []
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if len(seen) > _MAX_NODES:
                raise yaml.YAMLError(f"more than {_MAX_NODES} nodes")
            found.append((str(node.tag), node.start_mark.line + 1))
            if isinstance(node, yaml.SequenceNode):
                stack.extend(node.value)
            elif isinstance(node, yaml.MappingNode):
                stack.extend(part for pair in node.value for part in pair)
    return found


def _judge(tag: str, line: int, location: Location, ctx: ScanContext) -> None:
    prefix = next((p for p in _PYTHON_TAGS if tag.startswith(p)), None)
    if prefix is None:
        return
    target = tag[len(prefix) :]
    module, _, name = target.rpartition(".") if prefix != "!module:" else (target, "", "")
    verdict = ctx.rules.classify(module, name) if name else None
    what = f"line {line}: {tag} {_PYTHON_TAGS[prefix]} {target} when load_hyperpyyaml reads the file"
    if verdict is not None and verdict.verdict is Verdict.DENIED:
        reason = f" ({verdict.reason})" if verdict.reason else ""
        ctx.report(
            "hyperpyyaml-call", location, what + reason, SCANNER, subject=target, severity=Severity.CRITICAL
        )
    elif verdict is not None and verdict.verdict is Verdict.ALLOWED:
        return
    elif _library_object(prefix, target):
        ctx.report("hyperpyyaml-library-object", location, what, SCANNER, subject=target)
    else:
        ctx.report("hyperpyyaml-call", location, what + ", code from outside the loader's packages", SCANNER,
                   subject=target)  # fmt: skip


def _library_object(prefix: str, target: str) -> bool:
    if prefix in ("!apply:", "!applyref:"):
        return target in _APPLY_ALLOWED
    if prefix == "!module:" or target.startswith(_LIBRARY_EXCEPTIONS):
        return False
    return target.startswith(_LIBRARIES)
