"""dill and cloudpickle: data scans clean, code stays high.

dill writes ordinary data with helpers of `dill._dill` (denied as a whole:
most of dill rebuilds code): `_create_array(f, args, state, npdict)` for every
NumPy array, `_load_type('slice')` for builtin types, `_eval_repr('Ellipsis')`
for singletons and ranges; cloudpickle writes `_builtin_type('SimpleNamespace')`.
The walker reads each call as what it does (src/modeltrust/scanners/
pickler_helpers.py); functions, lambdas and classes by value are code and
stay high. Payloads are harmless (they create `modeltrust-pwned` in the
oracle's temp dir) and each is proven to run with the real unpickler.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import fractions
import pickle
import struct
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from modeltrust.findings import ScanReport, Severity
from modeltrust.rules import RuleSet
from modeltrust.scanners import pickler_helpers

from . import oracle
from .conftest import MARKER, scan_bytes

dill = pytest.importorskip("dill", reason="dill is in the fixtures extra")
cloudpickle = pytest.importorskip("cloudpickle", reason="cloudpickle is in the fixtures extra")
np = pytest.importorskip("numpy", reason="numpy is in the fixtures extra")

DILL_SETTINGS = {"default": {}, "recurse": {"recurse": True}, "byref": {"byref": True}}


def _loud(report: ScanReport) -> list[str]:
    return [
        f"{f.severity.label} {f.subject}: {f.message}"
        for f in report.findings
        if f.severity >= Severity.MEDIUM
    ]


def _data() -> dict[str, Callable[[], object]]:
    def frame() -> object:
        pd = pytest.importorskip("pandas")
        return pd.DataFrame(
            {"a": [1, 2], "b": ["x", "y"], "c": pd.Categorical(["u", "v"])},
            index=pd.date_range("2024-01-01", periods=2, tz="UTC"),
        )

    def model() -> object:
        pytest.importorskip("sklearn")
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x = np.random.default_rng(0).normal(size=(20, 3))
        return make_pipeline(StandardScaler(), LogisticRegression()).fit(x, np.arange(20) % 2)

    return {
        "dict_of_arrays": lambda: {"a": np.zeros(2), "b": np.arange(6, dtype=np.int8).reshape(2, 3)},
        "array_kinds": lambda: [
            np.array(["a", "bc"]),
            np.array([1, None], dtype=object),
            np.ma.masked_array([1, 2], [0, 1]),
            np.rec.fromrecords([(1, "a")]),
            np.array([("x", 1)], dtype=[("n", "U3"), ("v", "i4")]),
            np.arange("2024-01-01", "2024-01-04", dtype="datetime64[D]"),
            np.zeros((2, 2), order="F"),
            np.zeros(0),
            np.matrix([[1, 2]]),
        ],
        "numpy_scalars_and_random": lambda: [np.float32(1.5), np.int64(3), np.random.default_rng(1)],
        "stdlib": lambda: [
            collections.OrderedDict(a=1),
            collections.defaultdict(list),
            datetime.datetime(2024, 1, 1),
            decimal.Decimal("1.5"),
            fractions.Fraction(1, 3),
            {1, 2},
            frozenset([1]),
            bytearray(b"y"),
            slice(1, 2),
            range(-3, 10, 2),
            range(5),
            Ellipsis,
            NotImplemented,
            ValueError("bad"),
            types.SimpleNamespace(a=1),
        ],
        "builtin_types_as_values": lambda: [int, float, dict, type(None), type(Ellipsis), np.ndarray],
        "frame": frame,
        "fitted_pipeline": model,
    }


@pytest.mark.parametrize("name", sorted(_data()))
def test_dill_and_cloudpickle_data_scans_clean(name: str, rules: RuleSet, tmp_path: Path) -> None:
    obj = _data()[name]()
    for protocol in (2, 4, 5):
        for setting, kwargs in DILL_SETTINGS.items():
            data = dill.dumps(obj, protocol=protocol, **kwargs)
            loud = _loud(scan_bytes(tmp_path, data, "data.pkl", rules=rules))
            assert not loud, f"dill {setting} p{protocol}: {loud}"
        loud = _loud(scan_bytes(tmp_path, cloudpickle.dumps(obj, protocol=protocol), "data.pkl", rules=rules))
        assert not loud, f"cloudpickle p{protocol}: {loud}"


@dataclasses.dataclass
class _Local:
    x: int


def _code_objects() -> dict[str, Callable[[], object]]:
    def closure() -> object:
        k = 3
        return lambda v: v + k

    def local_class() -> object:
        class Inner:
            def method(self) -> int:
                return 1

        return Inner

    return {"lambda": lambda: lambda v: v * 2, "closure": closure, "local_class": local_class}


@pytest.mark.parametrize("name", sorted(_code_objects()))
def test_code_by_value_stays_high(name: str, rules: RuleSet, tmp_path: Path) -> None:
    obj = _code_objects()[name]()
    for protocol in (2, 5):
        for setting, kwargs in DILL_SETTINGS.items():
            try:
                data = dill.dumps(obj, protocol=protocol, **kwargs)
            except pickle.PicklingError:  # byref: a local class has no reference to store
                continue
            report = scan_bytes(tmp_path, data, "code.pkl", rules=rules)
            high = report.max_severity is not None and report.max_severity >= Severity.HIGH
            assert high, (setting, protocol)
        report = scan_bytes(tmp_path, cloudpickle.dumps(obj, protocol=protocol), "code.pkl", rules=rules)
        assert report.max_severity is not None and report.max_severity >= Severity.HIGH, protocol


# --- crafted streams: what the helpers really do -------------------------------------------


def _str(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _call(func: bytes, *args: bytes) -> bytes:
    return func + _tuple(*args) + b"R"


def _pickle(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


DILL = "dill._dill"
RECONSTRUCT = _global("numpy._core.multiarray", "_reconstruct")
ARRAY_ARGS = _tuple(_global("numpy", "ndarray"), _tuple(b"K\x00"), _str("b"))
TOUCH = f"touch {MARKER}"
EVAL_PAYLOAD = f"open({MARKER!r}, 'w').close()"


def array_calls_os_system() -> bytes:
    """_create_array(f, args, ...) runs f(*args)."""
    return _pickle(_call(_global(DILL, "_create_array"), _global("os", "system"), _tuple(_str(TOUCH)), b"N"))


def array_reconstructs_unknown_class() -> bytes:
    """f is an allowed rebuilder; the class it instantiates is not allowed."""
    args = _tuple(_global("collections", "namedtuple"), _tuple(b"K\x00"), _str("b"))
    return _pickle(_call(_global(DILL, "_create_array"), RECONSTRUCT, args, b"N"))


def array_npdict_plants_setstate() -> bytes:
    npdict = b"}" + _str("__setstate__") + _global("os", "system") + b"s"
    return _pickle(_call(_global(DILL, "_create_array"), RECONSTRUCT, ARRAY_ARGS, b"N", npdict))


def eval_repr_runs_code() -> bytes:
    return _pickle(_call(_global(DILL, "_eval_repr"), _str(EVAL_PAYLOAD)))


def eval_repr_range_with_tail() -> bytes:
    return _pickle(_call(_global(DILL, "_eval_repr"), _str(f"range(0, 3) and {EVAL_PAYLOAD}")))


def load_type_code() -> bytes:
    """_load_type('FunctionType') is types.FunctionType."""
    return _pickle(_call(_global(DILL, "_load_type"), _str("FunctionType")) + b"0" + b"N")


def load_type_computed() -> bytes:
    name = _call(_global("builtins", "str"), _str("CodeType"))
    return _pickle(_call(_call(_global(DILL, "_load_type"), name), _str("x")))


def type_with_three_arguments() -> bytes:
    return _pickle(_call(_global("builtins", "type"), _str("X"), _tuple(), b"}"))


def cloudpickle_builtin_type_new_class() -> bytes:
    """_builtin_type(name) is getattr(types, name): types.new_class calls its callback."""
    func = _call(_global("cloudpickle.cloudpickle", "_builtin_type"), _str("new_class"))
    return _pickle(_call(func, _str("X")))


def cloudpickle_builtin_type_function() -> bytes:
    return _pickle(_call(_global("cloudpickle.cloudpickle", "_builtin_type"), _str("FunctionType")) + b"0N")


HIGH = {
    "array_calls_os_system": (array_calls_os_system, Severity.CRITICAL),
    "array_reconstructs_unknown_class": (array_reconstructs_unknown_class, Severity.HIGH),
    "array_npdict_plants_setstate": (array_npdict_plants_setstate, Severity.CRITICAL),
    "eval_repr_runs_code": (eval_repr_runs_code, Severity.CRITICAL),
    "eval_repr_range_with_tail": (eval_repr_range_with_tail, Severity.CRITICAL),
    "load_type_code": (load_type_code, Severity.CRITICAL),
    "load_type_computed": (load_type_computed, Severity.HIGH),
    "type_with_three_arguments": (type_with_three_arguments, Severity.HIGH),
    "cloudpickle_builtin_type_new_class": (cloudpickle_builtin_type_new_class, Severity.HIGH),
    "cloudpickle_builtin_type_function": (cloudpickle_builtin_type_function, Severity.CRITICAL),
}
PROVEN = ("array_calls_os_system", "eval_repr_runs_code", "eval_repr_range_with_tail")


@pytest.mark.parametrize("technique", PROVEN)
def test_helper_payload_really_runs(technique: str) -> None:
    assert oracle.run_bytes(HIGH[technique][0](), "pickle", oracle.EVERYTHING).marker_created


@pytest.mark.parametrize("technique", sorted(HIGH))
def test_helper_misuse_stays_high(technique: str, rules: RuleSet, tmp_path: Path) -> None:
    make, floor = HIGH[technique]
    report = scan_bytes(tmp_path, make(), "model.pkl", rules=rules)
    assert report.max_severity is not None and report.max_severity >= floor, _loud(report)


def test_array_helper_as_dill_writes_it_is_clean(rules: RuleSet, tmp_path: Path) -> None:
    state = _tuple(
        b"K\x01",
        _tuple(b"K\x02"),
        _call(_global("numpy", "dtype"), _str("f8")),
        b"\x89",
        b"C\x10" + bytes(16),
    )
    data = _pickle(_call(_global(DILL, "_create_array"), RECONSTRUCT, ARRAY_ARGS, state, b"N"))
    assert not _loud(scan_bytes(tmp_path, data, "a.pkl", rules=rules))
    assert oracle.run_bytes(data, "pickle", oracle.EVERYTHING).completed


def test_a_folded_helper_used_another_way_is_still_reported(rules: RuleSet, tmp_path: Path) -> None:
    """Folding suppresses the helper's own import only when every use was a call it read."""
    folded = _call(_global(DILL, "_load_type"), _str("slice"))
    passed_on = _call(_global("copyreg", "__newobj__"), _global(DILL, "_load_type"))
    data = _pickle(_tuple(folded, passed_on))
    report = scan_bytes(tmp_path, data, "m.pkl", rules=rules)
    assert report.max_severity is not None and report.max_severity >= Severity.HIGH


