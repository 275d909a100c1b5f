"""Code that would run: Python files shipped with a model or dataset (read
with `ast`, never imported), configs that ask for trust_remote_code, shell
scripts, and native executables or libraries among the artifacts."""

from __future__ import annotations

import json
from typing import Any

from ..detect import EXECUTABLE
from ..findings import Location
from ..reader import ByteReader, TooLarge, read_all
from .base import ScanContext

SCANNER = "code"
MAX_SOURCE = 8 << 20
MAX_JSON = 16 << 20


def _split(dotted: str) -> tuple[str, str]:
    module, _, name = dotted.rpartition(".")
    return module, name


class PythonScanner:
    name = SCANNER
    formats = ("python",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            source = read_all(reader, MAX_SOURCE).decode("utf-8", "replace")
        except TooLarge:
            ctx.report("scan-unverified", location, f"Python source over {MAX_SOURCE} bytes", SCANNER)
            return
        import ast

        from .pycalls import CallCollector

        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return  # not Python after all (detection saw code-like lines): it cannot run either
        ctx.report(
            "code-python-file",
            location,
            "Python code ships with the artifacts; it runs if loaded with trust_remote_code=True or imported",
            SCANNER,
        )
        visitor = CallCollector()
        try:
            visitor.visit(tree)
        except RecursionError:
            ctx.report("scan-error", location, "Python source nests too deeply to analyse", SCANNER)
            return
        reported: set[tuple[str, str]] = set()
        for target, line, column in visitor.calls:
            rule = ctx.rules.classify_code_call(*_split(target))
            if rule is None or (rule.id, target) in reported:
                continue
            reported.add((rule.id, target))
            ctx.report(
                rule.id,
                location,
                f"line {line}:{column + 1} calls {target} ({rule.title})",
                SCANNER,
                subject=target,
            )


class ScriptScanner:
    name = "script"
    formats = ("script",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        first = reader.read_at(0, 128).split(b"\n", 1)[0].decode("utf-8", "replace")
        ctx.report(
            "code-script", location, f"executable script ({first[:60]})", self.name, subject=first[:60]
        )


class ExecutableScanner:
    name = "executable"
    formats = tuple(sorted(EXECUTABLE))

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        kind = ctx.formats[str(location)]  # detected once, by the engine
        ctx.report(
            "code-executable",
            location,
            f"native {kind} binary among model artifacts; it runs with full privileges if executed or loaded",
            self.name,
            subject=kind,
        )


def _auto_map_targets(value: object) -> list[str]:
    """Class references in an auto_map: 'module.Class' or 'org/repo--module.Class'."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _auto_map_targets(v)]
    return []


class JsonConfigScanner:
    """configs that make loaders import code: auto_map (config.json,
    tokenizer_config.json, preprocessor configs), and shard indexes whose
    file names leave the repository."""

    name = "json"
    formats = ("json",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            data = json.loads(read_all(reader, MAX_JSON).decode("utf-8"))
        except TooLarge:
            ctx.report("scan-unverified", location, f"JSON over {MAX_JSON} bytes was not parsed", self.name)
            return
        except (UnicodeDecodeError, ValueError, RecursionError):
            return  # not JSON after all: plain data
        if isinstance(data, dict):
            self._auto_map(data, location, ctx)
            self._weight_map(data, location, ctx)
            self._chat_template(data, location, ctx)

    def _chat_template(self, data: dict[str, Any], location: Location, ctx: ScanContext) -> None:
        """tokenizer_config.json: a template string, or a list of named ones."""
        value = data.get("chat_template")
        templates: list[object] = [value] if isinstance(value, str) else []
        if isinstance(value, list):
            templates = [t.get("template") for t in value if isinstance(t, dict)]
        if any(isinstance(t, str) for t in templates):
            from .template import check_template

            for template in templates:
                if isinstance(template, str):
                    check_template(template, location, ctx, self.name)

    def _auto_map(self, data: dict[str, Any], location: Location, ctx: ScanContext) -> None:
        targets = _auto_map_targets(data.get("auto_map"))
        for key in ("tokenizer_class", "processor_class", "feature_extractor_type"):
            if isinstance(data.get(key), str) and "." in data[key]:
                targets.append(data[key])
        foreign = sorted({t for t in targets if "--" in t})
        for target in foreign:
            repo = target.split("--", 1)[0]
            ctx.report(
                "code-remote-code-elsewhere",
                location,
                f"auto_map loads {target!r}: code from another repository ({repo}), not pinned by this one",
                self.name,
                subject=target,
            )
        local = sorted(set(targets) - set(foreign))
        if local:
            ctx.report(
                "code-trust-remote-code",
                location,
                f"loading needs trust_remote_code=True to import {', '.join(local[:5])}"
                + (" ..." if len(local) > 5 else ""),
                self.name,
                subject=local[0],
            )

    def _weight_map(self, data: dict[str, Any], location: Location, ctx: ScanContext) -> None:
        weight_map = data.get("weight_map")
        if not isinstance(weight_map, dict):
            return
        for shard in sorted({v for v in weight_map.values() if isinstance(v, str)}):
            parts = shard.replace("\\", "/").split("/")
            if shard.startswith(("/", "\\")) or ".." in parts or shard[1:2] == ":":
                ctx.report(
                    "archive-path-traversal",
                    location,
                    f"shard index points outside the repository: {shard!r}",
                    self.name,
                    subject=shard,
                )
