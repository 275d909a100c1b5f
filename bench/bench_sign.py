"""Issue #11 benchmark: `modeltrust sign --key` of a folder with two 1 GB files
against the upstream `model_signing sign key` on the same folder, timed in the
same run (interleaved, page cache warmed), plus `modeltrust verify --key`
against `model_signing verify key`.

Both produce the same OpenSSF model signature (per-file sha256 manifest, DSSE,
sigstore bundle); the bench checks that each side's signature verifies with the
other side's verifier. Whole commands are timed, start-up included.

    python bench/bench_sign.py [--gigabytes 1] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "out"


def make_folder(folder: Path, size: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"model-0000{i}-of-00002.safetensors" for i in (1, 2)]
    block = os.urandom(1 << 20) * 64  # 64 MiB of random bytes: no filesystem may shortcut it
    for path in files:
        if path.exists() and path.stat().st_size == size:
            continue
        with path.open("wb") as handle:
            left = size
            while left > 0:
                handle.write(block[: min(left, len(block))])
                left -= len(block)
    (folder / "config.json").write_text('{"architectures": ["BenchModel"]}')
    return files


def make_key(folder: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / "key.pem", folder / "key.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def environment(home: Path) -> dict[str, str]:
    env = {**os.environ, "HOME": str(home)}
    try:
        import modeltrust  # noqa: F401
    except ImportError:  # a checkout: run from src/
        env["PYTHONPATH"] = str(ROOT / "src")
    return env


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole command."""
    start, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])} failed: {done.stderr or done.stdout}")
    return seconds, children_cpu() - cpu


def warm(paths: list[Path]) -> None:
    for path in paths:
        with path.open("rb") as handle:
            while handle.read(8 << 20):
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gigabytes", type=float, default=1.0, help="size of each of the two files")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    size = int(args.gigabytes * 1e9)
    folder = OUT / f"sign_2x{args.gigabytes:g}GB"
    files = make_folder(folder, size)
    warm(files)
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = environment(home)
        private, public = make_key(home)
        ours_sig, theirs_sig = home / "modeltrust.sig", home / "model_signing.sig"
        ours = [py, "-m", "modeltrust", "sign", str(folder), "--key", str(private), "--output", str(ours_sig)]
        theirs = [py, "-m", "model_signing", "sign", "key", str(folder), "--private_key", str(private),
                  "--signature", str(theirs_sig)]  # fmt: skip
        ours_verify = [py, "-m", "modeltrust", "verify", str(folder), "--key", str(public)]
        theirs_verify = [py, "-m", "model_signing", "verify", "key", str(folder), "--public_key", str(public)]
        times: dict[str, list[float]] = {"ours": [], "theirs": [], "ours_verify": [], "theirs_verify": []}
        cpu: dict[str, list[float]] = {name: [] for name in times}
        commands = {
            "theirs": theirs,
            "ours": ours,
            # Cross-check: each verifier accepts the other's signature.
            "theirs_verify": [*theirs_verify, "--signature", str(ours_sig)],
            "ours_verify": [*ours_verify, "--signature", str(theirs_sig)],
        }
        for _ in range(args.runs):  # interleaved, so both see the same machine load
            for name, command in commands.items():
                wall, used = timed(command, env)
                times[name].append(wall)
                cpu[name].append(used)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    total = sum(p.stat().st_size for p in files)
    print(f"python {sys.version.split()[0]}; {cores} cores, load {load:.1f}; {total / 1e9:.2f} GB in 2 files")
    print(f"{'command':56} {'best':>7} {'median':>7} {'CPU best':>9} {'CPU median':>10}")
    labels = {
        "theirs": "model_signing sign key (upstream CLI)",
        "ours": "modeltrust sign --key",
        "theirs_verify": "model_signing verify key (of modeltrust's signature)",
        "ours_verify": "modeltrust verify --key (of model_signing's signature)",
    }
    for name, label in labels.items():
        walls, cpus = sorted(times[name]), sorted(cpu[name])
        middle = len(walls) // 2
        print(f"{label:56} {walls[0]:6.2f}s {walls[middle]:6.2f}s {cpus[0]:8.2f}s {cpus[middle]:9.2f}s")
    for what, a, b in (("sign", "ours", "theirs"), ("verify", "ours_verify", "theirs_verify")):
        for kind, values in (("wall", times), ("CPU", cpu)):
            best = min(values[a]) / min(values[b])
            median = sorted(values[a])[len(values[a]) // 2] / sorted(values[b])[len(values[b]) // 2]
            ratios = f"best {best:.2f}x, median {median:.2f}x"
            print(f"{what} {kind}: modeltrust / model_signing {ratios} (target <= 1.00x)")


if __name__ == "__main__":
    main()
