"""Issue #4 benchmarks: header-only formats stay O(header) and memory stays flat.

Generates large files of each header-based format (their tensor bytes are
zeros written once), then prints for each: modeltrust's best wall time (whole
command), Python's hashlib.sha256 over the same file (the cost of reading every
byte once, timed in this run), the ratio, and modeltrust's peak RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

from bench_pickle import BIN, OUT, peak_rss_kib, timed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from pbwire import field, varint

CHUNK = 64 << 20


def _zeros(handle: object, size: int) -> None:
    block = bytes(CHUNK)
    while size > 0:
        handle.write(block[: min(size, CHUNK)])  # type: ignore[attr-defined]
        size -= CHUNK


def make_safetensors(path: Path, size: int) -> None:
    n = 8
    per = size // n // 4 * 4
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    for i in range(n):
        header[f"layer{i}.weight"] = {
            "dtype": "F32",
            "shape": [per // 4],
            "data_offsets": [i * per, (i + 1) * per],
        }
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        _zeros(handle, n * per)


def make_onnx(path: Path, size: int) -> None:
    """ModelProto{ir_version, opset, graph{node Add, initializer with raw_data}}, streamed."""
    node = field(1, b"x") + field(1, b"w") + field(2, b"y") + field(4, b"Add")
    tensor_head = varint(1 << 3) + varint(size // 4) + varint(2 << 3) + varint(1) + field(8, b"w")
    raw_len = size // 4 * 4
    tensor_len = len(tensor_head) + len(varint(9 << 3 | 2)) + len(varint(raw_len)) + raw_len
    graph_body_head = field(1, node) + varint(5 << 3 | 2) + varint(tensor_len) + tensor_head
    graph_body_head += varint(9 << 3 | 2) + varint(raw_len)
    graph_len = len(graph_body_head) + raw_len
    model_head = varint(1 << 3) + varint(9) + field(8, field(1, b"") + varint(2 << 3) + varint(17))
    model_head += varint(7 << 3 | 2) + varint(graph_len) + graph_body_head
    with path.open("wb") as handle:
        handle.write(model_head)
        _zeros(handle, raw_len)


def make_gguf(path: Path, size: int) -> None:
    def string(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    elements = size // 4
    kv = string("general.architecture") + struct.pack("<I", 8) + string("llama")
    info = string("w") + struct.pack("<I", 1) + struct.pack("<Q", elements) + struct.pack("<IQ", 0, 0)
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + kv + info
    head += bytes(-len(head) % 32)
    with path.open("wb") as handle:
        handle.write(head)
        _zeros(handle, elements * 4)


def hash_seconds(path: Path, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--modeltrust", default=str(BIN / "modeltrust"))
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    size = int(args.gigabytes * (1 << 30))
    makers = {"safetensors": make_safetensors, "onnx": make_onnx, "gguf": make_gguf}
    print(f"python {sys.version.split()[0]}; sha256 = hashlib over the whole file, same run")
    print(f"{'format':12} {'size':>9} {'modeltrust s':>13} {'sha256 s':>9} {'ratio':>7} {'peak RSS':>9} exit")
    for name, make in makers.items():
        path = OUT / f"big_{args.gigabytes:g}GB.{name}"
        if not path.exists():
            make(path, size)
        cmd = [args.modeltrust, "scan", "--no-progress", str(path)]
        seconds, code, _ = timed(cmd, args.runs)
        sha = hash_seconds(path, max(1, args.runs // 2))
        rss = peak_rss_kib(cmd)
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip().splitlines()[-1]
        print(f"{name:12} {path.stat().st_size / 1e9:8.2f}G {seconds:13.3f} {sha:9.3f} {seconds / sha:6.1%} "
              f"{rss / 1024:7.0f}MiB {code}  {out}")  # fmt: skip


if __name__ == "__main__":
    main()
