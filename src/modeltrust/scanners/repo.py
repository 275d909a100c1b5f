"""What standard loaders import from a repository as a whole, beyond any one
file: transformers' trust_remote_code follows `auto_map` and
`custom_pipelines` in the JSON configs and `custom_generate/generate.py` to
Python modules, and from them every repository module they import
(relative imports, which transformers copies along, and absolute imports of
a module that sits in the repository). Every module on that graph runs on
load: each one is reported as such, with the chain that reaches it.

The per-file scanners still judge what each module does (code.py); this
pass only knows which of them a loader would run."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from ..findings import Location
from ..reader import ByteReader, TooLarge, read_all
from . import jsontop
from .base import Deadline, LimitReached, ScanContext
from .pycalls import ImportEdge

SCANNER = "repo"
MAX_CONFIG = 16 << 20
MAX_SOURCE = 8 << 20
MAX_MODULES = 5_000
# Configs of other standard loaders that name repository modules.
_OTHER_LOADER_CONFIGS = ("modules.json", "model_index.json")
# Hub displays: hf://[datasets/]org/name@commit/path
_HUB_ROOT = re.compile(r"^(hf://(?:(?:datasets|spaces)/)?[^/@]+/[^/@]+@[^/]+)/")


@dataclass(frozen=True, slots=True)
class RepoFile:
    """One file of a repository: its path below the root, and how to read it."""

    path: str
    location: Location
    open: Callable[[], ByteReader]


@dataclass
class _Graph:
    files: dict[str, RepoFile]
    ctx: ScanContext
    reached: dict[str, str] = field(default_factory=dict)
    """module path -> how the loader reaches it (for the message)."""
    imports: dict[str, list[ImportEdge]] = field(default_factory=dict)
    """module path -> what it imports."""


def group_by_root(targets: Sequence[str], displays: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """display paths grouped per repository root: {root: [(relative path, display)]}.

    Local folders are their own root; hub files share `hf://org/name@commit`;
    a file given on its own is a repository of one file (its name still counts)."""
    roots = sorted((t.rstrip("/") for t in targets), key=len, reverse=True)
    groups: dict[str, list[tuple[str, str]]] = {}
    for display in displays:
        hub = _HUB_ROOT.match(display)
        if hub:
            root, relative = hub.group(1), display[len(hub.group(1)) + 1 :]
        else:
            root = next((r for r in roots if display.startswith(r + "/")), "")
            relative = display[len(root) + 1 :] if root else posixpath.basename(display)
            root = root or display
        groups.setdefault(root, []).append((relative, display))
    return groups


def scan_repo(files: dict[str, RepoFile], ctx: ScanContext) -> None:
    """Report every Python module a standard loader would import from this
    repository, and judge by name the files loaders open by name (Python
    sources, compiled modules, Jinja templates) whatever their first bytes say."""
    graph = _Graph(files, ctx)
    for path in sorted(files):
        name = posixpath.basename(path).lower()
        if name.endswith((".py", ".pyw")):
            graph.imports[path] = _analyse_source(files[path], ctx)
        elif name.endswith(".pyc"):
            from .code import report_compiled

            report_compiled(files[path].location, ctx)
        elif name.endswith((".jinja", ".j2")):
            _check_template(files[path], ctx)
        elif name.endswith(".onnx"):
            _onnx_external_data(path, files, ctx)
        elif name.endswith(".index"):
            from .tfbundle import record_shards

            record_shards(path, files, ctx)  # TensorFlow checkpoint / SavedModel variables shards
        elif name == "fingerprint.pb":
            from .savedmodel import record_fingerprint

            record_fingerprint(path, files, ctx)
        if name.endswith(".json") and ("config" in name or name in _OTHER_LOADER_CONFIGS):
            for module, why in _config_modules(files[path], ctx):
                base = posixpath.dirname(path)
                _reach(graph, _module_file(base, module), f"{why} in {path}")
        elif path.endswith("custom_generate/generate.py"):
            _reach(graph, path, "transformers' custom_generate (generate(custom_generate=...))")
    _walk(graph)
    if len(files) > 1:
        _grade_unreached(graph)


def _grade_unreached(graph: _Graph) -> None:
    """Dangerous behaviour is critical in code a loader runs. In a module of a
    scanned folder that no loader imports (train.py, a conversion script) it
    runs only if someone runs the file: high."""
    from ..findings import Severity

    unreached = {
        graph.files[p].location for p in graph.files if p.endswith((".py", ".pyw")) and p not in graph.reached
    }
    for index, finding in enumerate(graph.ctx.findings):
        if (
            finding.location in unreached
            and finding.severity is Severity.CRITICAL
            and finding.scanner == "code"
        ):
            graph.ctx.findings[index] = replace(
                finding,
                severity=Severity.HIGH,
                message=f"{finding.message}; no standard loader imports this file",
            )


def _read(item: RepoFile, limit: int) -> bytes | None:
    try:
        reader = item.open()
    except OSError:
        return None  # the per-file scanner reports unreadable files
    try:
        return read_all(reader, limit)
    except (OSError, TooLarge):
        return None  # ... and oversized ones
    finally:
        _close(reader)


def _close(reader: ByteReader) -> None:
    close = getattr(reader, "close", None)
    if callable(close):
        close()


def _config_modules(item: RepoFile, ctx: ScanContext) -> list[tuple[str, str]]:
    """(module, how) pairs a transformers config makes the loader import."""
    raw = _read(item, MAX_CONFIG)
    if raw is None:
        return []
    try:
        data = jsontop.loads(raw, ("auto_map", "custom_pipelines"))
    except (ValueError, RecursionError):
        return []
    name = posixpath.basename(item.path).lower()
    if name == "modules.json":
        return _sentence_transformers_modules(data)
    if not isinstance(data, dict):
        return []
    if name == "model_index.json":
        return _diffusers_modules(data)
    found: list[tuple[str, str]] = []
    for reference in class_references(data.get("auto_map")):
        if "--" not in reference:  # other repositories are reported by the config scan
            found.append((reference.rpartition(".")[0], f"auto_map {reference!r}"))
    pipelines = data.get("custom_pipelines")
    if isinstance(pipelines, dict):
        for task, spec in pipelines.items():
            impl = spec.get("impl") if isinstance(spec, dict) else None
            if isinstance(impl, str) and "--" not in impl:
                found.append((impl.rpartition(".")[0], f"custom_pipelines[{task!r}]"))
    return [(module, how) for module, how in found if module]


def _sentence_transformers_modules(data: object) -> list[tuple[str, str]]:
    """sentence-transformers imports a module type outside its own package from
    the repository (transformers' dynamic-module loader, trust_remote_code)."""
    found: list[tuple[str, str]] = []
    for entry in data if isinstance(data, list) else []:
        kind = entry.get("type") if isinstance(entry, dict) else None
        if isinstance(kind, str) and not kind.startswith("sentence_transformers.") and "." in kind:
            found.append((kind.rpartition(".")[0], f"sentence-transformers module type {kind!r}"))
    return found


def _diffusers_modules(data: dict[str, object]) -> list[tuple[str, str]]:
    """diffusers (pipeline_loading_utils): `_class_name: [file, class]` is a
    custom pipeline file at the root; a component `[name, class]` is the custom
    component `<component>/<name>.py` whenever that file exists, whatever the
    name (even `diffusers`), both imported with trust_remote_code."""
    found: list[tuple[str, str]] = []
    pipeline = data.get("_class_name")
    if isinstance(pipeline, list) and pipeline and isinstance(pipeline[0], str):
        found.append((pipeline[0], f"diffusers custom pipeline {pipeline[0]!r}"))
    for component, value in data.items():
        if component == "_class_name" or not (
            isinstance(value, list) and value and isinstance(value[0], str)
        ):
            continue
        found.append((f"{component}.{value[0]}", f"diffusers custom component {component!r}"))
    return found


def class_references(value: object) -> list[str]:
    """Class references in an auto_map: 'module.Class' or 'org/repo--module.Class'."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in class_references(v)]
    return []


def _module_file(base: str, module: str) -> str:
    return posixpath.normpath(posixpath.join(base, *module.split("."))) + ".py"


def _reach(graph: _Graph, path: str, why: str) -> None:
    if path in graph.files and path not in graph.reached:
        graph.reached[path] = why


def _walk(graph: _Graph) -> None:
    """Follow imports from every reached module until nothing new is reached."""
    queue = list(graph.reached)
    done: set[str] = set()
    while queue:
        path = queue.pop(0)
        if path in done:
            continue
        done.add(path)
        if len(done) > MAX_MODULES:
            graph.ctx.report(
                "archive-limit",
                graph.files[path].location,
                f"import graph larger than {MAX_MODULES} modules",
                SCANNER,
            )
            break
        for target in _imported_files(graph, path):
            if target not in graph.reached:
                graph.reached[target] = f"imported by {path}"
                queue.append(target)
    for path in sorted(graph.reached):
        graph.ctx.report(
            "code-loader-imports",
            graph.files[path].location,
            f"the loader imports and runs this module (trust_remote_code): {_chain(graph, path)}",
            SCANNER,
            subject=path,
        )


def _chain(graph: _Graph, path: str) -> str:
    """`auto_map ... in config.json -> modeling_x.py -> helpers.py`."""
    steps = [path]
    why = graph.reached[path]
    seen = {path}
    while why.startswith("imported by "):
        parent = why[len("imported by ") :]
        if parent in seen:
            break
        seen.add(parent)
        steps.append(parent)
        why = graph.reached.get(parent, "")
    return " -> ".join([why, *reversed(steps)])


def _analyse_source(item: RepoFile, ctx: ScanContext) -> list[ImportEdge]:
    """Judge a file named as Python as the interpreter would read it; its imports."""
    if any(f.rule_id == "scan-limit" and f.subject == "python-analysis" and f.location == item.location
           for f in ctx.findings):  # fmt: skip
        return []  # its own scan stopped short and read the rest for names: a second pass would too
    raw = _read(item, MAX_SOURCE)
    if raw is None:
        return []
    from .code import analyse_python, report_facts

    facts = analyse_python(raw, item.location, ctx, claimed=True)
    if facts is None:
        return []
    report_facts(facts, item.location, ctx)
    return facts.imports


def _onnx_external_data(path: str, files: dict[str, RepoFile], ctx: ScanContext) -> None:
    """Files an ONNX model names as external data (`model.onnx_data`, `weights.bin`)
    are raw tensor bytes the runtime reads by offset and length: recorded as
    data rather than as unverified binaries. Anything else found in them stays."""
    from .onnx import external_data_files

    stopped = {"scan-limit", "onnx-malformed"}
    if any(f.rule_id in stopped and f.location == files[path].location for f in ctx.findings):
        return  # the per-file walk stopped short: a second one would too (and take as long)
    try:
        reader = files[path].open()
    except OSError:
        return
    deadline = Deadline(ctx.limits.file_seconds(reader.size))
    try:
        locations = external_data_files(reader, deadline.check)
    except LimitReached:
        return  # the per-file scan reports the limit; its data files stay unverified
    finally:
        _close(reader)
    base = posixpath.dirname(path)
    for location in sorted(set(locations)):
        data = posixpath.normpath(posixpath.join(base, location.replace("\\", "/")))
        item = files.get(data)
        if item is None:
            continue
        unverified = [
            f for f in ctx.findings if f.rule_id == "scan-unverified" and f.location == item.location
        ]
        if not unverified:
            continue
        for finding in unverified:
            ctx.findings.remove(finding)
        message = f"external tensor data of {path}: raw bytes read by offset and length, nothing deserialised"
        ctx.report("format-data", item.location, message, SCANNER, subject="onnx-external-data")


def _check_template(item: RepoFile, ctx: ScanContext) -> None:
    from .template import TemplateScanner

    try:
        reader = item.open()
    except OSError:
        return  # the per-file scan reports unreadable files
    try:
        TemplateScanner().scan(reader, item.location, ctx)
    except OSError:
        return
    finally:
        _close(reader)


def _imported_files(graph: _Graph, path: str) -> list[str]:
    edges = graph.imports.get(path, [])
    here = posixpath.dirname(path)
    found: list[str] = []
    for edge in edges:
        if edge.level:
            base = here
            for _ in range(edge.level - 1):
                base = posixpath.dirname(base)
            candidates = [_join(base, edge.module)] if edge.module else []
            candidates += [_join(base, f"{edge.module}.{n}" if edge.module else n) for n in edge.names]
        else:
            # An absolute import finds a repository module when the loader's
            # module folder (or the current directory) holds it.
            candidates = [_join(here, edge.module), _join("", edge.module)]
            candidates += [_join(here, f"{edge.module}.{n}") for n in edge.names]
        for candidate in candidates:
            for option in (candidate + ".py", posixpath.join(candidate, "__init__.py")):
                if option in graph.files and option != path:
                    found.append(option)
    return found


def _join(base: str, module: str) -> str:
    return posixpath.normpath(posixpath.join(base, *module.split("."))) if module else base
