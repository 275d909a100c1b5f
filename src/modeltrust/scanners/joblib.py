"""joblib: arrays written between the opcodes of a pickle stream.

joblib pickles a `NumpyArrayWrapper` for each array, and right after the
wrapper's BUILD opcode writes the array's raw bytes (after an alignment
padding byte in joblib >= 1.2), or, for object arrays, a nested pickle. A
plain pickle walk would stumble on the raw bytes; this hook skips exactly
the array's size, computed from the wrapper's shape and dtype, without
reading it, and walks the nested pickle of object arrays.
"""

from __future__ import annotations

import math
import re

from .pickle import BuildHook, Call, Malformed, PickleContext, Ref, walk_pickle

_WRAPPERS = {
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
}
_DTYPE_FUNCS = {("numpy", "dtype"), ("numpy.core.multiarray", "dtype"), ("numpy._core.multiarray", "dtype")}
_DTYPE_CODE = re.compile(r"^[<>|=]?([A-Za-z])(\d*)")
_NPY_ITEM_REFCOUNT = 0x01


def _dtype_layout(dtype: object, offset: int) -> tuple[int, bool]:
    """(itemsize, has_objects) of a modelled `numpy.dtype(code, ...)` call."""
    if not (isinstance(dtype, Call) and isinstance(dtype.func, Ref)):
        raise Malformed("joblib array wrapper has no readable dtype", offset)
    if (dtype.func.module, dtype.func.name) not in _DTYPE_FUNCS:
        raise Malformed(f"joblib array dtype is built by {dtype.func.dotted}", offset)
    args = dtype.args
    if not isinstance(args, tuple) or not args or not isinstance(args[0], str):
        raise Malformed("joblib array dtype has no type code", offset)
    match = _DTYPE_CODE.match(args[0])
    if match is None:
        raise Malformed(f"unknown dtype code {args[0]!r}", offset)
    kind, digits = match.group(1), match.group(2)
    state = dtype.state
    elsize = state[5] if isinstance(state, tuple) and len(state) > 7 else -1
    flags = state[7] if isinstance(state, tuple) and len(state) > 7 else 0
    has_objects = kind == "O" or (isinstance(flags, int) and bool(flags & _NPY_ITEM_REFCOUNT))
    if isinstance(elsize, int) and elsize > 0:
        return elsize, has_objects
    if digits:
        return int(digits), has_objects
    raise Malformed(f"cannot size dtype {args[0]!r}", offset)


def _shape_count(shape: object, offset: int) -> int:
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise Malformed("joblib array wrapper has no readable shape", offset)
    return math.prod(shape)


def make_build_hook(end: int, ctx: PickleContext) -> BuildHook:
    """A BUILD hook for streams that end at reader offset `end`."""

    def on_build(target: Call, state: object, after: int) -> int | None:
        func = target.func
        if not isinstance(func, Ref) or (func.module, func.name) not in _WRAPPERS:
            return None
        where = after - 1
        if not isinstance(state, dict):
            raise Malformed("joblib array wrapper state is not a dict", where)
        itemsize, has_objects = _dtype_layout(state.get("dtype"), where)
        if has_objects:
            # Object arrays follow as a complete pickle of their own.
            return walk_pickle(ctx, after, end)
        nbytes = _shape_count(state.get("shape"), where) * itemsize
        pos = after
        if state.get("numpy_array_alignment_bytes") is not None:
            padding = ctx.reader.read_at(pos, 1)
            if not padding:
                raise Malformed("joblib array data missing", where)
            pos += 1 + padding[0]
        if pos + nbytes > end:
            raise Malformed(f"joblib array of {nbytes} bytes runs past the end of the file", where)
        ctx.stats.skipped_regions += 1
        return pos + nbytes

    return on_build