def test_range_arguments_match_repr_exactly() -> None:
    for value in (range(0), range(3), range(-5, 10, 2), range(10**30, -1, -7)):
        assert pickler_helpers.range_arguments(repr(value)) is not None
        assert range(*pickler_helpers.range_arguments(repr(value)) or ()) == value
    for text in (
        "range(01, 2)",
        "range(0,2)",
        "range(0, 2) ",
        "range(0, 2)\n",
        "range(+1, 2)",
        "range(1_0, 2)",
    ):
        assert pickler_helpers.range_arguments(text) is None, text


def test_type_table_matches_installed_dill() -> None:
    """Every name the walker reads means what the installed dill's table says."""
    import builtins

    from dill import _dill

    wrong = {}
    for name, (module, qualname) in pickler_helpers.TYPES.items():
        if name not in _dill._reverse_typemap:
            continue
        typ = _dill._reverse_typemap[name]
        owner = types if module == "types" else builtins if module == "builtins" else __import__(module)
        if getattr(owner, qualname, None) is not typ and (typ.__module__, typ.__qualname__) != (
            module,
            qualname,
        ):
            wrong[name] = (module, qualname)
    assert not wrong
    known = set(pickler_helpers.TYPES) | pickler_helpers.SINGLETON_TYPES
    covered = len(known & set(_dill._reverse_typemap)) / len(_dill._reverse_typemap)
    assert covered > 0.95, sorted(set(_dill._reverse_typemap) - known)


def test_local_dataclass_instance_needs_its_class_allowed(rules: RuleSet, tmp_path: Path) -> None:
    """An instance of an importable class is data only if the class is allowed:
    the helpers do not vouch for classes."""
    report = scan_bytes(tmp_path, dill.dumps(_Local(1), protocol=4), "d.pkl", rules=rules)
    assert report.max_severity is not None and report.max_severity >= Severity.HIGH
