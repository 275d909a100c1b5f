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
from ..reader import ByteReader, ReaderIO, TooLarge, read_all
from ..sources.ziparchive import ZipArchive
from .base import ScanContext

SCANNER = "keras"
MAX_CONFIG = 64 << 20
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


def _walk(node: object, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every JSON object in the config, bounded in depth; the inside of a
    Lambda layer is not descended into (the layer is one finding)."""
    if depth > MAX_DEPTH:
        raise RecursionError("config nests too deeply")
    if isinstance(node, dict):
        yield node
        if _is_lambda(node):
            return
        for value in node.values():
            yield from _walk(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, depth + 1)


def _layer_name(obj: dict[str, Any]) -> str:
    config = obj.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    return str(name or obj.get("class_name"))


def check_config(config: object, location: Location, ctx: ScanContext) -> None:
    """Report the code-carrying constructs of a Keras architecture JSON."""
    try:
        objects = list(_walk(config))
    except RecursionError:
        ctx.report("keras-malformed", location, "Keras config nests too deeply to analyse", SCANNER)
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


def parse_config(raw: bytes, location: Location, ctx: ScanContext) -> object | None:
    try:
        parsed: object = json.loads(raw.decode("utf-8"))
        return parsed
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
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
            try:
                config = parse_config(read_all(reader, MAX_CONFIG), where, ctx)
            except TooLarge:
                ctx.report("scan-unverified", where, f"config over {MAX_CONFIG} bytes", SCANNER)
                continue
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
        try:
            with h5py.File(io.BufferedReader(ReaderIO(reader)), "r") as handle:
                attrs = {k: handle.attrs[k] for k in ("model_config", "training_config") if k in handle.attrs}
        except Exception as exc:  # noqa: BLE001 - h5py raises many types for corrupt files
            ctx.report(
                "keras-malformed", location, f"HDF5 file cannot be read: {type(exc).__name__}", self.name
            )
            return
        for key, value in attrs.items():
            raw = value if isinstance(value, bytes) else str(value).encode()
            if len(raw) > MAX_CONFIG:
                ctx.report("scan-unverified", location, f"{key} over {MAX_CONFIG} bytes", self.name)
                continue
            config = parse_config(raw, location.within(f"@{key}"), ctx)
            if config is not None:
                check_config(config, location.within(f"@{key}"), ctx)
