"""The walk goes on wherever a standard unpickler goes on and stops only where
every one raises (issue 8 item 5, issue 9 item 1): the C `_pickle` (pickle.load,
torch, numpy) and the pure-Python `pickle._Unpickler` (joblib always, pandas as
a fallback), whose leniencies differ (INT in base 0 and C strings in C; float()
and int() of lines, list arguments, unbounded memo keys, empty BUILD state,
over-long frames in Python). Lines of any length. The real unpicklers are the
oracle: each stream ends with the import of a probe name, and the walk must
report the probe exactly when one of them reaches it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modeltrust.findings import Location, Severity
from modeltrust.reader import BytesReader
from modeltrust.rules import RuleSet
from modeltrust.scanners.pickle import PickleContext, finish, scan_pickle_stream

from .conftest import FIXTURES
from .oracle import Allow, OracleWorker

sys.path.insert(0, str(FIXTURES))
import pickle_calls

PROBE = ("modeltrust_probe", "reached")
PROBE_GLOBAL = b"cmodeltrust_probe\nreached\n"
# Names the oracle lets the unpicklers resolve before the probe (inert constructors).
HARMLESS = Allow(names=frozenset({("builtins", "list"), ("collections", "OrderedDict")}))


def walk(data: bytes, rules: RuleSet, chunk_size: int = 1 << 24) -> PickleContext:
    ctx = PickleContext(
        rules=rules, location=Location("t"), findings=[], reader=BytesReader(data), chunk_size=chunk_size
    )
    scan_pickle_stream(ctx, 0, len(data))
    finish(ctx)
    return ctx


def walk_reaches_probe(data: bytes, rules: RuleSet, chunk_size: int = 1 << 24) -> bool:
    return any("modeltrust_probe" in f.subject for f in walk(data, rules, chunk_size).findings)


class Loaders:
    """The C and the pure-Python unpickler, each in a worker process."""

    def __init__(self, c: OracleWorker, python: OracleWorker) -> None:
        self.c = c
        self.python = python


@pytest.fixture(scope="module")
def oracle() -> Loaders:
    with OracleWorker(HARMLESS) as c, OracleWorker(HARMLESS, python=True) as python:
        yield Loaders(c, python)  # type: ignore[misc]


def loader_reaches_probe(oracle: Loaders, data: bytes) -> bool:
    """Does either unpickler get as far as the probe import?"""
    reached = False
    for worker in (oracle.c, oracle.python):
        result = worker.load(data)
        assert not result.crashed
        reached = reached or result.stopped == PROBE
    return reached


LINES = [
    b"0", b"1", b"00", b"01", b"+0", b" 1", b"-1", b"0x1", b"0X1f", b"010", b"007", b"08", b"0o7", b"0b11",
    b"1_0", b"0_1", b"1 ", b"\t5", b"5\r", b"1L", b"1LL", b"", b" ", b"+", b"0x", b"1e3",
    b"99999999999999999999",
    b"0777777777777777777777777", b"1\x00junk", b"\x1c5", b"5\xa0", b"-0x10", b"1.5", b"inf", b"-Infinity",
    b"nan", b".5", b"5.", b"1e999", b"1e-999", b"1_0.5", b" 1.5", b"1.5 ", b"1e", b"'abc'", b'"a\\x41"',
    b"'abc", b"'\\x4'", b"'\xff'", b"abc",
]  # fmt: skip


@pytest.mark.parametrize("opcode", [b"I", b"L", b"F", b"S", b"V", b"g", b"p"])
def test_line_arguments_stop_exactly_where_pickle_stops(
    opcode: bytes, rules: RuleSet, oracle: Loaders
) -> None:
    disagreements = []
    for line in LINES:
        if opcode == b"g":  # GET needs memo[0]
            stream = b"Np0\n0" + opcode + line + b"\n0" + PROBE_GLOBAL + b"."
        elif opcode == b"p":
            stream = b"N" + opcode + line + b"\n0" + PROBE_GLOBAL + b"."
        else:
            stream = opcode + line + b"\n0" + PROBE_GLOBAL + b"."
        real = loader_reaches_probe(oracle, stream)
        ours = walk_reaches_probe(stream, rules)
        if real != ours and not (opcode == b"S" and line in ON_PURPOSE):
            disagreements.append((line, real, ours))
    assert disagreements == []


# Python 2 str bytes that are not ASCII stop pickle.loads (encoding="ASCII"), but
# loaders called with encoding="latin1" (old torch and numpy checkpoints) go on:
# the walk goes on too.
ON_PURPOSE = {b"'\xff'"}


@pytest.mark.parametrize("length", [20_000, 300_000])
@pytest.mark.parametrize("chunk", [0, 1 << 24])
def test_lines_longer_than_a_chunk_are_read_like_pickle_reads_them(
    length: int, chunk: int, rules: RuleSet, oracle: Loaders
) -> None:
    """No 16 KiB line limit: a long protocol 0 string is followed by the payload."""
    stream = b"V" + b"x" * length + b"\n0" + PROBE_GLOBAL + b"."
    assert loader_reaches_probe(oracle, stream)
    assert walk_reaches_probe(stream, rules, chunk)


NON_STR_OPERANDS = [
    (b"K\x01K\x02", "ints"),
    (b"\x8c\x02osK\x02", "str and int"),
    (b")\x8c\x06system", "tuple and str"),
    (b"C\x02os\x8c\x06system", "bytes and str"),
    (b"N\x8c\x06system", "None and str"),
    (b"G\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x06system", "float and str"),
]


@pytest.mark.parametrize("operands, why", NON_STR_OPERANDS)
def test_stack_global_on_operands_that_cannot_be_str_stops(
    operands: bytes, why: str, rules: RuleSet, oracle: Loaders
) -> None:
    """_pickle raises "STACK_GLOBAL requires str" before importing: nothing after
    runs (the joblib ColumnTransformer false alarm)."""
    stream = b"\x80\x04" + operands + b"\x93" + PROBE_GLOBAL + b"."
    assert not loader_reaches_probe(oracle, stream), why
    ctx = walk(stream, rules)
    assert not walk_reaches_probe(stream, rules), why
    assert {f.rule_id for f in ctx.findings} == {"pickle-malformed"}, why


def test_stack_global_on_operands_that_may_be_str_is_a_dynamic_import(rules: RuleSet) -> None:
    stream = b"\x80\x04\x8c\x08builtins\x8c\x03str\x93\x8c\x02os\x85R\x8c\x06system\x93."
    assert "pickle-dynamic-import" in {f.rule_id for f in walk(stream, rules).findings}


@pytest.mark.parametrize(
    "body, why",
    [
        (b"K\x01)R", "REDUCE calls an int"),
        (b"\x8c\x01x)R", "REDUCE calls a str"),
        (b"\x8c\x08builtins\x8c\x04list\x93K\x01R", "REDUCE arguments are an int (not iterable)"),
        (b"K\x01)\x81", "NEWOBJ of an int"),
        (b"\x8c\x08builtins\x8c\x04list\x93K\x01\x81", "NEWOBJ arguments are an int"),
        (b"(K\x01o", "OBJ of an int"),
        (b"]}(\x8c\x01aNub", "BUILD with a non-empty state on a list"),
        (b"K\x01Na", "APPEND to an int"),
        (b"}Na", "APPEND to a dict"),
        (b")NNs", "SETITEM on a tuple"),
    ],
)
def test_opcodes_on_values_that_raise_stop_the_walk(
    body: bytes, why: str, rules: RuleSet, oracle: Loaders
) -> None:
    stream = b"\x80\x04" + body + PROBE_GLOBAL + b"."
    assert not loader_reaches_probe(oracle, stream), why
    assert not walk_reaches_probe(stream, rules), why


@pytest.mark.parametrize(
    "body, why",
    [
        (b"]N\x8c\x01k\x8c\x01vs", "SETITEM on a list is list.__setitem__"),
        (b"]NNb", "BUILD with no state"),
        (b"\x8c\x01x(u", "empty SETITEMS on a str (_pickle returns before looking)"),
        (b"\x8c\x01x(e", "empty APPENDS on a str"),
        (b"K\x01(\x90", "empty ADDITEMS on an int"),
        (b"K\x01(u", "empty SETITEMS on an int"),
        (b"}(NNNu", "odd number of SETITEMS items"),
        (b"\x95\x02\x00\x00\x00\x00\x00\x00\x00", "a FRAME that fits"),
        (b"]}b", "BUILD with an empty state on a list (pure Python skips it)"),
        (b"\x8c\x08builtins\x8c\x04list\x93](]K\x01aeR", "REDUCE with a list of arguments (pure Python)"),
        (b"\x95\xff\x00\x00\x00\x00\x00\x00\x00", "a FRAME longer than the data (pure Python)"),
    ],
)
def test_opcodes_that_pickle_accepts_go_on(body: bytes, why: str, rules: RuleSet, oracle: Loaders) -> None:
    stream = b"\x80\x04" + body + PROBE_GLOBAL + b"."
    real = loader_reaches_probe(oracle, stream)
    assert real == walk_reaches_probe(stream, rules), why


def test_list_arguments_to_an_allowed_loader_are_followed(rules: RuleSet) -> None:
    """torch.storage._load_from_bytes(*[payload]) under the pure-Python unpickler."""
    payload = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R."
    stream = (
        b"\x80\x04\x8c\rtorch.storage\x8c\x10_load_from_bytes\x93](C"
        + bytes([len(payload)]) + payload + b"eR."
    )  # fmt: skip
    assert "pickle-os-command" in {f.rule_id for f in walk(stream, rules).findings}


ALPHABET = b"0123456789abcdefxXoObBlL+-_ .eEinfatyIN'\"\\\t\x00\x1c\xa0"


@given(
    opcode=st.sampled_from([b"I", b"L", b"F", b"S", b"p", b"g"]),
    line=st.binary(max_size=12).map(lambda raw: bytes(ALPHABET[b % len(ALPHABET)] for b in raw)),
)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_generated_lines_agree_with_pickle(
    opcode: bytes, line: bytes, rules: RuleSet, oracle: Loaders
) -> None:
    prefix = b"Np0\n0" if opcode == b"g" else (b"N" if opcode == b"p" else b"")
    stream = prefix + opcode + line + b"\n0" + PROBE_GLOBAL + b"."
    real = loader_reaches_probe(oracle, stream)
    if opcode == b"S" and not real and walk_reaches_probe(stream, rules):
        # only non-ASCII Python 2 str bytes may differ (see ON_PURPOSE)
        assert any(b >= 0x80 for b in line), line
        return
    assert walk_reaches_probe(stream, rules) == real, line


def test_stack_global_on_an_instance_of_an_allowed_class_stops(rules: RuleSet, oracle: Loaders) -> None:
    """joblib's plain-pickle view reading array bytes: a module operand that is a
    collections.OrderedDict() instance is not a str, so _pickle raises."""
    stream = b"\x80\x04\x8c\x0bcollections\x8c\x0bOrderedDict\x93)R\x8c\x05dtype\x93" + PROBE_GLOBAL + b"."
    assert not loader_reaches_probe(oracle, stream)
    ctx = walk(stream, rules)
    assert {f.rule_id for f in ctx.findings} == {"pickle-malformed"}


def test_names_of_megabytes_are_unknown_and_fast(rules: RuleSet) -> None:
    import time

    name = ".".join(["a"] * 200_000)
    stream = b"c" + name.encode() + b"\nb\n)R."
    start = time.perf_counter()
    ctx = walk(stream, rules)
    assert time.perf_counter() - start < 5
    assert [f.rule_id for f in ctx.findings] == ["pickle-unknown-call"]
    assert all(len(f.message) < 1000 and len(f.subject) < 300 for f in ctx.findings)


@pytest.mark.parametrize("name", sorted(pickle_calls.PURE_PYTHON_CASES))
def test_payload_after_what_only_pure_python_accepts_runs_and_is_caught(
    name: str, rules: RuleSet, tmp_path: Path
) -> None:
    """joblib.load always unpickles with pickle._Unpickler: what it accepts must
    not stop the walk (regression fixtures from fixtures/pickle_calls.py)."""
    sample = FIXTURES / "malicious" / name
    loader = (
        "import io, pickle, sys\n"
        "try:\n"
        "    pickle._Unpickler(io.BytesIO(open(sys.argv[1], 'rb').read())).load()\n"
        "except Exception:\n"
        "    pass\n"
    )
    subprocess.run([sys.executable, "-c", loader, str(sample)], cwd=tmp_path, timeout=60, check=False)
    assert (tmp_path / "modeltrust-pwned").exists()
    ctx = walk(sample.read_bytes(), rules)
    assert any(f.severity >= Severity.CRITICAL for f in ctx.findings), [f.message for f in ctx.findings]
