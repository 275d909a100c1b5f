"""Chat templates (GGUF `tokenizer.chat_template`, tokenizer_config.json
`chat_template`, `chat_template.jinja` and other `*.jinja` files) are Jinja2
programs that inference servers render on every request, not always in a
sandbox. They are parsed here, with the extensions transformers enables
(`loopcontrols`, its `{% generation %}` tag), never rendered, and judged
deny-by-default: every construct must be one that real chat templates use.

- critical (template-injection): walks to Python internals: dunder or frame
  attributes and keys, the default globals SSTI payloads start from
  (`cycler`, `lipsum`, `joiner`, `self`, ...), dunder strings;
- high (template-dynamic-access): attribute or item access whose key is computed
  (`obj[name]` falls back to getattr) unless it is provably an integer
  (`messages[loop.index0 - 1]`), underscored names, the `attr` filter, unknown
  filters, tests, functions or methods, include/import/extends, and any node type
  real templates do not use;
- high (template-malformed): a template that does not parse (or uses an unknown
  tag) cannot be cleared.
"""

from __future__ import annotations

from collections.abc import Iterator

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser

from ..findings import Location
from ..reader import ByteReader, TooLarge, read_all
from .base import ScanContext

MAX_TEMPLATE = 256 << 10
"""Characters parsed: Jinja2 takes about 1 s per 250 KB of hostile template; real
chat templates are under 5 KB."""
SCANNER = "template"
# Globals that Jinja2 exposes by default and SSTI payloads start from.
_ENTRY_POINTS = {"lipsum", "cycler", "joiner", "self", "config", "request", "url_for", "get_flashed_messages",
                 "_TemplateReference__context", "environment", "g", "session"}  # fmt: skip
# Attributes that reach frames, code and globals without dunders.
_INTERNAL_ATTRS = {"gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "f_globals",
                   "f_locals", "f_builtins", "f_back", "f_code", "tb_frame", "tb_next", "func_globals",
                   "func_code", "im_func", "im_self", "mro", "co_code", "format_map"}  # fmt: skip
# Callables transformers (and llama.cpp's minja) put in the template's globals.
_FUNCTIONS = {"raise_exception", "strftime_now", "namespace", "range", "dict", "lipsum_safe", "caller"}
# Methods of str, dict and list that real templates call.
_METHODS = {"split", "rsplit", "strip", "lstrip", "rstrip", "startswith", "endswith", "replace", "upper",
            "lower", "title", "capitalize", "count", "find", "rfind", "index", "join", "splitlines",
            "items", "keys", "values", "get", "isdigit", "isalpha", "isspace", "cycle", "removeprefix",
            "removesuffix", "casefold", "zfill", "ljust", "rjust", "center", "partition",
            "rpartition"}  # fmt: skip
_FILTERS = set(jinja2.Environment().filters) - {"attr"}
_TESTS = set(jinja2.Environment().tests)
# Filters whose string arguments name attributes or other filters.
_NAMING_FILTERS = {"map", "select", "reject", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique",
                   "min", "max", "dictsort"}  # fmt: skip
# Where a value can only be printed, tested or turned into a string or bool.
_PRINTED = (nodes.Output, nodes.Test, nodes.Compare, nodes.Operand, nodes.Concat, nodes.Not)
_LOOP_INTS = {"index", "index0", "revindex", "revindex0", "length", "depth", "depth0"}
_INT_FILTERS = {"length", "count", "int", "abs", "round", "wordcount"}
_ALLOWED_NODES = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.Const, nodes.Name, nodes.For, nodes.If,
    nodes.Assign, nodes.AssignBlock, nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.With,
    nodes.Block, nodes.Scope, nodes.ScopedEvalContextModifier, nodes.Keyword, nodes.Pair, nodes.List,
    nodes.Tuple, nodes.Dict, nodes.CondExpr, nodes.Compare, nodes.Operand, nodes.And, nodes.Or, nodes.Not,
    nodes.Neg, nodes.Pos, nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow,
    nodes.Concat, nodes.Slice, nodes.NSRef, nodes.Getattr, nodes.Getitem, nodes.Call, nodes.Filter,
    nodes.Test, nodes.Break, nodes.Continue, nodes.ExprStmt,
)  # fmt: skip


