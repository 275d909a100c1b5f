"""Parameter counts and dtypes from safetensors and GGUF headers, without
reading a byte of the weights. Reads are bounded; a header that does not parse
yields no facts (the scan reports what is wrong with it)."""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..reader import FileReader

MAX_SAFETENSORS_HEADER = 100 << 20  # what the safetensors library accepts
MAX_GGUF_HEADER = 256 << 20
MAX_COUNT = 1 << 24
MAX_DIMS = 4

# ggml type id -> name (ggml.h)
GGML_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K",
    11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS",
    18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8",
    25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0",
    39: "MXFP4",
}  # fmt: skip
_FIXED_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True, slots=True)
class TensorFacts:
    parameters: int
    dtypes: tuple[str, ...]
    files: tuple[str, ...]
    """The files counted (relative paths), e.g. every shard of one checkpoint."""
    format: str


class _Bad(Exception):
    pass


def safetensors_facts(path: Path) -> tuple[int, set[str]] | None:
    """(elements, dtypes) of one safetensors file, from its JSON header."""
    try:
        with FileReader(path) as reader:
            head = reader.read_at(0, 8)
            if len(head) < 8:
                return None
            (length,) = struct.unpack("<Q", head)
            if length > min(MAX_SAFETENSORS_HEADER, reader.size - 8):
                return None
            header = json.loads(reader.read_at(8, length).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(header, dict):
        return None
    total, dtypes = 0, set()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or not isinstance(info.get("shape"), list):
            return None
        elements = 1
        for dim in info["shape"]:
            if not isinstance(dim, int) or isinstance(dim, bool) or dim < 0:
                return None
            elements *= dim
        total += elements
        if isinstance(info.get("dtype"), str):
            dtypes.add(info["dtype"])
    return total, dtypes


class _Cursor:
    """Sequential reads through a 1 MiB window (tensor infos are tiny and many)."""

    def __init__(self, reader: FileReader) -> None:
        self.reader = reader
        self.pos = 0
        self.wide = True
        self._base = 0
        self._buf = b""

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > min(self.reader.size, MAX_GGUF_HEADER):
            raise _Bad
        start = self.pos - self._base
        if start < 0 or start + n > len(self._buf):
            self._base, start = self.pos, 0
            self._buf = self.reader.read_at(self.pos, max(n, 1 << 20))
        self.pos += n
        return self._buf[start : start + n]

    def uint(self, size: int) -> int:
        value: int = struct.unpack("<I" if size == 4 else "<Q", self.take(size))[0]
        return value

    def length(self) -> int:
        return self.uint(8 if self.wide else 4)

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > self.reader.size:
            raise _Bad
        self.pos += n

    def skip_string(self) -> None:
        n = self.length()  # read before moving: the length comes first
        self.skip(n)

    def skip_value(self, vtype: int) -> None:
        if vtype in _FIXED_SIZES:
            self.skip(_FIXED_SIZES[vtype])
        elif vtype == _STRING:
            self.skip_string()
        elif vtype == _ARRAY:
            etype, count = self.uint(4), self.length()
            if count > self.reader.size:
                raise _Bad
            if etype in _FIXED_SIZES:
                self.skip(count * _FIXED_SIZES[etype])
            elif etype == _STRING:
                for _ in range(count):
                    self.skip_string()
            else:
                raise _Bad
        else:
            raise _Bad


def gguf_facts(path: Path) -> tuple[int, set[str]] | None:
    """(elements, ggml types) of one GGUF file, from its tensor infos."""
    try:
        with FileReader(path) as reader:
            cur = _Cursor(reader)
            if cur.take(4) != b"GGUF":
                return None
            version = cur.uint(4)
            if version not in (1, 2, 3):
                return None
            cur.wide = version != 1
            tensors, entries = cur.length(), cur.length()
            if tensors > MAX_COUNT or entries > MAX_COUNT:
                return None
            for _ in range(entries):
                cur.skip_string()
                cur.skip_value(cur.uint(4))
            total, dtypes = 0, set()
            for _ in range(tensors):
                cur.skip_string()
                n_dims = cur.uint(4)
                if n_dims > MAX_DIMS:
                    return None
                elements = 1
                for _ in range(n_dims):
                    elements *= cur.uint(8)
                dtypes.add(GGML_TYPES.get(cur.uint(4), "unknown"))
                cur.uint(8)  # data offset
                total += elements
    except (OSError, _Bad, struct.error):
        return None
    return total, dtypes


def _safetensors_set(files: Mapping[str, Path]) -> list[str]:
    """The safetensors files that make up one checkpoint per folder: the files a
    `*.safetensors.index.json` maps, else `model.safetensors`, else all of them
    (diffusers keep one model per sub-folder)."""
    names = sorted(files)
    by_dir: dict[str, list[str]] = defaultdict(list)
    for name in names:
        if name.endswith(".safetensors"):
            by_dir[str(PurePosixPath(name).parent)].append(name)
    chosen: list[str] = []
    for folder, found in sorted(by_dir.items()):
        prefix = "" if folder == "." else folder + "/"
        index = [n for n in names if n.startswith(prefix) and n.endswith(".safetensors.index.json")]
        mapped = _index_files(files[index[0]], prefix) if index else []
        if mapped:
            chosen.extend(f for f in sorted(set(mapped)) if f in found)
        elif prefix + "model.safetensors" in found:
            chosen.append(prefix + "model.safetensors")
        else:
            chosen.extend(found)
    return chosen


def _index_files(path: Path, prefix: str) -> list[str]:
    try:
        if path.stat().st_size > 64 << 20:
            return []
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return []
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict):
        return []
    return [prefix + v for v in weight_map.values() if isinstance(v, str)]


def tensor_facts(files: Mapping[str, Path]) -> TensorFacts | None:
    """Facts for one model from its files (name inside the model -> local path):
    safetensors preferred; else the first GGUF file (each GGUF file is a whole
    model, often one quantisation of several)."""
    safetensors = _safetensors_set(files)
    if safetensors:
        total, dtypes, counted = 0, set(), []
        for name in safetensors:
            facts = safetensors_facts(files[name])
            if facts is None:
                continue
            total += facts[0]
            dtypes |= facts[1]
            counted.append(name)
        if counted:
            return TensorFacts(total, tuple(sorted(dtypes)), tuple(counted), "safetensors")
    for name in sorted(files):
        if name.endswith(".gguf") or (name == "" and files[name].suffix == ".gguf"):
            facts = gguf_facts(files[name])
            if facts is not None:
                return TensorFacts(facts[0], tuple(sorted(facts[1])), (name,), "gguf")
    return None
