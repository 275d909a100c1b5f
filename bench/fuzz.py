"""Fuzz campaigns over every parser, and the bomb suite (issue #9, item 4).

    python bench/fuzz.py --seconds 60              # every target for 60 s each
    python bench/fuzz.py --target pickle --seconds 300
    python bench/fuzz.py --bombs                   # full-size bombs through the CLI

Each target runs in a worker process under `nice -n 19` (the machine is
shared) with an address-space cap, so a runaway allocation is a MemoryError
we can count instead of the OOM killer. A worker that dies (a signal, a hang
past the watchdog) is restarted; the input it was running is kept as a crash.
Printed per target: executions, failures (internal exceptions, including the
report's `scan-error` findings, and unique signatures), inputs over 5 s of CPU
time, the slowest input (wall and CPU time: under `nice` on a shared machine
the wall time measures the neighbours too), the workers' peak RSS, the peak of
the inputs that raised it past 256 MB re-run alone in a fresh process
("alone"), and the most bytes one input wrote (temp files).
Failing and slow inputs are saved under bench/out/fuzz/<target>/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "fuzz"
ADDRESS_SPACE = 4 << 30
"""Worker cap: past it allocations fail with MemoryError (counted) instead of the machine swapping."""
WATCHDOG_SECONDS = 60
"""An input still running after this is a hang; the worker is killed and restarted."""
RESTART_RSS_MB = 1024
"""A worker whose RSS grew past this is restarted (allocator arenas stay after a MemoryError)."""


# --- worker ---------------------------------------------------------------------------


def _wchar() -> int:
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def worker(target_name: str, seconds: float, seed: int, state_dir: Path) -> int:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "src"))
    from tests.fuzz.campaign import Stats, fuzz
    from tests.fuzz.targets import targets

    target = targets()[target_name]
    current = state_dir / "current.bin"
    report = state_dir / f"stats-{os.getpid()}.json"
    measured = {"peak_rss_mb": _rss_mb(), "max_written": 0, "heavy": []}
    stats = Stats(target_name)
    last_dump = [time.monotonic()]
    started_wchar = [0]

    def before(data: bytes) -> None:
        current.write_bytes(data)
        started_wchar[0] = _wchar()

    def after(data: bytes, elapsed: float) -> None:
        written = _wchar() - started_wchar[0]
        measured["max_written"] = max(int(measured["max_written"]), written)  # type: ignore[call-overload]
        rss = _rss_mb()
        if rss > int(measured["peak_rss_mb"]):  # type: ignore[call-overload]
            measured["peak_rss_mb"] = rss
            if rss > 256:
                measured["heavy"].append([rss, len(data)])  # type: ignore[union-attr]
                (state_dir / f"heavy-{rss}.bin").write_bytes(data)
        if rss > RESTART_RSS_MB:
            raise SystemExit(3)
        if time.monotonic() - last_dump[0] > 2:
            _dump(report, stats, measured)
            last_dump[0] = time.monotonic()

    code = 0
    try:
        fuzz(target, seconds=seconds, seed=seed, before=before, after=after, stats=stats)
    except SystemExit as exc:
        code = int(exc.code or 0)
    _dump(report, stats, measured)
    current.unlink(missing_ok=True)
    return code


def _dump(path: Path, stats: object, measured: dict[str, object]) -> None:
    from tests.fuzz.campaign import Stats

    assert isinstance(stats, Stats)
    failures = {}
    for sig, failure in stats.failures.items():
        sample = path.parent / f"fail-{abs(hash(sig)) % 10**8}.bin"
        sample.write_bytes(failure.data)
        failures[sig] = {"count": failure.count, "message": failure.message, "sample": str(sample)}
    slow = []
    for i, (seconds, data) in enumerate(sorted(stats.slow, reverse=True)[:20]):
        sample = path.parent / f"slow-{os.getpid()}-{i}.bin"
        sample.write_bytes(data)
        slow.append([seconds, len(data), str(sample)])
    record = {
        "executions": stats.executions,
        "failures": failures,
        "slow": slow,
        "slow_count": len(stats.slow),
        "max_seconds": stats.max_seconds,
        "max_cpu_seconds": stats.max_cpu_seconds,
        **measured,
    }
    path.write_text(json.dumps(record))


# --- parent ---------------------------------------------------------------------------


def run_target(name: str, seconds: float, seed: int) -> dict[str, object]:
    state = OUT / name
    state.mkdir(parents=True, exist_ok=True)
    for old in state.glob("*"):
        old.unlink()
    deadline = time.monotonic() + seconds
    runs = 0
    deaths: list[str] = []
    while (left := deadline - time.monotonic()) > 1:
        runs += 1
        command = ["nice", "-n", "19", sys.executable, __file__, "--worker", name]
        command += ["--seconds", f"{left:.1f}", "--seed", str(seed + runs), "--state", str(state)]
        try:
            proc = subprocess.run(command, timeout=left + WATCHDOG_SECONDS, check=False)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = -signal.SIGKILL
        if code not in (0, 3):
            current = state / "current.bin"
            if current.exists():
                kept = state / f"died-{runs}.bin"
                current.rename(kept)
                deaths.append(f"worker exit {code} on {kept}")
    total = _merge(name, state, runs, deaths)
    total["input_peak_mb"] = recheck_heavy(name, state)
    return total


_RECHECK = (
    "import sys\n"
    "sys.path[:0] = [sys.argv[1], sys.argv[1] + '/src']\n"
    "from tests.fuzz.targets import targets\n"
    "targets()[sys.argv[2]].run(open(sys.argv[3], 'rb').read())\n"
    "print('PEAK', open('/proc/self/status').read().split('VmHWM:')[1].split()[0])\n"
)


def recheck_heavy(name: str, state: Path, most: int = 8) -> int:
    """Peak memory of the inputs that raised the worker's RSS past 256 MB, each
    re-run alone in a fresh process (a worker's RSS also holds the corpus, the
    allocator's arenas and every earlier input's leftovers). 0 if none."""
    samples = sorted(state.glob("heavy-*.bin"), key=lambda p: int(p.stem.split("-")[1]), reverse=True)[:most]
    peak = 0
    for sample in samples:
        command = ["nice", "-n", "19", sys.executable, "-c", _RECHECK, str(ROOT), name, str(sample)]
        try:
            proc = subprocess.run(command, capture_output=True, timeout=WATCHDOG_SECONDS, check=False)
        except subprocess.TimeoutExpired:
            continue
        if b"PEAK " in proc.stdout:
            peak = max(peak, int(proc.stdout.split(b"PEAK ")[-1].split()[0]) // 1024)
    return peak


def _merge(name: str, state: Path, runs: int, deaths: list[str]) -> dict[str, object]:
    total: dict[str, object] = {"target": name, "workers": runs, "deaths": deaths}
    executions = slow = written = rss = 0
    max_seconds = max_cpu = 0.0
    failures: dict[str, dict[str, object]] = {}
    for path in state.glob("stats-*.json"):
        record = json.loads(path.read_text())
        executions += record["executions"]
        slow += record["slow_count"]
        written = max(written, record["max_written"])
        rss = max(rss, record["peak_rss_mb"])
        max_seconds = max(max_seconds, record["max_seconds"])
        max_cpu = max(max_cpu, record.get("max_cpu_seconds", 0.0))
        for sig, info in record["failures"].items():
            blank = {"count": 0, "message": info["message"], "sample": info["sample"]}
            known = failures.setdefault(sig, blank)
            known["count"] = int(known["count"]) + info["count"]  # type: ignore[call-overload]
    total.update(
        executions=executions, slow=slow, max_seconds=max_seconds, max_cpu_seconds=max_cpu, peak_rss_mb=rss,
        max_written=written,
        failures=failures,
    )  # fmt: skip
    return total


def print_table(results: list[dict[str, object]], seconds: float) -> None:
    print(f"\nfuzz campaign: {seconds:g} s per target, nice -n 19\n")
    header = f"{'target':14} {'execs':>8} {'execs/s':>8} {'failures':>8} {'unique':>6} {'>5 s':>5} "
    header += f"{'slowest':>8} {'cpu':>7} {'peak RSS':>9} {'alone':>7} {'max write':>10} deaths"
    print(header)
    for r in results:
        failures = r["failures"]
        assert isinstance(failures, dict)
        count = sum(int(f["count"]) for f in failures.values())
        print(
            f"{r['target']!s:14} {r['executions']:>8} {int(r['executions']) / seconds:>8.0f} {count:>8} "  # type: ignore[call-overload]
            f"{len(failures):>6} {r['slow']:>5} {float(r['max_seconds']):>7.2f}s "  # type: ignore[arg-type]
            f"{float(r['max_cpu_seconds']):>6.2f}s {r['peak_rss_mb']:>6} MB "  # type: ignore[arg-type]
            f"{r.get('input_peak_mb', 0):>4} MB "
            f"{int(r['max_written']) / (1 << 20):>7.1f} MB {len(r['deaths'])}"  # type: ignore[call-overload]
        )
    for r in results:
        for sig, info in r["failures"].items():  # type: ignore[attr-defined]
            print(f"  {r['target']}: {info['count']} x {sig}")
            print(f"      {info['message'][:160]}\n      {info['sample']}")
        for death in r["deaths"]:  # type: ignore[attr-defined]
            print(f"  {r['target']}: {death}")


# --- bombs ----------------------------------------------------------------------------

_PROBE = (  # VmHWM: Linux carries ru_maxrss over from the (larger) forking parent across exec
    "import atexit, runpy, sys\n"
    "def _io():\n"
    "    rss = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
    "    wchar = open('/proc/self/io').read().split('wchar:')[1].split()[0]\n"
    "    print('PROBE', rss, wchar, file=sys.stderr)\n"
    "atexit.register(_io)\n"
    "sys.argv = ['modeltrust'] + sys.argv[1:]\n"
    "runpy.run_module('modeltrust', run_name='__main__')\n"
)


_CHAIN_HEAD = b"\x80\x04\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94"
_LINK = b"Ky\x94\x93\x94"  # STACK_GLOBAL on the previous result and an int, memoized


def build_bombs(folder: Path) -> dict[str, Path]:
    sys.path.insert(0, str(ROOT / "fixtures"))
    import hostile

    gib = 1 << 30
    builders = {
        "gzip bomb (4 GiB of zeros)": ("zeros.gz", lambda: hostile.gzip_bomb(4 * gib - 1)),
        "zip bomb (one 4 GiB member)": ("zeros.zip", lambda: hostile.zip_bomb(4 * gib - 1)),
        "xz bomb (1 GiB of zeros)": ("zeros.xz", lambda: hostile.xz_bomb(gib)),
        "42.zip (5 layers x 16, 4 GiB leaves: 4.5 PB)": (
            "42.zip", lambda: hostile.nested_zip_bomb(layers=5, fanout=16, leaf_size=4 * gib - 1)),
        "overlapping entries (10,000 x 16 MiB)": (
            "overlap.zip", lambda: hostile.overlapping_zip_bomb(10_000, 16 << 20)),
        "Keras config of 64 MB (stored)": (
            "big.keras", lambda: hostile.keras_zip(hostile.big_keras_config(64 << 20), 0)),
        "lzma header asking for 4 GB": ("dict.lzma", hostile.lzma_huge_dictionary),
        "pickle: 30,000 chained STACK_GLOBALs": ("chain.pkl", lambda: _CHAIN_HEAD + _LINK * 30_000 + b"."),
        "pickle: 1,000,000 imports": ("imports.pkl", lambda: b"\x80\x02" + b"cos\nsystem\n0" * 10**6 + b"N."),
        "pickle: 100,000 nested loads(b64decode())": ("loads.pkl", lambda: _nested_loads(100_000)),
    }  # fmt: skip
    paths = {}
    for label, (name, build) in builders.items():
        path = folder / name
        if not path.exists():
            path.write_bytes(build())
        paths[label] = path
    return paths


def _nested_loads(depth: int) -> bytes:
    """`pickle.loads(base64.b64decode(pickle.loads(base64.b64decode(...))))`,
    `depth` calls deep in one stream: the walker folds each call's argument."""
    head = b"cpickle\nloads\n(cbase64\nb64decode\n("
    return b"\x80\x02" + head * depth + b"S'gAJOLg=='\n" + b"tRtR" * depth + b"."


