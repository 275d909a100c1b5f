"""What a Python file could do, read from its syntax tree (nothing is imported
or run): every reference to an imported name resolved through the file's
imports (`import subprocess as sp; sp.run` is `subprocess.run`, also when it
is stored in a dict or passed on rather than called), dynamic dispatch that
no name check can follow (getattr with computed names, module namespaces),
file writes, network endpoints, deserialisation, and the modules it imports
(the edges of the repository's import graph)."""

from __future__ import annotations

import ast
import re
from typing import NamedTuple

# Builtins worth resolving when used by their bare name.
_BUILTINS = {
    "eval",
    "exec",
    "compile",
    "__import__",
    "open",
    "breakpoint",
    "getattr",
    "globals",
    "vars",
    "locals",
}
# Modules whose attributes, reached by a computed name, can run anything.
DANGEROUS_MODULES = (
    "os", "posix", "nt", "sys", "subprocess", "builtins", "importlib", "pickle", "_pickle", "marshal",
    "ctypes", "socket", "shutil", "pty", "runpy", "code", "codeop", "types", "torch.serialization",
)  # fmt: skip
# Calls that hand back a module's namespace (a dict of everything in it).
_NAMESPACES = {"builtins.globals", "builtins.vars", "builtins.locals"}
_PATH_WRITES = {"write_text", "write_bytes", "touch", "symlink_to", "hardlink_to", "chmod", "unlink", "rmdir"}
_FILE_WRITERS = (
    "os.remove", "os.unlink", "os.rename", "os.replace", "os.rmdir", "os.removedirs", "os.symlink", "os.link",
    "os.chmod", "os.chown", "os.truncate", "os.mkfifo", "shutil.copy", "shutil.copy2", "shutil.copyfile",
    "shutil.copytree", "shutil.move", "shutil.rmtree", "tempfile.NamedTemporaryFile",
)  # fmt: skip
_HUB_DOWNLOADS = (
    "huggingface_hub.hf_hub_download", "huggingface_hub.snapshot_download", "huggingface_hub.HfApi",
    "huggingface_hub.file_download.hf_hub_download", "huggingface_hub.cached_download",
    "transformers.utils.cached_file", "transformers.utils.hub.cached_file",
)  # fmt: skip
_INTERNALS = {
    "__dict__",
    "__globals__",
    "__builtins__",
    "__subclasses__",
    "__code__",
    "__import__",
    "__loader__",
}
_DOWNLOAD_NAMES = ("hf_hub_download", "snapshot_download")
_IMPORTERS = {"importlib.import_module", "builtins.__import__", "importlib.__import__"}


class Use(NamedTuple):
    """A reference to an imported (or builtin) name, called or not."""

    target: str
    line: int
    column: int
    called: bool


class Behaviour(NamedTuple):
    """A construct found by shape rather than by name."""

    kind: str
    """dynamic (computed attribute or import), namespace, write, network, optional-import."""
    detail: str
    line: int
    column: int


class ImportEdge(NamedTuple):
    module: str
    """As written: `pkg.mod` for `import pkg.mod`, `mod` for `from .mod import x`."""
    level: int
    """Leading dots of a relative import (0: absolute)."""
    names: tuple[str, ...]
    line: int


