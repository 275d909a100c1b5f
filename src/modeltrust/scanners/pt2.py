"""torch.export archives (`torch.export.save`, `.pt2`): a serialized graph
(`models/<name>.json`), raw weights and constants, and pickles.

What `torch.export.load` runs (torch 2.13, `torch/export/pt2_archive/_package.py`
and `torch/_export/serde/serialize.py`): the graph's operators are looked up in
torch's registry and checked by the verifier (a node calling `torch.os.system`
is refused), so the graph itself is not a way to run Python. But the loader
- evaluates every symbolic-shape string (`expr_str`) with `sympy.sympify`, which
  is `eval`;
- compiles `guards_code` into a Python function when `ep.module()` is built;
- unpickles weights and constants saved with `use_pickle` and the sample
  inputs with `torch.load` with `weights_only=False` (after a weights-only attempt),
  custom objects with torch's TorchScript pickler and opaque objects with
  `pickle.loads`.
So the JSON strings are judged against the grammar the exporter writes, every
pickled member is scanned, and the raw tensor payload is never read. The
pre-2.8 layout (`serialized_exported_program.json` and `serialized_*.pt`
beside a top-level `version`) is read the same way.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator

from ..findings import Location, Severity
from ..sources.ziparchive import ZipArchive, ZipMember
from .base import ScanContext

SCANNER = "pytorch-export"

_LEGACY_PROGRAM = "serialized_exported_program.json"
# Symbol names the exporter writes (s0, u3, ps1, zuf0...), numbers, operators.
_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_]\w*)|(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|'[\w.+-]*'|(?P<op>\*\*|//|[-+*/%(),<>=!&|~]))"
)
_SYMBOL = re.compile(r"[a-z]{1,4}\d+")
# sympy and torch.utils._sympy functions the deserializer's namespace holds,
# and sympy's own printed names for constants and relations.
_SYMPY_NAMES = frozenset(
    re.findall(
        r"\w+",
        """FloorDiv ModularIndexing Where PythonMod Mod CleanDiv CeilToInt FloorToInt CeilDiv LShift RShift
        IsNonOverlappingAndDenseIndicator TruncToFloat TruncToInt RoundToInt RoundDecimal ToFloat FloatTrueDiv
        IntTrueDiv FloatPow PowByNatural Identity OpaqueUnaryFn_sqrt OpaqueUnaryFn_exp OpaqueUnaryFn_log
        BitwiseFn_bitwise_and BitwiseFn_bitwise_or BitwiseFn_bitwise_xor Max Min Abs Eq Ne Lt Le Gt Ge And Or
        Not Piecewise ITE floor ceiling sqrt exp log oo zoo nan True False Integer Rational Float Symbol
        Pow Mul Add I pi E precision
        positive negative nonnegative nonpositive integer real finite infinite zero nonzero rational even odd
        commutative prime composite extended_real extended_positive extended_negative extended_nonnegative
        extended_nonpositive extended_nonzero""",
    )
)  # the last three lines: assumptions srepr writes as keywords (Symbol('s0', positive=True))
# What a guard may do: compare sizes, strides and offsets of the inputs
# (`L[...]`), with the arithmetic the exporter prints (`max(1, s // 2)`,
# sympy's functions, `math.floor`), in the namespace the guard function gets.
_GUARD_METHODS = frozenset({"size", "stride", "storage_offset", "dim", "numel"})
_GUARD_FUNCTIONS = frozenset({"max", "min", "abs", "int", "float", "round", "bool"}) | _SYMPY_NAMES
_MATH_FUNCTIONS = frozenset({"floor", "ceil", "trunc", "sqrt", "log", "log2", "exp", "inf", "pi"})
_DANGEROUS_TEXT = re.compile(r"__|\bimport\b|\b(?:eval|exec|open|compile|getattr|system|popen)\b")


def is_pt2_archive(names: list[str]) -> bool:
    """A `torch.export.save` archive: `archive_format` under the archive's folder,
    or the pre-2.8 layout with its program JSON at the top."""
    if _LEGACY_PROGRAM in names:
        return True
    return any(_relative(name) == "archive_format" for name in names)


def _relative(name: str) -> str:
    """The name below the archive's root folder (the reader strips it)."""
    return name.split("/", 1)[1] if "/" in name else name


def scan_pt2_archive(archive: ZipArchive, location: Location, ctx: ScanContext) -> None:
    from .archive import open_zip_member

    members = [m for m in archive.members if not m.is_dir]
    raw = _raw_payload(archive, members, location, ctx)
    for member in members:
        relative = _relative(member.name)
        if relative in raw:
            continue  # raw tensor bytes (torch.frombuffer), never unpickled
        reader = open_zip_member(archive, member, location, ctx)
        if reader is None:
            continue
        where = location.within(member.name)
        ctx.covered_by[str(where)] = SCANNER
        if _is_program(relative):
            data = _read_json(archive, member, where, ctx)
            if data is not None:
                _check_program(data, where, ctx)
        else:
            ctx.scan_member(reader, where, SCANNER)


