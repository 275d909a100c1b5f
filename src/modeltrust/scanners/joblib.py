"""joblib: arrays written between the opcodes of a pickle stream.

joblib's unpickler checks, after every BUILD, whether the built object is an
instance (`isinstance`) of one of its array wrappers, and if so reads the
array from the stream right there:

- `NumpyArrayWrapper` (joblib >= 0.10): `prod(shape) * dtype.itemsize` raw
  bytes, after an alignment padding byte (and the padding) when the wrapper
  has `numpy_array_alignment_bytes`; or, when the dtype `hasobject`, one
  nested pickle;
- `NDArrayWrapper` (joblib < 0.10): nothing from the stream, but
  numpy's loader on the file the wrapper names, with pickles allowed;
- `ZNDArrayWrapper`: a zlib file read as raw data.

This hook does what that code does: it recognises the wrappers under every
name that resolves to them and however they are instantiated, takes their
attributes from the constructor and every BUILD, sizes the skipped bytes with
numpy's own dtype rules (npdtype.py: the pickled dtype state, not the elsize
written in it, decides) and int64 arithmetic, and walks nested pickles.
"""

from __future__ import annotations

from .npdtype import DtypeError, pickled_dtype_layout
from .pickle import (
    COMPUTED_KEY,
    FLOAT,
    KEEP_ITEMS,
    BuildHook,
    BytesValue,
    Call,
    LongText,
    Malformed,
    NotModelled,
    Opaque,
    PickleContext,
    Ref,
    describe,
    walk_pickle,
)

_ARRAY = "array"  # NumpyArrayWrapper: data inline
_FILE = "file"  # NDArrayWrapper: np.load of a sibling file, pickle allowed
_ZFILE = "zfile"  # ZNDArrayWrapper: raw zlib data from a sibling file

# Every dotted path that resolves to a wrapper class (tests check this
# against the installed joblib's modules). sklearn.externals.joblib re-exported
# joblib's classes in the sklearn versions that still shipped it.
_CLASSES = {
    "numpy_pickle.NumpyArrayWrapper": _ARRAY,
    "numpy_pickle.NDArrayWrapper": _FILE,
    "numpy_pickle_compat.NDArrayWrapper": _FILE,
    "numpy_pickle.ZNDArrayWrapper": _ZFILE,
    "numpy_pickle_compat.ZNDArrayWrapper": _ZFILE,
}
_PACKAGES = ("joblib", "sklearn.externals.joblib")
WRAPPERS: dict[str, str] = {f"{p}.{c}": kind for p in _PACKAGES for c, kind in _CLASSES.items()}

# Callables that create an instance of their first argument without __init__.
_NEW_HELPERS = {
    "copyreg._reconstructor",
    "copyreg.__newobj__",
    "copyreg.__newobj_ex__",
    "builtins.object.__new__",
}
# Opcodes that call the class itself (running __init__), by their byte.
_CALLING_OPCODES = {ord("R"), ord("o"), ord("i")}
_INIT_PARAMS = {
    _ARRAY: ("subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes"),
    _FILE: ("filename", "subclass", "allow_mmap"),
    _ZFILE: ("filename", "init_args", "state"),
}
_INIT_DEFAULTS: dict[str, dict[str, object]] = {
    _ARRAY: {"allow_mmap": False, "numpy_array_alignment_bytes": 16},
    _FILE: {"allow_mmap": True},
    _ZFILE: {},
}
_DTYPE_CLASSES = {
    "numpy.dtype",
    "numpy.core.multiarray.dtype",
    "numpy._core.multiarray.dtype",
    "numpy.core._multiarray_umath.dtype",
    "numpy._core._multiarray_umath.dtype",
}
# numpy 2's variable-width StringDType pickles as a call to this helper; its
# arrays hold references (hasobject), so joblib writes them as a nested pickle.
_STRING_DTYPE = {
    "numpy._core._internal._convert_to_stringdtype_kwargs",
    "numpy.core._internal._convert_to_stringdtype_kwargs",
}
_STRING_DTYPE_ITEMSIZE = 16
_INT64 = 1 << 64


def _dotted(ref: Ref) -> str:
    return ref.dotted


