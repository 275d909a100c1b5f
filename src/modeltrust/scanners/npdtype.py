"""NumPy's dtype rules, reimplemented (numpy is never imported): whether a
descriptor holds Python objects and how many bytes one item takes.

Two loaders depend on them. `numpy.load` unpickles an .npy file's data when
the header's dtype `hasobject`; joblib skips `prod(shape) * itemsize` raw
bytes after a pickled array wrapper unless the wrapper's dtype `hasobject`,
in which case a nested pickle follows. Both must be answered exactly as numpy
answers them, whatever spelling the file uses - 'object', '(1,)O', 'f8,O',
nested structs, a pickled 'f8' whose state sets the object flag. The tests
check these functions against numpy itself.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class DtypeError(ValueError):
    """A descriptor this model does not follow (the caller fails closed)."""


class Layout(NamedTuple):
    itemsize: int
    has_objects: bool


# --- .npy header descriptors (numpy.lib.format.descr_to_dtype) ----------------------

_MAX_NESTING = 64


def npy_descr_has_objects(descr: object, depth: int = 0) -> bool:
    """Would `descr_to_dtype(descr).hasobject` be true? Errors numpy would
    raise (so that nothing is unpickled) answer False; shapes of input this
    model cannot follow answer True (the data is then analysed as a pickle)."""
    if depth > _MAX_NESTING:
        return True
    if isinstance(descr, str):
        # numpy.dtype(str): the object type is spelled 'O' or 'object[_]', also
        # inside comma lists and after a subarray shape; no other name maps to it.
        return "O" in descr or "object" in descr
    if isinstance(descr, tuple):
        return bool(descr) and npy_descr_has_objects(descr[0], depth + 1)
    if isinstance(descr, (int, float, complex, bool)) or descr is None:
        return False  # not iterable: numpy raises before reading data
    try:
        fields = list(descr)  # type: ignore[call-overload]  # lists, dict keys, sets, bytes
    except TypeError:
        return False
    for field in fields:
        if isinstance(field, (int, float, complex, bool)) or field is None:
            return False  # len() of it raises in numpy: nothing is read
        parts = tuple(field) if not isinstance(field, tuple) else field  # a 2-char str is (name, code)
        if len(parts) not in (2, 3):
            return False  # numpy fails to unpack the field
        if npy_descr_has_objects(parts[1], depth + 1):
            return True
    return False


# --- dtypes rebuilt by a pickle: numpy.dtype(obj, align, copy) + __setstate__ ---------

# One-character type codes without a size (Linux x86-64 sizes, like numpy there).
_CHAR_SIZES = {
    "?": 1, "b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "q": 8, "Q": 8,
    "p": 8, "P": 8, "e": 2, "f": 4, "d": 8, "g": 16, "F": 8, "D": 16, "G": 32,
    "O": 8, "M": 8, "m": 8, "S": 0, "a": 0, "U": 0, "V": 0,
}  # fmt: skip
# Kind + size spellings numpy accepts (the form numpy itself pickles: 'f8', 'O8', 'S5').
_SIZED = {
    "b": (1,), "i": (1, 2, 4, 8), "u": (1, 2, 4, 8), "f": (2, 4, 8, 16), "c": (8, 16, 32),
}  # fmt: skip
_FLEXIBLE = {"S": 1, "a": 1, "U": 4, "V": 1}
_TYPESTR = re.compile(r"^[<>|=]?([?a-zA-Z])(\d*)(\[\w+\])?$")
_NPY_ITEM_HASOBJECT = 0x01


def _base_layout(obj: str) -> tuple[str, int, bool]:
    """(kind, itemsize, has_objects) of numpy.dtype(obj) before any state."""
    match = _TYPESTR.match(obj)
    if match is None:
        raise DtypeError(f"dtype {obj!r} is not a type code this scanner models")
    kind, digits, unit = match.group(1), match.group(2), match.group(3)
    if unit and kind not in "Mm":
        raise DtypeError(f"dtype {obj!r} has a unit but is not a datetime")
    if kind in _FLEXIBLE:
        return kind, int(digits or 0) * _FLEXIBLE[kind], False
    if kind in "OMm":
        return kind, 8, kind == "O"  # 'O4' is still an 8-byte object pointer; 'M8[ns]'
    if not digits:
        if kind not in _CHAR_SIZES:
            raise DtypeError(f"unknown dtype code {obj!r}")
        return kind, _CHAR_SIZES[kind], False
    size = int(digits)
    if size not in _SIZED.get(kind, ()):
        raise DtypeError(f"dtype {obj!r} is not a size numpy accepts")
    return kind, size, False


def _flags(value: object) -> int:
    if not isinstance(value, int):  # bool is an int, as for numpy
        raise DtypeError("dtype flags are not an integer")
    if -128 <= value < 0:
        return value + 128  # numpy reads a negative char-sized value this way
    if value < 0:
        raise DtypeError("dtype flags out of range")
    return value


def pickled_dtype_layout(obj: object, state: object) -> Layout:
    """Itemsize and hasobject of `numpy.dtype(obj, ...)` after `__setstate__(state)`
    (`state` None: no BUILD). Raises DtypeError where numpy would fail or where
    this model stops following numpy."""
    if not isinstance(obj, str):
        raise DtypeError(f"dtype built from a {type(obj).__name__}, not a type code")
    kind, itemsize, has_objects = _base_layout(obj)
    if state is None:
        return _checked(Layout(itemsize, has_objects))
    if not isinstance(state, tuple):
        raise DtypeError("dtype state is not a tuple")
    if len(state) in (7, 8, 9):
        version, elsize = state[0], state[5]
        flags = _flags(state[7]) if len(state) > 7 else 0
    elif len(state) == 5:
        version, elsize, flags = 0, state[3], 0  # the oldest form: no version, no flags
    else:
        raise DtypeError(f"dtype state of {len(state)} items")
    if not isinstance(version, int) or not 0 <= version <= 4:
        raise DtypeError(f"dtype state version {version!r}")
    # Before version 3 the field was a has-object marker: non-zero sets every
    # object flag, zero keeps the constructor's.
    old = version < 3
    has_objects = (has_objects or flags != 0) if old else bool(flags & _NPY_ITEM_HASOBJECT)
    if kind in _FLEXIBLE:
        # Flexible types take their size from the state; fixed types ignore it.
        if not isinstance(elsize, int):
            raise DtypeError("dtype elsize is not an integer")
        itemsize = elsize
    return _checked(Layout(itemsize, has_objects))


def _checked(layout: Layout) -> Layout:
    if layout.itemsize < 0:
        raise DtypeError(f"negative item size {layout.itemsize}")
    return layout
