"""Every invocation the unpickler makes is judged as a call (issue 8 item 1):
NEWOBJ, BUILD on instances, APPEND/ADDITEMS/SETITEMS on objects that are not
the stream's own containers, methods planted by BUILD state, and arguments an
allowed helper calls. Cython and scikit-learn reconstructors are accepted by
rule (item 3). Fixtures are built by fixtures/pickle_calls.py and proven to
run by tests/test_payloads_are_real.py."""

from __future__ import annotations

import collections
import pickle
import sys
from pathlib import Path

import pytest

from modeltrust.findings import Location, Severity
from modeltrust.reader import BytesReader
from modeltrust.rules import RuleSet, load_rules
from modeltrust.scanners.pickle import PickleContext, finish, scan_pickle_stream

from .conftest import FIXTURES

sys.path.insert(0, str(FIXTURES))
import pickle_calls


def su(text: str) -> bytes:
    return pickle_calls.su(text)


def glob(module: str, name: str) -> bytes:
    return pickle_calls.glob(module, name)


def findings(data: bytes, rules: RuleSet) -> set[tuple[str, Severity]]:
    ctx = PickleContext(rules=rules, location=Location("t"), findings=[], reader=BytesReader(data))
    scan_pickle_stream(ctx, 0, len(data))
    finish(ctx)
    return {(f.rule_id, f.severity) for f in ctx.findings}


def high(data: bytes, rules: RuleSet) -> set[str]:
    return {rule for rule, severity in findings(data, rules) if severity >= Severity.HIGH}


@pytest.mark.parametrize(
    "name, rule",
    [
        ("build_plants_setstate.pkl", "pickle-planted-method"),
        ("build_plants_append.pkl", "pickle-planted-method"),
        ("build_plants_add.pkl", "pickle-planted-method"),
        ("newobj_memmap.pkl", "pickle-unknown-call"),
        ("newobj_ex_memmap.pkl", "pickle-unknown-call"),
        ("copyreg_newobj_memmap.pkl", "pickle-unknown-call"),
        ("generator_ctor_calls_argument.pkl", "pickle-unknown-call"),
    ],
)
def test_invocation_technique_is_high(name: str, rule: str, rules: RuleSet) -> None:
    assert rule in high((FIXTURES / "malicious" / name).read_bytes(), rules)


def test_planted_key_after_many_keys_is_still_seen(rules: RuleSet) -> None:
    """The walk keeps 64 items of a dict; a planted key after them still counts."""
    filler = b"".join(su(f"k{i}") + b"N" for i in range(200))
    data = (
        b"\x80\x04" + pickle_calls.namespace()
        + b"}(" + filler + su("__setstate__") + glob("pathlib", "Path.touch") + b"ub."
    )  # fmt: skip
    assert "pickle-planted-method" in high(data, rules)


def test_planted_key_through_an_ordered_dict_state(rules: RuleSet) -> None:
    data = (
        b"\x80\x04" + pickle_calls.namespace()
        + glob("collections", "OrderedDict") + b")R(" + su("append") + glob("mylib", "f") + b"ub."
    )  # fmt: skip
    assert "pickle-planted-method" in high(data, rules)


def test_computed_state_key_is_high(rules: RuleSet) -> None:
    data = (
        b"\x80\x04" + pickle_calls.namespace()
        + b"}" + glob("builtins", "str") + su("x") + b"\x85R" + b"Nsb."
    )  # fmt: skip
    assert "pickle-planted-method" in high(data, rules)


def test_build_on_an_instance_of_an_unknown_class_is_a_call(rules: RuleSet) -> None:
    """Protocol 0/1: copyreg._reconstructor(cls, object, None) runs no code of
    cls, but BUILD then runs cls.__setstate__."""
    data = (
        b"\x80\x02" + glob("copyreg", "_reconstructor")
        + glob("mylib.models", "Net") + glob("builtins", "object") + b"N\x87R"
        + b"}b."
    )  # fmt: skip
    assert "pickle-unknown-call" in high(data, rules)


@pytest.mark.parametrize("opcode", [b"a", b"e", b"\x90", b"s", b"u"])
def test_container_opcodes_on_an_unknown_object_are_calls(opcode: bytes, rules: RuleSet) -> None:
    obj = glob("mylib.models", "Bag") + b")\x81"
    items = {
        b"a": b"N",
        b"e": b"(N",
        b"\x90": b"(N",
        b"s": su("k") + b"N",
        b"u": b"(" + su("k") + b"N",
    }[opcode]
    data = b"\x80\x04" + obj + items + opcode + b"."
    assert "pickle-unknown-call" in high(data, rules)


def test_generator_ctor_with_an_allowed_bit_generator_is_clean(rules: RuleSet) -> None:
    data = (
        b"\x80\x04" + glob("numpy.random._pickle", "__generator_ctor")
        + su("PCG64") + glob("numpy.random._pickle", "__bit_generator_ctor") + b"\x86R."
    )  # fmt: skip
    assert high(data, rules) == set()