def wrapper_kind(target: Call) -> str | None:
    """Which wrapper `target` is an instance of, if any."""
    func = target.func
    if not isinstance(func, Ref):
        return None
    dotted = _dotted(func)
    kind = WRAPPERS.get(dotted)
    if kind is not None:
        return kind
    if dotted.endswith(".__new__"):
        kind = WRAPPERS.get(dotted[: -len(".__new__")])
        if kind is not None:
            return kind
    args = target.args
    helper = dotted in _NEW_HELPERS or dotted.endswith(".__new__")
    if helper and isinstance(args, tuple) and args and isinstance(args[0], Ref):
        return WRAPPERS.get(_dotted(args[0]))
    made = _rebuilt_by_new(dotted, args)
    if made is not None:
        return made
    if func.calls and _names_a_wrapper(args):
        # An allowed helper that calls its arguments, handed the class (torch's
        # _rebuild_from_type_v2(copyreg.__newobj__, W, (W,), None) returns a W):
        # the result may be a wrapper whose array joblib reads. (Anything else
        # that may return one is a call the walk judges high already.)
        raise NotModelled(f"{func.dotted} is handed a joblib array wrapper class", target.offset)
    return None


_REBUILD_FROM_TYPE = {"torch._tensor._rebuild_from_type", "torch._tensor._rebuild_from_type_v2"}


def _rebuilt_by_new(dotted: str, args: object) -> str | None:
    """torch's _rebuild_from_type(_v2)(func, W, args, ...) returns func(*args)
    when its type is W: with func one of copyreg's creators (or W.__new__) and
    args[0] a wrapper class, a wrapper made without __init__."""
    if dotted not in _REBUILD_FROM_TYPE or not isinstance(args, tuple) or len(args) < 3:
        return None
    inner_func, inner_args = args[0], args[2]
    if not (isinstance(inner_func, Ref) and isinstance(inner_args, tuple) and inner_args):
        return None
    inner = _dotted(inner_func)
    creates = inner in _NEW_HELPERS or (inner.endswith(".__new__") and inner[: -len(".__new__")] in WRAPPERS)
    if creates and isinstance(inner_args[0], Ref):
        return WRAPPERS.get(_dotted(inner_args[0]))
    return None


def _names_a_wrapper(args: object) -> bool:
    """A wrapper class among the arguments and the tuples nested in them
    (breadth first, at most 256 values: tuples can share parts)."""
    pending = [args]
    seen = 0
    while pending and seen < 256:
        value = pending.pop()
        seen += 1
        if isinstance(value, Ref) and _dotted(value) in WRAPPERS:
            return True
        if isinstance(value, tuple):
            pending.extend(value[:KEEP_ITEMS])
    return bool(pending)  # not looked through: may be


def _init_attributes(target: Call, kind: str, ctx: PickleContext) -> dict[object, object]:
    """Attributes set by __init__ when the class itself was called (REDUCE,
    OBJ, INST); NEWOBJ and the helpers create the instance without it."""
    if not isinstance(target.func, Ref) or WRAPPERS.get(_dotted(target.func)) is None:
        return {}
    opcode = ctx.reader.read_at(target.offset, 1)
    if not opcode or opcode[0] not in _CALLING_OPCODES:
        return {}
    attrs: dict[object, object] = {}
    attrs.update(_INIT_DEFAULTS[kind])
    args = target.args
    if isinstance(args, tuple):
        attrs.update(zip(_INIT_PARAMS[kind], args, strict=False))
    return attrs


def _apply_state(attrs: dict[object, object], state: object, where: int) -> None:
    """What pickle's load_build does to an instance without __setstate__:
    `if state: inst.__dict__.update(state.items())`, then the same with
    setattr for slot state. (The walk keeps every key read here in dicts of
    any size: pickle.TRACKED_KEYS.)"""
    slots: object = None
    if isinstance(state, tuple) and len(state) == 2:
        state, slots = state
    for part in (state, slots):
        if _falsy(part):
            continue
        if isinstance(part, dict):
            if COMPUTED_KEY in part:
                raise NotModelled("joblib array wrapper state has a key computed while loading", where)
            attrs.update(part)
        elif isinstance(part, (list, tuple, str, int, BytesValue, LongText)):
            raise Malformed("joblib array wrapper state is not a dict", where)  # no .items()
        else:
            raise NotModelled(f"joblib array wrapper state is {describe(part)}", where)


def _falsy(value: object) -> bool:
    """`if state:` skips it (floats are read as skipped: a non-zero one stops the loader)."""
    if value is None or value is FLOAT:
        return True
    if isinstance(value, (dict, list, tuple, str, int)):
        return not value
    return isinstance(value, BytesValue) and value.length == 0


