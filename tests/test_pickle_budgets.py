"""Hostile pickles end in a finding, never in a crash, a hang or a memory
blow-up (issue 9 item 4, pickle part): folds chained as deep as the stream
allows, chained STACK_GLOBALs, a flood of distinct imports, memo/stack/mark
bombs, one payload handed to loads again and again."""

from __future__ import annotations

import base64
import pickle
import subprocess
import sys
import time
from collections import Counter

import pytest

from modeltrust.findings import Location, Severity
from modeltrust.reader import BytesReader
from modeltrust.rules import RuleSet
from modeltrust.scanners.pickle import (
    MAX_FINDINGS_PER_RULE,
    MAX_NAMES,
    PickleContext,
    finish,
    scan_pickle_stream,
)

from .oracle import SRC


def su(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def b64_chain(depth: int) -> bytes:
    """pickle.loads(b64decode(b64decode(...(text)...))): `depth` nested calls."""
    leaf = base64.b64encode(pickle.dumps({"x": 1}, protocol=4)).decode()
    head = b"\x80\x04" + su("pickle") + su("loads") + b"\x93" + su("base64") + su("b64decode") + b"\x93\x940"
    return head + b"h\x00" * depth + su(leaf) + b"\x85R" * depth + b"\x85R."


def stack_globals(count: int) -> bytes:
    return b"\x80\x04" + su("os") + (su("x") + b"\x93") * count + b"."


def many_imports(count: int) -> bytes:
    return b"\x80\x02" + b"".join(b"cm%d\nn\n0" % i for i in range(count)) + b"N."


def same_payload_many_times(count: int) -> bytes:
    inner = pickle.dumps(list(range(2000)), protocol=4)
    blob = b"B" + len(inner).to_bytes(4, "little") + inner
    return (
        b"\x80\x04"
        + su("pickle")
        + su("loads")
        + b"\x93\x94"
        + blob
        + b"\x940"
        + b"h\x00h\x01\x85R0" * count
        + b"0."
    )


BOMBS = {
    "memo": b"\x80\x04N" + b"\x94" * 1_200_000 + b".",
    "stack": b"\x80\x04" + b"N" * 1_200_000 + b".",
    "dicts": b"\x80\x04" + b"}" * 1_200_000 + b".",
    "marks": b"\x80\x04" + b"(" * 400_000 + b".",
}


def walk(data: bytes, rules: RuleSet) -> tuple[PickleContext, float]:
    ctx = PickleContext(rules=rules, location=Location("t"), findings=[], reader=BytesReader(data))
    start = time.perf_counter()
    scan_pickle_stream(ctx, 0, len(data))
    finish(ctx)
    return ctx, time.perf_counter() - start


def test_deep_fold_chain_needs_no_recursion(rules: RuleSet) -> None:
    ctx, seconds = walk(b64_chain(100_000), rules)
    assert seconds < 5
    assert any(f.severity >= Severity.HIGH for f in ctx.findings)


def test_fold_within_the_depth_bound_is_followed(rules: RuleSet) -> None:
    """Three levels of base64 around a payload: the nested pickle is walked."""
    payload = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R."
    text = payload
    for _ in range(3):
        text = base64.b64encode(text)
    data = (
        b"\x80\x04" + su("pickle") + su("loads") + b"\x93"
        + (su("base64") + su("b64decode") + b"\x93") * 3 + su(text.decode()) + b"\x85R\x85R\x85R\x85R."
    )  # fmt: skip
    assert "pickle-os-command" in {f.rule_id for f in walk(data, rules)[0].findings}


def test_chained_stack_globals_stay_small_and_capped(rules: RuleSet) -> None:
    ctx, seconds = walk(stack_globals(30_000), rules)
    assert seconds < 5
    counts = Counter(f.rule_id for f in ctx.findings)
    assert counts["pickle-dynamic-import"] == MAX_FINDINGS_PER_RULE + 1  # the last one says how many more
    assert all(len(f.message) < 1000 for f in ctx.findings)


def test_a_flood_of_distinct_imports_is_fast_and_summarised(rules: RuleSet) -> None:
    ctx, seconds = walk(many_imports(MAX_NAMES + 5000), rules)
    assert seconds < 5
    assert any("5000 more distinct names" in f.message for f in ctx.findings)
    assert len(ctx.findings) <= MAX_FINDINGS_PER_RULE + 1


def test_one_payload_handed_to_loads_many_times_is_walked_once(rules: RuleSet) -> None:
    _, seconds = walk(same_payload_many_times(50_000), rules)
    assert seconds < 5


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_model_budgets_end_the_walk_with_a_high_finding(name: str, rules: RuleSet) -> None:
    ctx, seconds = walk(BOMBS[name], rules)
    assert seconds < 5
    [limit] = [f for f in ctx.findings if f.rule_id == "pickle-opcode-limit"]
    assert limit.severity is Severity.HIGH


def test_memo_bomb_stays_under_256_mib() -> None:
    """A 10 MB stream of MEMOIZE opcodes, in a fresh process."""
    code = (
        "import sys\n"
        "from modeltrust.rules import load_rules\n"
        "from modeltrust.findings import Location\n"
        "from modeltrust.reader import BytesReader\n"
        "from modeltrust.scanners.pickle import PickleContext, finish, scan_pickle_stream\n"
        "data = b'\\x80\\x04N' + b'\\x94' * 10_000_000 + b'.'\n"
        "ctx = PickleContext(rules=load_rules(), location=Location('t'), findings=[],\n"
        "                    reader=BytesReader(data))\n"
        "scan_pickle_stream(ctx, 0, len(data)); finish(ctx)\n"
        # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec (the forking test runner's)
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
    )
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert int(out.stdout.strip()) < 256 * 1024, out.stdout


def test_long_line_past_the_line_budget_is_high(rules: RuleSet) -> None:
    from modeltrust.scanners.pickle import MAX_LINE

    data = b"V" + b"x" * (MAX_LINE + 1024) + b"\n0N."
    ctx, _ = walk(data, rules)
    assert [f.severity for f in ctx.findings if f.rule_id == "pickle-opcode-limit"] == [Severity.HIGH]


def test_chain_of_persistent_ids_is_described_without_recursion(rules: RuleSet) -> None:
    """65,530 BINPERSID opcodes stacked on one value (found by bench/fuzz.py)."""
    ctx, seconds = walk(b"\x80\x04N" + b"Q" * 65_530 + b".", rules)
    assert seconds < 5
    assert [f.rule_id for f in ctx.findings] == ["pickle-persistent-id"]