def run_bombs() -> None:
    folder = ROOT / "bench" / "out" / "bombs"
    folder.mkdir(parents=True, exist_ok=True)
    print("building bombs (cached in bench/out/bombs) ...", flush=True)
    bombs = build_bombs(folder)
    print(f"\n{'bomb':48} {'size':>9} {'time':>7} {'peak RSS':>9} {'written':>9} exit  findings")
    for label, path in bombs.items():
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), TMPDIR=tmp)
            command = [sys.executable, "-c", _PROBE, "scan", "--no-progress", "--format", "json", str(path)]
            started = time.perf_counter()
            proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                out, err = proc.communicate(timeout=300)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            elapsed = time.perf_counter() - started
        probe = err.split(b"PROBE ")[-1].split() if b"PROBE " in err else [b"0", b"?"]
        rss, written = int(probe[0]) // 1024, probe[1].decode()
        try:
            findings = json.loads(out)["findings"]
            rules = sorted({f["rule_id"] for f in findings if f["severity"] != "info"})
        except (ValueError, KeyError):
            rules = [f"no report: {err.decode(errors='replace')[-200:]}"]
        mb = f"{int(written) / (1 << 20):.1f} MB" if written.isdigit() else "?"
        print(
            f"{label:48} {path.stat().st_size / 1024:>6.0f} KB {elapsed:>6.2f}s {rss:>6} MB {mb:>9} "
            f"{proc.returncode:>4}  {', '.join(rules)}"
        )
    print("\n(peak RSS and bytes written, stdout included, are the scanning process's own)")


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--target", action="append", help="target name (repeatable; default: all)")
    parser.add_argument("--seconds", type=float, default=30.0, help="per target")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bombs", action="store_true", help="run the bomb suite instead")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.exit(worker(args.worker, args.seconds, args.seed, args.state))
    if args.bombs:
        run_bombs()
        return
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "src"))
    from tests.fuzz.targets import targets

    names = args.target or sorted(targets())
    results = []
    for name in names:
        print(f"fuzzing {name} for {args.seconds:g} s ...", flush=True)
        results.append(run_target(name, args.seconds, args.seed))
    print_table(results, args.seconds)
    (OUT / "summary.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
