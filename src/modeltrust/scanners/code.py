"""Code that would run: Python files shipped with a model or dataset (read
with `ast`, never imported), configs that ask for trust_remote_code, shell
scripts, and native executables or libraries among the artifacts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..detect import EXECUTABLE
from ..findings import Location
from ..reader import ByteReader, TooLarge, read_all
from . import jsontop
from .base import LimitReached, ScanContext

if TYPE_CHECKING:
    from .pycalls import CodeFacts

SCANNER = "code"
MAX_SOURCE = 8 << 20
MAX_JSON = 64 << 20
"""Sized to real repos: Gemma's tokenizer.json is 33 MB."""


_CONFIG_KEYS = frozenset(
    ("auto_map", "custom_pipelines", "tokenizer_class", "processor_class", "feature_extractor_type",
     "weight_map", "chat_template", "class_name", "config")
)  # fmt: skip
"""The top-level keys the config checks read (a large document is read for these only)."""
_PLAIN_ENCODINGS = {"utf-8", "utf-8-sig", "ascii", "iso8859-1", "latin-1", "cp1252"}
_BEHAVIOUR_RULES = {
    "dynamic": "code-dynamic-dispatch",
    "namespace": "code-namespace-access",
    "write": "code-writes-files",
    "network": "code-network",
    "optional-import": "code-optional-import",
}


def _split(dotted: str) -> tuple[str, str]:
    """`subprocess.run` -> (subprocess, run); a bare module `subprocess` -> (subprocess, "")."""
    module, _, name = dotted.rpartition(".")
    return (module, name) if module else (dotted, "")


def named(location: Location, *suffixes: str) -> bool:
    """Whether the file (or innermost member) is named like one a loader opens by name."""
    name = location.members[-1] if location.members else location.path
    return name.lower().endswith(suffixes)


def decode_source(raw: bytes) -> tuple[str, str]:
    """Source text as the interpreter reads it: BOM or PEP 263 cookie, else UTF-8.

    Raises SyntaxError or UnicodeDecodeError where the interpreter would
    refuse the file too."""
    import codecs
    import io
    import tokenize

    encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    text = raw.decode(encoding)
    return text, codecs.lookup(encoding).name


