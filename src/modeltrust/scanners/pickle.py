"""The pickle opcode engine: a symbolic walk of a pickle stream, never a load.

The walker keeps a model of the unpickler's stack and memo in which values
are strings, numbers, tuples, imported names (`Ref`) and call results
(`Call`), so that it can tell *what* STACK_GLOBAL imports when its operands
come from the memo, *what* REDUCE calls, and whether a callable was built at
run time. Nothing from the stream is imported, called or evaluated.

The stream is read through a `ByteReader` in chunks: memory stays flat for
multi-GB joblib files and legacy checkpoints, and payloads that are not
needed (array bytes, long byte strings) are skipped by offset, never read.

Speed matters (checkpoints hold millions of opcodes), so `_walk` is one loop
with the frequent opcodes first, written so that mypyc can compile this
module to C (see setup.py); the same source runs interpreted where no
compiler is available.
"""

from __future__ import annotations

import re
import struct
import sys
from collections.abc import Callable

from ..findings import Finding, Location, Severity
from ..reader import ByteReader, BytesReader
from ..rules import AllowKind, ImportVerdict, RuleSet, Verdict
from . import pickler_helpers as helpers

SCANNER = "pickle"

# Containers keep at most this many items: enough to explain a payload's
# arguments, bounded for a checkpoint's million-entry state dict.
KEEP_ITEMS = 64
# Strings longer than this are not decoded (a module name never is).
KEEP_TEXT = 4096
# Line arguments (GLOBAL, INST, protocol 0 values) have no length limit in
# _pickle: a line longer than the chunk makes the walk read a larger one, up to
# this many bytes (beyond it, the rest is reported unanalysed).
MAX_LINE = 32 << 20
# Nested pickles inside pickles (bytes handed to loads) are followed this deep.
MAX_NESTING = 8
# The walk reads this much at a time; an opcode that starts within MARGIN of a
# chunk's end is re-read at the start of the next chunk, so every opcode's
# fixed-size arguments and kept text are inside the chunk (a line that is not
# makes the walk re-read a chunk that holds it).
CHUNK = 16 << 20
MIN_CHUNK = 64 << 10
MARGIN = KEEP_TEXT + 64
# Budgets, checked every WINDOW bytes of opcodes: values the model holds (stack,
# marks, memo), open MARKs, bytes of nested pickles and folded payloads per
# file, findings per rule and distinct names per stream.
WINDOW = 256 << 10
MAX_VALUES = 1_000_000
MAX_MARKS = 100_000
MAX_NESTED_BYTES = 256 << 20
MAX_FOLD_DEPTH = 64
MAX_FINDINGS_PER_RULE = 100
MAX_NAMES = 50_000


# Little-endian integers by shifts: native arithmetic once compiled.
def _u16(data: bytes, pos: int) -> int:
    return data[pos] | data[pos + 1] << 8


def _u32(data: bytes, pos: int) -> int:
    return data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16 | data[pos + 3] << 24


def _i32(data: bytes, pos: int) -> int:
    value = _u32(data, pos)
    return value - (1 << 32) if value & 0x80000000 else value


def _u64(data: bytes, pos: int) -> int:
    return _u32(data, pos) | _u32(data, pos + 4) << 32


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(text)} chars)"