def _dtype_layout(dtype: object, where: int) -> tuple[int, bool]:
    """(itemsize, hasobject) of a modelled `numpy.dtype(code, ...)` call.
    Literals have no `hasobject` (the loader raises); anything else that the
    walk does not model may be a dtype and is not followed."""
    if dtype is None or isinstance(dtype, (str, int, tuple, list, dict, BytesValue, Opaque)):
        raise Malformed("joblib array wrapper has no dtype", where)
    if not (isinstance(dtype, Call) and isinstance(dtype.func, Ref)):
        raise NotModelled(f"joblib array dtype is {describe(dtype)}", where)
    if _dotted(dtype.func) in _STRING_DTYPE:
        return _STRING_DTYPE_ITEMSIZE, True
    if _dotted(dtype.func) not in _DTYPE_CLASSES:
        raise NotModelled(f"joblib array dtype is built by {dtype.func.dotted}", where)
    args = dtype.args
    if not isinstance(args, tuple) or not args:
        raise NotModelled("joblib array dtype has no type code", where)
    try:
        layout = pickled_dtype_layout(args[0], dtype.state)
    except DtypeError as exc:
        raise NotModelled(f"joblib array dtype: {exc}", where) from None
    return layout.itemsize, layout.has_objects


def _item_count(shape: object, where: int) -> int:
    """numpy.multiply.reduce over int64(dim) for each dim: wraps around like
    numpy does. The dims must reshape the array afterwards, so only ints (and
    bools) let the load go on."""
    if isinstance(shape, list) and len(shape) < KEEP_ITEMS:
        shape = tuple(shape)  # (a list longer than the walk keeps is not followed)
    if not isinstance(shape, tuple):
        if shape is None or isinstance(shape, (str, int, dict, BytesValue, Opaque)):
            raise Malformed("joblib array wrapper has no shape", where)
        raise NotModelled(f"joblib array shape is {describe(shape)}", where)
    count = 1
    for dim in shape:
        if isinstance(dim, (str, tuple, list, dict, BytesValue, Opaque)) or dim is None:
            raise Malformed("joblib array shape is not a tuple of integers", where)  # reshape raises
        if not isinstance(dim, int):
            raise NotModelled(f"joblib array shape holds {describe(dim)}", where)
        if not -(1 << 63) <= dim < 1 << 63:
            raise Malformed("joblib array shape is not a tuple of int64 values", where)
        count = (count * dim) % _INT64
    if count >= 1 << 63:
        raise Malformed("joblib array shape multiplies to a negative count", where)
    return count


def make_build_hook(end: int, ctx: PickleContext) -> BuildHook:
    """A BUILD hook for streams that end at reader offset `end`."""
    attributes: dict[int, dict[object, object]] = {}

    def on_build(target: Call, state: object, after: int) -> int | None:
        kind = wrapper_kind(target)
        if kind is None:
            return None
        where = after - 1
        attrs = attributes.get(id(target))
        if attrs is None:
            attrs = attributes[id(target)] = _init_attributes(target, kind, ctx)
        _apply_state(attrs, state, where)
        if kind == _FILE:
            _report_sibling(ctx, attrs.get("filename"), where)
            return None
        if kind == _ZFILE:
            return None  # raw zlib data from another file: nothing is unpickled
        itemsize, has_objects = _dtype_layout(attrs.get("dtype"), where)
        if has_objects:
            # Object arrays follow as a complete pickle of their own.
            return walk_pickle(ctx, after, end)
        count = _item_count(attrs.get("shape"), where)
        if count and not itemsize:
            raise Malformed("joblib array of zero-sized items (the loader fails here)", where)
        pos = after
        if attrs.get("numpy_array_alignment_bytes") is not None:
            padding = ctx.reader.read_at(pos, 1)
            if not padding:
                raise Malformed("joblib array data missing", where)
            pos += 1 + padding[0]
        nbytes = count * itemsize
        if pos + nbytes > end:
            raise Malformed(f"joblib array of {nbytes} bytes runs past the end of the file", where)
        ctx.stats.skipped_regions += 1
        return pos + nbytes

    return on_build


def _report_sibling(ctx: PickleContext, filename: object, where: int) -> None:
    name = filename if isinstance(filename, str) else repr(filename)
    ctx.report(
        "joblib-external-array",
        where,
        f"joblib loads the file {name!r} next to this one with numpy, pickles allowed "
        "(NDArrayWrapper, joblib < 0.10): that file is unpickled too; scan it with this one",
        subject=name,
    )