class PythonScanner:
    name = SCANNER
    formats = ("python",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            raw = read_all(reader, MAX_SOURCE)
        except TooLarge:
            ctx.report("scan-unverified", location, f"Python source over {MAX_SOURCE} bytes", SCANNER)
            return
        facts = analyse_python(raw, location, ctx, claimed=named(location, ".py", ".pyw"))
        if facts is not None:
            report_facts(facts, location, ctx)


def analyse_python(raw: bytes, location: Location, ctx: ScanContext, claimed: bool) -> CodeFacts | None:
    """What the source imports and calls, read in pieces of whole statements
    (bounded memory); None if it is not Python after all. Failures are
    findings when the file's name says it is Python (otherwise it was text)."""
    from .pycalls import CodeFacts, lexical_uses
    from .pychunks import MAX_PIECE, Incomplete, parse_pieces

    source = decode_python(raw, location, ctx, claimed)
    if source is None:
        return None
    facts = CodeFacts()
    try:
        for tree in parse_pieces(source):
            facts.visit(tree)
            facts.forget_nodes()  # node ids of a freed piece are reused by the next
            ctx.check_time()
    except (SyntaxError, ValueError, MemoryError) as exc:
        line = getattr(exc, "lineno", None) or 1
        if len(source) > MAX_PIECE:
            # Pieces that do not parse may be this reader's cut, not the file's
            # error: judged by what the rest mentions, as a limit.
            _incomplete(facts, source, 1, f"pieces stopped parsing at line {line}", location, ctx)
            return facts
        if claimed:
            message = f"Python source does not parse (line {line}): {type(exc).__name__}"
            ctx.report("code-unparsable", location, message, SCANNER)
        return None
    except RecursionError:
        report_python_file(location, ctx)
        ctx.report("code-unparsable", location, "Python source nests too deeply to analyse", SCANNER)
        lexical_uses(facts, source, 1)
        return facts
    except Incomplete as exc:
        _incomplete(facts, source, exc.line, str(exc), location, ctx)
        return facts
    except LimitReached as exc:
        _incomplete(facts, source, 1, str(exc), location, ctx)
        return facts
    report_python_file(location, ctx)
    return facts


def _incomplete(
    facts: CodeFacts, source: str, line: int, why: str, location: Location, ctx: ScanContext
) -> None:
    """The syntax tree stopped short of line `line`: a limit finding, and the rest read for names."""
    from .pycalls import lexical_uses

    report_python_file(location, ctx)
    message = f"Python analysis incomplete: {why}; from line {line} on, only names and imports were read"
    ctx.report("scan-limit", location, message, SCANNER, subject="python-analysis")
    lexical_uses(facts, _from_line(source, line), line)


def _from_line(source: str, line: int) -> str:
    """The text from line `line` (1-based) on."""
    offset = 0
    for _ in range(line - 1):
        offset = source.find("\n", offset) + 1
        if offset == 0:
            return ""
    return source[offset:]


def decode_python(raw: bytes, location: Location, ctx: ScanContext, claimed: bool) -> str | None:
    """Source text decoded as the interpreter would (an unusual encoding is a finding)."""
    try:
        source, encoding = decode_source(raw)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        if claimed:
            ctx.report("code-unparsable", location, f"Python source cannot be decoded: {exc}", SCANNER)
        return None
    if encoding not in _PLAIN_ENCODINGS:
        ctx.report(
            "code-unusual-encoding",
            location,
            f"source declares the {encoding} encoding: what it runs differs from what a UTF-8 reader shows",
            SCANNER,
            subject=encoding,
        )
    return source


def report_python_file(location: Location, ctx: ScanContext) -> None:
    ctx.report(
        "code-python-file",
        location,
        "Python code ships with the artifacts; it runs if loaded with trust_remote_code=True or imported",
        SCANNER,
    )


def report_compiled(location: Location, ctx: ScanContext) -> None:
    ctx.report(
        "code-compiled-python",
        location,
        "compiled Python bytecode: Python imports it instead of (or without) source, "
        "and it cannot be reviewed",
        SCANNER,
    )


def report_facts(facts: CodeFacts, location: Location, ctx: ScanContext) -> None:
    reported: set[tuple[str, str]] = set()
    # One finding per name: where it is called if it is, else its first mention.
    for use in sorted(facts.uses, key=lambda u: (not u.called, u.line, u.column)):
        rule = ctx.rules.classify_code_call(*_split(use.target))
        if rule is None or (rule.id, use.target) in reported:
            continue
        reported.add((rule.id, use.target))
        verb = "calls" if use.called else "refers to"
        message = f"line {use.line}:{use.column + 1} {verb} {use.target} ({rule.title})"
        ctx.report(rule.id, location, message, SCANNER, subject=use.target)
    for behaviour in facts.behaviours:
        rule_id = _BEHAVIOUR_RULES[behaviour.kind]
        if (rule_id, behaviour.detail) in reported:
            continue
        reported.add((rule_id, behaviour.detail))
        message = f"line {behaviour.line}:{behaviour.column + 1} {behaviour.detail}"
        ctx.report(rule_id, location, message, SCANNER, subject=behaviour.detail)


class CompiledPythonScanner:
    """Compiled bytecode (`.pyc`): Python imports it from __pycache__ when the
    source matches, or alone when no source exists; it cannot be reviewed."""

    name = SCANNER
    formats = ("pyc",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        report_compiled(location, ctx)


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


def _auto_map_targets(data: dict[str, Any]) -> list[str]:
    """Class references transformers imports: auto_map entries ('module.Class'
    or 'org/repo--module.Class') and custom pipeline implementations."""
    from .repo import class_references

    targets = class_references(data.get("auto_map"))
    pipelines = data.get("custom_pipelines")
    if isinstance(pipelines, dict):
        for spec in pipelines.values():
            if isinstance(spec, dict) and isinstance(spec.get("impl"), str):
                targets.append(spec["impl"])
    return targets


def _is_keras_config(data: dict[str, Any]) -> bool:
    """Keras' folder format (and Hub save) writes the model's config.json as a
    serialised object: class_name + config (+ module, registered_name)."""
    return isinstance(data.get("class_name"), str) and isinstance(data.get("config"), (dict, str))


class JsonConfigScanner:
    """configs that make loaders import code: auto_map (config.json,
    tokenizer_config.json, preprocessor configs), and shard indexes whose
    file names leave the repository."""

    name = "json"
    formats = ("json",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            raw = read_all(reader, MAX_JSON)
            data = jsontop.loads(raw, _CONFIG_KEYS)
            if isinstance(data, dict) and _is_keras_config(data) and len(raw) > jsontop.WHOLE:
                if jsontop.too_many_containers(raw) is not None:
                    raise jsontop.TooComplex(f"a Keras config of over {jsontop.MAX_CONTAINERS} containers")
                data = json.loads(raw.decode("utf-8"))  # check_config walks the whole document
        except TooLarge:
            ctx.report("scan-unverified", location, f"JSON over {MAX_JSON} bytes was not parsed", self.name)
            return
        except jsontop.TooComplex as exc:
            ctx.report("scan-limit", location, f"JSON not fully read: {exc}", self.name, subject="json")
            return
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            if named(location, ".json"):
                message = f"named as JSON but does not parse: {type(exc).__name__}"
                ctx.report("scan-malformed", location, message, self.name, subject="json")
            else:
                ctx.report("format-data", location, "text that is not JSON; nothing in it runs on load",
                           self.name, subject="text")  # fmt: skip
            return
        if isinstance(data, dict):
            self._auto_map(data, location, ctx)
            self._weight_map(data, location, ctx)
            self._chat_template(data, location, ctx)
            if _is_keras_config(data):
                from .keras import check_config

                check_config(data, location, ctx)

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
        targets = _auto_map_targets(data)
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
                f"transformers imports {', '.join(local[:5])} from this repository on load "
                "(trust_remote_code=True)" + (" ..." if len(local) > 5 else ""),
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
