"""Keras models: the `.keras` zip (config.json) and legacy HDF5 files (the
`model_config` attribute). The architecture JSON is walked for layers that
carry code: Lambda layers (marshalled bytecode or source), TFOpLambda calls
to TensorFlow ops that touch files or run Python, custom objects from
modules outside Keras, and switches that turn safe_mode off."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

from ..findings import Location
from ..reader import ByteReader, ReaderIO
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
    return "config.json" in names and "metadata.json" in names


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


class Hdf5Scanner:
    """HDF5 files: Keras (legacy) stores the architecture in the root
    attributes `model_config` and `training_config`; weights are never read."""

    name = "hdf5"
    formats = ("hdf5",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            import h5py
        except ImportError:
            ctx.report(
                "scan-unverified", location, "HDF5 support is not installed (pip install h5py)", self.name
            )
            return
        limit = ctx.limits.max_config_bytes
        try:
            with h5py.File(io.BufferedReader(ReaderIO(reader)), "r") as handle:
                attrs = {
                    key: handle.attrs[key] if handle.attrs.get_id(key).get_storage_size() <= limit else None
                    for key in ("model_config", "training_config")
                    if key in handle.attrs
                }
        except Exception as exc:  # noqa: BLE001 - h5py raises many types for corrupt files
            ctx.report(
                "keras-malformed", location, f"HDF5 file cannot be read: {type(exc).__name__}", self.name
            )
            return
        for key, value in attrs.items():
            if value is None:  # read nothing: a fixed-size attribute is allocated whole
                message = f"HDF5 attribute {key} is over the {limit}-byte config limit; it was not analysed"
                ctx.report("scan-limit", location.within(f"@{key}"), message, self.name)
                continue
            raw = value if isinstance(value, (bytes, str)) else str(value)
            config = parse_config(raw, location.within(f"@{key}"), ctx)
            if config is not None:
                check_config(config, location.within(f"@{key}"), ctx)