def dotted(node: ast.expr) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _constant_str(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _opens_for_writing(call: ast.Call) -> bool:
    mode = _keyword(call, "mode") or (call.args[1] if len(call.args) > 1 else None)
    if mode is None:
        return False
    text = _constant_str(mode)
    return text is None or any(c in text for c in "wax+")  # a computed mode may write


class CodeFacts(ast.NodeVisitor):
    """Collects uses, behaviours and import edges of one module."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.uses: list[Use] = []
        self.behaviours: list[Behaviour] = []
        self.imports: list[ImportEdge] = []
        self._called: set[int] = set()
        self._safe_calls: set[int] = set()

    def forget_nodes(self) -> None:
        """Drop what was noted by node id (call sites, safe calls): called
        between pieces of one file, whose freed nodes' ids are reused."""
        self._called.clear()
        self._safe_calls.clear()

    # --- names ------------------------------------------------------------------

    def resolve(self, node: ast.expr) -> str | None:
        """The dotted name an expression refers to through the imports, if any."""
        text = dotted(node)
        return None if text is None else self.resolve_text(text)

    def resolve_text(self, text: str) -> str | None:
        """`resolve` for a dotted name given as text."""
        head, _, rest = text.partition(".")
        resolved = self.aliases.get(head)
        if resolved is None:
            if head not in _BUILTINS and head != "__builtins__":
                return None
            resolved = f"builtins.{head}" if head in _BUILTINS else "builtins"
        return f"{resolved}.{rest}" if rest else resolved

    def _record(self, node: ast.expr) -> None:
        target = self.resolve(node)
        if target is not None and id(node) not in self._safe_calls:
            self.uses.append(Use(target, node.lineno, node.col_offset, id(node) in self._called))

    def _behaviour(self, kind: str, detail: str, node: ast.AST) -> None:
        self.behaviours.append(
            Behaviour(kind, detail, getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
        )

    # --- imports ----------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            local = alias.asname or alias.name.split(".")[0]
            self.aliases[local] = alias.name if alias.asname else alias.name.split(".")[0]
            self.imports.append(ImportEdge(alias.name, 0, (), node.lineno))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        names = tuple(a.name for a in node.names)
        self.imports.append(ImportEdge(module, node.level, names, node.lineno))
        for alias in node.names:
            if alias.name == "*":
                continue
            qualified = f"{module}.{alias.name}" if module else alias.name
            self.aliases[alias.asname or alias.name] = (
                ("." * node.level) + qualified if node.level else qualified
            )
            self._record_from_import(module, alias.name, node)

    def _record_from_import(self, module: str, name: str, node: ast.ImportFrom) -> None:
        """`from os import system` names os.system even if it is only passed on."""
        if not node.level and module:
            self.uses.append(Use(f"{module}.{name}", node.lineno, node.col_offset, False))

    # --- references ---------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "__builtins__":
            self._behaviour("namespace", "reads __builtins__", node)
        self._record(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if dotted(node) is not None:
            if node.attr.startswith("__") and node.attr.endswith("__") and node.attr != "__name__":
                self._dunder(node)
            self._record(node)  # the whole chain is one reference
            return
        self.generic_visit(node)

    def _dunder(self, node: ast.Attribute) -> None:
        if node.attr in _INTERNALS:
            self._behaviour("namespace", f"reads {node.attr}", node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        base = node.value
        target = self.resolve(base)
        if target == "sys.modules" and _constant_str(node.slice) is None:
            self._behaviour("namespace", "indexes sys.modules with a computed key", node)
        if isinstance(base, ast.Call) and self.resolve(base.func) in _NAMESPACES:
            self._behaviour("namespace", f"indexes {self.resolve(base.func)}()", node)
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        value = node.value
        if isinstance(value, ast.Call) and self.resolve(value.func) in _IMPORTERS and value.args:
            module = _constant_str(value.args[0])
            if module is not None:
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.aliases[target.id] = module
        for target in node.targets:
            self._env_write(target)
        self.generic_visit(node)

    def _env_write(self, target: ast.expr) -> None:
        if isinstance(target, ast.Subscript) and self.resolve(target.value) == "os.environ":
            key = _constant_str(target.slice)
            if key is None or key.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_")):
                self._behaviour(
                    "network", f"sets os.environ[{key or '<computed>'!r}] (where models are fetched)", target
                )

    # --- calls --------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        self._called.add(id(node.func))
        target = self.resolve(node.func)
        if target is not None:
            self._special_call(target, node)
        elif isinstance(node.func, ast.Attribute) and node.func.attr in _PATH_WRITES:
            self._behaviour("write", f"calls .{node.func.attr}() (pathlib-style file change)", node)
        if isinstance(node.func, ast.Subscript | ast.Call):
            self._behaviour("dynamic", "calls the result of an index or another call", node)
        self.generic_visit(node)

    def _special_call(self, target: str, node: ast.Call) -> None:
        if target in _IMPORTERS:
            module = _constant_str(node.args[0]) if node.args else None
            if module is None:
                self._behaviour("namespace", f"{target}() of a computed module name", node)
            else:
                self._safe_calls.add(id(node.func))
                self._behaviour("optional-import", f"imports {module!r} by name at run time", node)
                self.imports.append(ImportEdge(module, 0, (), node.lineno))
        elif target in ("builtins.getattr", "builtins.setattr", "builtins.delattr", "builtins.hasattr"):
            self._getattr(target, node)
        elif target == "builtins.open" and _opens_for_writing(node):
            self._behaviour("write", "open() for writing", node)
        elif target in _FILE_WRITERS or target.endswith(tuple(f".{m}" for m in _PATH_WRITES)):
            self._behaviour("write", f"calls {target}", node)
        elif target in _HUB_DOWNLOADS or target.rsplit(".", 1)[-1] in _DOWNLOAD_NAMES:
            endpoint = _keyword(node, "endpoint")
            if endpoint is not None and not (isinstance(endpoint, ast.Constant) and endpoint.value is None):
                self._behaviour("network", f"{target}(endpoint=...) downloads from another server", node)
        elif target in ("torch.load", "torch.serialization.load"):
            weights_only = _keyword(node, "weights_only")
            if isinstance(weights_only, ast.Constant) and weights_only.value is True:
                self._safe_calls.add(id(node.func))  # restricted unpickler: tensors only

    def _getattr(self, target: str, node: ast.Call) -> None:
        if len(node.args) < 2:
            return
        obj, name = node.args[0], _constant_str(node.args[1])
        owner = self.resolve(obj)
        if name is not None:
            if owner is not None:
                self.uses.append(Use(f"{owner}.{name}", node.lineno, node.col_offset, False))
            if name.startswith("__") and name.endswith("__"):
                self._behaviour("namespace", f"{target}(..., {name!r})", node)
            return
        if owner is None:
            return  # getattr(self, computed): ordinary attribute dispatch on objects
        if any(owner == m or owner.startswith(f"{m}.") for m in DANGEROUS_MODULES):
            self._behaviour("namespace", f"{target}({owner}, <computed name>)", node)
        else:
            self._behaviour("dynamic", f"{target}({owner}, <computed name>)", node)


_IMPORT_TEXT = re.compile(r"^[ \t]*import[ \t]+([\w.]+)(?:[ \t]+as[ \t]+(\w+))?", re.MULTILINE)
_FROM_TEXT = re.compile(
    r"^[ \t]*from[ \t]+([\w.]+)[ \t]+import[ \t]+(\w+)(?:[ \t]+as[ \t]+(\w+))?", re.MULTILINE
)
MAX_LEXICAL_USES = 10_000


def lexical_uses(facts: CodeFacts, text: str, first_line: int) -> None:
    """A cheap pass for source the syntax tree could not cover (too large or
    out of time): imports and dotted names read from the text, resolved
    through the imports seen so far, recorded as uses. Names inside strings
    count too (what cannot be parsed is judged by what it mentions). Only
    names that start with an imported name or a watched builtin are matched
    (by one expression), so the pass runs at the regex engine's speed."""
    for match in _IMPORT_TEXT.finditer(text):
        module, alias = match.group(1), match.group(2)
        facts.aliases[alias or module.split(".")[0]] = module if alias else module.split(".")[0]
    for match in _FROM_TEXT.finditer(text):
        module, name, alias = match.groups()
        facts.aliases[alias or name] = f"{module}.{name}"
        facts.uses.append(Use(f"{module}.{name}", first_line, 0, False))
    heads = sorted({*facts.aliases, *_BUILTINS, "__builtins__"}, key=len, reverse=True)
    names = re.compile(
        r"(?<![\w.])((?:"
        + "|".join(re.escape(h) for h in heads)
        + r")(?:\.[A-Za-z_]\w*)*)(?![\w])[ \t]*(\()?"
    )
    line, counted_to, recorded = first_line, 0, 0
    for match in names.finditer(text):
        target = facts.resolve_text(match.group(1))
        if target is None:
            continue
        line += text.count("\n", counted_to, match.start())
        counted_to = match.start()
        facts.uses.append(Use(target, line, 0, match.group(2) is not None))
        recorded += 1
        if recorded >= MAX_LEXICAL_USES:
            return


def analyse(tree: ast.AST) -> CodeFacts:
    facts = CodeFacts()
    facts.visit(tree)
    return facts
