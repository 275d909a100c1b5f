"""Issue #15 benchmark: a Parquet scan reads the footer only.

Writes a Parquet file of about 2 GB in /tmp (pyarrow, uncompressed random
binary values in several row groups, pandas-style metadata and an Arrow
schema), then prints modeltrust's best wall time for the whole command,
Python's hashlib.sha256 over the same file (every byte read once, timed in
this run), the ratio (target: under 5 %) and modeltrust's peak RSS (target:
under 200 MB).

    PYTHONPATH=src python bench/bench_datasets.py [--gigabytes 2] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from bench_formats import hash_seconds
from bench_pickle import peak_rss_kib, timed

BATCH_VALUES = 1024
VALUE_BYTES = 64 << 10  # 64 MiB per batch


def make_parquet(path: Path, size: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.int64()), ("blob", pa.binary())], metadata={"source": "bench"})
    written, next_id = 0, 0
    with pq.ParquetWriter(path, schema, compression="none") as writer:
        while written < size:
            blobs = [os.urandom(VALUE_BYTES) for _ in range(BATCH_VALUES)]
            ids = pa.array(range(next_id, next_id + BATCH_VALUES), pa.int64())
            writer.write_table(pa.table({"id": ids, "blob": pa.array(blobs, pa.binary())}, schema=schema))
            written += BATCH_VALUES * VALUE_BYTES
            next_id += BATCH_VALUES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default="/tmp/modeltrust-bench")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"big_{args.gigabytes:g}GB.parquet"
    if not path.exists():
        make_parquet(path, int(args.gigabytes * (1 << 30)))
    cmd = [sys.executable, "-m", "modeltrust", "scan", "--no-progress", str(path)]
    seconds, code, _ = timed(cmd, args.runs)
    sha = hash_seconds(path, max(1, args.runs // 2))
    rss = peak_rss_kib(cmd)
    last = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip().splitlines()[-1]
    print(f"python {sys.version.split()[0]}; sha256 = hashlib over the whole file, same run")
    print(f"{'format':8} {'size':>9} {'modeltrust s':>13} {'sha256 s':>9} {'ratio':>7} {'peak RSS':>9} exit")
    print(f"{'parquet':8} {path.stat().st_size / 1e9:8.2f}G {seconds:13.3f} {sha:9.3f} {seconds / sha:6.1%} "
          f"{rss / 1024:7.0f}MiB {code}  {last}")  # fmt: skip


if __name__ == "__main__":
    main()
