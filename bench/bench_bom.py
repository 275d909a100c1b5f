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

import argparse
import hashlib
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "out"
CHUNK = 8 << 20


def write_shard(path: Path, size: int, names: list[str]) -> None:
    per = size // len(names) // 4 * 4
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    for i, name in enumerate(names):
        header[name] = {"dtype": "F32", "shape": [per // 4], "data_offsets": [i * per, (i + 1) * per]}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    block = os.urandom(1 << 20) * 64  # 64 MiB, not zeros: no filesystem may shortcut it
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        left = per * len(names)
        while left > 0:
            handle.write(block[: min(left, len(block))])
            left -= len(block)


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


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def sha256_one_thread(paths: list[Path]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of hashing every file on this thread."""
    start, cpu = time.perf_counter(), cpu_seconds(resource.RUSAGE_SELF)
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    return time.perf_counter() - start, cpu_seconds(resource.RUSAGE_SELF) - cpu


def command() -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    try:
        import modeltrust  # noqa: F401
    except ImportError:  # a checkout: run from src/
        env["PYTHONPATH"] = str(ROOT / "src")
    return [sys.executable, "-m", "modeltrust"], env


def run_bom(folder: Path, out: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in KiB) of one `modeltrust bom` run,
    started from a small helper process so that no memory of this one counts."""
    cmd, env = command()
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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gigabytes", type=float, default=1.0, help="size of each of the two files")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    size = int(args.gigabytes * 1e9)
    folder = OUT / f"bom_2x{args.gigabytes:g}GB"
    shards = make_model(folder, size)
    total = sum(p.stat().st_size for p in shards)
    sha256_one_thread(shards)  # warm the page cache
    baseline, base_cpu, bom, bom_cpu, rss = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bom.json"
        for _ in range(args.runs):  # interleaved, so both see the same machine load
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
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"python {sys.version.split()[0]}; {cores} cores, load {load:.1f}; {total / 1e9:.2f} GB in 2 files")
    print(f"{'measure':44} {'best':>8} {'median':>8} {'CPU s':>7}")
    rows = (
        ("one-thread hashlib.sha256 over the bytes", baseline, base_cpu),
        ("modeltrust bom (whole command)", bom, bom_cpu),
    )
    for label, values, cpu in rows:
        ordered = sorted(values)
        print(f"{label:44} {ordered[0]:7.2f}s {ordered[len(ordered) // 2]:7.2f}s {min(cpu):6.2f}s")
    ratio_best = min(bom) / min(baseline)
    ratio_median = sorted(bom)[len(bom) // 2] / sorted(baseline)[len(baseline) // 2]
    print(f"wall ratio bom / sha256: best {ratio_best:.2f}x, median {ratio_median:.2f}x (target <= 0.75x)")
    print(f"modeltrust bom peak RSS: {max(rss) / 1024:.0f} MiB (target < 200 MiB)")


if __name__ == "__main__":
    main()