def _is_program(relative: str) -> bool:
    """The loader parses every member under models/ as a program (it cuts the
    last five characters off as `.json` without checking them)."""
    return relative == _LEGACY_PROGRAM or (relative.startswith("models/") and not relative.endswith("/"))


def _read_json(archive: ZipArchive, member: ZipMember, where: Location, ctx: ScanContext) -> object | None:
    from .archive import open_zip_member

    limit = ctx.limits.max_config_bytes
    reader = open_zip_member(archive, member, where, ctx)
    if reader is None:
        return None
    if reader.size > limit:
        ctx.report(
            "scan-limit", where, f"{reader.size} bytes of export JSON, over the {limit}-byte limit", SCANNER
        )
        return None
    from .jsontop import MAX_CONTAINERS, too_many_containers

    raw = reader.read_at(0, limit)
    if too_many_containers(raw) is not None:
        message = f"export JSON holds over {MAX_CONTAINERS} objects and arrays; not parsed"
        ctx.report("scan-limit", where, message, SCANNER)
        return None
    try:
        parsed: object = json.loads(raw)
        return parsed
    except RecursionError:
        ctx.report("scan-limit", where, "export JSON nests too deeply to parse", SCANNER)
    except (UnicodeDecodeError, ValueError) as exc:
        ctx.report("scan-malformed", where, f"export JSON does not parse: {exc}", SCANNER)
    return None


def _raw_payload(
    archive: ZipArchive, members: list[ZipMember], location: Location, ctx: ScanContext
) -> set[str]:
    """Weights and constants the payload configs say are raw bytes (`use_pickle`
    false): the loader wraps them with torch.frombuffer and never unpickles them."""
    raw: set[str] = set()
    pickled: set[str] = set()  # named by another config as a pickle: walked whatever this one says
    for member in members:
        relative = _relative(member.name)
        folder, _, base = relative.rpartition("/")
        if folder not in ("data/weights", "data/constants") or not base.endswith("_config.json"):
            continue
        where = location.within(member.name)
        ctx.covered_by[str(where)] = SCANNER
        config = _read_json(archive, member, where, ctx)
        entries = config.get("config") if isinstance(config, dict) else None
        if not isinstance(entries, dict):
            continue
        for entry in entries.values():
            path = entry.get("path_name") if isinstance(entry, dict) else None
            if not isinstance(path, str):
                continue
            plain = "/" not in path and path.startswith(("weight_", "tensor_"))
            (raw if plain and entry.get("use_pickle") is False else pickled).add(f"{folder}/{path}")
    return raw - pickled


def _check_program(data: object, where: Location, ctx: ScanContext) -> None:
    for kind, text in _strings_run(data):
        verdict = _judge(kind, text)
        if verdict is None:
            continue
        what = (
            "symbolic-shape expression, which torch.export.load evaluates with sympy.sympify (eval)"
            if kind == "expression"
            else "guard, which ExportedProgram.module() compiles into Python and runs on every call"
        )
        severity = Severity.CRITICAL if _DANGEROUS_TEXT.search(text) else None
        message = f"{verdict}: {text[:200]!r} is a {what}"
        ctx.report("pt2-python-code", where, message, SCANNER, subject=text[:200], severity=severity)


def _strings_run(data: object) -> Iterator[tuple[str, str]]:
    """Every string the loader hands to sympify or compiles as a guard."""
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr_str" and isinstance(value, str):
                    yield "expression", value
                elif key == "guards_code" and isinstance(value, list):
                    yield from (("guard", g) for g in value if isinstance(g, str))
                elif key == "range_constraints" and isinstance(value, dict):
                    yield from (("expression", k) for k in value)  # symbol names, sympified too
                    stack.append(value)
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)


def _judge(kind: str, text: str) -> str | None:
    """None when the string is what the exporter writes, else why it is not."""
    if kind == "expression":
        return None if _is_sympy_expression(text) else "not a plain symbolic expression"
    return None if _is_plain_guard(text) else "not a plain shape guard"


def _is_sympy_expression(text: str) -> bool:
    if len(text) > 4096:
        return False
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            return not text[pos:].strip()
        name = match.group("name")
        if name is not None and not (_SYMBOL.fullmatch(name) or name in _SYMPY_NAMES):
            return False
        pos = match.end()
    return True


def _is_plain_guard(text: str) -> bool:
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            named = isinstance(func, ast.Name) and func.id in _GUARD_FUNCTIONS
            if not (named or isinstance(func, ast.Attribute)) or node.keywords:
                return False  # attribute calls are judged as attributes below
        elif isinstance(node, ast.Attribute):
            on_math = isinstance(node.value, ast.Name) and node.value.id == "math"
            if node.attr not in (_MATH_FUNCTIONS if on_math else _GUARD_METHODS):
                return False
        elif isinstance(node, ast.Name):
            if node.id not in ("L", "math", "inf") and node.id not in _GUARD_FUNCTIONS:
                return False
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, str) and node.value.startswith("_"):
                return False
        elif not isinstance(
            node,
            (ast.Expression, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.Subscript, ast.Load,
             ast.cmpop, ast.boolop, ast.unaryop, ast.operator),
        ):  # fmt: skip
            return False
    return True