class Opaque:
    """A value the walker does not model (floats, huge strings, buffers)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<{self.kind}>"


class LongText(Opaque):
    """A str longer than KEEP_TEXT, kept as its UTF-8 window on the reader (so a
    constant fold such as `_codecs.encode(text, 'latin1')`, how protocols 0-2
    store bytes, can read it back within its budget) or with no window."""

    def __init__(
        self, reader: ByteReader | None = None, offset: int = 0, length: int = 0, escaped: bool = False
    ) -> None:
        super().__init__("long text")
        self.reader = reader
        self.offset = offset
        self.length = length
        self.escaped = escaped  # UNICODE's raw-unicode-escape line, not UTF-8

    def text(self) -> str | None:
        if self.reader is None:
            return None
        raw = self.reader.read_at(self.offset, self.length)
        return str(raw, "raw-unicode-escape") if self.escaped else raw.decode("utf-8", "surrogatepass")


FLOAT = Opaque("float")
LONG_TEXT = LongText()
LONG_INT = Opaque("long int")
BUFFER = Opaque("out-of-band buffer")


class Ref:
    """An imported object: what GLOBAL, STACK_GLOBAL, INST or EXT* resolved to."""

    def __init__(self, module: str, name: str, offset: int, verdict: ImportVerdict) -> None:
        self.module = module
        self.name = name
        self.offset = offset
        self.verdict = verdict
        # An allowed constructor, not a loader: calling it needs no further look.
        allowed = verdict.verdict is Verdict.ALLOWED
        self.plain = allowed and verdict.kind is AllowKind.CONSTRUCTOR and (module, name) not in _NOT_PLAIN
        # Arguments it calls (allowed callables only), and whether a call whose
        # called arguments are all plain needs no further look (no loader, no getattr).
        self.calls: tuple[int, ...] = _called_positions(module, name, verdict) if allowed else ()
        self.quick = (
            allowed
            and bool(self.calls)
            and verdict.kind is not AllowKind.IMPORT_ONLY
            and (module, name) not in _LOADERS
            and (module, name) not in _GETATTR
        )

    @property
    def dotted(self) -> str:
        """The name for messages (bounded: a stream can spell names of megabytes)."""
        return _short(f"{self.module}.{self.name}")

    def __repr__(self) -> str:
        return self.dotted


class Call:
    """The result of REDUCE, NEWOBJ, OBJ or INST: func(*args), and its BUILD state."""

    def __init__(self, func: object, args: object, offset: int) -> None:
        self.func = func
        self.args = args
        self.offset = offset
        self.state: object = None
        # The first key SETITEM(S) wrote into this object that, as BUILD state,
        # would plant a method the unpickler calls later ("" if none).
        self.planted = ""

    def __repr__(self) -> str:
        return f"{describe(self.func)}(...)"


class BytesValue:
    """Bytes in the stream, kept as an (offset, length) window on the reader."""

    def __init__(self, reader: ByteReader, offset: int, length: int, text: bool = False) -> None:
        self.reader = reader
        self.offset = offset
        self.length = length
        # A Python 2 str (STRING/BINSTRING): a str under some loaders' encodings.
        self.text = text

    def tobytes(self) -> bytes:
        return self.reader.read_at(self.offset, self.length)

    def __repr__(self) -> str:
        return f"<{self.length} bytes>"


class Persistent:
    """A persistent id, resolved by the loading application (torch storages)."""

    def __init__(self, pid: object) -> None:
        self.pid = pid

    def __repr__(self) -> str:
        return f"persistent({describe(self.pid)})"


class Malformed(Exception):
    """Where _pickle raises too: the load ends here, nothing after it runs.
    `truncated`: the data ended (a bound of ours, or the file's end)."""

    def __init__(self, message: str, offset: int, truncated: bool = False) -> None:
        super().__init__(message)
        self.offset = offset
        self.truncated = truncated


class WalkLimit(Exception):
    """A budget of the walk ran out where the real loader would go on."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class NotModelled(WalkLimit):
    """The walk cannot follow the stream where the loader would go on (input
    the loader accepts but this model does not follow): the rest runs unanalysed."""


class NeedMore(Exception):
    """A line argument runs past the chunk: re-read a larger one."""


def describe(value: object, depth: int = 0) -> str:
    """A short, bounded description of a modelled value for messages."""
    if depth > 3:
        return "..."
    if isinstance(value, Ref):
        dotted = value.dotted
        return dotted if len(dotted) <= 120 else dotted[:117] + "..."
    if isinstance(value, Call):
        return f"{describe(value.func, depth + 1)}({describe(value.args, depth + 1)})"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, tuple):
        inner = ", ".join(describe(v, depth + 1) for v in value[:6])
        return inner + (", ..." if len(value) > 6 else "")
    if isinstance(value, list):
        return "[" + ", ".join(describe(v, depth + 1) for v in value[:6]) + "]"
    if isinstance(value, dict):
        return "{...}"
    if isinstance(value, Persistent):  # (its repr would start again at depth 0)
        return f"persistent({describe(value.pid, depth + 1)})"
    return repr(value)[:60]


# --- results ---------------------------------------------------------------------


class PickleStats:
    def __init__(self) -> None:
        self.pickles = 0
        # Regions a container hook skipped (joblib array bytes between opcodes).
        self.skipped_regions = 0
        # Calls of helpers the walker reads as what they do (getattr of an
        # allowed object, dill's _load_type/_eval_repr/_create_array,
        # cloudpickle's _builtin_type):
        # (module, name) -> [calls folded, calls or uses not folded]. A denied
        # helper whose every call was folded is not reported itself.
        self.folded: dict[tuple[str, str], list[int]] = {}
        # Denied imports, reported by finish() with how they were used:
        # (module, name) -> [import opcode, import offset, call text or ""].
        self.denied: dict[tuple[str, str], list[object]] = {}
        # (module, name) -> [count, offset of the first import]
        self.imports: dict[tuple[str, str], list[int]] = {}
        # Helpers not on the allowlist that a rule accepted for how they were
        # called (Cython __pyx_unpickle_X(X, ...), sklearn newObj(X)).
        self.vouched: set[tuple[str, str]] = set()
        # Distinct unknown names not recorded once MAX_NAMES were.
        self.names_dropped = 0


class SharedBudget:
    """Bounds shared by a stream and every pickle nested in it."""

    def __init__(self) -> None:
        self.nested_bytes = MAX_NESTED_BYTES
        # (length, hash) of nested payloads already walked: a memoised payload
        # handed to loads a million times is walked once.
        self.seen: set[tuple[int, int]] = set()


# A container's hook for BUILD: (target, state, absolute offset after the
# opcode) -> absolute offset to resume at (after out-of-band data), or None.
BuildHook = Callable[[Call, object, int], "int | None"]


class PickleContext:
    """Everything one walk needs besides the position: the reader, the rules,
    where findings go, and hooks for the container around the stream.

    A plain class rather than a dataclass: this module is compiled by mypyc."""

    def __init__(
        self,
        rules: RuleSet,
        location: Location,
        findings: list[Finding],
        reader: ByteReader,
        expect_persistent_ids: bool = False,
        on_build: BuildHook | None = None,
        scan_bytes: Callable[[bytes, Location], None] | None = None,
        nested_depth: int = 0,
        max_bytes: int = 1 << 30,
        chunk_size: int = CHUNK,
        torchscript: bool = False,
        shared: SharedBudget | None = None,
        check_time: Callable[[], None] | None = None,
        importable_names_only: bool = False,
    ) -> None:
        self.rules = rules
        # TorchScript archives name their classes `__torch__.*`; torch.jit.load
        # compiles them from the archive's own code/ (scanned by torchscript-code),
        # and no Python loader can import them.
        self.classify: Callable[[str, str], ImportVerdict] = (
            _torchscript_classifier(rules) if torchscript else rules.classify
        )
        self.location = location
        self.findings = findings
        self.reader = reader
        self.expect_persistent_ids = expect_persistent_ids
        self.on_build = on_build
        # Scans bytes that a call loads as a whole file (torch.load of bytes).
        self.scan_bytes = scan_bytes
        self.nested_depth = nested_depth
        # Bound on the pickle bytes walked (a time bound).
        self.max_bytes = max_bytes
        self.chunk_size = chunk_size
        self.stats = PickleStats()
        # The modelled value of the last pickle walked (its top of stack at STOP).
        self.result: object = None
        self.reported: set[tuple[str, str, str]] = set()
        self.shared = shared if shared is not None else SharedBudget()
        # The file's time budget: raises (the engine's limit) when it is spent.
        self.check_time = check_time
        # A file that is not a pickle by format (text walked as one): a GLOBAL
        # or INST module line that is no dotted name of identifiers stops the
        # walk, as the loader stops in find_class (ModuleNotFoundError).
        self.importable_names_only = importable_names_only
        # Findings per rule id, and how many past MAX_FINDINGS_PER_RULE were not listed.
        self.counts: dict[str, int] = {}
        self.suppressed: dict[str, int] = {}

    def report(
        self,
        rule_id: str,
        offset: int | None,
        message: str,
        subject: str = "",
        severity: Severity | None = None,
        once_key: str | None = None,
    ) -> None:
        """Add a finding; with `once_key`, only the first of its kind per stream.
        Past MAX_FINDINGS_PER_RULE of one rule, findings are counted, not listed."""
        count = self.counts.get(rule_id, 0)
        if count >= MAX_FINDINGS_PER_RULE:
            self.suppressed[rule_id] = self.suppressed.get(rule_id, 0) + 1
            return
        if once_key is not None:
            key = (rule_id, subject, once_key)
            if key in self.reported:
                return
            self.reported.add(key)
        self.counts[rule_id] = count + 1
        rule = self.rules.rule(rule_id)
        self.findings.append(
            Finding(
                rule_id=rule.id,
                severity=rule.severity if severity is None else severity,
                location=self.location.at(offset),
                message=message,
                subject=subject,
                scanner=SCANNER,
                references=rule.references,
            )
        )


# --- import and call analysis -------------------------------------------------------

_TORCHSCRIPT_CLASS = ImportVerdict(
    Verdict.ALLOWED,
    None,
    "TorchScript class, compiled by torch.jit.load from the archive's own code/ (which is scanned)",
    AllowKind.CONSTRUCTOR,
)


def _torchscript_classifier(rules: RuleSet) -> Callable[[str, str], ImportVerdict]:
    def classify(module: str, name: str) -> ImportVerdict:
        verdict = rules.classify(module, name)
        if verdict.verdict is Verdict.UNKNOWN and (module == "__torch__" or module.startswith("__torch__.")):
            return _TORCHSCRIPT_CLASS
        return verdict

    return classify


# Callables that deserialize their bytes argument: the bytes are scanned as a
# nested pickle. The call itself is still judged by the rules.
_PICKLE_LOADERS = {
    ("pickle", "loads"),
    ("_pickle", "loads"),
    ("pickle", "_loads"),
    ("cPickle", "loads"),
    ("dill", "loads"),
    ("dill._dill", "loads"),
    ("cloudpickle", "loads"),
    ("cloudpickle.cloudpickle", "loads"),
    ("numpy", "loads"),
    ("joblib", "loads"),
}
_TORCH_BYTES_LOADERS = {("torch.storage", "_load_from_bytes")}
_CODE_LOADERS = {("marshal", "loads"), ("dill._dill", "_create_code"), ("types", "CodeType")}
_LOADERS = _PICKLE_LOADERS | _TORCH_BYTES_LOADERS | _CODE_LOADERS
# copyreg._reconstructor(cls, base, state) runs base.__init__(obj, state)
# unless base is object: base is called, though it appears only as an argument.
_RECONSTRUCTOR = ("copyreg", "_reconstructor")
# Allowed callables that call one of their arguments: (module, name) -> index.
# copyreg._reconstructor(cls, base, state) runs base.__init__(obj, state) unless
# base is object; torch's _rebuild_from_type(_v2)(func, type, args, ...) runs func(*args).
_CALLS_ARGUMENT: dict[tuple[str, str], tuple[int, ...]] = {
    _RECONSTRUCTOR: (1,),
    # copyreg.__newobj__(cls, *args) is cls.__new__(cls, *args).
    ("copyreg", "__newobj__"): (0,),
    ("copyreg", "__newobj_ex__"): (0,),
    # _rebuild_from_type_v2(func, new_type, args, state) runs func(*args) and
    # new_type's __setstate__.
    ("torch._tensor", "_rebuild_from_type_v2"): (0, 1),
    ("torch._tensor", "_rebuild_from_type"): (0,),
    # numpy's generator helpers call their bit_generator_ctor argument, and
    # __bit_generator_ctor instantiates a class it is given.
    ("numpy.random._pickle", "__generator_ctor"): (1,),
    ("numpy.random._pickle", "__randomstate_ctor"): (1,),
    ("numpy.random._pickle", "__bit_generator_ctor"): (0,),
}
_NOT_PLAIN = _LOADERS | set(_CALLS_ARGUMENT)


def _as_arguments(args: object, offset: int, opcode: str) -> object:
    """The arguments a call gets. C `_pickle` wants a tuple, but the pure-Python
    unpickler (joblib always, pandas as a fallback) calls func(*args) with any
    iterable: a list is read as its items; other iterables stay as they are
    (judged as arguments the walk cannot line up); only non-iterables stop."""
    if isinstance(args, list):
        return tuple(args)
    if isinstance(args, (str, dict, BytesValue, LongText)) or _may_be_callable(args):
        return args
    raise Malformed(
        f"{opcode} arguments are a {type(args).__name__} value, which no unpickler unpacks", offset
    )


def _may_be_callable(value: object) -> bool:
    """Imported names, call results and persistent objects may be callables;
    the literals the stream builds cannot."""
    return isinstance(value, (Ref, Call, Persistent))


def _called_positions(module: str, name: str, verdict: ImportVerdict) -> tuple[int, ...]:
    """Arguments an allowed callable calls: what its allow entry declares, and
    what the walker knows of pickle's own helpers (a user's allowlist that
    forgets to declare them opens no hole)."""
    if verdict.verdict is not Verdict.ALLOWED:
        return ()
    known = _CALLS_ARGUMENT.get((module, name))
    if known is None:
        return verdict.calls
    return tuple(sorted(set(known) | set(verdict.calls)))


def _settled(func: Ref, args: object) -> bool:
    """Calling `func` with `args` needs no further look: an allowed constructor,
    or an allowed helper whose called arguments are plain."""
    return func.plain or (func.quick and _plain_arguments(func, args))


def _plain_arguments(func: Ref, args: object) -> bool:
    """The arguments `func` calls are allowed constructors or literals."""
    if type(args) is not tuple:
        return False
    n = len(args)
    for index in func.calls:
        if index < n:
            called = args[index]
            if isinstance(called, Ref):
                if not called.plain:
                    return False
            elif _may_be_callable(called):
                return False
    return True


def _judge_import(ctx: PickleContext, ref: Ref, opcode: str) -> None:
    """Report denied imports at once; unknown ones wait to see if they are called."""
    key = (ref.module, ref.name)
    seen = ctx.stats.imports.get(key)
    if seen is not None:
        seen[0] += 1
    elif len(ctx.stats.imports) < MAX_NAMES:
        ctx.stats.imports[key] = [1, ref.offset]
    elif ref.verdict.verdict is Verdict.UNKNOWN:
        ctx.stats.names_dropped += 1
    denied = ctx.stats.denied
    if ref.verdict.verdict is Verdict.DENIED and (key in denied or len(denied) < MAX_NAMES):
        denied.setdefault(key, [opcode, ref.offset, ""])


def _judge_call(
    ctx: PickleContext, func: object, args: object, offset: int, opcode: str, creates: bool = False
) -> None:
    """Judge calling `func`; `creates` says the unpickler only instantiates it
    (NEWOBJ or copyreg's rebuilders run `cls.__new__`, not `cls(...)`)."""
    if isinstance(func, Ref):
        verdict = func.verdict.verdict
        if (func.module, func.name) in _FOLDED_HELPERS:  # a call that was not folded
            _count_fold(ctx, (func.module, func.name), False)
        denied = ctx.stats.denied.get((func.module, func.name))
        if denied is not None and not denied[2]:
            denied[2] = f"{opcode} calls it at @{offset} with ({describe(args)})"
        if verdict is Verdict.UNKNOWN:
            ctx.report(
                "pickle-unknown-call",
                offset,
                f"{opcode} calls {func.dotted}, which is not on the allowlist, with ({describe(args)})",
                subject=func.dotted,
                once_key="call",
            )
        elif func.verdict.kind is AllowKind.IMPORT_ONLY:
            ctx.report(
                "pickle-unknown-call",
                offset,
                f"{opcode} calls {func.dotted}, which the allowlist admits only as a reference "
                f"(import-only), with ({describe(args)})",
                subject=func.dotted,
                once_key="call",
            )
        elif func.verdict.kind is AllowKind.NEW_ONLY and not creates:
            ctx.report(
                "pickle-unknown-call",
                offset,
                f"{opcode} calls {func.dotted}, which the allowlist admits only as a class the "
                "unpickler instantiates without calling (new-only: NEWOBJ, copyreg.__newobj__), "
                f"with ({describe(args)})",
                subject=func.dotted,
                once_key="call",
            )
        return
    if isinstance(func, Call):
        ctx.report(
            "pickle-dynamic-callable",
            offset,
            f"{opcode} calls the result of {describe(func)}: the callable is built while loading",
            subject=describe(func.func),
        )
        return
    ctx.report(
        "pickle-dynamic-callable",
        offset,
        f"{opcode} calls a {type(func).__name__} value ({describe(func)}), not an imported name",
        subject=describe(func),
    )


# --- constant folding of bytes arguments, for nested payloads ------------------------


_B64 = {("base64", "b64decode"), ("base64", "standard_b64decode")}
_B64_URL = ("base64", "urlsafe_b64decode")
_HEX = {("binascii", "unhexlify"), ("binascii", "a2b_hex"), ("builtins", "bytes.fromhex")}
_ZLIB = ("zlib", "decompress")
_ENCODE = {("_codecs", "encode"), ("codecs", "encode")}
_FOLDABLE = _B64 | _HEX | _ENCODE | {_B64_URL, _ZLIB}


def _fold_bytes(value: object, budget: int) -> bytes | None:
    """The bytes a value evaluates to, where that is a chain of pure, bounded
    transforms (base64/hex/zlib of a constant). Iterative: a chain as long as
    the stream allows costs no recursion."""
    chain: list[tuple[str, str]] = []
    leaf: object = value
    while isinstance(leaf, Call) and isinstance(leaf.func, Ref):
        name = (leaf.func.module, leaf.func.name)
        args = leaf.args
        if name not in _FOLDABLE or type(args) is not tuple or not args or len(chain) >= MAX_FOLD_DEPTH:
            return None
        if name in _ENCODE:
            encoding = args[1] if len(args) > 1 and isinstance(args[1], str) else "utf-8"
            if not isinstance(args[0], (str, LongText)) or encoding.replace("-", "").lower() not in {
                "latin1",
                "latin_1",
                "iso88591",
            }:
                return None
            chain.append(name)
            leaf = args[0]
            break
        chain.append(name)
        leaf = args[0]
    data: bytes | str
    if isinstance(leaf, BytesValue):
        if leaf.length > budget:
            return None
        data = leaf.tobytes()
    elif isinstance(leaf, str) and chain:
        data = leaf
    elif isinstance(leaf, LongText) and chain and leaf.length <= budget:
        text = leaf.text()
        if text is None:
            return None
        data = text
    else:
        return None
    for name in reversed(chain):
        folded = _apply_fold(name, data, budget)
        if folded is None:
            return None
        data = folded
    return data if isinstance(data, bytes) else None


def _apply_fold(name: tuple[str, str], data: bytes | str, budget: int) -> bytes | None:
    import base64
    import binascii
    import zlib

    try:
        if name in _ENCODE:
            return data.encode("latin-1") if isinstance(data, str) else None
        if name in _B64:
            return base64.b64decode(data)
        if name == _B64_URL:
            return base64.urlsafe_b64decode(data)
        if name == ("builtins", "bytes.fromhex"):
            return bytes.fromhex(data) if isinstance(data, str) else None
        if name in _HEX:
            return binascii.unhexlify(data)
        if name == _ZLIB and isinstance(data, bytes):
            return zlib.decompressobj().decompress(data, budget)
    except (ValueError, TypeError, UnicodeError, zlib.error):  # binascii.Error is a ValueError
        return None
    return None


def _inspect_loader_call(ctx: PickleContext, func: Ref, args: object, offset: int) -> None:
    """Follow bytes handed to a loader: scan nested pickles, flag code objects."""
    key = (func.module, func.name)
    if key not in _LOADERS:
        return
    if type(args) is not tuple or not args:
        return
    payload = _fold_bytes(args[0], min(64 << 20, max(ctx.shared.nested_bytes, 0)))
    if payload is not None:
        ctx.shared.nested_bytes -= len(payload)
    if key in _CODE_LOADERS:
        detail = f"{len(payload)} bytes of" if payload is not None else "a computed"
        ctx.report(
            "pickle-nested-code",
            offset,
            f"REDUCE passes {detail} marshalled code to {func.dotted}",
            subject=func.dotted,
        )
        return
    if payload is None:
        if key in _TORCH_BYTES_LOADERS:
            # Allowed only because its bytes are scanned; computed bytes are not.
            ctx.report(
                "pickle-dynamic-callable",
                offset,
                f"{func.dotted} loads bytes computed while loading ({describe(args[0])}), "
                "which cannot be scanned",
                subject=func.dotted,
            )
        return
    if ctx.nested_depth >= MAX_NESTING or ctx.shared.nested_bytes < 0:
        too_deep = ctx.nested_depth >= MAX_NESTING
        what = f"deeper than {MAX_NESTING} levels" if too_deep else "past the byte budget"
        ctx.report(
            "pickle-opcode-limit",
            offset,
            f"bytes passed to {func.dotted} are a nested pickle {what}: not analysed",
            func.dotted,
            once_key="nesting",
        )
        return
    seen = (len(payload), hash(payload))
    if seen in ctx.shared.seen:
        return  # walked already, findings reported there
    ctx.shared.seen.add(seen)
    nested_location = ctx.location.within(f"<nested pickle passed to {func.dotted} @{offset}>")
    if key in _TORCH_BYTES_LOADERS and ctx.scan_bytes is not None:
        ctx.scan_bytes(payload, nested_location)
        return
    nested = PickleContext(
        rules=ctx.rules,
        location=nested_location,
        findings=ctx.findings,
        reader=BytesReader(payload),
        nested_depth=ctx.nested_depth + 1,
        max_bytes=ctx.max_bytes,
        scan_bytes=ctx.scan_bytes,
        shared=ctx.shared,
        check_time=ctx.check_time,
    )
    scan_pickle_stream(nested, 0, len(payload))
    finish(nested)


# --- line-argument decoding (protocol 0 opcodes) -------------------------------------


def _decode_string_literal(raw: bytes, offset: int) -> str | BytesValue:
    """STRING's argument: a quoted Python 2 str literal with escapes."""
    if len(raw) < 2 or raw[0] != raw[-1] or raw[:1] not in (b"'", b'"'):
        raise Malformed("STRING argument is not quoted", offset)
    import codecs

    value = codecs.escape_decode(raw[1:-1])[0]
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        return BytesValue(BytesReader(value), 0, len(value), text=True)


# _pickle reads a line into a C string: parsing stops at an embedded NUL.
def _c_string(line: bytes) -> bytes:
    nul = line.find(b"\0")
    return line if nul < 0 else line[:nul]


_C_SPACE = b" \t\n\v\f\r"
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_LONG_MIN = -(1 << 63)
_LONG_MAX = (1 << 63) - 1


def _strtol0(text: bytes) -> tuple[int, int] | None:
    """C strtol(text, &end, 0): (value, end index), or None when no digits
    were read or the value overflows a C long (then _pickle falls back)."""
    i, n = 0, len(text)
    while i < n and text[i] in _C_SPACE:
        i += 1
    negative = False
    if i < n and text[i] in b"+-":
        negative = text[i] == 0x2D
        i += 1
    base = 10
    digits = b"0123456789"
    if i < n and text[i] == 0x30:  # '0'
        if i + 2 < n and text[i + 1] in b"xX" and text[i + 2] in _HEX_DIGITS:
            base, digits, i = 16, _HEX_DIGITS, i + 2
        else:
            base, digits = 8, b"01234567"
    start = i
    while i < n and text[i] in digits:
        i += 1
    if i == start:
        return None
    value = int(text[start:i], base)
    value = -value if negative else value
    if not _LONG_MIN <= value <= _LONG_MAX:
        return None
    return value, i


def _pylong(text: bytes, base: int, offset: int) -> int:
    """PyLong_FromString(text, NULL, base): int() of bytes is that function."""
    try:
        return int(text, base)
    except ValueError:
        raise Malformed(f"bad integer literal {text[:20]!r}", offset) from None


def _decode_int_line(raw: bytes, offset: int) -> int | bool:
    """INT as the C `_pickle` reads it (strtol in base 0, so `I0x1` and octal
    `I010` load; then int() of the C string) or, failing that, as the pure-Python
    `pickle._Unpickler` (which joblib always uses) reads it: int(line, 0). The
    walk stops only where both raise."""
    if not raw:
        raise Malformed("INT with an empty line", offset)
    text = _c_string(raw)
    # strtol that reads no digit leaves its end at the start: fine for _pickle
    # if that is the NUL ending the C string (the value is then 0).
    parsed = _strtol0(text) if text else (0, 0)
    if parsed is not None and parsed[1] == len(text):
        value = parsed[0]
        if len(raw) == 2 and value in (0, 1):
            return value == 1
        return value
    try:
        return int(text, 0)
    except ValueError:
        return _pylong(raw, 0, offset)


def _decode_long_line(raw: bytes, offset: int) -> int:
    """LONG as load_long: one trailing 'L' dropped, then int() in base 0."""
    if not raw:
        raise Malformed("LONG with an empty line", offset)
    if raw[-1:] == b"L":
        raw = raw[:-1]
    try:
        return int(_c_string(raw), 0)  # C
    except ValueError:
        return _pylong(raw, 0, offset)  # pure Python


_FLOAT_TEXT = re.compile(
    rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE
)


def _check_float_line(raw: bytes, offset: int) -> None:
    """FLOAT: C `_pickle` needs PyOS_string_to_double to read the whole C
    string without overflow; the pure-Python unpickler takes float(line)
    (spaces, underscores, overflow to inf). It stops only where both raise."""
    text = _c_string(raw)
    if raw and _FLOAT_TEXT.fullmatch(text) is not None:
        numeric = text.lstrip(b"+-")[:1] in b"0123456789."
        if not numeric or float(text) not in (float("inf"), float("-inf")):
            return
    try:
        float(raw)
    except ValueError:
        raise Malformed(f"bad float literal {text[:20]!r}", offset) from None


def _memo_key(raw: bytes, offset: int, put: bool) -> int:
    """GET/PUT's line: int() in base 10 of the C string (C) or of the line
    (pure Python, whose memo is a dict: no upper bound); PUT refuses negatives."""
    if not raw:
        raise Malformed("memo index line is empty", offset)
    try:
        key = int(_c_string(raw), 10)
    except ValueError:
        key = _pylong(raw, 10, offset)
    if put and key < 0:
        raise Malformed("negative PUT argument", offset)
    return key


def _decode_long_bytes(raw: bytes) -> int:
    return int.from_bytes(raw, "little", signed=True)


# --- the walk ------------------------------------------------------------------------


# --- the walk ------------------------------------------------------------------------


class WalkState:
    """The unpickler model of one pickle, carried across chunk boundaries."""

    def __init__(self) -> None:
        self.stack: list[object] = []
        self.metastack: list[list[object]] = []
        self.memo: dict[int, object] = {}
        self.done = False
        # Bytes the next chunk must hold (a line ran past the last one).
        self.need = 0


# torch.load's legacy path (any file that is not a zip) reads a pickle that must
# be this number, then four more pickles (protocol version, system info, the
# object, storage keys), each from wherever the last one stopped, whatever its
# first byte looks like.
TORCH_MAGIC = 0x1950A86A20F9469CFC6C
TORCH_LEGACY_PICKLES = 5


def scan_pickle_stream(ctx: PickleContext, start: int, end: int, max_pickles: int = 0) -> int:
    """Walk every pickle in ctx.reader from `start` until `end` or non-pickle
    data (or after `max_pickles`, if set), reporting into ctx. Returns where
    analysis stopped. Offsets in findings are offsets in the reader."""
    bound = min(end, start + ctx.max_bytes)
    pos = start
    walked = 0
    # Pickles torch's legacy loader still reads after the first one, and whether
    # the first was certainly its magic number (else a stop there is no finding).
    following = 0
    certain = False
    while pos < end:
        if pos > start and not following and not _looks_like_pickle_start(ctx.reader.read_at(pos, 2)):
            _report_trailing(ctx, pos, end)
            return pos
        if pos >= bound:
            _report_bound(ctx, bound, end - start)
            return pos
        try:
            pos = walk_pickle(ctx, pos, bound)
        except Malformed as exc:
            if exc.truncated and bound < end:
                _report_bound(ctx, bound, end - start)
            elif following and not certain:
                _report_trailing(ctx, pos, end)  # what it ran is reported; where it stops is not
            else:
                ctx.report("pickle-malformed", exc.offset, f"pickle stream is malformed: {exc}")
            return end
        except NotModelled as gap:  # (own names: mypyc types a handler's variable once)
            ctx.report("pickle-not-modelled", gap.offset, f"{gap}; the loader goes on, unanalysed")
            return end
        except WalkLimit as limit:
            ctx.report("pickle-opcode-limit", limit.offset, f"{limit}; the loader goes on, unanalysed")
            return end
        ctx.stats.pickles += 1
        walked += 1
        if walked == 1 and _may_be_torch_magic(ctx.result):
            following = TORCH_LEGACY_PICKLES - 1
            certain = type(ctx.result) is int and ctx.result == TORCH_MAGIC
        elif following:
            following -= 1
        if ctx.stats.pickles == max_pickles:
            break
    return pos


def _may_be_torch_magic(value: object) -> bool:
    """Could `value != TORCH_MAGIC` be false? Literals are known; call results
    and imported objects are not (an int(...) call, an object's __ne__)."""
    if isinstance(value, (Call, Ref, Persistent)) or value is LONG_INT:
        return True
    return type(value) is int and value == TORCH_MAGIC


def _report_trailing(ctx: PickleContext, pos: int, end: int) -> None:
    ctx.report(
        "pickle-trailing-data",
        pos,
        f"{end - pos} bytes after the last STOP are not a pickle",
        once_key="trailing",
    )


def _report_bound(ctx: PickleContext, bound: int, size: int) -> None:
    ctx.report(
        "pickle-opcode-limit",
        bound,
        f"only the first {ctx.max_bytes} of {size} bytes were analysed; the loader reads on",
    )


def walk_pickle(ctx: PickleContext, start: int, end: int) -> int:
    """One pickle from `start` to its STOP, chunk by chunk; returns the offset
    after STOP. Raises Malformed."""
    state = WalkState()
    pos = start
    while True:
        want = min(max(ctx.chunk_size, MIN_CHUNK, state.need), end - pos)
        chunk = ctx.reader.read_at(pos, want)
        final = pos + len(chunk) >= end or len(chunk) < want
        limit = len(chunk) if final else len(chunk) - MARGIN
        state.need = 0
        rel = 0
        while rel < limit:
            # In windows, so that the budgets are checked as the model grows.
            rel = _walk(chunk, pos, rel, min(limit, rel + WINDOW), final, state, ctx)
            if state.done or state.need:
                break
            _check_budgets(state, pos + rel)
            if ctx.check_time is not None:
                ctx.check_time()
        pos += rel
        if state.done:
            return pos
        if state.need:
            if state.need > MAX_LINE:
                raise WalkLimit(f"a line argument is longer than {MAX_LINE} bytes", pos)
            continue
        if final:
            if pos > end:
                raise Malformed("stream ends inside an opcode argument", end, truncated=True)
            raise Malformed("stream ends without a STOP opcode", pos, truncated=True)


def _check_budgets(state: WalkState, offset: int) -> None:
    marks = state.metastack
    if len(marks) > MAX_MARKS:
        raise WalkLimit(f"more than {MAX_MARKS} MARKs are open", offset)
    values = len(state.stack) + len(state.memo)
    for level in marks:
        values += len(level)
    if values > MAX_VALUES:
        raise WalkLimit(f"the stack and memo hold more than {MAX_VALUES} values", offset)


def _looks_like_pickle_start(head: bytes) -> bool:
    """A following pickle starts with PROTO (protocol 2+) or, for protocol 0/1
    streams, with an opcode that opens an object."""
    if not head:
        return False
    if head[0] == 0x80:
        return len(head) > 1 and head[1] <= 5
    return head[0] in b"(c]}N)\x8c\x95"


def _walk(
    data: bytes, base: int, start: int, limit: int, final: bool, state: WalkState, ctx: PickleContext
) -> int:
    """Walk opcodes of `data` (which starts at reader offset `base`) from
    `start` until STOP or until an opcode starts at or after `limit`; returns
    the position reached (which a skipped payload may put past the chunk). A
    line that runs past the data sets state.need and returns before its opcode."""
    stack = state.stack
    metastack = state.metastack
    memo = state.memo
    classify = ctx.classify
    reader = ctx.reader
    pos = start
    op_pos = start
    try:
        while pos < limit:
            op_pos = pos
            op = data[pos]
            pos += 1
            # Frequent opcodes of real checkpoints first.
            if op == 0x72:  # LONG_BINPUT
                memo[_u32(data, pos)] = stack[-1]
                pos += 4
            elif op == 0x68:  # BINGET
                stack.append(memo[data[pos]])
                pos += 1
            elif op == 0x4B:  # BININT1
                stack.append(data[pos])
                pos += 1
            elif op == 0x28:  # MARK
                metastack.append(stack)
                stack = []
            elif op == 0x58:  # BINUNICODE
                n = _u32(data, pos)
                pos += 4
                if n <= KEEP_TEXT:
                    stack.append(data[pos : pos + n].decode("utf-8", "surrogatepass"))
                else:
                    stack.append(LongText(reader, base + pos, n))
                pos += n
                if pos < limit:  # fused: the PUT that usually follows
                    nxt = data[pos]
                    if nxt == 0x72:
                        memo[_u32(data, pos + 1)] = stack[-1]
                        pos += 5
                    elif nxt == 0x71:
                        memo[data[pos + 1]] = stack[-1]
                        pos += 2
            elif op == 0x52:  # REDUCE
                args = stack.pop()
                func = stack[-1]
                if type(args) is not tuple:
                    args = _as_arguments(args, base + op_pos, "REDUCE")
                if not isinstance(func, Ref) and not _may_be_callable(func):
                    raise Malformed(f"REDUCE calls a {type(func).__name__} value", base + op_pos)
                stack[-1] = Call(func, args, base + op_pos)
                if not isinstance(func, Ref) or not (
                    func.plain or (func.quick and _plain_arguments(func, args))
                ):
                    resolved = _on_call(ctx, func, args, base + op_pos, "REDUCE")
                    if resolved is not None:
                        stack[-1] = resolved
                if pos < limit:  # fused: the PUT that usually follows
                    nxt = data[pos]
                    if nxt == 0x72:
                        memo[_u32(data, pos + 1)] = stack[-1]
                        pos += 5
                    elif nxt == 0x71:
                        memo[data[pos + 1]] = stack[-1]
                        pos += 2
            elif op == 0x74:  # TUPLE
                items = stack
                stack = metastack.pop()
                stack.append(tuple(items))
                if pos < limit:  # fused: the PUT that usually follows
                    nxt = data[pos]
                    if nxt == 0x72:
                        memo[_u32(data, pos + 1)] = stack[-1]
                        pos += 5
                    elif nxt == 0x71:
                        memo[data[pos + 1]] = stack[-1]
                        pos += 2
            elif op == 0x85:  # TUPLE1
                stack[-1] = (stack[-1],)
                if pos < limit:  # fused: the PUT that usually follows
                    nxt = data[pos]
                    if nxt == 0x72:
                        memo[_u32(data, pos + 1)] = stack[-1]
                        pos += 5
                    elif nxt == 0x71:
                        memo[data[pos + 1]] = stack[-1]
                        pos += 2
            elif op == 0x29:  # EMPTY_TUPLE
                stack.append(())
            elif op == 0x51:  # BINPERSID
                pid = stack[-1]
                module_class = _torch_module_record(pid) if ctx.expect_persistent_ids else None
                stack[-1] = module_class if module_class is not None else Persistent(pid)
                if not ctx.expect_persistent_ids:
                    _report_persid(ctx, base + op_pos, pid)
            elif op == 0x89:  # NEWFALSE
                stack.append(False)
            elif op == 0x71:  # BINPUT
                memo[data[pos]] = stack[-1]
                pos += 1
            elif op == 0x8C:  # SHORT_BINUNICODE
                n = data[pos]
                pos += 1
                stack.append(data[pos : pos + n].decode("utf-8", "surrogatepass"))
                pos += n
            elif op == 0x94:  # MEMOIZE
                memo[len(memo)] = stack[-1]
            elif op == 0x86:  # TUPLE2
                b = stack.pop()
                stack[-1] = (stack[-1], b)
            elif op == 0x87:  # TUPLE3
                c = stack.pop()
                b = stack.pop()
                stack[-1] = (stack[-1], b, c)
            elif op == 0x88:  # NEWTRUE
                stack.append(True)
            elif op == 0x4A:  # BININT
                stack.append(_i32(data, pos))
                pos += 4
            elif op == 0x4D:  # BININT2
                stack.append(_u16(data, pos))
                pos += 2
            elif op == 0x6A:  # LONG_BINGET
                stack.append(memo[_u32(data, pos)])
                pos += 4
            elif op == 0x7D:  # EMPTY_DICT
                stack.append({})
            elif op == 0x75:  # SETITEMS
                items = stack
                stack = metastack.pop()
                _set_items(ctx, stack[-1], items, base + op_pos)
            elif op == 0x73:  # SETITEM
                v = stack.pop()
                k = stack.pop()
                _set_items(ctx, stack[-1], [k, v], base + op_pos)
            elif op == 0x5D:  # EMPTY_LIST
                stack.append([])
            elif op == 0x65:  # APPENDS
                items = stack
                stack = metastack.pop()
                _append_items(ctx, stack[-1], items, base + op_pos, "APPENDS")
            elif op == 0x61:  # APPEND
                v = stack.pop()
                _append_items(ctx, stack[-1], [v], base + op_pos, "APPEND")
            elif op == 0x4E:  # NONE
                stack.append(None)
            elif op == 0x47:  # BINFLOAT
                stack.append(FLOAT)
                pos += 8
            elif op == 0x62:  # BUILD
                setstate = stack.pop()
                target = stack[-1]
                jump = _on_build(ctx, target, setstate, base + op_pos, base + pos)
                if jump is not None:
                    pos = jump - base
            elif op == 0x81:  # NEWOBJ
                args = stack.pop()
                cls = stack[-1]
                if type(args) is not tuple:
                    args = _as_arguments(args, base + op_pos, "NEWOBJ")
                stack[-1] = Call(cls, args, base + op_pos)
                if not isinstance(cls, Ref) or not _settled(cls, args):
                    _on_new(ctx, cls, args, base + op_pos, "NEWOBJ")
            elif op == 0x93:  # STACK_GLOBAL
                name = stack.pop()
                module = stack[-1]
                stack[-1] = _stack_global(ctx, classify, module, name, base + op_pos)
            elif op == 0x63:  # GLOBAL
                module_s, name_s, pos = _read_global_args(data, pos, final, base + op_pos)
                if ctx.importable_names_only and not _importable(module_s):
                    raise Malformed(
                        f"GLOBAL module {_short(module_s, 60)!r} is no importable name", base + op_pos
                    )
                ref = Ref(module_s, name_s, base + op_pos, classify(module_s, name_s))
                _judge_import(ctx, ref, "GLOBAL")
                stack.append(ref)
            elif op == 0x43:  # SHORT_BINBYTES
                n = data[pos]
                pos += 1
                stack.append(BytesValue(reader, base + pos, n))
                pos += n
            elif op == 0x42:  # BINBYTES
                n = _u32(data, pos)
                pos += 4
                stack.append(BytesValue(reader, base + pos, n))
                pos += n
            elif op == 0x8E or op == 0x96:  # BINBYTES8
                n = _u64(data, pos)
                pos += 8
                stack.append(BytesValue(reader, base + pos, n))
                pos += n
            elif op == 0x8D:  # BINUNICODE8
                n = _u64(data, pos)
                pos += 8
                if n <= KEEP_TEXT:
                    stack.append(data[pos : pos + n].decode("utf-8", "surrogatepass"))
                else:
                    stack.append(LongText(reader, base + pos, n))
                pos += n
            elif op == 0x55:  # SHORT_BINSTRING
                n = data[pos]
                pos += 1
                stack.append(_py2_str(data, pos, n, reader, base))
                pos += n
            elif op == 0x54:  # BINSTRING
                n = _i32(data, pos)
                if n < 0:
                    raise Malformed("BINSTRING with a negative length", base + op_pos)
                pos += 4
                stack.append(_py2_str(data, pos, n, reader, base) if n <= KEEP_TEXT else LONG_TEXT)
                pos += n
            elif op == 0x8A:  # LONG1
                n = data[pos]
                pos += 1
                stack.append(_decode_long_bytes(data[pos : pos + n]))
                pos += n
            elif op == 0x8B:  # LONG4
                n = _i32(data, pos)
                if n < 0:
                    raise Malformed("LONG4 with a negative length", base + op_pos)
                pos += 4
                stack.append(_decode_long_bytes(data[pos : pos + n]) if n <= 64 else LONG_INT)
                pos += n
            elif op == 0x80:  # PROTO
                if data[pos] > 5:
                    raise Malformed(f"unsupported pickle protocol {data[pos]}", base + op_pos)
                pos += 1
            elif op == 0x95:  # FRAME
                # C _pickle stops at a frame longer than the data; the pure-Python
                # unpickler reads on: so does the walk.
                pos += 8
            elif op == 0x2E:  # STOP
                state.done = True
                ctx.result = stack[-1] if stack else None
                if metastack or len(stack) != 1:
                    # pickle.load accepts this, but a clean writer never leaves it.
                    ctx.report(
                        "pickle-malformed",
                        base + op_pos,
                        f"STOP with {len(stack)} values on the stack and {len(metastack)} open marks",
                        once_key="stop",
                    )
                state.stack = stack
                return pos
            elif op == 0x30:  # POP
                if stack:
                    stack.pop()
                else:
                    stack = metastack.pop()
            elif op == 0x31:  # POP_MARK
                stack = metastack.pop()
            elif op == 0x32:  # DUP
                stack.append(stack[-1])
            elif op == 0x6C:  # LIST
                items = stack
                stack = metastack.pop()
                stack.append(items[:KEEP_ITEMS])
            elif op == 0x64:  # DICT
                items = stack
                stack = metastack.pop()
                d: dict[object, object] = {}
                _set_items(ctx, d, items, base + op_pos)
                stack.append(d)
            elif op == 0x8F:  # EMPTY_SET
                stack.append([])
            elif op == 0x90:  # ADDITEMS
                items = stack
                stack = metastack.pop()
                _append_items(ctx, stack[-1], items, base + op_pos, "ADDITEMS")
            elif op == 0x91:  # FROZENSET
                items = stack
                stack = metastack.pop()
                stack.append(tuple(items[:KEEP_ITEMS]))
            elif op == 0x92:  # NEWOBJ_EX
                kwargs = stack.pop()
                args = stack.pop()
                cls = stack[-1]
                if type(args) is not tuple:
                    args = _as_arguments(args, base + op_pos, "NEWOBJ_EX")
                if type(kwargs) is not dict and not _may_be_callable(kwargs):
                    raise Malformed("NEWOBJ_EX keyword arguments are not a dict", base + op_pos)
                stack[-1] = Call(cls, args, base + op_pos)
                if not isinstance(cls, Ref) or not _settled(cls, args):
                    _on_new(ctx, cls, args, base + op_pos, "NEWOBJ_EX")
            elif op == 0x6F:  # OBJ
                items = stack
                stack = metastack.pop()
                if not items:
                    raise IndexError("OBJ without a class")
                cls, args = items[0], tuple(items[1:])
                if not _may_be_callable(cls):
                    raise Malformed(f"OBJ calls a {type(cls).__name__} value", base + op_pos)
                stack.append(Call(cls, args, base + op_pos))
                if not isinstance(cls, Ref) or not _settled(cls, args):
                    _on_call(ctx, cls, args, base + op_pos, "OBJ")
            elif op == 0x69:  # INST
                module_s, name_s, pos = _read_global_args(data, pos, final, base + op_pos)
                if ctx.importable_names_only and not _importable(module_s):
                    raise Malformed(
                        f"INST module {_short(module_s, 60)!r} is no importable name", base + op_pos
                    )
                ref = Ref(module_s, name_s, base + op_pos, classify(module_s, name_s))
                _judge_import(ctx, ref, "INST")
                args = tuple(stack)
                stack = metastack.pop()
                stack.append(Call(ref, args, base + op_pos))
                _on_call(ctx, ref, args, base + op_pos, "INST")
            elif op == 0x82 or op == 0x83 or op == 0x84:  # EXT1, EXT2, EXT4
                if op == 0x82:
                    code, pos = data[pos], pos + 1
                elif op == 0x83:
                    code, pos = _u16(data, pos), pos + 2
                else:
                    code, pos = _i32(data, pos), pos + 4
                ctx.report(
                    "pickle-extension-code",
                    base + op_pos,
                    f"EXT opcode imports extension-registry entry {code}; the name it stands "
                    "for is decided by the loading process, not the file",
                    subject=f"ext:{code}",
                )
                stack.append(Ref(_EXTENSION, _code_text(code), base + op_pos, _UNKNOWN_IMPORT))
            elif op == 0x50:  # PERSID
                line, pos = _read_line(data, pos, final, base + op_pos)
                pid = str(line, "ascii", "replace")
                stack.append(Persistent(pid))
                if not ctx.expect_persistent_ids:
                    _report_persid(ctx, base + op_pos, pid)
            elif op == 0x56:  # UNICODE
                start = pos
                line, pos = _read_line(data, pos, final, base + op_pos)
                if len(line) <= KEEP_TEXT:
                    stack.append(str(line, "raw-unicode-escape"))
                else:
                    stack.append(LongText(reader, base + start, len(line), escaped=True))
            elif op == 0x53:  # STRING
                line, pos = _read_line(data, pos, final, base + op_pos)
                stack.append(_decode_string_literal(bytes(line), base + op_pos))
            elif op == 0x49:  # INT
                line, pos = _read_line(data, pos, final, base + op_pos)
                stack.append(_decode_int_line(line, base + op_pos))
            elif op == 0x4C:  # LONG
                line, pos = _read_line(data, pos, final, base + op_pos)
                stack.append(_decode_long_line(line, base + op_pos))
            elif op == 0x46:  # FLOAT
                line, pos = _read_line(data, pos, final, base + op_pos)
                _check_float_line(line, base + op_pos)
                stack.append(FLOAT)
            elif op == 0x67:  # GET
                line, pos = _read_line(data, pos, final, base + op_pos)
                stack.append(memo[_memo_key(line, base + op_pos, False)])
            elif op == 0x70:  # PUT
                line, pos = _read_line(data, pos, final, base + op_pos)
                memo[_memo_key(line, base + op_pos, True)] = stack[-1]
            elif op == 0x97 or op == 0x98:  # NEXT_BUFFER, READONLY_BUFFER
                if op == 0x97:
                    stack.append(BUFFER)
            else:
                raise Malformed(f"unknown opcode 0x{op:02x}", base + op_pos)
    except NeedMore:
        state.stack = stack
        state.need = 2 * (len(data) - op_pos) + MIN_CHUNK
        return op_pos
    except Malformed:
        raise
    except (IndexError, KeyError, struct.error, ValueError, UnicodeDecodeError) as exc:
        # An argument cut off by the end of the data (ours or the file's).
        cut = final and isinstance(exc, (IndexError, struct.error)) and op_pos + 9 >= len(data)
        raise Malformed(_explain_failure(exc, data, op_pos), base + op_pos, cut) from None
    state.stack = stack
    return pos


def _explain_failure(exc: Exception, data: bytes, op_pos: int) -> str:
    op = data[op_pos] if op_pos < len(data) else None
    name = _opcode_name(op) if op is not None else "end of data"
    if isinstance(exc, KeyError):
        return f"{name} reads memo slot {exc.args[0]!r}, which was never written"
    if isinstance(exc, IndexError):
        return f"{name} needs more values than the stack holds (or the data ends)"
    if isinstance(exc, struct.error):
        return f"{name} argument runs past the end of the data"
    return f"{name}: {exc}"


def _read_line(data: bytes, pos: int, final: bool, where: int) -> tuple[bytes, int]:
    nl = data.find(b"\n", pos)
    if nl < 0:
        if final:
            raise Malformed("line argument has no newline before the end of data", where, truncated=True)
        raise NeedMore()
    return data[pos:nl], nl + 1


def _importable(module: str) -> bool:
    """A dotted name of identifiers: what installed modules and packages are
    called. (A module whose file name is not one needs that file shipped
    beside the model, where the code scanner reports it.)"""
    return bool(module) and all(part.isidentifier() for part in module.split("."))


def _read_global_args(data: bytes, pos: int, final: bool, where: int) -> tuple[str, str, int]:
    module, pos = _read_line(data, pos, final, where)
    name, pos = _read_line(data, pos, final, where)
    # pickle decodes these as UTF-8 (protocol 3+) or ASCII; accept both readings.
    return sys.intern(str(module, "utf-8", "replace")), sys.intern(str(name, "utf-8", "replace")), pos


def _py2_str(data: bytes, pos: int, n: int, reader: ByteReader, base: int) -> str | BytesValue:
    """Python 2 str: text if ASCII (how pickle decodes it by default), else bytes."""
    raw = data[pos : pos + n]
    try:
        return str(raw, "ascii")
    except UnicodeDecodeError:
        return BytesValue(reader, base + pos, n, text=True)


# One shared value per EXT import (a million EXT opcodes must not mean a
# million verdicts and code strings).
_EXTENSION = "<extension>"
_UNKNOWN_IMPORT = ImportVerdict(Verdict.UNKNOWN)
_CODE_TEXTS = tuple(str(code) for code in range(256))


def _code_text(code: int) -> str:
    return _CODE_TEXTS[code] if 0 <= code < 256 else str(code)


def _stack_global(
    ctx: PickleContext,
    classify: Callable[[str, str], ImportVerdict],
    module: object,
    name: object,
    offset: int,
) -> Ref:
    if isinstance(module, str) and isinstance(name, str):
        # Interned: a stream importing one name a million times keeps one copy of it.
        ref = Ref(sys.intern(module), sys.intern(name), offset, classify(module, name))
        _judge_import(ctx, ref, "STACK_GLOBAL")
        return ref
    if not (_may_be_str(module) and _may_be_str(name)):
        # _pickle raises "STACK_GLOBAL requires str" before importing anything.
        raise Malformed(f"STACK_GLOBAL operands {describe(module)}, {describe(name)} are not strings", offset)
    module_text, name_text = describe(module)[:80], describe(name)[:80]
    ctx.report(
        "pickle-dynamic-import",
        offset,
        f"STACK_GLOBAL imports module {module_text} name {name_text}, which are not string constants",
        subject=f"{module_text}.{name_text}",
    )
    return Ref(module_text, name_text, offset, _UNKNOWN_IMPORT)


def _may_be_str(value: object) -> bool:
    """Could this modelled value be an exact `str` when the real unpickler runs?
    (An instance of an allowed class other than str is not: the allowlist vets
    classes as inert constructors, and subclasses of str do not count.)"""
    if isinstance(value, Call):
        return not _is_allowed_class_instance(value)
    if isinstance(value, (str, Ref, Persistent)):
        return True
    if isinstance(value, BytesValue):
        return value.text
    return isinstance(value, LongText)


_GETATTR = {("builtins", "getattr"), ("__builtin__", "getattr")}
# Opcodes that instantiate their class (`cls.__new__`) rather than call it.
_CREATING_OPCODES = frozenset({"NEWOBJ", "NEWOBJ_EX"})
_CLASS_KINDS = frozenset({AllowKind.CONSTRUCTOR, AllowKind.NEW_ONLY})
_FOLDED_HELPERS = _GETATTR | {
    helpers.LOAD_TYPE,
    helpers.EVAL_REPR,
    helpers.CREATE_ARRAY,
    helpers.CLOUDPICKLE_BUILTIN_TYPE,
}


def _fold_getattr(ctx: PickleContext, args: object, offset: int) -> Ref | None:
    """getattr(AllowedClass, "name") is how pickle stores bound methods and some
    classmethods: it imports `module.Class.name`, judged like any import (a
    dunder or unlisted name stays a finding)."""
    if not (
        isinstance(args, tuple) and len(args) == 2 and isinstance(args[0], Ref) and isinstance(args[1], str)
    ):
        return None
    target, attr = args[0], args[1]
    if target.verdict.verdict is not Verdict.ALLOWED:
        return None
    name = f"{target.name}.{attr}"
    ref = Ref(target.module, name, offset, ctx.classify(target.module, name))
    _judge_import(ctx, ref, "getattr")
    return ref


def _count_fold(ctx: PickleContext, key: tuple[str, str], folded: bool) -> None:
    counts = ctx.stats.folded.setdefault(key, [0, 0])
    counts[0 if folded else 1] += 1


def _fold(ctx: PickleContext, func: Ref, args: object, offset: int) -> object | None:
    """The value a call of a modelled helper stands for (None: not modelled)."""
    key = (func.module, func.name)
    if key in _GETATTR:
        return _fold_getattr(ctx, args, offset)
    if key == helpers.LOAD_TYPE or key == helpers.EVAL_REPR:
        return _fold_dill_name(ctx, key, args, offset)
    if key == helpers.CREATE_ARRAY:
        return _fold_dill_array(ctx, func, args, offset)
    if key == helpers.CLOUDPICKLE_BUILTIN_TYPE and isinstance(args, tuple) and len(args) == 1:
        name = args[0]
        target = helpers.cloudpickle_builtin_type(name) if isinstance(name, str) else None
        if target is not None:
            ref = Ref(target[0], target[1], offset, ctx.classify(*target))
            _judge_import(ctx, ref, f"{key[0]}.{key[1]}")
            return ref
    return None


def _fold_dill_name(ctx: PickleContext, key: tuple[str, str], args: object, offset: int) -> object | None:
    """dill's `_load_type('slice')` is builtins.slice, `_eval_repr('Ellipsis')` is
    Ellipsis and `_eval_repr('range(0, 3, 1)')` is range(0, 3, 1): read as
    imports of those names (and that call), judged like any import and call."""
    if not (isinstance(args, tuple) and len(args) == 1 and isinstance(args[0], str)):
        return None
    text = args[0]
    how = f"{key[0]}.{key[1]}"
    if key == helpers.EVAL_REPR:
        bounds = helpers.range_arguments(text)
        if bounds is not None:
            ref = Ref("builtins", "range", offset, ctx.classify("builtins", "range"))
            _judge_import(ctx, ref, how)
            if not ref.plain:
                _judge_call(ctx, ref, bounds, offset, how)
            return Call(ref, bounds, offset)
    elif text in helpers.SINGLETON_TYPES:  # _load_type('NoneType') is type(None)
        return Call(Ref("builtins", "type", offset, ctx.classify("builtins", "type")), (None,), offset)
    table = helpers.TYPES if key == helpers.LOAD_TYPE else helpers.EVAL_REPR_VALUES
    target = table.get(text)
    if target is None:
        return None
    ref = Ref(target[0], target[1], offset, ctx.classify(*target))
    _judge_import(ctx, ref, how)
    return ref


def _fold_dill_array(ctx: PickleContext, func: Ref, args: object, offset: int) -> Call | None:
    """dill's `_create_array(f, args, state, npdict=None)` runs `f(*args)`, the
    result's `__setstate__(state)` and `result.__dict__.update(npdict)`: judged
    as that REDUCE and those BUILDs; the result stands for f's object."""
    if not (isinstance(args, tuple) and len(args) in (3, 4)):
        return None
    f, inner_args, state = args[0], args[1], args[2]
    npdict = args[3] if len(args) == 4 else None
    if not isinstance(inner_args, (tuple, list)) or not (isinstance(npdict, dict) or npdict is None):
        return None
    if not _may_be_callable(f):
        raise Malformed(f"{func.dotted} calls a {type(f).__name__} value", offset)
    inner_args = tuple(inner_args)
    made = Call(f, inner_args, offset)
    via = f"REDUCE via {func.dotted}"
    if not (isinstance(f, Ref) and _settled(f, inner_args)):
        _on_call(ctx, f, inner_args, offset, via)  # not a REDUCE: nothing is folded in turn
    made.state = state
    _judge_instance(ctx, made, offset, via, "__setstate__")
    if npdict:
        _judge_instance(ctx, made, offset, via, "__dict__.update")
        planted = _planted_key(npdict)
        if planted:
            ctx.report(
                "pickle-planted-method",
                offset,
                f"{func.dotted} sets {planted!r} in the __dict__ of an object of class "
                f"{describe(_instance_class(made))}: the unpickler calls what a later opcode finds there",
                subject=describe(_instance_class(made)),
            )
    return made


# Helpers whose called argument gets known arguments: (helper, called index) ->
# (index of the argument it gets, whether that argument is spread as *args).
# torch's _rebuild_from_type(_v2)(func, type, args, ...) runs func(*args); numpy's
# __generator_ctor/__randomstate_ctor(name, ctor) run ctor(name).
_INNER_ARGUMENTS: dict[tuple[str, str, int], tuple[int, bool]] = {
    ("torch._tensor", "_rebuild_from_type", 0): (2, True),
    ("torch._tensor", "_rebuild_from_type_v2", 0): (2, True),
    ("numpy.random._pickle", "__generator_ctor", 1): (0, False),
    ("numpy.random._pickle", "__randomstate_ctor", 1): (0, False),
}


def _inner_indices() -> dict[tuple[str, str], tuple[int, ...]]:
    indices: dict[tuple[str, str], tuple[int, ...]] = {}
    for module, name, index in _INNER_ARGUMENTS:
        indices[(module, name)] = (*indices.get((module, name), ()), index)
    return indices


_INNER_INDICES = _inner_indices()
# How deep helpers handed to helpers are followed before the walk gives up (high).
MAX_HELPER_DEPTH = 4


def _on_call(
    ctx: PickleContext, func: object, args: object, offset: int, opcode: str, depth: int = 0
) -> object | None:
    """Judge a call; returns the value a modelled helper's call stands for
    (an import, or the object it builds), if any."""
    if isinstance(func, Ref) and (func.module, func.name) in _FOLDED_HELPERS and opcode == "REDUCE":
        folded = _fold(ctx, func, args, offset)
        if folded is not None:
            _count_fold(ctx, (func.module, func.name), True)
            return folded
    if (
        isinstance(func, Ref)
        and func.verdict.verdict is Verdict.UNKNOWN
        and (_rebuilds_own_class(func, args) or _type_of_one_value(func, args))
    ):
        ctx.stats.vouched.add((func.module, func.name))
        return None
    _judge_call(ctx, func, args, offset, opcode, creates=opcode in _CREATING_OPCODES)
    if isinstance(func, Ref):
        if type(args) is not tuple and (func.calls or (func.module, func.name) in _LOADERS):
            ctx.report(
                "pickle-dynamic-callable",
                offset,
                f"{opcode} calls {func.dotted} with arguments unpacked from {describe(args)}: the walk "
                "cannot tell which of them it calls or loads",
                subject=func.dotted,
            )
        if not func.calls and isinstance(args, tuple):
            # Not allowed (judged above), but still the call it makes is known:
            # a loader it is handed gets its bytes walked.
            for index in _INNER_INDICES.get((func.module, func.name), ()):
                called = args[index] if index < len(args) else None
                if isinstance(called, Ref) and (called.calls or (called.module, called.name) in _LOADERS):
                    _on_helper_argument(
                        ctx, func, called, args, index, offset, f"{opcode} via {func.dotted}", depth
                    )
        for index in func.calls:
            if isinstance(args, tuple) and len(args) > index:
                called = args[index]
                # Literals cannot be called (a name string is looked up, not run).
                if _may_be_callable(called) and not (
                    isinstance(called, Ref) and (called.module, called.name) == ("builtins", "object")
                ):
                    creates = index == 0 and (func.module, func.name) in _INSTANCE_FACTORIES
                    via = f"{opcode} via {func.dotted}"
                    if isinstance(called, Ref) and (called.calls or (called.module, called.name) in _LOADERS):
                        _on_helper_argument(ctx, func, called, args, index, offset, via, depth)
                    else:
                        _judge_call(ctx, called, args[index + 1 :], offset, via, creates)
        _inspect_loader_call(ctx, func, args, offset)
    return None


def _on_helper_argument(
    ctx: PickleContext,
    func: Ref,
    called: Ref,
    args: tuple[object, ...],
    index: int,
    offset: int,
    via: str,
    depth: int,
) -> None:
    """A helper that calls or loads its own arguments, handed to a helper that
    calls it: judged as the call it becomes where the arguments it gets are
    known (torch's _rebuild_from_type), else high (they cannot be lined up)."""
    known = _INNER_ARGUMENTS.get((func.module, func.name, index))
    if known is not None and known[0] < len(args) and depth < MAX_HELPER_DEPTH:
        inner = args[known[0]] if known[1] else (args[known[0]],)
        if type(inner) is tuple:
            _on_call(ctx, called, inner, offset, via, depth + 1)
            return
    ctx.report(
        "pickle-dynamic-callable",
        offset,
        f"{via} calls {called.dotted}, itself a helper that calls or loads its arguments, with "
        "arguments the walk cannot line up",
        subject=called.dotted,
    )


_STR_TYPES = {("builtins", "str"), ("__builtin__", "str"), ("__builtin__", "unicode")}


def _is_allowed_class_instance(value: Call) -> bool:
    """A call of an allowed constructor named like a class (CamelCase)."""
    func = value.func
    if not isinstance(func, Ref) or (func.module, func.name) in _STR_TYPES:
        return False
    verdict = func.verdict
    return (
        verdict.verdict is Verdict.ALLOWED
        and verdict.kind in _CLASS_KINDS
        and func.name.rpartition(".")[2][:1].isupper()
    )


def _type_of_one_value(func: Ref, args: object) -> bool:
    """`type(x)` with one argument returns x's class and runs no code: pickle
    itself writes `type(None)` for NoneType (and `type(...)`, `type(NotImplemented)`).
    The class it returns is judged where it is used (calling a computed value is
    a dynamic call). With three arguments `type` creates a class: a finding."""
    return (func.module, func.name) in _TYPE_NAMES and isinstance(args, tuple) and len(args) == 1


_TYPE_NAMES = {("builtins", "type"), ("__builtin__", "type")}


def _rebuilds_own_class(func: Ref, args: object) -> bool:
    """Cython's `mod.__pyx_unpickle_X(cls, checksum, state)` and scikit-learn's
    `mod.newObj(cls)` only run `cls.__new__` (and set Cython fields): they are
    constructors of cls when cls is the allowed class of their own module
    (X itself for Cython)."""
    if not isinstance(args, tuple) or not args:
        return False
    cls = args[0]
    if not (
        isinstance(cls, Ref)
        and cls.module == func.module
        and cls.verdict.verdict is Verdict.ALLOWED
        and cls.verdict.kind in _CLASS_KINDS
    ):
        return False
    if func.name.startswith(_CYTHON_UNPICKLE):
        return len(args) == 3 and func.name == _CYTHON_UNPICKLE + cls.name and isinstance(args[1], int)
    return func.name == _SKLEARN_NEWOBJ and len(args) == 1


def _on_new(ctx: PickleContext, cls: object, args: object, offset: int, opcode: str) -> None:
    """NEWOBJ(_EX) runs `cls.__new__(cls, *args)`: a call of the class, judged
    like REDUCE (numpy.memmap opens files in __new__, sympy containers eval)."""
    if not _may_be_callable(cls):
        raise Malformed(f"{opcode} class argument is a {type(cls).__name__}, not a type", offset)
    _on_call(ctx, cls, args, offset, opcode)


# Keys that, written into an instance's __dict__ or set as slot state, make the
# unpickler call a value from the stream later (BUILD looks `__setstate__` up on
# the instance, APPEND(S)/ADDITEMS look up `extend`/`append`/`add`) or change
# what the instance is.
_PLANTED = frozenset(
    {"__setstate__", "__reduce__", "__reduce_ex__", "append", "extend", "add", "__setitem__"}
    | {"__class__", "__dict__"}
)
# Keys a container hook reads from BUILD states (joblib's array wrappers):
# kept in dicts of any size, like planted keys.
TRACKED_KEYS = frozenset(
    {"subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes", "filename"}
    | {"init_args", "state"}
)
# Stands for a key computed while loading (it may spell any of the above).
COMPUTED_KEY = Opaque("computed key")

# Factories that return an instance of their first argument without running
# its code: copyreg's (protocols 0/1 and __reduce_ex__ fallbacks), Cython's
# __pyx_unpickle_X(cls, checksum, state) and scikit-learn's newObj(cls).
_INSTANCE_FACTORIES = {
    ("copyreg", "_reconstructor"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "__newobj__"),
    ("copyreg", "__newobj_ex__"),
}
_CYTHON_UNPICKLE = "__pyx_unpickle_"
_SKLEARN_NEWOBJ = "newObj"


def _instance_class(target: Call) -> object:
    """The class whose methods run when the unpickler uses this object."""
    func = target.func
    if isinstance(func, Ref) and (
        (func.module, func.name) in _INSTANCE_FACTORIES
        or func.name.startswith(_CYTHON_UNPICKLE)
        or func.name == _SKLEARN_NEWOBJ
    ):
        args = target.args
        if isinstance(args, tuple) and args:
            return args[0]
    return func


def _judge_instance(ctx: PickleContext, target: object, offset: int, opcode: str, method: str) -> None:
    """An opcode that calls a method of an object the stream built (BUILD:
    `__setstate__` or attribute setters; APPEND(S): `extend`/`append`;
    ADDITEMS: `add`; SETITEM(S): `__setitem__`) runs code of its class: the
    class must be one the allowlist lets the stream call."""
    if isinstance(target, Call):
        cls = _instance_class(target)
        if isinstance(cls, Ref):
            verdict = cls.verdict
            if verdict.verdict is Verdict.ALLOWED and verdict.kind is not AllowKind.IMPORT_ONLY:
                return
            if verdict.verdict is Verdict.DENIED:
                denied = ctx.stats.denied.get((cls.module, cls.name))
                if denied is not None and not denied[2]:
                    denied[2] = f"{opcode} calls its {method} at @{offset}"
                return
            unknown = verdict.verdict is Verdict.UNKNOWN
            not_allowed = "is not on the allowlist" if unknown else "is import-only"
            ctx.report(
                "pickle-unknown-call",
                offset,
                f"{opcode} calls {method} of an object of class {cls.dotted}, which {not_allowed}",
                subject=cls.dotted,
                once_key="call",
            )
        else:
            ctx.report(
                "pickle-dynamic-callable",
                offset,
                f"{opcode} calls {method} of an object whose class is built while loading ({describe(cls)})",
                subject=describe(cls),
            )
    elif isinstance(target, Persistent):
        ctx.report(
            "pickle-dynamic-callable",
            offset,
            f"{opcode} calls {method} of {describe(target)}, an object the loading application supplies",
            subject="persistent_load",
        )


def _planted_key(state: object) -> str:
    """A key of a BUILD state (dict state or slot state) that plants a method."""
    parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
    for part in parts:
        if isinstance(part, dict):
            for key in _PLANTED:
                if key in part:
                    return key
            if COMPUTED_KEY in part:
                return "a key computed while loading"
        elif isinstance(part, Call) and part.planted:
            return part.planted
    return ""


def _on_build(ctx: PickleContext, target: object, state: object, offset: int, pos: int) -> int | None:
    if isinstance(target, Ref):
        ctx.report(
            "pickle-mutates-global",
            offset,
            f"BUILD sets state on the imported object {target.dotted} itself, not on an instance",
            subject=target.dotted,
        )
        return None
    if isinstance(target, Call):
        target.state = state
        _judge_instance(ctx, target, offset, "BUILD", "__setstate__ (or attribute setters)")
        planted = _planted_key(state)
        if planted:
            ctx.report(
                "pickle-planted-method",
                offset,
                f"BUILD state sets {planted!r} on an object of class {describe(_instance_class(target))}: "
                "the unpickler calls what a later opcode finds there",
                subject=describe(_instance_class(target)),
            )
        if ctx.on_build is not None:
            return ctx.on_build(target, state, pos)
        return None
    if isinstance(target, Persistent):
        _judge_instance(ctx, target, offset, "BUILD", "__setstate__")
        return None
    parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
    if not any(_truthy(part) for part in parts):
        return None  # the pure-Python unpickler skips empty or false state
    # Values the stream builds have no __setstate__ and no __dict__: both unpicklers raise.
    raise Malformed(f"BUILD on a {type(target).__name__} value", offset)


def _truthy(value: object) -> bool:
    """Certainly true (so the pure-Python unpickler applies it as state)."""
    if isinstance(value, (dict, list, tuple, str)):
        return len(value) > 0
    if isinstance(value, int):  # bool included
        return value != 0
    if isinstance(value, BytesValue):
        return value.length > 0
    return isinstance(value, LongText)


def _record_key(target: dict[object, object], key: object, value: object) -> None:
    """Keep what checks need, whatever the size of the dict: planted keys,
    computed keys, and new values of keys already kept (the unpickler's last
    assignment wins, so a later one must not hide behind the limit)."""
    if isinstance(key, str):
        if key in _PLANTED or key in TRACKED_KEYS or key in target:
            target[key] = value
    elif isinstance(key, (int, bool)) or key is None:
        if key in target:
            target[key] = value
    elif isinstance(key, (Call, Ref, Persistent)):
        target[COMPUTED_KEY] = value


def _planted_in(items: list[object]) -> str:
    for i in range(0, len(items) - 1, 2):
        key = items[i]
        if isinstance(key, str):
            if key in _PLANTED:
                return key
        elif isinstance(key, (Call, Ref, Persistent)):
            return "a key computed while loading"
    return ""


def _set_items(ctx: PickleContext, target: object, items: list[object], offset: int) -> None:
    if not items:
        return  # _pickle returns before it looks at the target
    if len(items) % 2:
        raise Malformed("odd number of items for SETITEMS", offset)
    if isinstance(target, dict):
        n = len(items)
        i = 0
        while i + 1 < n and len(target) < KEEP_ITEMS:
            key = items[i]
            if isinstance(key, (str, int, bool)) or key is None:
                target[key] = items[i + 1]
            else:
                _record_key(target, key, items[i + 1])
            i += 2
        while i + 1 < n:
            _record_key(target, items[i], items[i + 1])
            i += 2
    elif isinstance(target, Call):
        _judge_instance(ctx, target, offset, "SETITEM(S)", "__setitem__")
        if not target.planted:
            target.planted = _planted_in(items)
    elif isinstance(target, Ref):
        ctx.report(
            "pickle-mutates-global",
            offset,
            f"SETITEM(S) writes keys into the imported object {target.dotted}",
            subject=target.dotted,
        )
    elif isinstance(target, Persistent):
        _judge_instance(ctx, target, offset, "SETITEM(S)", "__setitem__")
    elif not isinstance(target, (list, BytesValue)):
        raise Malformed(f"SETITEM(S) on a {type(target).__name__} value", offset)


def _append_items(ctx: PickleContext, target: object, items: list[object], offset: int, opcode: str) -> None:
    if not items:
        return  # _pickle returns before it looks at the target
    if isinstance(target, list):
        room = KEEP_ITEMS - len(target)
        if room > 0:
            target.extend(items[:room])
    elif isinstance(target, Call):
        method = "add" if opcode == "ADDITEMS" else "extend/append"
        _judge_instance(ctx, target, offset, opcode, method)
    elif isinstance(target, Ref):
        ctx.report(
            "pickle-mutates-global",
            offset,
            f"{opcode} adds items to the imported object {target.dotted}",
            subject=target.dotted,
        )
    elif isinstance(target, Persistent):
        _judge_instance(ctx, target, offset, opcode, "append")
    elif not isinstance(target, BytesValue):
        raise Malformed(f"{opcode} on a {type(target).__name__} value", offset)


def _torch_module_record(pid: object) -> Ref | None:
    """Legacy `torch.save` of a whole module writes each module class as the
    persistent id `('module', cls, source_file, source)`, and torch's legacy
    persistent_load returns `cls` itself (after comparing the sources): the
    value is that import, judged like any (the zip format's loader refuses
    such ids, so reading them this way only ever walks further)."""
    if isinstance(pid, tuple) and len(pid) == 4 and pid[0] == "module" and isinstance(pid[1], Ref):
        return pid[1]
    return None


def _report_persid(ctx: PickleContext, offset: int, pid: object) -> None:
    ctx.report(
        "pickle-persistent-id",
        offset,
        f"persistent id {describe(pid)} is resolved by the loading application",
        subject="persistent_load",
        once_key="persid",
    )


def finish(ctx: PickleContext) -> None:
    """After all streams of a file: denied imports (with how they were called),
    and unknown imports never called (medium)."""
    for (module, name), (opcode, offset, call) in ctx.stats.denied.items():
        rule = ctx.classify(module, name).rule
        counts = ctx.stats.folded.get((module, name))
        if rule is None:
            continue
        if counts is not None and counts[0] > 0 and counts[1] == 0:  # every call read as what it does
            if (module, name) not in _GETATTR:  # (getattr folds into the import it names)
                _report_helper_read(ctx, module, name, offset, counts[0])
            continue
        usage = f"; {call}" if call else "; it is imported but not called here"
        ctx.report(
            rule.id,
            offset if isinstance(offset, int) else None,
            f"{opcode} imports {_short(f'{module}.{name}')} ({rule.title}){usage}",
            subject=_short(f"{module}.{name}"),
            once_key="import",
        )
    for module, name in sorted(ctx.stats.vouched & _TYPE_NAMES):
        verdict = ctx.classify(module, name)
        if verdict.verdict is Verdict.UNKNOWN:
            offset = ctx.stats.imports.get((module, name), [0, None])[1]
            _report_helper_read(ctx, module, name, offset, 0)
    if ctx.stats.names_dropped:
        ctx.report(
            "pickle-unknown-import",
            None,
            f"imports {ctx.stats.names_dropped} more distinct names not on the allowlist (not listed)",
            subject="<more names>",
        )
    reported = {f.subject for f in ctx.findings if f.location == ctx.location.at(f.location.offset)}
    for (module, name), (count, offset) in ctx.stats.imports.items():
        verdict = ctx.classify(module, name)
        dotted = _short(f"{module}.{name}")
        vouched = (module, name) in ctx.stats.vouched
        if verdict.verdict is Verdict.UNKNOWN and dotted not in reported and not vouched:
            times = f" ({count} times)" if count > 1 else ""
            ctx.report(
                "pickle-unknown-import",
                offset,
                f"imports {dotted}{times}, which is not on the allowlist",
                subject=dotted,
            )
    for rule_id, count in sorted(ctx.suppressed.items()):
        rule = ctx.rules.rule(rule_id)
        ctx.findings.append(
            Finding(
                rule_id=rule.id,
                severity=rule.severity,
                location=ctx.location.at(None),
                message=f"{count} more findings of this kind in this stream were not listed",
                subject="<more findings>",
                scanner=SCANNER,
                references=rule.references,
            )
        )
    ctx.suppressed.clear()


def _report_helper_read(ctx: PickleContext, module: str, name: str, offset: object, calls: int) -> None:
    what = f"{calls} call(s) read as what they do" if calls else "called with one argument (a type lookup)"
    ctx.report(
        "pickle-helper-read",
        offset if isinstance(offset, int) else None,
        f"imports {_short(f'{module}.{name}')}: {what}",
        subject=_short(f"{module}.{name}"),
        once_key="import",
    )


def _opcode_name(op: int) -> str:
    import pickletools  # error path only: the module is slow to import

    for info in pickletools.opcodes:
        if info.code.encode("latin-1")[0] == op:
            return info.name
    return f"opcode 0x{op:02x}"
