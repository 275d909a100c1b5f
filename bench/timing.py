"""What the benchmarks share: big random files, a warm page cache, timing a
whole command (wall and CPU), best/median tables and the machine line.

Imported by the scripts in bench/ (run as `python bench/NAME.py`, so this
folder is on sys.path)."""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "out"
CHUNK = 8 << 20


def size_and_runs(description: str | None) -> tuple[int, float, int]:
    """`--gigabytes` (each of the two files) and `--runs`: (bytes, gigabytes, runs)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--gigabytes", type=float, default=1.0, help="size of each of the two files")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    return int(args.gigabytes * 1e9), args.gigabytes, args.runs


def write_random(handle: BinaryIO, size: int) -> None:
    """`size` random bytes (64 MiB repeated, not zeros: no filesystem may shortcut it)."""
    block = os.urandom(1 << 20) * 64
    left = size
    while left > 0:
        handle.write(block[: min(left, len(block))])
        left -= len(block)


def warm(paths: Sequence[Path]) -> None:
    """Read every file once so that each tool reads from memory, not the disk."""
    for path in paths:
        with path.open("rb") as handle:
            while handle.read(CHUNK):
                pass


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def modeltrust_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment to run `python -m modeltrust` in: from src/ in a checkout."""
    env = dict(os.environ if base is None else base)
    try:
        import modeltrust  # noqa: F401
    except ImportError:  # a checkout: run from src/
        env["PYTHONPATH"] = str(ROOT / "src")
    return env


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole command, start-up included."""
    import time

    start, cpu = time.perf_counter(), cpu_seconds(resource.RUSAGE_CHILDREN)
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])} failed: {done.stderr or done.stdout}")
    return seconds, cpu_seconds(resource.RUSAGE_CHILDREN) - cpu


def best_median(values: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return ordered[0], ordered[len(ordered) // 2]


def ratios(ours: Sequence[float], theirs: Sequence[float]) -> str:
    """`best 0.93x, median 0.97x`: ours / theirs."""
    (best_a, median_a), (best_b, median_b) = best_median(ours), best_median(theirs)
    return f"best {best_a / best_b:.2f}x, median {median_a / median_b:.2f}x"


def machine_line(total_bytes: int, files: int) -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"python {sys.version.split()[0]}; {cores} cores, load {load:.1f}; "
        f"{total_bytes / 1e9:.2f} GB in {files} files"
    )