def test_generator_ctor_with_a_computed_ctor_is_high(rules: RuleSet) -> None:
    data = (
        b"\x80\x04" + glob("numpy.random._pickle", "__generator_ctor")
        + su("PCG64") + glob("builtins", "list") + b")R\x86R."
    )  # fmt: skip
    assert "pickle-dynamic-callable" in high(data, rules)


@pytest.mark.parametrize("proto", [0, 2, 4, 5])
def test_real_containers_and_numpy_generators_stay_clean(proto: int, rules: RuleSet) -> None:
    np = pytest.importorskip("numpy")
    value = {
        "od": collections.OrderedDict(a=1, append=2),
        "dd": collections.defaultdict(list, add=[1]),
        "dq": collections.deque([1, 2]),
        "rs": np.random.RandomState(0),
        "gen": np.random.Generator(np.random.PCG64(0)),
        "arr": np.arange(3),
    }
    loud = {
        (rule, sev)
        for rule, sev in findings(pickle.dumps(value, protocol=proto), rules)
        if sev >= Severity.MEDIUM
    }
    assert loud == set()


# --- Cython and scikit-learn reconstructors by rule ----------------------------------------

CYTHON_ALLOW = """\
kind: pickle-allow
version: 2
groups:
  - reason: test classes
    allow:
      - "mylib.fast:Grid"
      - "mylib.fast:Other"
      - "mylib.slow:Grid"
"""


@pytest.fixture
def cython_rules(tmp_path: Path) -> RuleSet:
    path = tmp_path / "allow.yaml"
    path.write_text(CYTHON_ALLOW)
    return load_rules([path])


def pyx(
    helper_module: str, helper: str, cls_module: str, cls: str, extra: bytes = b"J\x01\x02\x03\x04N\x87"
) -> bytes:
    return b"\x80\x04" + glob(helper_module, helper) + glob(cls_module, cls) + extra + b"R."


def test_cython_unpickle_of_its_own_allowed_class_is_clean(cython_rules: RuleSet) -> None:
    data = pyx("mylib.fast", "__pyx_unpickle_Grid", "mylib.fast", "Grid")
    assert findings(data, cython_rules) == set()


@pytest.mark.parametrize(
    "helper_module, helper, cls_module, cls, why",
    [
        ("mylib.fast", "__pyx_unpickle_Grid", "mylib.fast", "Other", "another class"),
        ("mylib.fast", "__pyx_unpickle_Grid", "mylib.slow", "Grid", "same name, other module"),
        ("mylib.fast", "__pyx_unpickle_Evil", "mylib.fast", "Evil", "a class not allowed"),
        ("mylib.fast", "rebuild_Grid", "mylib.fast", "Grid", "another callable"),
    ],
)
def test_cython_unpickle_otherwise_stays_high(
    helper_module: str, helper: str, cls_module: str, cls: str, why: str, cython_rules: RuleSet
) -> None:
    data = pyx(helper_module, helper, cls_module, cls)
    assert "pickle-unknown-call" in high(data, cython_rules), why


def test_cython_unpickle_with_other_arguments_stays_high(cython_rules: RuleSet) -> None:
    data = pyx("mylib.fast", "__pyx_unpickle_Grid", "mylib.fast", "Grid", extra=b"\x85")
    assert "pickle-unknown-call" in high(data, cython_rules)


def test_sklearn_newobj_of_its_own_allowed_class_is_clean(cython_rules: RuleSet) -> None:
    data = b"\x80\x04" + glob("mylib.fast", "newObj") + glob("mylib.fast", "Grid") + b"\x85R}b."
    assert findings(data, cython_rules) == set()
    other = b"\x80\x04" + glob("mylib.fast", "newObj") + glob("mylib.slow", "Grid") + b"\x85R}b."
    assert "pickle-unknown-call" in high(other, cython_rules)
    unknown = b"\x80\x04" + glob("mylib.fast", "newObj") + glob("mylib.fast", "Evil") + b"\x85R}b."
    assert "pickle-unknown-call" in high(unknown, cython_rules)


def test_real_cython_and_newobj_pickles_need_only_their_classes(tmp_path: Path) -> None:
    """numpy's SeedSequence (Cython) and a scikit-learn KDTree (newObj): with
    their classes allowed, the helpers need no entry of their own."""
    np = pytest.importorskip("numpy")
    neighbors = pytest.importorskip("sklearn.neighbors")
    path = tmp_path / "allow.yaml"
    path.write_text(
        "kind: pickle-allow\nversion: 2\ngroups:\n  - reason: test\n    allow:\n"
        "      - numpy.random.bit_generator:SeedSequence\n"
        "      - sklearn.neighbors._kd_tree:KDTree\n"
        "      - sklearn.metrics._dist_metrics:EuclideanDistance64\n"
    )
    rules = load_rules([path])
    for value in (np.random.SeedSequence(1), neighbors.KDTree(np.arange(6.0).reshape(3, 2))):
        data = pickle.dumps(value, protocol=4)
        assert not {r for r, s in findings(data, rules) if s >= Severity.MEDIUM}, type(value)
