"""ONNX models, walked as protobuf without importing onnx or onnxruntime:
external-data paths that leave the model folder, operators from custom
domains (native code the runtime must load), unknown opsets, model-local
functions. Initializer bytes are skipped, never read; nesting (subgraphs in
If/Loop/Scan attributes, functions) is bounded."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ..findings import Location
from ..reader import ByteReader
from .base import ScanContext
from .protowire import LEN, Field, Message, WireError

SCANNER = "onnx"
MAX_GRAPH_DEPTH = 16
MAX_NODES = 2_000_000
# Operator domains the standard runtimes implement themselves.
STANDARD_DOMAINS = {
    "",
    "ai.onnx",
    "ai.onnx.ml",
    "ai.onnx.training",
    "ai.onnx.preview.training",
    "com.microsoft",
    "com.microsoft.nchwc",
    "com.microsoft.experimental",
    "com.ms.internal.nhwc",
    "org.pytorch.aten",
}
MAX_KNOWN_OPSET = {"": 30, "ai.onnx": 30, "ai.onnx.ml": 10}

# ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, FunctionProto field numbers.
MODEL_GRAPH, MODEL_OPSET, MODEL_FUNCTIONS, MODEL_TRAINING = 7, 8, 25, 20
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_SPARSE_INITIALIZER = 1, 5, 15
NODE_OP_TYPE, NODE_DOMAIN, NODE_ATTRIBUTE = 4, 7, 5
ATTR_T, ATTR_G, ATTR_TENSORS, ATTR_GRAPHS, ATTR_SPARSE, ATTR_SPARSES = 5, 6, 10, 11, 22, 23
TENSOR_NAME, TENSOR_EXTERNAL = 8, 13
FUNCTION_NAME, FUNCTION_NODE, FUNCTION_DOMAIN = 1, 7, 10


def _is_escaping(path: str) -> bool:
    normalised = path.replace("\\", "/")
    return normalised.startswith("/") or path[1:2] == ":" or ".." in normalised.split("/")


def _outside_folder(model_path: str, data_path: str) -> str | None:
    """Where external data resolves when it leaves the model's folder through a
    symlink, else None. The Hugging Face cache links snapshot files into
    `../../blobs/`, which is the same repository."""
    if not os.path.isfile(model_path):
        return None  # not a local file (a hub or archive location): nothing to resolve
    folder = os.path.dirname(os.path.abspath(model_path))
    candidate = os.path.join(folder, data_path)
    if not os.path.lexists(candidate):
        return None
    real, real_folder = os.path.realpath(candidate), os.path.realpath(folder)
    if real.startswith(real_folder + os.sep):
        return None
    snapshots = folder.rpartition(f"{os.sep}snapshots{os.sep}")[0]
    if snapshots and real.startswith(os.path.realpath(os.path.join(snapshots, "blobs")) + os.sep):
        return None
    return real


@dataclass
class _Walk:
    location: Location
    ctx: ScanContext | None
    check_time: Callable[[], None]
    nodes: int = 0
    steps: int = 0
    custom_ops: dict[str, int] = field(default_factory=dict)
    external: list[str] = field(default_factory=list)
    """Every external-data location, as written."""

    def step(self) -> None:
        """Count a field walked; every 16,384 the file's time budget is checked."""
        self.steps += 1
        if not self.steps & 0x3FFF:
            self.check_time()

    def report(self, rule: str, location: Location, message: str, subject: str) -> None:
        if self.ctx is not None:
            self.ctx.report(rule, location, message, SCANNER, subject=subject)

    def tensor(self, msg: Message) -> None:
        name, location = "", ""
        for f in msg.fields():
            if f.number == TENSOR_NAME and f.wire_type == LEN:
                name = msg.text(f, 256)
            elif f.number == TENSOR_EXTERNAL and f.wire_type == LEN:
                key = value = ""
                entry = msg.sub(f)
                for kv in entry.fields():
                    if kv.wire_type == LEN and kv.number in (1, 2):
                        key, value = (entry.text(kv), value) if kv.number == 1 else (key, entry.text(kv))
                if key == "location" and value:
                    location = value
        if not location:
            return
        self.external.append(location)
        if _is_escaping(location):
            self.report(
                "onnx-external-data",
                self.location.at(msg.start),
                f"tensor {name!r} reads external data from {location!r}, outside the model folder",
                location,
            )
        elif not self.location.members:
            target = _outside_folder(self.location.path, location)
            if target is not None:
                self.report(
                    "onnx-external-data",
                    self.location.at(msg.start),
                    f"tensor {name!r} reads external data {location!r}, a symlink to {target} "
                    "outside the folder",
                    location,
                )

    def node(self, msg: Message, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise WireError(f"more than {MAX_NODES} nodes", msg.start)
        op_type = domain = ""
        for f in msg.fields():
            self.step()
            if f.wire_type != LEN:
                continue
            if f.number == NODE_OP_TYPE:
                op_type = msg.text(f, 256)
            elif f.number == NODE_DOMAIN:
                domain = msg.text(f, 256)
            elif f.number == NODE_ATTRIBUTE:
                self.attribute(msg.sub(f), depth)
        if domain not in STANDARD_DOMAINS:
            self.custom_ops[f"{domain}::{op_type}"] = self.custom_ops.get(f"{domain}::{op_type}", 0) + 1

    def attribute(self, msg: Message, depth: int) -> None:
        for f in msg.fields():
            self.step()
            if f.wire_type != LEN:
                continue
            if f.number in (ATTR_G, ATTR_GRAPHS):
                self.graph(msg.sub(f), depth + 1)
            elif f.number in (ATTR_T, ATTR_TENSORS):
                self.tensor(msg.sub(f))
            elif f.number in (ATTR_SPARSE, ATTR_SPARSES):
                self.sparse(msg.sub(f))

    def sparse(self, msg: Message) -> None:
        """SparseTensorProto: values (1) and indices (2) are tensors, external data included."""
        for part in msg.fields():
            if part.wire_type == LEN and part.number in (1, 2):
                self.tensor(msg.sub(part))

    def graph(self, msg: Message, depth: int) -> None:
        if depth > MAX_GRAPH_DEPTH:
            raise WireError(f"subgraphs nest deeper than {MAX_GRAPH_DEPTH}", msg.start)
        for f in msg.fields():
            self.step()
            if f.wire_type != LEN:
                continue
            if f.number == GRAPH_NODE:
                self.node(msg.sub(f), depth)
            elif f.number == GRAPH_INITIALIZER:
                self.tensor(msg.sub(f))
            elif f.number == GRAPH_SPARSE_INITIALIZER:
                self.sparse(msg.sub(f))

    def function(self, msg: Message, depth: int) -> str:
        name = domain = ""
        for f in msg.fields():
            if f.wire_type != LEN:
                continue
            if f.number == FUNCTION_NAME:
                name = msg.text(f, 256)
            elif f.number == FUNCTION_DOMAIN:
                domain = msg.text(f, 256)
            elif f.number == FUNCTION_NODE:
                self.node(msg.sub(f), depth)
        return f"{domain}::{name}"


class OnnxScanner:
    name = SCANNER
    formats = ("onnx",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        walk = _Walk(location, ctx, ctx.check_time)
        model = Message(reader)
        functions: list[str] = []
        opsets: list[tuple[str, int]] = []
        try:
            for f in model.fields():
                if f.wire_type != LEN:
                    continue
                if f.number == MODEL_GRAPH:
                    walk.graph(model.sub(f), 0)
                elif f.number == MODEL_OPSET:
                    opsets.append(self._opset(model, f))
                elif f.number == MODEL_FUNCTIONS:
                    functions.append(walk.function(model.sub(f), 0))
        except WireError as exc:
            ctx.report("onnx-malformed", location.at(exc.offset), f"ONNX protobuf: {exc}", SCANNER)
            return
        # Model-local functions (onnxscript's pkg.onnxscript.torch_lib...) are
        # expanded by the runtime from the model itself: calling one, or
        # importing its domain, is not a custom operator.
        local = set(functions)
        local_domains = {name.partition("::")[0] for name in functions}
        for domain, version in opsets:
            if domain not in local_domains:
                self._report_opset(domain, version, location, ctx)
        for op, count in sorted(walk.custom_ops.items()):
            if op in local:
                continue
            ctx.report(
                "onnx-custom-op",
                location,
                f"{count} node(s) use custom operator {op}; the runtime must load native code for it",
                SCANNER,
                subject=op,
            )
        if functions:
            ctx.report(
                "onnx-functions",
                location,
                f"model defines {len(functions)} local function(s): {', '.join(functions[:5])}",
                SCANNER,
                subject=functions[0],
            )

    @staticmethod
    def _opset(model: Message, f: Field) -> tuple[str, int]:
        domain, version = "", 0
        sub = model.sub(f)
        for part in sub.fields():
            if part.number == 1 and part.wire_type == LEN:
                domain = sub.text(part, 256)
            elif part.number == 2:
                version = part.value
        return domain, version

    @staticmethod
    def _report_opset(domain: str, version: int, location: Location, ctx: ScanContext) -> None:
        limit = MAX_KNOWN_OPSET.get(domain)
        if (limit is not None and version > limit) or (domain not in STANDARD_DOMAINS):
            ctx.report(
                "onnx-unusual-opset",
                location,
                f"imports opset {domain or 'ai.onnx'} version {version}",
                SCANNER,
                subject=f"{domain}:{version}",
            )


def external_data_files(reader: ByteReader, check_time: Callable[[], None]) -> list[str]:
    """The external-data locations an ONNX model names (for the repository
    pass; `check_time` raises LimitReached when its time is spent)."""
    walk = _Walk(Location(""), None, check_time)
    model = Message(reader)
    try:
        for f in model.fields():
            if f.wire_type == LEN and f.number == MODEL_GRAPH:
                walk.graph(model.sub(f), 0)
            elif f.wire_type == LEN and f.number == MODEL_FUNCTIONS:
                walk.function(model.sub(f), 0)
    except WireError:
        pass  # the per-file scan reports it
    return walk.external
