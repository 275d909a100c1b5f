"""Issue #10 benchmark: `modeltrust bom` of a folder with two 1 GB files against
one-thread `hashlib.sha256` over the same bytes, timed in the same run, and
the BOM command's peak memory.

The folder is a sharded safetensors model (two shards, an index, a card and a
config). The BOM hashes every byte once: the scan reads only the headers, the
rest is hashed by threads in parallel (hashlib releases the GIL), so on a
machine with two free cores the ratio approaches 0.5. Page cache is warmed
first, so both sides measure hashing, not the disk.

    python bench/bench_bom.py [--gigabytes 1] [--runs 5]
"""

from __future__ import annotations

import hashlib
import json
import resource
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import (
    CHUNK,
    OUT,
    best_median,
    cpu_seconds,
    machine_line,
    modeltrust_env,
    ratios,
    size_and_runs,
    write_random,
)


def write_shard(path: Path, size: int, names: list[str]) -> None:
    per = size // len(names) // 4 * 4
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    for i, name in enumerate(names):
        header[name] = {"dtype": "F32", "shape": [per // 4], "data_offsets": [i * per, (i + 1) * per]}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        write_random(handle, per * len(names))


def make_model(folder: Path, size: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    shards = [folder / f"model-0000{i}-of-00002.safetensors" for i in (1, 2)]
    weight_map = {}
    for i, shard in enumerate(shards):
        names = [f"layers.{i}.{j}.weight" for j in range(4)]
        weight_map.update(dict.fromkeys(names, shard.name))
        if not shard.exists() or shard.stat().st_size < size:
            write_shard(shard, size, names)
    index = {"metadata": {}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "config.json").write_text(json.dumps({"architectures": ["BenchModel"], "model_type": "bench"}))
    (folder / "README.md").write_text("---\nlicense: mit\npipeline_tag: text-generation\n---\n# bench\n")
    return shards


def sha256_one_thread(paths: list[Path]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of hashing every file on this thread."""
    start, cpu = time.perf_counter(), cpu_seconds(resource.RUSAGE_SELF)
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    return time.perf_counter() - start, cpu_seconds(resource.RUSAGE_SELF) - cpu


def run_bom(folder: Path, out: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in KiB) of one `modeltrust bom` run,
    started from a small helper process so that no memory of this one counts."""
    cmd, env = [sys.executable, "-m", "modeltrust"], modeltrust_env()
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
        "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
        "print(time.perf_counter() - t, u.ru_utime + u.ru_stime, u.ru_maxrss, code)"
    )
    done = subprocess.run([sys.executable, "-c", probe, *cmd, "bom", str(folder), "-o", str(out)],
                          env=env, capture_output=True, text=True, check=True)  # fmt: skip
    seconds, cpu, peak, code = done.stdout.split()
    if code != "0":
        raise SystemExit(f"modeltrust bom failed: {done.stderr}")
    return float(seconds), float(cpu), int(peak)


def main() -> None:
    size, gigabytes, runs = size_and_runs(__doc__)
    folder = OUT / f"bom_2x{gigabytes:g}GB"
    shards = make_model(folder, size)
    total = sum(p.stat().st_size for p in shards)
    sha256_one_thread(shards)  # warm the page cache
    baseline, base_cpu, bom, bom_cpu, rss = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bom.json"
        for _ in range(runs):  # interleaved, so both see the same machine load
            wall, cpu = sha256_one_thread(shards)
            baseline.append(wall)
            base_cpu.append(cpu)
            wall, cpu, peak = run_bom(folder, out)
            bom.append(wall)
            bom_cpu.append(cpu)
            rss.append(peak)
        doc = json.loads(out.read_text())
    hashes = {c["name"]: c["hashes"][0]["content"] for c in doc["components"] if c["type"] == "file"}
    assert all(hashes.get(p.name) for p in shards), "the BOM lacks a shard's SHA-256"
    print(machine_line(total, len(shards)))
    print(f"{'measure':44} {'best':>8} {'median':>8} {'CPU s':>7}")
    rows = (
        ("one-thread hashlib.sha256 over the bytes", baseline, base_cpu),
        ("modeltrust bom (whole command)", bom, bom_cpu),
    )
    for label, values, cpu in rows:
        best, median = best_median(values)
        print(f"{label:44} {best:7.2f}s {median:7.2f}s {min(cpu):6.2f}s")
    print(f"wall ratio bom / sha256: {ratios(bom, baseline)} (target <= 0.75x)")
    print(f"modeltrust bom peak RSS: {max(rss) / 1024:.0f} MiB (target < 200 MiB)")


if __name__ == "__main__":
    main()
