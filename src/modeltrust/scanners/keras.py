"""Keras models: the `.keras` zip (config.json) and legacy HDF5 files (the
`model_config` attribute). The architecture JSON is walked for layers that
carry code: Lambda layers (marshalled bytecode or source), TFOpLambda calls
to TensorFlow ops that touch files or run Python, custom objects from
modules outside Keras, and switches that turn safe_mode off."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from ..findings import Location
from ..reader import ByteReader
from ..sources.ziparchive import ZipArchive
from .base import ScanContext

SCANNER = "keras"
MAX_DEPTH = 200
# Packages whose layers are deserialised without custom code.
KERAS_MODULES = ("keras", "tf_keras", "tensorflow", "keras_hub", "keras_nlp", "keras_cv")
# TensorFlow ops a TFOpLambda may name that reach outside the model.
DANGEROUS_TF_OPS = ("io.write_file", "io.read_file", "io.gfile", "py_function", "numpy_function", "py_func",
                    "compat.v1.py_func", "debugging.experimental", "summary.create_file_writer")  # fmt: skip


def is_keras_zip(names: list[str]) -> bool:
    """keras.saving.load_model reads config.json; metadata.json is optional."""
    return "config.json" in names


def _is_lambda(obj: dict[str, Any]) -> bool:
    return obj.get("class_name") in ("Lambda", "__lambda__") or obj.get("function_type") == "lambda"


class _TooDeep(Exception):
    pass


def _walk(root: object) -> Iterator[dict[str, Any]]:
    """Every JSON object in the config in document order, bounded in depth
    (iteratively: no Python recursion); the inside of a Lambda layer is not
    descended into (the layer is one finding)."""
    stack: list[tuple[object, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _TooDeep
        if isinstance(node, dict):
            yield node
            if not _is_lambda(node):
                stack.extend((value, depth + 1) for value in reversed(node.values()))
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in reversed(node))


def _layer_name(obj: dict[str, Any]) -> str:
    config = obj.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    return str(name or obj.get("class_name"))


def check_config(config: object, location: Location, ctx: ScanContext) -> None:
    """Report the code-carrying constructs of a Keras architecture JSON."""
    try:
        objects = list(_walk(config))
    except _TooDeep:
        message = f"Keras config nests deeper than {MAX_DEPTH} levels; it was not analysed"
        ctx.report("scan-limit", location, message, SCANNER)
        return
    for obj in objects:
        class_name = obj.get("class_name")
        raw_inner = obj.get("config")
        inner: dict[str, Any] = raw_inner if isinstance(raw_inner, dict) else {}
        if _is_lambda(obj):
            ctx.report(
                "keras-lambda",
                location,
                f"Lambda layer {_layer_name(obj)!r} carries Python code (marshalled bytecode or source) "
                "that runs when the model is loaded or called",
                SCANNER,
                subject=_layer_name(obj),
            )
        elif class_name == "TFOpLambda":
            function = str(inner.get("function", ""))
            if function.startswith(DANGEROUS_TF_OPS) or "py_func" in function:
                ctx.report(
                    "keras-dangerous-op",
                    location,
                    f"TFOpLambda layer {_layer_name(obj)!r} calls tf.{function}",
                    SCANNER,
                    subject=function,
                )
        module = obj.get("module")
        if isinstance(module, str) and isinstance(class_name, str) and not module.startswith(KERAS_MODULES):
            _report_import(obj, module, class_name, location, ctx)
        if obj.get("safe_mode") is False:
            ctx.report("keras-unsafe-mode", location, "config sets safe_mode to false", SCANNER)


def _report_import(
    obj: dict[str, Any], module: str, class_name: str, location: Location, ctx: ScanContext
) -> None:
    """An object Keras rebuilds by importing module.name. Functions are
    serialised as class_name "function" with the name in config; such an
    import of a denied callable (os.system, builtins.eval, ...) is high."""
    from ..rules import Verdict

    config = obj.get("config")
    name = config if class_name == "function" and isinstance(config, str) else class_name
    verdict = ctx.rules.classify(module, name)
    if verdict.verdict is Verdict.DENIED and verdict.rule is not None:
        ctx.report(
            "keras-dangerous-import",
            location,
            f"config makes Keras import {module}.{name} ({verdict.rule.title})",
            SCANNER,
            subject=f"{module}.{name}",
        )
        return
    ctx.report(
        "keras-custom-object",
        location,
        f"{class_name} comes from module {module!r}; loading imports and runs that code",
        SCANNER,
        subject=f"{module}.{name}",
    )


def parse_config(raw: bytes | str, location: Location, ctx: ScanContext) -> object | None:
    """The config as JSON, within the size limit; None (and a finding) otherwise."""
    limit = ctx.limits.max_config_bytes
    if len(raw) > limit:
        message = f"Keras config of {len(raw)} bytes is over the {limit}-byte limit; it was not analysed"
        ctx.report("scan-limit", location, message, SCANNER)
        return None
    from .jsontop import MAX_CONTAINERS, too_many_containers

    containers = too_many_containers(raw)
    if containers is not None:
        message = f"Keras config holds ~{containers} objects and arrays (over {MAX_CONTAINERS}); not analysed"
        ctx.report("scan-limit", location, message, SCANNER)
        return None
    try:
        parsed: object = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        return parsed
    except RecursionError:
        ctx.report("scan-limit", location, "Keras config nests too deeply to parse", SCANNER)
    except (UnicodeDecodeError, ValueError) as exc:
        ctx.report("keras-malformed", location, f"Keras config is not valid JSON: {exc}", SCANNER)
    return None


def scan_keras_zip(archive: ZipArchive, location: Location, ctx: ScanContext) -> None:
    from .archive import open_zip_member

    for member in archive.members:
        if member.is_dir:
            continue
        reader = open_zip_member(archive, member, location, ctx)
        if reader is None:
            continue
        where = location.within(member.name)
        if member.name == "config.json":
            limit = ctx.limits.max_config_bytes
            config = parse_config(reader.read_at(0, limit + 1), where, ctx)
            if config is not None:
                check_config(config, where, ctx)
        else:
            ctx.scan_member(reader, where, SCANNER)


# h5py runs in a child process: libhdf5 can loop forever or crash on a crafted
# file (a corrupt global heap behind a variable-length string attribute does),
# and neither a time budget nor an exception handler reaches into C code. The
# child asks this process for byte ranges, so it reads what h5py needs and no
# more (HTTP ranges for remote files, a window of an archive member).
_HDF5_CHILD = r"""
import io, json, sys
out_pipe, in_pipe = sys.stdout.buffer, sys.stdin.buffer

