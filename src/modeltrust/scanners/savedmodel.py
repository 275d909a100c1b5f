"""TensorFlow SavedModel (saved_model.pb), walked as protobuf without
importing TensorFlow: every op in the graph and in its function library is
checked against ops that run Python or touch the file system."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..findings import Location
from ..reader import ByteReader
from .base import ScanContext
from .protowire import LEN, Message, WireError

if TYPE_CHECKING:
    from .repo import RepoFile

SCANNER = "savedmodel"
MAX_DEPTH = 8
# SavedModel -> MetaGraphDef -> GraphDef -> NodeDef / FunctionDefLibrary -> FunctionDef -> NodeDef
SAVED_META_GRAPHS, META_GRAPH_DEF, GRAPH_NODE, GRAPH_LIBRARY = 2, 2, 1, 2
LIBRARY_FUNCTION, FUNCTION_NODE_DEF, NODE_NAME, NODE_OP = 1, 3, 1, 2


class SavedModelScanner:
    name = SCANNER
    formats = ("tf-savedmodel",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        dangerous = set(ctx.rules.rule("savedmodel-dangerous-op").patterns)
        found: dict[str, list[str]] = {}
        try:
            model = Message(reader)
            for f in model.fields():
                if f.number == SAVED_META_GRAPHS and f.wire_type == LEN:
                    meta = model.sub(f)
                    for g in meta.fields():
                        if g.number == META_GRAPH_DEF and g.wire_type == LEN:
                            self._graph(meta.sub(g), dangerous, found)
        except WireError as exc:
            ctx.report(
                "savedmodel-malformed", location.at(exc.offset), f"SavedModel protobuf: {exc}", SCANNER
            )
            return
        for op, nodes in sorted(found.items()):
            ctx.report(
                "savedmodel-dangerous-op",
                location,
                f"graph runs op {op} in {len(nodes)} node(s), e.g. {nodes[0]!r}",
                SCANNER,
                subject=op,
            )

    def _graph(self, graph: Message, dangerous: set[str], found: dict[str, list[str]]) -> None:
        for f in graph.fields():
            if f.wire_type != LEN:
                continue
            if f.number == GRAPH_NODE:
                self._node(graph.sub(f), dangerous, found)
            elif f.number == GRAPH_LIBRARY:
                library = graph.sub(f)
                for fn in library.fields():
                    if fn.number == LIBRARY_FUNCTION and fn.wire_type == LEN:
                        function = library.sub(fn)
                        for part in function.fields():
                            if part.number == FUNCTION_NODE_DEF and part.wire_type == LEN:
                                self._node(function.sub(part), dangerous, found)

    @staticmethod
    def _node(node: Message, dangerous: set[str], found: dict[str, list[str]]) -> None:
        name = op = ""
        for f in node.fields():
            if f.wire_type == LEN and f.number == NODE_NAME:
                name = node.text(f, 256)
            elif f.wire_type == LEN and f.number == NODE_OP:
                op = node.text(f, 256)
        if op in dangerous:
            found.setdefault(op, []).append(name)


# FingerprintDef (fingerprint.pb, TF >= 2.12): five uint64 hashes, a VersionDef and a uuid string.
_FINGERPRINT_HASHES = {1, 2, 3, 4, 5}
_FINGERPRINT_VERSION = 6
_FINGERPRINT_UUID = 7
_VERSION_FIELDS = {1, 2, 3}  # producer, min_consumer, bad_consumers


def is_fingerprint(reader: ByteReader) -> bool:
    """Does the whole message walk as a FingerprintDef (and nothing else)?"""
    from .protowire import VARINT

    if reader.size > 4096:
        return False
    try:
        message = Message(reader)
        for f in message.fields():
            if (f.number in _FINGERPRINT_HASHES and f.wire_type == VARINT) or (
                f.number == _FINGERPRINT_UUID and f.wire_type == LEN and f.value <= 64
            ):
                continue
            if f.number != _FINGERPRINT_VERSION or f.wire_type != LEN:
                return False
            if any(v.number not in _VERSION_FIELDS or v.wire_type != VARINT for v in message.sub(f).fields()):
                return False
    except WireError:
        return False
    return True


def record_fingerprint(path: str, files: dict[str, RepoFile], ctx: ScanContext) -> None:
    """`fingerprint.pb` beside a saved_model.pb holds hashes the loader compares, nothing
    it deserialises into objects: recorded as data when it walks as a FingerprintDef."""
    item = files[path]
    unverified = [f for f in ctx.findings if f.rule_id == "scan-unverified" and f.location == item.location]
    if not unverified:
        return
    try:
        reader = item.open()
    except OSError:
        return
    try:
        if not is_fingerprint(reader):
            return
    finally:
        close = getattr(reader, "close", None)
        if callable(close):
            close()
    for finding in unverified:
        ctx.findings.remove(finding)
    message = "SavedModel fingerprint (FingerprintDef: hashes and a version); nothing in it runs on load"
    ctx.report("format-data", item.location, message, SCANNER, subject="tf-fingerprint")
