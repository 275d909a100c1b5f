"""numpy's dtype rules and joblib's wrapper classes, as reimplemented in
scanners/npdtype.py and scanners/joblib.py, checked against the real
libraries (imported here, in the test process: building dtypes and listing
classes runs nothing from a file)."""

from __future__ import annotations

import importlib
import itertools
import pkgutil
import warnings

import pytest

from modeltrust.scanners import npdtype
from modeltrust.scanners.joblib import WRAPPERS

np = pytest.importorskip(
    "numpy", reason="numpy is the reference for its own dtype rules (pip install '.[fixtures]')"
)

STRINGS = [
    "O", "|O", "=O", "<O", "O8", "O4", "object", "object_", "(1,)O", "(2,3)O", "(2,)f8", "f8,O",
    "i4,(2,)O", "f8,i4", "a,O", "f8", "<f8", ">i4", "|b1", "?", "b", "S5", "U3", "V8", "M8[ns]", "m8[s]",
    "c16", "float64", "int32", "bool", "str", "bytes", "Object0", "(2)O", " O", "O ", "f8, O",
    "[('a', 'O')]", "d", "g", "p", "P",
]  # fmt: skip
STRUCTURES: list[object] = [
    [("a", "<f8")],
    [("a", "<f8"), ("b", "|O")],
    [("a", "<f8", (2,)), ("b", "O", (1,))],
    [("a", [("x", "<i4"), ("y", "O")])],
    [("a", [("x", "<i4"), ("y", "<f8")])],
    [(("title", "a"), "O")],
    [("", "|V4"), ("b", "<i4")],
    ("O", (2,)),
    ("<f8", (2,)),
    (("O", (1,)), (2,)),
    ["aO"],  # a two-character string field unpacks to (name, code)
    ["af"],
    {"aO": 1},
    [("a", "O", (2,), "extra")],
    [1],
    [],
    None,
    3,
]


def _numpy_has_objects(descr: object) -> bool | None:
    """descr_to_dtype(descr).hasobject, or None when numpy rejects it."""
    from numpy.lib import format as npformat

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bool(npformat.descr_to_dtype(descr).hasobject)
    except Exception:  # noqa: BLE001 - numpy raises many types for bad descriptors
        return None


@pytest.mark.parametrize("descr", STRINGS + STRUCTURES, ids=repr)
def test_npy_descriptor_objects_match_numpy(descr: object) -> None:
    expected = _numpy_has_objects(descr)
    ours = npdtype.npy_descr_has_objects(descr)
    if expected is None:
        return  # numpy refuses the header: nothing is unpickled, whatever we answer
    assert ours is expected


def test_every_numpy_name_for_the_object_type_is_caught() -> None:
    for name in np.sctypeDict:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if np.dtype(name).hasobject:
                assert npdtype.npy_descr_has_objects(name), name


# Datetimes are left out: numpy itself crashes on states without datetime metadata.
CODES = ["f8", "O8", "O4", "i4", "u2", "b1", "?", "d", "g", "S5", "S0", "U3", "V16", "c16", "f16", "f2"]
STATES: list[object] = [None]
for version, elsize, flags in itertools.product(
    range(-1, 6), (-1, 0, 4, 16, 100), (0, 1, 2, 63, 16, -1, -127, 255, 256)
):
    base = (version, "<", None, None, None, elsize, -1, flags)
    STATES += [base, (*base, None), base[:7]]
STATES += [("|", None, None, 24, 1), ("|", None, None, -1, -1), (3, "|", None, None, None, -1, -1, True)]


def _numpy_layout(code: str, state: object) -> tuple[int, bool] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dtype = np.dtype(code, False, True)
            if state is not None:
                dtype.__setstate__(state)
            return dtype.itemsize, bool(dtype.hasobject)
    except Exception:  # noqa: BLE001
        return None


@pytest.mark.parametrize("code", CODES)
def test_pickled_dtype_layout_matches_numpy(code: str) -> None:
    for state in STATES:
        expected = _numpy_layout(code, state)
        try:
            ours = npdtype.pickled_dtype_layout(code, state)
        except npdtype.DtypeError:
            # Failing closed is allowed only where numpy fails or gives a
            # size no reader can use; never for a dtype numpy itself writes.
            assert expected is None or expected[0] < 0, (code, state, expected)
            continue
        if expected is not None:
            assert (ours.itemsize, ours.has_objects) == expected, (code, state)


def test_dtypes_numpy_pickles_are_all_modelled() -> None:
    dtypes = [
        np.dtype(c) for c in ("f8", "O", "i1", "u8", "c8", "?", "S7", "U5", "V3", "M8[ns]", "m8[D]", "f2")
    ]
    dtypes += [
        np.dtype([("a", "f8"), ("b", "O")]),
        np.dtype(("O", (2,))),
        np.dtype([("a", "i4")], align=True),
    ]
    for dtype in dtypes:
        _cls, (code, _align, _copy), state = dtype.__reduce__()
        layout = npdtype.pickled_dtype_layout(code, state)
        assert (layout.itemsize, layout.has_objects) == (dtype.itemsize, dtype.hasobject), dtype


def test_every_joblib_name_for_a_wrapper_is_known() -> None:
    joblib = pytest.importorskip("joblib")
    from joblib.numpy_pickle import NumpyArrayWrapper
    from joblib.numpy_pickle_compat import NDArrayWrapper

    found = set()
    for info in pkgutil.walk_packages(joblib.__path__, "joblib."):
        if "test" in info.name or "externals" in info.name:
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # noqa: BLE001 - optional backends
            continue
        for attr, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, (NumpyArrayWrapper, NDArrayWrapper)):
                found.add(f"{info.name}.{attr}")
    assert found and found <= set(WRAPPERS), sorted(found - set(WRAPPERS))


def test_string_dtype_holds_references() -> None:
    """numpy 2's StringDType: joblib writes its arrays as a nested pickle."""
    from modeltrust.scanners.joblib import _STRING_DTYPE, _STRING_DTYPE_ITEMSIZE

    dtypes = getattr(np, "dtypes", None)
    if dtypes is None or not hasattr(dtypes, "StringDType"):
        pytest.skip("numpy without StringDType")
    for dtype in (dtypes.StringDType(), dtypes.StringDType(na_object=None)):
        func, _args = dtype.__reduce__()[:2]
        assert f"{func.__module__}.{func.__name__}" in _STRING_DTYPE
        assert dtype.hasobject and dtype.itemsize == _STRING_DTYPE_ITEMSIZE
