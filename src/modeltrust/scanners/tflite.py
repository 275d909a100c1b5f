"""TFLite models (FlatBuffers, identifier `TFL3`): a structure check and the
operators the model needs. Weights are never read.

Builtin operators are the runtime's own code. Custom operators are native
code the application must register (or, for `Flex*` ops, TensorFlow kernels
run by the Flex delegate), so they are reported; Flex ops that read or write
files are high. Indices (operator codes, buffers) and out-of-flatbuffer
buffer ranges are checked against their tables and the file.
"""

from __future__ import annotations

from ..findings import Location
from ..reader import ByteReader
from .base import ScanContext
from .flatbuf import FlatError, Table, root

SCANNER = "tflite"
CUSTOM = 32
MAX_SUBGRAPHS = 10_000
MAX_ITEMS = 2_000_000
# Custom ops the standard TFLite op resolver registers itself.
RUNTIME_CUSTOM_OPS = {"TFLite_Detection_PostProcess", "Mfcc", "AudioSpectrogram"}
FILE_FLEX_OPS = {
    "ReadFile", "WriteFile", "MatchingFiles", "Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2",
    "RestoreSlice", "MergeV2Checkpoints", "PyFunc", "EagerPyFunc", "PyFuncStateless", "ImmutableConst",
}  # fmt: skip


class TFLiteScanner:
    name = SCANNER
    formats = ("tflite",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            model = root(reader, b"TFL3")
            custom = _operator_codes(model)
            _check_structure(model, reader.size)
        except FlatError as exc:
            ctx.report("tflite-malformed", location, f"TFLite model: {exc}", self.name)
            return
        for name in sorted(custom):
            _report_custom(name, location, ctx)


def _operator_codes(model: Table) -> list[str]:
    custom = []
    for code in model.tables(1, MAX_ITEMS):
        builtin = max(code.integer(0, "b"), code.integer(3, "i"))
        if builtin == CUSTOM:
            custom.append(code.string(1) or "")
    return custom


def _check_structure(model: Table, file_size: int) -> None:
    codes = model.vector(1)[1]
    buffers = list(model.tables(4, MAX_ITEMS))
    for buffer in buffers:
        buffer.vector(0, 1)  # inline data: bounds checked, bytes not read
        offset, size = buffer.integer(1, "Q"), buffer.integer(2, "Q")
        if offset > 1 and offset + size > file_size:
            raise FlatError(f"buffer data at {offset} (+{size}) lies outside the {file_size}-byte file")
    for subgraph in model.tables(2, MAX_SUBGRAPHS):
        for tensor in subgraph.tables(0, MAX_ITEMS):
            index = tensor.integer(2, "I")
            if buffers and index >= len(buffers):
                raise FlatError(f"tensor refers to buffer {index} of {len(buffers)}")
        for operator in subgraph.tables(3, MAX_ITEMS):
            index = operator.integer(0, "I")
            if index >= codes:
                raise FlatError(f"operator refers to operator code {index} of {codes}")


def _report_custom(name: str, location: Location, ctx: ScanContext) -> None:
    if name in RUNTIME_CUSTOM_OPS:
        return
    flex = name[4:] if name.startswith("Flex") else ""
    if flex in FILE_FLEX_OPS:
        ctx.report(
            "tflite-file-op",
            location,
            f"Flex op {name} runs TensorFlow's {flex} kernel, which reads or writes files or runs Python",
            SCANNER,
            subject=name,
        )
        return
    what = (
        f"TensorFlow kernel {flex} through the Flex delegate" if flex else "native code the app must register"
    )
    ctx.report("tflite-custom-op", location, f"custom operator {name!r}: {what}", SCANNER, subject=name)