class GenerationTag(Extension):
    """transformers' `{% generation %}...{% endgeneration %}` (marks assistant
    tokens for training masks); parsed as the block it wraps."""

    tags = {"generation"}  # noqa: RUF012 - jinja2's Extension API

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


def _environment() -> jinja2.Environment:
    """As transformers renders chat templates (the parse tree is the same in its sandbox)."""
    return jinja2.Environment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, "jinja2.ext.loopcontrols"]
    )


class TemplateScanner:
    """`chat_template.jinja` and other Jinja files beside a tokenizer."""

    name = SCANNER
    formats = ("chat-template",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            raw = read_all(reader, MAX_TEMPLATE)
        except TooLarge:
            message = f"template file over {MAX_TEMPLATE} bytes is too large to be a prompt format"
            ctx.report("template-malformed", location, message, SCANNER, subject="size")
            return
        try:
            source = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            message = f"template is not UTF-8 (as transformers reads it): {exc.reason} at byte {exc.start}"
            ctx.report("template-malformed", location, message, SCANNER)
            return
        check_template(source, location, ctx, SCANNER)


def check_template(source: str, location: Location, ctx: ScanContext, scanner: str) -> None:
    """Report injection (critical), constructs real templates do not use (high),
    or a template that cannot be parsed (high)."""
    if len(source) > MAX_TEMPLATE:
        message = f"chat template of {len(source)} characters is too large to be a prompt format"
        ctx.report("template-malformed", location, message, scanner, subject="size")
        return
    try:
        tree = _environment().parse(source)  # parse only: nothing is rendered
    except jinja2.TemplateSyntaxError as exc:
        unknown = "unknown tag" in (exc.message or "")
        what = "uses a tag no standard loader defines" if unknown else "does not parse"
        message = f"chat template {what}: {exc.message} (line {exc.lineno})"
        ctx.report("template-malformed", location, message, scanner, subject="unknown-tag" if unknown else "")
        return
    except (RecursionError, MemoryError):
        ctx.report("template-malformed", location, "chat template nests too deeply to parse", scanner)
        return
    try:
        judged = _Judge(tree)
        injection, dynamic = judged.run()
    except RecursionError:
        ctx.report("template-malformed", location, "chat template nests too deeply to analyse", scanner)
        return
    for rule_id, reasons in (("template-injection", injection), ("template-dynamic-access", dynamic)):
        if reasons:
            text = "; ".join(reasons[:4]) + (f" (+{len(reasons) - 4} more)" if len(reasons) > 4 else "")
            ctx.report(rule_id, location, f"chat template {text}", scanner, subject=reasons[0])


def _dunder(text: str) -> bool:
    return "__" in text


class _Judge:
    """Walks every node once; collects critical and high reasons."""

    def __init__(self, tree: nodes.Template) -> None:
        self.tree = tree
        self.injection: list[str] = []
        self.dynamic: list[str] = []
        self.macros = {m.name for m in tree.find_all(nodes.Macro)}
        self.assigned = _assignments(tree)
        self.parents = {id(child): node for node in _walk(tree) for child in node.iter_child_nodes()}

    def run(self) -> tuple[list[str], list[str]]:
        for node in _walk(self.tree):
            self.judge(node)
        return self.injection, self.dynamic

    def flag(self, reason: str, critical: bool = False) -> None:
        target = self.injection if critical else self.dynamic
        if reason not in target:
            target.append(reason)

    def judge(self, node: nodes.Node) -> None:
        if not isinstance(node, _ALLOWED_NODES):
            self.flag(f"uses {type(node).__name__} ({_what(node)})")
            return
        if isinstance(node, nodes.Getattr):
            self.attribute(node.attr, "reads attribute")
        elif isinstance(node, nodes.Getitem):
            self.item(node)
        elif isinstance(node, nodes.Name):
            if node.name in _ENTRY_POINTS:
                self.flag(f"uses the global {node.name!r}, a template-injection entry point", critical=True)
        elif isinstance(node, nodes.Const) and isinstance(node.value, str) and _dunder(node.value):
            self.flag(f"contains the dunder string {node.value[:40]!r}", critical=True)
        elif isinstance(node, nodes.Filter):
            self.filter(node)
        elif isinstance(node, nodes.Test) and node.name not in _TESTS:
            self.flag(f"uses the unknown test {node.name!r}")
        elif isinstance(node, nodes.Call):
            self.call(node)
        elif isinstance(node, nodes.NSRef):
            self.attribute(node.attr, "sets namespace attribute")

    def attribute(self, name: str, verb: str) -> None:
        if _dunder(name) or name in _INTERNAL_ATTRS:
            self.flag(f"{verb} {name}", critical=True)
        elif name.startswith("_"):
            self.flag(f"{verb} {name} (an underscored name)")

    def item(self, node: nodes.Getitem) -> None:
        key = node.arg
        if isinstance(key, nodes.Const):
            if isinstance(key.value, str):
                self.attribute(key.value, "indexes")
            elif not isinstance(key.value, int):
                self.flag(f"indexes with a {type(key.value).__name__} constant")
        elif isinstance(key, nodes.Slice):
            for part in (key.start, key.stop, key.step):
                if part is not None and not self.is_int(part):
                    self.flag("slices with a computed bound")
        elif not self.is_int(key) and not self.is_table_lookup(node):
            self.flag(f"indexes with a computed key ({_what(key)}); a missing item falls back to getattr")

    def is_table_lookup(self, node: nodes.Getitem) -> bool:
        """`type_map[spec.type]` on a dict literal the template defines, whose
        result is only printed, tested or compared (Hermes-style tool templates),
        directly or through a variable used only so: even where the getattr
        fallback hits, nothing walks on from the result."""
        table = node.node
        if isinstance(table, nodes.Name):
            values = self.assigned.get(table.name)
            if not values or not all(isinstance(v, nodes.Dict) for v in values):
                return False
        elif not isinstance(table, nodes.Dict):
            return False
        return self.only_printed(node)

    def only_printed(self, node: nodes.Node, seen: frozenset[str] = frozenset()) -> bool:
        parent = self.parents.get(id(node))
        if isinstance(
            parent, (nodes.Output, nodes.Test, nodes.Compare, nodes.Operand, nodes.Concat, nodes.Not)
        ):
            return True
        if isinstance(parent, nodes.If) and parent.test is node:
            return True
        if isinstance(parent, (nodes.And, nodes.Or, nodes.CondExpr, nodes.BinExpr)) and node is not getattr(
            parent, "test", None
        ):
            return self.only_printed(parent, seen)  # `a or b` is a or b; `'x' + a` may be a's __radd__
        if isinstance(parent, nodes.Assign) and isinstance(parent.target, nodes.Name) and parent.node is node:
            name = parent.target.name
            if name in seen:
                return True
            uses = [n for n in self.tree.find_all(nodes.Name) if n.name == name and n.ctx == "load"]
            return all(self.only_printed(use, seen | {name}) for use in uses)
        return False

    def filter(self, node: nodes.Filter) -> None:
        if node.name == "attr":
            self.flag("uses the attr filter to read attributes by name")
            for arg in node.args:
                if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                    self.attribute(arg.value, "attr filter reads")
        elif node.name not in _FILTERS:
            self.flag(f"uses the unknown filter {node.name!r}")
        if node.name in _NAMING_FILTERS:
            for arg in [*node.args, *(k.value for k in node.kwargs)]:
                if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                    if arg.value == "attr":
                        self.flag(f"passes the attr filter to {node.name}")
                    self.attribute(arg.value, f"{node.name} filter names")
                elif not isinstance(arg, nodes.Const):
                    self.flag(f"{node.name} filter takes a computed argument ({_what(arg)})")

    def call(self, node: nodes.Call) -> None:
        func = node.node
        if isinstance(func, nodes.Name):
            if func.name not in _FUNCTIONS and func.name not in self.macros:
                self.flag(f"calls {func.name}(), which no standard loader provides")
        elif isinstance(func, nodes.Getattr):
            if func.attr not in _METHODS:
                self.flag(f"calls the method {func.attr}()")
        else:
            self.flag(f"calls the result of {_what(func)}")

    def is_int(self, node: nodes.Node, seen: frozenset[str] = frozenset()) -> bool:
        """Whether an expression can only be an integer (safe as an index)."""
        if isinstance(node, nodes.Const):
            return isinstance(node.value, int) and not isinstance(node.value, bool)
        if isinstance(node, (nodes.Neg, nodes.Pos)):
            return self.is_int(node.node, seen)
        if isinstance(node, (nodes.Add, nodes.Sub, nodes.Mul, nodes.FloorDiv, nodes.Mod)):
            return self.is_int(node.left, seen) and self.is_int(node.right, seen)
        if isinstance(node, nodes.CondExpr):
            return self.is_int(node.expr1, seen) and node.expr2 is not None and self.is_int(node.expr2, seen)
        if isinstance(node, nodes.Filter):
            return node.name in _INT_FILTERS
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            if node.node.name == "loop":
                return node.attr in _LOOP_INTS
            return self._name_is_int(f"{node.node.name}.{node.attr}", seen)
        if isinstance(node, nodes.Name):
            return self._name_is_int(node.name, seen)
        return False

    def _name_is_int(self, name: str, seen: frozenset[str]) -> bool:
        values = self.assigned.get(name)
        if not values:
            return False
        if name in seen:
            return True  # `set i = i + 1`: an integer if every other value is one
        return all(self.is_int(v, seen | {name}) for v in values)


def _assignments(tree: nodes.Template) -> dict[str, list[nodes.Node]]:
    """Every value a variable (or namespace attribute) is set to in the template;
    loop variables over range() count as integers."""
    found: dict[str, list[nodes.Node]] = {}
    for node in tree.find_all((nodes.Assign, nodes.For, nodes.Call)):
        if isinstance(node, nodes.Assign):
            target = node.target
            if isinstance(target, nodes.Name):
                found.setdefault(target.name, []).append(node.node)
            elif isinstance(target, nodes.NSRef):
                found.setdefault(f"{target.name}.{target.attr}", []).append(node.node)
            else:
                for name in target.find_all(nodes.Name):
                    found.setdefault(name.name, []).append(nodes.Const(None))  # unpacking: unknown
        elif isinstance(node, nodes.For):
            loop_target: nodes.Node = node.target
            names = (
                [loop_target]
                if isinstance(loop_target, nodes.Name)
                else list(loop_target.find_all(nodes.Name))
            )
            ranged = _calls(node.iter, "range")
            for name in names:
                value: nodes.Node = nodes.Const(0) if ranged and len(names) == 1 else nodes.Const(None)
                found.setdefault(name.name, []).append(value)
        elif isinstance(node, nodes.Call) and _calls(node, "namespace"):
            assigned = _namespace_target(tree, node)
            for kw in node.kwargs:
                found.setdefault(f"{assigned}.{kw.key}", []).append(kw.value)
    return found


def _calls(node: nodes.Node, function: str) -> bool:
    return isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == function


def _namespace_target(tree: nodes.Template, call: nodes.Call) -> str:
    for assign in tree.find_all(nodes.Assign):
        if assign.node is call and isinstance(assign.target, nodes.Name):
            return assign.target.name
    return "?"


def _walk(node: nodes.Node) -> Iterator[nodes.Node]:
    yield node
    for child in node.iter_child_nodes():
        yield from _walk(child)


def _what(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_what(node.node)}.{node.attr}"
    if isinstance(node, nodes.Filter):
        return f"...|{node.name}"
    return type(node).__name__
