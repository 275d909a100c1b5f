"""Issue #3 benchmarks: scanning PyTorch zip checkpoints.

Prints, for each generated file, the best wall time of:
- `modeltrust scan` (the CLI, process start included),
- `picklescan -p` (baseline scanner, same file, same run),
- `sha256sum` (the cost of reading every byte once),
and the ratios, plus modeltrust's peak RSS.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
BIN = Path(sys.executable).parent


def make_big_checkpoint(path: Path, gigabytes: float) -> None:
    import torch

    n = int(gigabytes * (1 << 30) / 4 / 8)
    state = collections.OrderedDict((f"layer{i}.weight", torch.zeros(n)) for i in range(8))
    torch.save(state, path)


def make_many_tensors(path: Path, count: int) -> None:
    import torch

    state = collections.OrderedDict((f"layer{i}.weight", torch.zeros(2)) for i in range(count))
    torch.save(state, path)


def timed(cmd: list[str], runs: int) -> tuple[float, int, int]:
    """(best seconds, exit code, peak RSS in KiB of the slowest child so far)."""
    best = float("inf")
    code = 0
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        best = min(best, time.perf_counter() - start)
        code = result.returncode
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return best, code, rss


def peak_rss_kib(cmd: list[str]) -> int:
    """Peak RSS of one run, via a fresh helper so earlier children do not count."""
    probe = (
        "import resource, subprocess, sys; "
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def warm_page_cache(path: Path) -> None:
    """Warm the page cache so every tool reads from memory, not disk."""
    with path.open("rb") as handle:
        while handle.read(16 << 20):
            pass


def bench_file(label: str, path: Path, runs: int, executable: str) -> None:
    warm_page_cache(path)
    size_mb = path.stat().st_size / 1e6
    modeltrust = [executable, "scan", "--no-progress", str(path)]
    mt_time, mt_code, _ = timed(modeltrust, runs)
    mt_rss = peak_rss_kib(modeltrust)
    rows = [("modeltrust scan", mt_time, mt_code)]
    picklescan = shutil.which("picklescan", path=str(BIN)) or shutil.which("picklescan")
    if picklescan:
        ps_time, ps_code, _ = timed([picklescan, "-p", str(path)], max(1, runs // 2))
        rows.append(("picklescan -p", ps_time, ps_code))
    sha_time, _, _ = timed(["sha256sum", str(path)], max(1, runs // 2))
    rows.append(("sha256sum", sha_time, 0))
    print(f"\n{label}: {path.name}, {size_mb:,.1f} MB")
    print(f"  {'tool':18} {'best s':>8} {'exit':>5} {'vs modeltrust':>14}")
    for name, seconds, code in rows:
        print(f"  {name:18} {seconds:8.3f} {code:5d} {seconds / mt_time:13.1f}x")
    print(f"  modeltrust peak RSS: {mt_rss / 1024:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--tensors", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--modeltrust",
        default=str(BIN / "modeltrust"),
        help="the modeltrust executable to time (default: the one beside this Python); use a "
        "regular install, since an editable one adds an import hook to every start",
    )
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    big = OUT / f"big_{args.gigabytes:g}GB.pt"
    many = OUT / f"many_{args.tensors}.pt"
    if not big.exists():
        make_big_checkpoint(big, args.gigabytes)
    if not many.exists():
        make_many_tensors(many, args.tensors)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    bench_file("large checkpoint", big, args.runs, args.modeltrust)
    bench_file("many small tensors", many, args.runs, args.modeltrust)


if __name__ == "__main__":
    main()
