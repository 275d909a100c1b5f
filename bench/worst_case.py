"""Worst-case inputs per format at ~10 MB, each scanned by `modeltrust scan`
in its own process (issue #9, item 4).

    python bench/worst_case.py                 # every case at 10 MB
    python bench/worst_case.py --size 2000000 --case "ONNX: many nodes"

Printed per case: file size, wall time, peak RSS (VmHWM of the scanning
process), bytes it wrote, exit code and the non-info rules it reported. The
bar: under 5 s and 256 MB for files under 10 MB, no scan-error, no traceback,
a finding naming the limit when one is hit. Builders are in
fixtures/worst_case.py; files are cached in bench/out/worst/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "worst"
_PROBE = (  # VmHWM: ru_maxrss would carry the parent's peak over across exec
    "import atexit, runpy, sys\n"
    "def _probe():\n"
    "    status = open('/proc/self/status').read()\n"
    "    io = open('/proc/self/io').read()\n"
    "    peak, written = status.split('VmHWM:')[1].split()[0], io.split('wchar:')[1].split()[0]\n"
    "    print('PROBE', peak, written, file=sys.stderr)\n"
    "atexit.register(_probe)\n"
    "sys.argv = ['modeltrust'] + sys.argv[1:]\n"
    "runpy.run_module('modeltrust', run_name='__main__')\n"
)


def build(name: str, size: int) -> Path:
    sys.path.insert(0, str(ROOT / "fixtures"))
    from worst_case import CASES

    file_name, builder = CASES[name]
    folder = OUT / f"{size}" / "".join(c if c.isalnum() else "_" for c in name)
    path = folder / file_name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(builder(size))
    return path


def scan(path: Path, timeout: float = 120) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), TMPDIR=tmp)
        command = [sys.executable, "-c", _PROBE, "scan", "--no-progress", "--format", "json", str(path)]
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        elapsed = time.perf_counter() - started
    probe = err.split(b"PROBE ")[-1].split() if b"PROBE " in err else [b"0", b"0"]
    try:
        findings = json.loads(out)["findings"]
        rules = sorted({f["rule_id"] for f in findings if f["severity"] != "info"})
    except (ValueError, KeyError):
        rules = [f"no report: {err.decode(errors='replace')[-300:]}"]
    return {
        "seconds": elapsed,
        "peak_mb": int(probe[0]) // 1024,
        "written_mb": int(probe[1]) / (1 << 20),
        "exit": proc.returncode,
        "rules": rules,
        "traceback": b"Traceback" in err,
    }


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--size", type=int, default=10_000_000, help="target size of each input in bytes")
    parser.add_argument("--case", action="append", help="case name (repeatable; default: all)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "fixtures"))
    from worst_case import CASES

    names = args.case or list(CASES)
    print(f"{'case':40} {'size':>9} {'time':>7} {'peak':>7} {'written':>8} exit  rules (non-info)")
    bad = 0
    for name in names:
        path = build(name, args.size)
        result = scan(path)
        size = path.stat().st_size
        over = size <= 11_000_000 and (float(result["seconds"]) > 5 or int(result["peak_mb"]) > 256)  # type: ignore[call-overload]
        failed = over or result["traceback"] or "scan-error" in result["rules"]  # type: ignore[operator]
        bad += bool(failed)
        print(
            f"{name:40} {size / 1e6:>7.2f}MB {result['seconds']:>6.2f}s {result['peak_mb']:>4} MB "
            f"{result['written_mb']:>6.1f}MB {result['exit']:>4}  {', '.join(result['rules'])}"  # type: ignore[arg-type]
            + ("   <-- FAIL" if failed else "")
        )
    print(f"\n{len(names)} cases, {bad} over a bar (5 s / 256 MB up to ~10 MB, scan-error, traceback)")


if __name__ == "__main__":
    main()
