"""Differential property tests: generated and mutated pickle streams, loaded by
the real unpickler (tests/oracle.py, stopped at the first name the allowlist
does not admit) and scanned. For every stream:

- every name the unpickler resolved before it stopped, and the name it was
  stopped at, is a name the scan reported (scanned with an empty allowlist,
  every import is reported);
- the name it was stopped at is reported by the real rules too (medium or
  above): the loader would have used it;
- nothing ran: no allowed name lets a stream create the marker file.

Derandomized and bounded so the suite stays fast; long runs belong in bench/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modeltrust.findings import Severity
from modeltrust.rules import RuleSet

from . import oracle
from .conftest import FIXTURES, MARKER, scan_bytes

SETTINGS = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Names a stream may import: allowed constructors, allowed import-only values,
# allowed calls-arguments helpers, unknown and denied names.
NAMES = [
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("__builtin__", "frozenset"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random._pcg64", "PCG64"),
    ("torch", "float32"),
    ("builtins", "Ellipsis"),
    ("datetime", "date"),
    ("os", "system"),
    ("builtins", "getattr"),
    ("builtins", "eval"),
    ("numpy", "memmap"),
    ("collections", "namedtuple"),
    ("some.unknown", "Thing"),
]
STRINGS = [part for pair in NAMES for part in pair] + [f"touch {MARKER}", "a", "__setstate__", "append"]


def _unicode(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


# Pieces of streams: each a valid opcode with its argument.
PIECES: list[bytes] = [
    *(b"c" + m.encode() + b"\n" + n.encode() + b"\n" for m, n in NAMES),
    *(_unicode(s) for s in STRINGS),
    b"\x93",  # STACK_GLOBAL
    b"\x94",  # MEMOIZE
    b"h\x00",  # BINGET 0
    b"h\x01",  # BINGET 1
    b"q\x00",  # BINPUT 0
    b")",  # EMPTY_TUPLE
    b"\x85",  # TUPLE1
    b"\x86",  # TUPLE2
    b"\x87",  # TUPLE3
    b"(",  # MARK
    b"t",  # TUPLE
    b"R",  # REDUCE
    b"\x81",  # NEWOBJ
    b"b",  # BUILD
    b"}",  # EMPTY_DICT
    b"]",  # EMPTY_LIST
    b"s",  # SETITEM
    b"u",  # SETITEMS
    b"a",  # APPEND
    b"e",  # APPENDS
    b"N",  # NONE
    b"K\x01",  # BININT1
    b"0",  # POP
    b"2",  # DUP
    b"\x88",  # NEWTRUE
    b"o",  # OBJ
    b"i" + b"collections\nOrderedDict\n",  # INST
    b"i" + b"os\nsystem\n",
]


@st.composite
def generated_streams(draw: st.DrawFn) -> bytes:
    protocol = draw(st.sampled_from([b"", b"\x80\x02", b"\x80\x04", b"\x80\x05"]))
    body = draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=24))
    return protocol + b"".join(body) + b"."


def _harvested_pickles() -> list[bytes]:
    manifest = json.loads((FIXTURES / "benign" / "harvest" / "manifest.json").read_text())["files"]
    small = [
        (FIXTURES / "benign" / "harvest" / rel).read_bytes()
        for rel, entry in sorted(manifest.items())
        if entry["loader"] == "pickle" and (FIXTURES / "benign" / "harvest" / rel).stat().st_size < 4096
    ]
    return small[:40]


HARVESTED = _harvested_pickles()


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(HARVESTED)))
    for _ in range(draw(st.integers(1, 4))):
        if len(data) < 2:
            break
        where = draw(st.integers(0, len(data) - 2))
        kind = draw(st.sampled_from(["splice", "flip", "cut", "delete"]))
        if kind == "splice":
            data[where:where] = draw(st.sampled_from(PIECES))
        elif kind == "flip":
            data[where] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[where : where + draw(st.integers(1, 8))]
        else:
            del data[where:-1]
    return bytes(data)


@pytest.fixture(scope="module")
def worker() -> Iterator[oracle.OracleWorker]:
    with oracle.OracleWorker(oracle.RULES) as running:
        yield running


def _check(
    data: bytes, worker: oracle.OracleWorker, rules: RuleSet, no_allow_rules: RuleSet, tmp: Path
) -> None:
    result = worker.load(data)
    assert not result.marker_created, f"ran with allowed names only: {result.resolved} ({data!r})"
    if not result.names:
        return
    seen = {f.subject for f in scan_bytes(tmp, data, "stream.pkl", rules=no_allow_rules).findings}
    missing = [f"{m}.{n}" for m, n in result.names if f"{m}.{n}" not in seen]
    assert not missing, f"the unpickler resolved {missing}, never reported; stream {data!r}"
    # getattr(AllowedClass, "name") is folded by the scanner into the import of
    # Class.name and judged as such; the oracle only sees getattr itself. The
    # same for dill's and cloudpickle's helpers (oracle.FOLDED_HELPERS).
    folded = result.stopped is not None and (
        result.stopped[1] == "getattr" or result.stopped in oracle.FOLDED_HELPERS
    )
    if result.stopped is not None and not folded:
        report = scan_bytes(tmp, data, "stream.pkl", rules=rules)
        worst = report.max_severity
        assert worst is not None and worst >= Severity.MEDIUM, f"{result.stopped} unreported in {data!r}"


@SETTINGS
@given(data=generated_streams())
def test_generated_streams(
    data: bytes, worker: oracle.OracleWorker, rules: RuleSet, no_allow_rules: RuleSet, tmp_path: Path
) -> None:
    _check(data, worker, rules, no_allow_rules, tmp_path)


@SETTINGS
@given(data=mutated_streams())
def test_mutated_harvested_streams(
    data: bytes, worker: oracle.OracleWorker, rules: RuleSet, no_allow_rules: RuleSet, tmp_path: Path
) -> None:
    _check(data, worker, rules, no_allow_rules, tmp_path)


# Streams the generated-stream runs found where the unpickler goes on but the
# walker stopped (and the payload runs): regression tests by technique (an empty
# SETITEMS/APPENDS/ADDITEMS is a no-op in _pickle, whatever its target).
TAIL = b"cos\nsystem\n(S'touch modeltrust-pwned'\ntR."


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"S'x'\n(u" + TAIL, id="empty-setitems-on-str"),
        pytest.param(b"S'x'\n(e" + TAIL, id="empty-appends-on-str"),
        pytest.param(b"\x80\x04S'x'\n(\x90" + TAIL, id="empty-additems-on-str"),
        pytest.param(b"K\x01(u" + TAIL, id="empty-setitems-on-int"),
    ],
)
def test_empty_batch_opcodes_do_not_stop_the_walk(stream: bytes, tmp_path: Path, rules: RuleSet) -> None:
    ran = oracle.run_bytes(stream, "pickle", oracle.EVERYTHING)
    assert ran.marker_created  # the payload after the no-op really runs
    report = scan_bytes(tmp_path, stream, "model.pkl", rules=rules)
    assert report.max_severity is not None and report.max_severity >= Severity.HIGH, [
        (f.severity.label, f.message) for f in report.findings
    ]


def test_generator_reaches_the_unpickler(worker: oracle.OracleWorker) -> None:
    """The pieces compose into streams the real unpickler resolves names from."""
    stream = b"\x80\x02" + PIECES[0] + b")R" + PIECES[10] + b"."
    result = worker.load(stream)
    assert result.names[0] == NAMES[0]