class Remote(io.RawIOBase):
    def __init__(self, size):
        self.size, self.pos = size, 0
    def readable(self): return True
    def seekable(self): return True
    def tell(self): return self.pos
    def seek(self, offset, whence=0):
        self.pos = max(0, {0: 0, 1: self.pos, 2: self.size}[whence] + offset)
        return self.pos
    def readinto(self, buffer):
        out_pipe.write(b"R %d %d\n" % (self.pos, len(buffer))); out_pipe.flush()
        n = int.from_bytes(in_pipe.read(4), "little")
        data = in_pipe.read(n)
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)

def answer(result):
    out_pipe.write(b"J " + json.dumps(result).encode() + b"\n"); out_pipe.flush()

try:
    import h5py
except ImportError:
    answer({"missing": True}); sys.exit(0)
size, limit = int(sys.argv[1]), int(sys.argv[2])
attrs = {}
try:
    with h5py.File(io.BufferedReader(Remote(size), 1 << 16), "r") as handle:
        for key in ("model_config", "training_config"):
            if key not in handle.attrs:
                continue
            if handle.attrs.get_id(key).get_storage_size() > limit:
                attrs[key] = None  # a fixed-size attribute is allocated whole: not read
                continue
            value = handle.attrs[key]
            if isinstance(value, bytes):
                value = value.decode("utf-8", "surrogateescape")
            attrs[key] = value if isinstance(value, str) else str(value)
except Exception as exc:
    answer({"error": type(exc).__name__})
else:
    answer({"attrs": attrs})
"""
HDF5_SECONDS = 10.0
"""Most time the HDF5 child may take (less if the file's time budget is shorter)."""
_MAX_RANGE = 1 << 20


def _hdf5_attrs(reader: ByteReader, limit: int, seconds: float) -> dict[str, object]:
    """The Keras attributes of an HDF5 file, read by h5py in a child process
    that is killed when `seconds` pass."""
    import select
    import subprocess
    import sys

    command = [sys.executable, "-I", "-c", _HDF5_CHILD, str(reader.size), str(limit)]
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0
    )
    assert proc.stdin is not None and proc.stdout is not None
    end = time.monotonic() + seconds
    try:
        while True:
            left = end - time.monotonic()
            if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
                return {"timeout": True}
            line = proc.stdout.readline()
            if line.startswith(b"R "):
                offset, length = (int(n) for n in line.split()[1:3])
                data = reader.read_at(offset, min(length, _MAX_RANGE))
                proc.stdin.write(len(data).to_bytes(4, "little") + data)
            elif line.startswith(b"J "):
                result: dict[str, object] = json.loads(line[2:])
                return result
            else:  # the child died (a crash in libhdf5) or wrote nonsense
                return {"crashed": proc.wait(timeout=5)}
    except (OSError, ValueError):
        return {"crashed": proc.poll()}
    finally:
        proc.kill()
        proc.wait()


class Hdf5Scanner:
    """HDF5 files: Keras (legacy) stores the architecture in the root
    attributes `model_config` and `training_config`; weights are never read.
    h5py reads them in a child process, under a time limit."""

    name = "hdf5"
    formats = ("hdf5",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        limit = ctx.limits.max_config_bytes
        assert ctx.deadline is not None
        seconds = max(1.0, min(HDF5_SECONDS, ctx.deadline.at - time.monotonic()))
        result = _hdf5_attrs(reader, limit, seconds)
        if result.get("missing"):
            ctx.report(
                "scan-unverified", location, "HDF5 support is not installed (pip install h5py)", self.name
            )
            return
        if result.get("timeout"):
            message = f"the HDF5 library did not finish reading the Keras attributes within {seconds:.0f} s"
            ctx.report("scan-limit", location, message + " (a crafted file can make it loop)", self.name)
            return
        if "crashed" in result or "error" in result:
            what = result.get("error") or f"the HDF5 reader exited with {result.get('crashed')}"
            ctx.report("keras-malformed", location, f"HDF5 file cannot be read: {what}", self.name)
            return
        attrs = result.get("attrs")
        for key, value in attrs.items() if isinstance(attrs, dict) else ():
            if value is None:
                message = f"HDF5 attribute {key} is over the {limit}-byte config limit; it was not analysed"
                ctx.report("scan-limit", location.within(f"@{key}"), message, self.name)
                continue
            config = parse_config(str(value), location.within(f"@{key}"), ctx)
            if config is not None:
                check_config(config, location.within(f"@{key}"), ctx)
