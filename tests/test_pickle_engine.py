"""The opcode walk: every protocol, memo semantics, import resolution, offsets,
and malformed input."""

from __future__ import annotations

import pickle
import pickletools
import struct
from pathlib import Path

import pytest

from modeltrust.findings import Location, Severity
from modeltrust.reader import BytesReader
from modeltrust.rules import RuleSet
from modeltrust.scanners.pickle import PickleContext, finish, scan_pickle_stream


def su(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def walk(data: bytes, rules: RuleSet, **kwargs: object) -> PickleContext:
    ctx = PickleContext(rules=rules, location=Location("t"), findings=[], reader=BytesReader(data), **kwargs)  # type: ignore[arg-type]
    scan_pickle_stream(ctx, 0, len(data))
    finish(ctx)
    return ctx


def ids(ctx: PickleContext) -> list[str]:
    return sorted(f.rule_id for f in ctx.findings)


class Payload:
    def __reduce__(self) -> tuple[object, ...]:
        import os

        return (os.system, ("true",))


@pytest.mark.parametrize("proto", range(6))
def test_os_system_found_in_every_protocol_with_its_offset(proto: int, rules: RuleSet) -> None:
    data = pickle.dumps(Payload(), protocol=proto)
    ctx = walk(data, rules)
    [finding] = [f for f in ctx.findings if f.rule_id == "pickle-os-command"]
    assert finding.severity is Severity.CRITICAL
    assert finding.subject in ("posix.system", "nt.system")
    # The offset points at the opcode that made the import.
    opcode_at = {pos: op.name for op, _, pos in pickletools.genops(data)}
    assert opcode_at[finding.location.offset] in ("GLOBAL", "STACK_GLOBAL")


@pytest.mark.parametrize("proto", range(6))
def test_plain_data_is_clean_in_every_protocol(proto: int, rules: RuleSet) -> None:
    import collections
    import datetime

    value = {
        "a": [1, 2.5, "x", b"y", None, True],
        "t": (1,),
        "od": collections.OrderedDict(k=1),
        "when": datetime.date(2020, 1, 1),
        "s": {1},
        "big": 2**100,
    }
    assert ids(walk(pickle.dumps(value, protocol=proto), rules)) == []


def test_memo_follows_pickle_semantics_when_memoize_and_binput_mix(rules: RuleSet) -> None:
    # memo[0]=decoy, memo[1]=decoy via MEMOIZE; BINPUT 5 = "os"; MEMOIZE then writes
    # index len(memo) == 3, not 2: a scanner that counts MEMOIZE separately reads decoys.
    data = (
        b"\x80\x04"
        + su("torch._utils")
        + b"\x94"
        + su("_rebuild_tensor_v2")
        + b"\x94"
        + su("os")
        + b"q\x05"
        + su("system")
        + b"\x94"
        + b"h\x05h\x03\x93"
        + su("x")
        + b"\x85R."
    )
    ctx = walk(data, rules)
    assert "os.system" in {f.subject for f in ctx.findings}


def test_stack_global_with_computed_operands_is_high(rules: RuleSet) -> None:
    # module name is the result of a call, not a string constant
    data = (
        b"\x80\x04"
        + su("builtins")
        + su("str")
        + b"\x93"
        + su("os")
        + b"\x85R"
        + su("system")
        + b"\x93"
        + su("x")
        + b"\x85R."
    )
    ctx = walk(data, rules)
    assert "pickle-dynamic-import" in ids(ctx)


def test_calling_a_call_result_is_a_dynamic_callable(rules: RuleSet) -> None:
    data = b"\x80\x04" + su("builtins") + su("dict") + b"\x93)R)R."
    ctx = walk(data, rules)
    assert ids(ctx) == ["pickle-dynamic-callable"]
    assert ctx.findings[0].severity is Severity.HIGH


def test_unknown_import_is_medium_and_unknown_call_is_high(rules: RuleSet) -> None:
    referenced = b"\x80\x04" + su("mypkg.models") + su("Config") + b"\x93."
    assert [(f.rule_id, f.severity) for f in walk(referenced, rules).findings] == [
        ("pickle-unknown-import", Severity.MEDIUM)
    ]
    called = b"\x80\x04" + su("mypkg.util") + su("helper") + b"\x93)R."
    assert [(f.rule_id, f.severity) for f in walk(called, rules).findings] == [
        ("pickle-unknown-call", Severity.HIGH)
    ]


def test_reconstructor_base_init_counts_as_a_call(rules: RuleSet) -> None:
    # copyreg._reconstructor(cls, base, state) calls base.__init__(obj, state)
    data = (
        b"\x80\x04"
        + su("copyreg")
        + su("_reconstructor")
        + b"\x93"
        + su("mypkg")
        + su("Gadget")
        + b"\x93"
        + su("mypkg")
        + su("Gadget")
        + b"\x93"
        + su("arg")
        + b"\x87R."
    )
    assert "pickle-unknown-call" in ids(walk(data, rules))
    plain = pickle.dumps(__import__("argparse").Namespace(a=1), protocol=1)  # base is object
    assert ids(walk(plain, rules)) == []


def test_rebuild_from_type_calls_its_first_argument(rules: RuleSet) -> None:
    data = (
        b"\x80\x04"
        + su("torch._tensor")
        + su("_rebuild_from_type_v2")
        + b"\x93("
        + su("mypkg.util")
        + su("gadget")
        + b"\x93"
        + su("torch")
        + su("Tensor")
        + b"\x93)}tR."
    )
    assert "pickle-unknown-call" in ids(walk(data, rules))


def test_newobj_of_unknown_class_is_a_call(rules: RuleSet) -> None:
    """NEWOBJ runs cls.__new__ (numpy.memmap opens files there): judged like REDUCE."""
    data = b"\x80\x04" + su("mypkg.models") + su("Config") + b"\x93)\x81}b."
    assert {(f.rule_id, f.severity) for f in walk(data, rules).findings} == {
        ("pickle-unknown-call", Severity.HIGH)
    }


def test_python2_names_are_mapped(rules: RuleSet) -> None:
    data = b"c__builtin__\neval\n(S'1'\ntR."
    assert "pickle-code-exec" in ids(walk(data, rules))


def test_dotted_name_reaching_os_is_denied(rules: RuleSet) -> None:
    data = b"\x80\x04" + su("logging") + su("os.system") + b"\x93" + su("x") + b"\x85R."
    assert "pickle-os-command" in ids(walk(data, rules))


def test_dunder_walk_is_denied(rules: RuleSet) -> None:
    data = b"\x80\x04" + su("collections") + su("OrderedDict.__init__.__globals__") + b"\x93."
    assert "pickle-attribute-access" in ids(walk(data, rules))


def test_truncated_stream_reports_what_was_seen_and_malformed(rules: RuleSet) -> None:
    data = pickle.dumps(Payload(), protocol=2)[:-1]
    found = ids(walk(data, rules))
    assert "pickle-os-command" in found and "pickle-malformed" in found


def test_corrupt_tail_after_payload(rules: RuleSet) -> None:
    data = pickle.dumps(Payload(), protocol=4)[:-1] + b"\xff\xfe"
    ctx = walk(data, rules)
    malformed = [f for f in ctx.findings if f.rule_id == "pickle-malformed"]
    assert malformed and "unknown opcode 0xff" in malformed[0].message
    assert malformed[0].location.offset == len(data) - 2


def test_second_pickle_after_stop_is_scanned(rules: RuleSet) -> None:
    data = pickle.dumps([1, 2]) + pickle.dumps(Payload(), protocol=2)
    ctx = walk(data, rules)
    assert "pickle-os-command" in ids(ctx) and ctx.stats.pickles == 2


def test_trailing_non_pickle_bytes_are_low(rules: RuleSet) -> None:
    data = pickle.dumps([1, 2]) + b"\x00\x01\x02 not a pickle"
    assert [(f.rule_id, f.severity) for f in walk(data, rules).findings] == [
        ("pickle-trailing-data", Severity.LOW)
    ]


@pytest.mark.parametrize(
    "data, why",
    [
        (b"\x80\x02", "stream ends"),
        (b"\x80\x09.", "unsupported pickle protocol"),
        (b"\x80\x02h\x07.", "memo slot"),
        (b"\x80\x02R.", "stack"),
        (b"\x80\x02X\xff\xff\xff\x7fab.", "ends"),
        (b"\x80\x02T\xff\xff\xff\xff.", "negative"),
        (b"cos\nsystem", "newline"),
        (b"I12x\n.", "integer"),
    ],
)
def test_malformed_streams_are_findings_not_exceptions(data: bytes, why: str, rules: RuleSet) -> None:
    ctx = PickleContext(rules=rules, location=Location("t"), findings=[], reader=BytesReader(data))
    scan_pickle_stream(ctx, 0, len(data))
    messages = [f.message for f in ctx.findings if f.rule_id == "pickle-malformed"]
    assert messages and why in messages[0], messages


def test_extension_opcodes_are_high(rules: RuleSet) -> None:
    for ext in (b"\x82\x01", b"\x83\x01\x02", b"\x84\x01\x02\x03\x04"):
        ctx = walk(b"\x80\x02" + ext + b".", rules)
        assert "pickle-extension-code" in ids(ctx)


def test_build_and_setitems_on_imported_objects_are_high(rules: RuleSet) -> None:
    build = b"\x80\x04" + su("collections") + su("abc") + b"\x93N}\x86b."
    setitems = b"\x80\x04" + su("collections") + su("abc") + b"\x93(" + su("k") + b"Nu."
    for data in (build, setitems):
        assert "pickle-mutates-global" in ids(walk(data, rules))


def test_nested_pickle_in_bytes_is_scanned(rules: RuleSet) -> None:
    inner = pickle.dumps(Payload(), protocol=2)
    outer = b"\x80\x04" + su("pickle") + su("loads") + b"\x93C" + bytes([len(inner)]) + inner + b"\x85R."
    ctx = walk(outer, rules)
    nested = [f for f in ctx.findings if f.rule_id == "pickle-os-command"]
    assert nested and nested[0].location.members and "nested pickle" in nested[0].location.members[0]


def test_nesting_depth_is_bounded(rules: RuleSet) -> None:
    data = pickle.dumps([1])
    for _ in range(12):
        data = (
            b"\x80\x04"
            + su("pickle")
            + su("loads")
            + b"\x93B"
            + struct.pack("<I", len(data))
            + data
            + b"\x85R."
        )
    assert "pickle-opcode-limit" in ids(walk(data, rules))


def test_byte_limit_is_reported(rules: RuleSet) -> None:
    data = pickle.dumps(list(range(1000)), protocol=2)
    assert "pickle-opcode-limit" in ids(walk(data, rules, max_bytes=100))


def test_persistent_ids_outside_torch_are_low(rules: RuleSet) -> None:
    data = b"\x80\x02" + b"X\x01\x00\x00\x00kQ."
    assert [f.severity for f in walk(data, rules).findings] == [Severity.LOW]
    assert ids(walk(data, rules, expect_persistent_ids=True)) == []


def _all_findings(data: bytes, rules: RuleSet, chunk: int) -> list[tuple[str, int | None]]:
    from modeltrust.scanners import joblib

    ctx = PickleContext(
        rules=rules, location=Location("t"), findings=[], reader=BytesReader(data), chunk_size=chunk
    )
    ctx.on_build = joblib.make_build_hook(len(data), ctx)
    scan_pickle_stream(ctx, 0, len(data))
    finish(ctx)
    return sorted((f.rule_id, f.location.offset) for f in ctx.findings)


@pytest.mark.parametrize(
    "name",
    [
        "benign/many_tensors.pt",
        "malicious/payload.joblib",
        "benign/sklearn_pipeline.joblib",
        "malicious/concatenated.pkl",
        "malicious/torch_legacy_payload.ckpt",
    ],
)
def test_chunked_walk_equals_whole_walk(name: str, rules: RuleSet) -> None:
    from modeltrust.scanners.pickle import MARGIN

    from .conftest import FIXTURES

    data = (FIXTURES / name).read_bytes()
    if name.endswith(".pt"):  # the data.pkl member, which spans several small chunks
        import zipfile

        with zipfile.ZipFile(FIXTURES / name) as zf:
            data = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
    whole = _all_findings(data, rules, chunk=1 << 24)
    assert _all_findings(data, rules, chunk=2 * MARGIN) == whole


def test_long_payloads_are_skipped_across_chunks(rules: RuleSet) -> None:
    from modeltrust.scanners.pickle import MARGIN

    big = b"x" * (5 * MARGIN)
    data = pickle.dumps([big, Payload(), big], protocol=4)
    whole = _all_findings(data, rules, chunk=1 << 24)
    assert whole == _all_findings(data, rules, chunk=2 * MARGIN)
    assert [rule for rule, _ in whole] == ["pickle-os-command"]


def test_payload_hidden_in_joblib_array_bytes_is_found(rules: RuleSet, tmp_path: Path) -> None:
    """joblib < 1.2 writes an array's raw bytes right after its wrapper's BUILD
    (no alignment byte). joblib.load skips them; plain pickle.load reads them as
    opcodes. A payload placed there must still be reported."""
    from .conftest import scan_bytes

    payload = pickle.dumps(Payload(), protocol=2)[2:-1]  # opcodes, no PROTO/STOP
    n = len(payload)
    stream = (
        b"\x80\x04" + su("joblib.numpy_pickle") + su("NumpyArrayWrapper") + b"\x93)\x81"
        + b"}(" + su("shape") + b"K" + bytes([n]) + b"\x85" + su("order") + su("C")
        + su("dtype") + su("numpy") + su("dtype") + b"\x93" + su("u1") + b"\x89\x88\x87R" + b"ub"
    )  # fmt: skip
    as_array = scan_bytes(tmp_path, stream + bytes(n) + b".")
    assert not as_array.findings
    hidden = scan_bytes(tmp_path, stream + payload + b".")
    found = [f for f in hidden.findings if f.rule_id == "pickle-os-command"]
    assert found and "plain pickle.load" in found[0].message


def test_getattr_on_an_allowed_class_is_folded_into_an_import(rules: RuleSet) -> None:
    import datetime

    benign = pickle.dumps(datetime.datetime.fromisoformat, protocol=4)  # getattr(datetime, "fromisoformat")
    assert ids(walk(benign, rules)) == []
    unlisted = b"\x80\x04" + su("builtins") + su("getattr") + b"\x93" + su("collections") + su("OrderedDict")
    unlisted += b"\x93" + su("fromkeys") + b"\x86R" + b")R."
    assert ids(walk(unlisted, rules)) == ["pickle-unknown-call"]
    dunder = b"\x80\x04" + su("builtins") + su("getattr") + b"\x93" + su("collections") + su("OrderedDict")
    dunder += b"\x93" + su("__init__") + b"\x86R."
    assert "pickle-attribute-access" in ids(walk(dunder, rules))


def test_getattr_that_cannot_be_folded_is_still_high(rules: RuleSet) -> None:
    import zoneinfo

    folded = pickle.dumps(zoneinfo.ZoneInfo("UTC"), protocol=4)
    assert ids(walk(folded, rules)) == []
    data = b"\x80\x04" + su("builtins") + su("getattr") + b"\x93" + su("builtins") + su("dict") + b"\x93)R"
    data += su("items") + b"\x86R."  # getattr(dict(), "items"): target is a call result
    assert "pickle-attribute-access" in ids(walk(data, rules))


def test_reassigned_key_past_the_item_limit_keeps_the_last_value(rules: RuleSet) -> None:
    """The unpickler's last assignment wins; the model keeps only 64 keys but must
    not keep a stale value for a key assigned again behind the limit."""
    junk = b"".join(su(f"k{i}") + b"N" for i in range(80))
    data = b"\x80\x04}(" + su("dtype") + su("A") + junk + su("dtype") + su("B") + b"u."
    result = walk(data, rules).result
    assert isinstance(result, dict) and result["dtype"] == "B"
